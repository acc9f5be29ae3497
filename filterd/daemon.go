package filterd

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/dnsfilter"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/nft"
	"github.com/VerilyPete/claudecontainer/pf"
	"github.com/VerilyPete/claudecontainer/policy"
)

// expireEvery is how often the pf daemon deletes the addresses whose time
// is up (nftables expires its elements itself).
const expireEvery = 30 * time.Second

// Main runs the daemon with args (STATEDIR TOKEN, what follows Arg) and
// returns the process's exit status. It serves until SIGTERM or SIGINT; on
// SIGHUP it reads the names again and opens again what it opened (the
// firewall may have come down and up meanwhile).
func Main(args []string) int {
	logger := log.New(os.Stderr, "dnsfilter: ", log.LstdFlags|log.LUTC)
	if len(args) != 2 {
		logger.Printf("usage: <binary> %s STATEDIR TOKEN", Arg)
		return 2
	}
	// Leave mage's session, so that the terminal's signals and its hangup
	// do not reach the daemon.
	syscall.Setsid()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := run(ctx, args[0], args[1], hup, logger); err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

// opener is what the daemon needs of a firewall backend's opener.
type opener interface {
	dnsfilter.Opener
	// reopen opens again every address still open, for a firewall that
	// came down and up while the daemon ran (pf's table is then empty).
	reopen(ctx context.Context) error
	// revoke closes addrs at once.
	revoke(ctx context.Context, addrs []netip.Addr) error
	close() error
}

// daemon is the state of one run of the filter.
type daemon struct {
	dir      string
	spec     Spec
	logger   *log.Logger
	o        opener
	h        *dnsfilter.Handler
	w        *watcher
	answered *recent
	// names is what the handler answers now, for lookups that finish
	// after a reload.
	names atomic.Pointer[dnsfilter.Names]
	st    Status
}

func run(ctx context.Context, dir, token string, hup <-chan os.Signal, logger *log.Logger) error {
	spec, err := ReadSpec(dir)
	if err != nil {
		return err
	}
	if spec.Token != token {
		return errors.New("the settings in the state directory are for another start of the filter")
	}
	names, entries, err := allowlist.LoadNames(spec.AllowlistFile)
	if err != nil {
		return err
	}
	o, err := newOpener(ctx, spec, logger)
	if err != nil {
		return err
	}
	defer o.close()
	d := &daemon{dir: dir, spec: spec, logger: logger, o: o, answered: &recent{},
		st: Status{Pid: os.Getpid(), Spec: spec, Names: len(entries)}}
	d.names.Store(names)
	refused, err := dnsfilter.OpenLog(filepath.Join(dir, RefusedFile), refusedLimit)
	if err != nil {
		return err
	}
	defer refused.Close()
	conns, err := dnsfilter.OpenLog(filepath.Join(dir, ConnsFile), refusedLimit)
	if err != nil {
		return err
	}
	defer conns.Close()
	// pf's log on macOS, nftables' on Linux (pf on Linux is the tests').
	if (spec.Backend == "pf") == (runtime.GOOS == "darwin") {
		if err := watchRefused(ctx, spec.Table, conns, d.answered, logger.Printf); err != nil {
			// Not fatal: the firewall refuses all the same; only `mage
			// blocked` misses the addresses.
			logger.Printf("refused connections are not logged: %v", err)
		}
	}
	if d.h, err = d.handler(names, refused); err != nil {
		return err
	}
	srv, err := dnsfilter.Start(d.h, dnsfilter.ServerConfig{Addrs: spec.Listen, FreeBind: spec.FreeBind})
	if err != nil {
		return err
	}
	defer removeIfOurs(d.statusPath(), spec.Token)
	if err := writeJSON(d.statusPath(), d.st, 0o644); err != nil {
		srv.Shutdown(context.Background())
		return fmt.Errorf("recording the filter's status: %w", err)
	}
	logger.Printf("serving %d names on %v for %v; upstreams %v", len(entries), spec.Listen, spec.Clients, spec.Upstreams)

	d.w = newWatcher(dir, spec, logger.Printf)
	var watching sync.WaitGroup
	watching.Go(func() { d.w.run(ctx, watchEvery) })
	// A reload under way finishes before the daemon ends (look's reload
	// does not stop with ctx): pf's enable reference must be recorded.
	defer watching.Wait()

	served := make(chan error, 1)
	go func() { served <- srv.Wait() }()
	for {
		select {
		case <-ctx.Done():
			logger.Print("stopping")
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		case err := <-served:
			return fmt.Errorf("a listener stopped: %w", err)
		case <-hup:
			d.reload(ctx)
		}
	}
}

func (d *daemon) statusPath() string { return filepath.Join(d.dir, statusFile) }

// handler returns the DNS handler for names, logging what it refuses to
// refused.
func (d *daemon) handler(names *dnsfilter.Names, refused *dnsfilter.LogFile) (*dnsfilter.Handler, error) {
	ups := make([]string, len(d.spec.Upstreams))
	for i, u := range d.spec.Upstreams {
		ups[i] = u.String()
	}
	return dnsfilter.New(dnsfilter.Config{
		Names:     names,
		Clients:   d.spec.Clients,
		Upstreams: ups,
		Opener:    d.o,
		Vet:       vetFor(d.spec),
		Log:       refused,
		Answered: func(chain []string, addrs []netip.Addr) {
			d.answered.add(chain, addrs)
			// A lookup under way when a reload took a name of its chain
			// out opens after the revoke: close it again at once.
			if cur := d.names.Load(); cur != nil && !allAllowed(cur.Allowed, chain) {
				if err := d.o.revoke(context.Background(), addrs); err != nil {
					d.logger.Printf("closing %v of %s, no longer allowed: %v", addrs, chain[0], err)
				}
			}
		},
	})
}

// reload reads the settings and the names again (SIGHUP), closes what the
// names taken out had opened, opens again what is open and records the
// outcome in the status file.
func (d *daemon) reload(ctx context.Context) {
	st := &d.st
	st.Reloads++
	st.ReloadError = ""
	if now, err := ReadSpec(d.dir); err == nil && now.Token == d.spec.Token {
		st.Spec.Watch = now.Watch
		d.w.set(now.Watch)
	}
	if n, e, err := allowlist.LoadNames(d.spec.AllowlistFile); err != nil {
		st.ReloadError = err.Error()
		d.logger.Printf("reload: keeping the names before: %v", err)
	} else {
		d.h.SetNames(n)
		d.names.Store(n)
		st.Names = len(e)
		// What was handed out for names no longer answered (`mage allow
		// NAME -remove`, a new deny) closes now, not when its time runs
		// out; then the cache goes, so that an allowed name that shared
		// an address opens it again.
		if gone := d.answered.drop(n.Allowed); len(gone) > 0 {
			if err := d.o.revoke(ctx, gone); err != nil {
				st.ReloadError = fmt.Sprintf("closing what the names taken out had opened: %v", err)
				d.logger.Print(st.ReloadError)
			} else {
				d.logger.Printf("closed %d addresses of names no longer allowed", len(gone))
			}
		}
		d.h.Flush()
	}
	if err := d.o.reopen(ctx); err != nil {
		st.ReloadError = fmt.Sprintf("opening again what was open: %v", err)
		d.logger.Print(st.ReloadError)
	}
	if err := writeJSON(d.statusPath(), st, 0o644); err != nil {
		d.logger.Printf("recording the filter's status: %v", err)
	}
	d.logger.Printf("reloaded: %d names", st.Names)
}

// vetFor refuses what allowlist.VetAddr refuses, and IPv6 when the
// firewall does not enforce it for the network.
func vetFor(spec Spec) func(netip.Addr) error {
	return func(a netip.Addr) error {
		if a.Is6() && !a.Is4In6() && !spec.IPv6 {
			return errors.New("IPv6 is not filtered on this network")
		}
		return allowlist.VetAddr(a)
	}
}

func newOpener(ctx context.Context, spec Spec, logger *log.Logger) (opener, error) {
	switch spec.Backend {
	case "nftables":
		o, err := nft.NewOpener(spec.Table, spec.Set, -1)
		if err != nil {
			return nil, err
		}
		return nftOpener{o, watchedNet(spec)}, nil
	case "pf":
		o, err := pf.NewOpener(proc.Exec{}, spec.Table, spec.Set)
		if err != nil {
			return nil, err
		}
		go o.ExpireEvery(ctx, expireEvery, func(err error) { logger.Printf("expiring opened addresses: %v", err) })
		return pfOpener{o, watchedNet(spec)}, nil
	}
	return nil, fmt.Errorf("unknown firewall backend %q", spec.Backend)
}

// nftOpener and pfOpener end, with what they close, the connections open
// to it from net (the container network, when the spec names it).
type nftOpener struct {
	*nft.Opener
	net *policy.Network
}

// reopen has nothing to do: the opened sets and their elements outlive a
// reload of the rules (`flush table` keeps sets), and Down stops the daemon
// before it deletes the table.
func (nftOpener) reopen(context.Context) error { return nil }
func (o nftOpener) close() error               { return o.Close() }
func (o nftOpener) revoke(ctx context.Context, addrs []netip.Addr) error {
	if err := o.Revoke(ctx, addrs); err != nil {
		return err
	}
	if o.net == nil {
		return nil
	}
	return nft.EndFlows(ctx, proc.Exec{}, *o.net, addrs)
}

type pfOpener struct {
	*pf.Opener
	net *policy.Network
}

func (o pfOpener) reopen(ctx context.Context) error { return o.Reopen(ctx) }
func (pfOpener) close() error                       { return nil }
func (o pfOpener) revoke(ctx context.Context, addrs []netip.Addr) error {
	if err := o.Revoke(ctx, addrs); err != nil {
		return err
	}
	if o.net == nil {
		return nil
	}
	return pf.EndStates(ctx, proc.Exec{}, *o.net, addrs)
}

// watchedNet is the container network of spec, or nil.
func watchedNet(spec Spec) *policy.Network {
	if spec.Watch == nil {
		return nil
	}
	n := spec.Watch.Network
	return &n
}

// removeIfOurs removes the status file when it is the one this daemon
// wrote (a daemon started after it may have written its own).
func removeIfOurs(path, token string) {
	var st Status
	if err := readJSON(path, &st); err == nil && st.Spec.Token == token {
		os.Remove(path)
	}
}
