package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

// teardownTimeout bounds the teardown that runs after the last session, so
// that a hung runtime cannot keep mage waiting forever. What a cut-short
// teardown leaves is repaired by the next run or `mage reset`.
const teardownTimeout = 2 * time.Minute

// Dev brings the firewall up, starts or attaches to the container, and lifts
// the firewall when the last session leaves. workspace, when not empty,
// replaces the configured workspace directory.
func Dev(ctx context.Context, out io.Writer, workspace string) error {
	return withEnv(out, func(e *env) error {
		if workspace != "" {
			abs, err := filepath.Abs(workspace)
			if err != nil {
				return fmt.Errorf("workspace %q: %w", workspace, err)
			}
			e.cfg.Workspace = abs
		}
		// mage turns Ctrl-C into a cancelled context; SIGTERM and SIGHUP (the
		// terminal went away) must do the same instead of killing the process
		// before it can tear down.
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGHUP)
		defer stop()
		return e.dev(ctx)
	})
}

func (e *env) dev(ctx context.Context) (err error) {
	if err := checkWorkspace(e.cfg.Workspace); err != nil {
		return err
	}
	// The lock is held from the first look at the container to its start,
	// so that no other run starts or stops it in between.
	unlock, err := e.sessions.Lock(ctx)
	if err != nil {
		return err
	}
	// Unlocked before the shell starts, or on the way out if it never does.
	unlock = sync.OnceFunc(unlock)
	defer unlock()
	n, state, err := e.survey(ctx)
	if err != nil {
		return err
	}
	if err := e.sessions.Join(e.pid); err != nil {
		return fmt.Errorf("recording this session: %w", err)
	}
	// From here on, whatever happens, leaving runs: it stops the container
	// and lifts the firewall if no other session needs them.
	defer func() {
		unlock()
		if lerr := e.leave(ctx); lerr != nil {
			err = errors.Join(err, lerr)
		}
	}()

	p, set, err := e.firewallUp(ctx, n, e.cfg.AllowlistMaxAge)
	if err != nil {
		return err
	}
	gated := state != engine.Running && n.Interface == ""
	if gated {
		if n, p, err = e.openBridge(ctx, set); err != nil {
			return err
		}
	}
	if err := e.startContainer(ctx, p, state); err != nil {
		return err
	}
	if gated {
		e.step("stopping container %s; the bridge stays up for %s", e.gateName(), e.cfg.Container)
		if err := e.eng.Stop(ctx, e.gateName()); err != nil && !isNotFound(err) {
			return fmt.Errorf("stopping container %s, which brought the bridge up (the teardown stops it again; if that fails too, the firewall stays up: run `mage reset`): %w", e.gateName(), err)
		}
	}
	if state != engine.Running {
		if err := e.settle(ctx, n, set); err != nil {
			return err
		}
	}
	unlock()

	e.step("attaching a shell to %s; the firewall stays up until the last shell leaves", e.cfg.Container)
	err = e.eng.Exec(ctx, e.cfg.Container, "/bin/zsh")
	if code := proc.ExitCode(err); code > 0 && ctx.Err() == nil {
		// The shell's own exit status is the user's business.
		e.note("shell exited with status %d", code)
		err = nil
	}
	return err
}

// survey reads what dev needs of the runtime before it changes anything: it
// checks the runtime and reads the image, the network and the container's
// state, all at once, then builds the image when it is missing and creates
// the network when it does not exist.
func (e *env) survey(ctx context.Context) (policy.Network, engine.State, error) {
	e.step("checking %s", e.eng.Name())
	var (
		n                        policy.Network
		state                    engine.State
		image                    bool
		imgErr, netErr, stateErr error
	)
	read := func() {
		together(
			func() { image, imgErr = e.eng.ImageExists(ctx, e.cfg.Image) },
			func() { n, netErr = e.eng.Network(ctx, e.cfg.Network) },
			func() { state, stateErr = e.eng.State(ctx, e.cfg.Container) },
		)
	}
	if err := e.ready(ctx, read); err != nil {
		return n, state, err
	}
	switch {
	case imgErr != nil:
		return n, state, fmt.Errorf("looking for image %s: %w", e.cfg.Image, imgErr)
	case stateErr != nil:
		return n, state, fmt.Errorf("reading the state of container %s: %w", e.cfg.Container, stateErr)
	case !image:
		e.step("image %s is missing: building it (once)", e.cfg.Image)
		if err := e.build(ctx); err != nil {
			return n, state, err
		}
	}
	n, err := e.orCreate(ctx, n, netErr)
	return n, state, err
}

// startContainer makes sure the container, now in state, runs: it is
// started when stopped and created when absent. The firewall is up before
// this is called.
func (e *env) startContainer(ctx context.Context, p policy.Policy, state engine.State) error {
	switch state {
	case engine.Running:
		e.step("container %s is running", e.cfg.Container)
		return nil
	case engine.Stopped:
		e.step("starting container %s", e.cfg.Container)
		return e.eng.Start(ctx, e.cfg.Container)
	default:
		e.step("creating container %s (workspace %s)", e.cfg.Container, e.cfg.Workspace)
		return e.eng.Create(ctx, e.runSpec(p))
	}
}

