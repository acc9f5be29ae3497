package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/filterd"
	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/session"
)

// env is everything a target works with. Targets build one with newEnv;
// tests build their own around fakes.
type env struct {
	cfg      config.Config
	out      io.Writer
	fw       firewall.Backend
	eng      engine.Engine
	sessions *session.Dir
	// filter runs the DNS filter's daemon; it stops one left running even
	// when the filter is configured off.
	filter *filterd.Control
	// allowlist returns the set to load: the file when it is younger than
	// maxAge (zero forces a fetch), a fresh fetch otherwise, and the last good
	// file when a fetch fails.
	allowlist func(ctx context.Context, maxAge time.Duration) (*netipx.IPSet, error)
	pid       int
	// bridgeWait is how long `mage dev` looks for the network's bridge after
	// starting the container that brings it up (openBridge).
	bridgeWait time.Duration

	// What wire, build and the allowlist fetch use; tests put stand-ins here.
	runner      proc.Runner                                                            // runs every program
	lookPath    func(file string) (string, error)                                      // finds programs on PATH
	buildSpec   func(config.Config) (spec engine.BuildSpec, notes []string, err error) // the image build
	newResolver func() (allowlist.Resolver, error)                                     // resolves the sources' host names
	sourceURLs  map[string]string                                                      // other document addresses, by source name
	resolvConf  string                                                                 // where the DNS filter finds its upstreams
}

func (e *env) step(format string, args ...any) {
	fmt.Fprintf(e.out, "==> "+format+"\n", args...)
}

func (e *env) note(format string, args ...any) {
	fmt.Fprintf(e.out, "    "+format+"\n", args...)
}

// ready checks the runtime, starting its service when it is down, while
// read reads from it. When the service had to be started, read reads again:
// what it read meanwhile may be out of date.
func (e *env) ready(ctx context.Context, read func()) error {
	var started bool
	var err error
	together(func() { started, err = e.eng.EnsureRunning(ctx) }, read)
	if err == nil && started {
		read()
	}
	return err
}

// together runs fs at the same time and returns once they all have.
func together(fs ...func()) {
	var wg sync.WaitGroup
	for _, f := range fs[1:] {
		wg.Go(f)
	}
	fs[0]()
	wg.Wait()
}

// network finds the container network, creating it with the configured
// subnet when it does not exist.
func (e *env) network(ctx context.Context) (policy.Network, error) {
	var n policy.Network
	var nerr error
	if err := e.ready(ctx, func() { n, nerr = e.eng.Network(ctx, e.cfg.Network) }); err != nil {
		return policy.Network{}, err
	}
	return e.orCreate(ctx, n, nerr)
}

// orCreate returns the network n that was read with error err, creating it
// with the configured subnet when err says it does not exist.
func (e *env) orCreate(ctx context.Context, n policy.Network, err error) (policy.Network, error) {
	if err == nil {
		return n, nil
	}
	if !isNotFound(err) {
		return policy.Network{}, fmt.Errorf("reading network %q: %w", e.cfg.Network, err)
	}
	e.step("creating network %s with subnet %s", e.cfg.Network, e.cfg.Subnet)
	if err := e.eng.CreateNetwork(ctx, e.cfg.Network, e.cfg.Subnet); err != nil {
		return policy.Network{}, fmt.Errorf("creating network %q: %w", e.cfg.Network, err)
	}
	n, err = e.eng.Network(ctx, e.cfg.Network)
	if err != nil {
		return policy.Network{}, fmt.Errorf("reading network %q after creating it: %w", e.cfg.Network, err)
	}
	return n, nil
}

// policyFor returns the policy for network n.
func (e *env) policyFor(n policy.Network) (policy.Policy, error) {
	p, err := policy.New(n, e.cfg.Table)
	if err != nil {
		return policy.Policy{}, fmt.Errorf("network %q cannot be firewalled as reported: %w", n.Name, err)
	}
	if e.filterOn() {
		p.Filter = &policy.Filter{Port: e.cfg.DNSFilterPort}
	}
	if len(e.cfg.DNS) > 0 {
		p.DNS = e.cfg.DNS
		if err := p.Validate(); err != nil {
			return policy.Policy{}, fmt.Errorf("%sDNS: %w", config.Prefix, err)
		}
	}
	return p, nil
}

// firewallUp loads the allowlist and brings the firewall up for n. It
// returns the policy and the set it loaded, so that a reload can reuse them.
func (e *env) firewallUp(ctx context.Context, n policy.Network, maxAge time.Duration) (policy.Policy, *netipx.IPSet, error) {
	set, err := e.allowlist(ctx, maxAge)
	if err != nil {
		return policy.Policy{}, nil, err
	}
	p, err := e.loadFirewall(ctx, n, set)
	return p, set, err
}

// loadFirewall brings the firewall up for n with set as the allowlist.
func (e *env) loadFirewall(ctx context.Context, n policy.Network, set *netipx.IPSet) (policy.Policy, error) {
	p, err := e.policyFor(n)
	if err != nil {
		return p, err
	}
	e.step("firewall (%s): loading rules for %s (%s)", e.fw.Name(), n.Name, describe(n))
	if err := e.fw.Up(ctx, p, set); err != nil {
		return p, fmt.Errorf("bringing the firewall up: %w", err)
	}
	if err := firewall.RecordLoaded(e.cfg.StateDir, n); err != nil {
		e.note("warning: recording what the firewall was loaded for: %v", err)
	}
	e.note("firewall up and verified")
	return p, e.ensureFilter(ctx, p)
}

// describe gives n's subnets and bridge as `mage status` prints what the
// firewall was loaded for: "10.0.0.0/24, fd00::/64 on bridge100".
func describe(n policy.Network) string { return firewall.LoadedFor(n).String() }

func isNotFound(err error) bool {
	return errors.Is(err, engine.ErrNotFound)
}