// settle checks that the container, just started or created, runs, and
// reads the network at the same time: should it look different now that the
// container runs, the firewall is reloaded for what it is.
func (e *env) settle(ctx context.Context, n policy.Network, set *netipx.IPSet) error {
	var (
		state        engine.State
		now          policy.Network
		sErr, netErr error
	)
	together(
		func() { state, sErr = e.eng.State(ctx, e.cfg.Container) },
		func() { now, netErr = e.eng.Network(ctx, e.cfg.Network) },
	)
	name, rt := e.cfg.Container, e.eng.Name()
	switch {
	case sErr != nil:
		return fmt.Errorf("reading the state of container %s: %w", name, sErr)
	case state == engine.Absent:
		return fmt.Errorf("container %s is gone right after it started: %w", name, engine.ErrNotFound)
	case state != engine.Running:
		return fmt.Errorf("container %s stopped as soon as it started: its command exited (`%s logs %s` shows its output). "+
			"A container made by the old claude-dev.sh runs an interactive shell that ends without a terminal: "+
			"remove it with `%s rm %s` and it is created again, with the same volumes", name, rt, name, rt, name)
	case netErr != nil:
		return fmt.Errorf("re-reading network %q: %w", e.cfg.Network, netErr)
	case now != n:
		e.step("network %s changed (%s): reloading the firewall", n.Name, describe(now))
		_, err := e.loadFirewall(ctx, now, set)
		return err
	}
	return nil
}

// gateName is the container that openBridge starts. Its name is fixed so
// that the teardown and `mage reset` find one that was left behind.
func (e *env) gateName() string { return e.cfg.Container + "-gate" }

// openBridge brings the network's bridge interface up and loads the
// firewall for it, before the agent's container starts, and returns the
// network with its bridge and the policy loaded.
//
// On macOS, vmnet creates a network's bridge only when the first container
// attaches to it, and until pf knows the bridge it cannot drop the packets
// that arrive there with a made-up source address, nor the link-local IPv6
// ones to the host's services: nothing matches them and the rest of the
// host's pf passes them. Started first, the agent's container would have
// that moment, and the agent can plant code that runs as soon as the
// container starts (its file system outlives a stop). So a gate container
// brings the bridge up instead: created fresh from the image, deleted by the
// runtime when it stops, no volumes, running only the keep-alive command.
// The caller stops it once the agent's container holds the bridge.
//
// It fails closed when no bridge appears; the teardown then stops the gate.
func (e *env) openBridge(ctx context.Context, set *netipx.IPSet) (n policy.Network, p policy.Policy, err error) {
	gate := e.gateName()
	if err := e.clearGate(ctx); err != nil {
		return policy.Network{}, policy.Policy{}, err
	}
	e.step("network %s has no bridge interface yet: starting container %s to bring it up before %s starts", e.cfg.Network, gate, e.cfg.Container)
	spec := engine.RunSpec{Name: gate, Image: e.cfg.Image, Network: e.cfg.Network, AutoRemove: true}
	if err := e.eng.Create(ctx, spec); err != nil {
		return policy.Network{}, policy.Policy{}, fmt.Errorf("starting container %s to bring up network %s's bridge: %w", gate, e.cfg.Network, err)
	}
	for waited := time.Duration(0); ; waited += bridgePoll {
		if n, err = e.eng.Network(ctx, e.cfg.Network); err != nil {
			return policy.Network{}, policy.Policy{}, fmt.Errorf("re-reading network %q: %w", e.cfg.Network, err)
		}
		if n.Interface != "" || waited >= e.bridgeWait {
			break
		}
		select {
		case <-ctx.Done():
			return policy.Network{}, policy.Policy{}, ctx.Err()
		case <-time.After(bridgePoll):
		}
	}
	if n.Interface == "" {
		if st, err := e.eng.State(ctx, gate); err == nil && st != engine.Running {
			return policy.Network{}, policy.Policy{}, fmt.Errorf("container %s, started to bring up network %s's bridge, stopped as soon as it started "+
				"(it runs %s from image %s), so %s was not started", gate, e.cfg.Network, strings.Join(engine.KeepAlive, " "), e.cfg.Image, e.cfg.Container)
		}
		return policy.Network{}, policy.Policy{}, fmt.Errorf("network %s still has no bridge interface with container %s running on it "+
			"(no host interface holds its gateway %s), so the firewall cannot drop packets with made-up source addresses there, "+
			"and %s was not started. Restart the container service (`container system stop`, then `container system start`) "+
			"and run `mage dev` again; `mage status` shows the network as the runtime reports it", e.cfg.Network, gate, n.Gateway4, e.cfg.Container)
	}
	p, err = e.loadFirewall(ctx, n, set)
	return n, p, err
}

// bridgePoll is the pause between looks for the bridge in openBridge.
const bridgePoll = 250 * time.Millisecond

// clearGate removes a gate container that an earlier run left (its stop
// failed, or the runtime did not delete it), so that the gate is always one
// created afresh.
func (e *env) clearGate(ctx context.Context) error {
	gate := e.gateName()
	st, err := e.eng.State(ctx, gate)
	if err != nil {
		return fmt.Errorf("reading the state of container %s: %w", gate, err)
	}
	if st == engine.Absent {
		return nil
	}
	e.step("removing container %s, left by an earlier run", gate)
	if st == engine.Running {
		if err := e.eng.Stop(ctx, gate); err != nil && !isNotFound(err) {
			return fmt.Errorf("stopping container %s: %w", gate, err)
		}
	}
	if err := e.eng.Remove(ctx, gate); err != nil && !isNotFound(err) {
		return fmt.Errorf("removing container %s: %w", gate, err)
	}
	return nil
}

// leave ends this session. When it was the last one, the container is
// stopped first and the firewall lifted after, so the container never runs
// unfirewalled; when a `mage up` hold is in place the firewall stays.
func (e *env) leave(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	unlock, err := e.sessions.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := e.sessions.Leave(e.pid); err != nil {
		return fmt.Errorf("removing this session: %w", err)
	}
	live, err := e.sessions.Live()
	if err != nil {
		return err
	}
	if len(live) > 0 {
		e.step("%d other session(s) still attached: the container and the firewall stay up", len(live))
		return nil
	}
	// The agent's container first, then a gate left running.
	return e.stopAndLift(ctx, e.cfg.Container, e.gateName())
}

// stopAndLift stops those of ours, our containers, that run on the network
// and then lifts the firewall, unless containers still run on the network or
// a hold is in place. The caller holds the session lock.
func (e *env) stopAndLift(ctx context.Context, ours ...string) error {
	running, err := e.eng.RunningOn(ctx, e.cfg.Network)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("cannot tell whether containers run on network %s, so the firewall stays up (run `mage reset` once the runtime answers): %w", e.cfg.Network, err)
	}
	stopped := false
	for _, name := range ours {
		if !slices.Contains(running, name) {
			continue
		}
		e.step("stopping container %s", name)
		if err := e.eng.Stop(ctx, name); err != nil && !isNotFound(err) {
			return fmt.Errorf("stopping container %s (the firewall stays up; run `mage reset -stop`): %w", name, err)
		}
		stopped = true
	}
	if stopped {
		if running, err = e.eng.RunningOn(ctx, e.cfg.Network); err != nil && !isNotFound(err) {
			return fmt.Errorf("cannot tell whether containers run on network %s, so the firewall stays up: %w", e.cfg.Network, err)
		}
	}
	if len(running) > 0 {
		return fmt.Errorf("the firewall stays up: %s still running on network %s; stop them, or run `mage reset -stop`", strings.Join(running, ", "), e.cfg.Network)
	}
	if e.sessions.Held() {
		e.step("the firewall stays up: `mage up` holds it (`mage reset` lifts it)")
		return nil
	}
	e.step("lifting the firewall")
	if err := e.stopFilter(ctx); err != nil {
		return fmt.Errorf("%w (the firewall stays up; run `mage reset` to retry)", err)
	}
	if err := e.fw.Down(ctx); err != nil {
		return fmt.Errorf("lifting the firewall (run `mage reset` to retry): %w", err)
	}
	return firewall.ForgetLoaded(e.cfg.StateDir)
}

// runSpec is the container the old script ran, with DNS pointed where the
// policy lets DNS go.
func (e *env) runSpec(p policy.Policy) engine.RunSpec {
	return engine.RunSpec{
		Name:    e.cfg.Container,
		Image:   e.cfg.Image,
		Network: e.cfg.Network,
		DNS:     p.DNS,
		Volumes: []engine.Volume{
			{Source: "alpine-home", Target: "/home/claude"},
			{Source: "claude-history", Target: "/commandhistory"},
			{Source: e.cfg.Workspace, Target: "/workspace"},
		},
		Memory: e.cfg.Memory,
		CPUs:   e.cfg.CPUs,
	}
}

// checkWorkspace makes sure the workspace is a directory (creating it when
// missing) and that it does not hold claudecontainer's own code: the agent
// could otherwise change what the next `mage` run executes on the host with
// root rights.
func checkWorkspace(ws string) error {
	// MkdirAll also fails when ws is there but not a directory.
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return fmt.Errorf("workspace %s: %w; set CLAUDECONTAINER_WORKSPACE or pass -workspace=DIR", ws, err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	real := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	rel, err := filepath.Rel(real(ws), real(wd))
	if err == nil && (rel == "." || !strings.HasPrefix(rel, "..")) {
		return fmt.Errorf("workspace %s contains claudecontainer itself (%s): the agent could change code that runs on this machine with root rights; mount a directory beside it instead (-workspace=DIR or CLAUDECONTAINER_WORKSPACE)", ws, wd)
	}
	return nil
}
