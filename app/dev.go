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
	"syscall"
	"time"

	"github.com/VerilyPete/claudecontainer/engine"
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
	e, err := newEnv(out)
	if err != nil {
		return err
	}
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
}

func (e *env) dev(ctx context.Context) (err error) {
	if err := e.preflight(ctx); err != nil {
		return err
	}
	n, err := e.network(ctx)
	if err != nil {
		return err
	}

	unlock, err := e.sessions.Lock(ctx)
	if err != nil {
		return err
	}
	locked := true
	defer func() {
		if locked {
			unlock()
		}
	}()
	if err := e.sessions.Join(e.pid); err != nil {
		return fmt.Errorf("recording this session: %w", err)
	}
	// From here on, whatever happens, leaving runs: it stops the container
	// and lifts the firewall if no other session needs them.
	defer func() {
		if locked {
			unlock()
			locked = false
		}
		if lerr := e.leave(ctx); lerr != nil {
			err = errors.Join(err, lerr)
		}
	}()

	p, set, err := e.firewallUp(ctx, n, e.cfg.AllowlistMaxAge)
	if err != nil {
		return err
	}
	if err := e.startContainer(ctx, p); err != nil {
		return err
	}
	// The host's bridge interface may only exist once a container is
	// attached (Apple's vmnet creates it then). If the network now looks
	// different, reload the rules for what it is.
	if n2, err := e.eng.Network(ctx, e.cfg.Network); err == nil && n2 != n {
		e.step("network %s changed (%s): reloading the firewall", n.Name, describe(n2))
		if _, err := e.loadFirewall(ctx, n2, set); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("re-reading network %q: %w", e.cfg.Network, err)
	}
	unlock()
	locked = false

	e.step("attaching a shell to %s; the firewall stays up until the last shell leaves", e.cfg.Container)
	err = e.eng.Exec(ctx, e.cfg.Container, "/bin/zsh")
	if code := proc.ExitCode(err); code > 0 && ctx.Err() == nil {
		// The shell's own exit status is the user's business.
		e.note("shell exited with status %d", code)
		err = nil
	}
	return err
}

// preflight checks the runtime and the image, building the image when it is
// missing, and the workspace directory.
func (e *env) preflight(ctx context.Context) error {
	e.step("checking %s", e.eng.Name())
	if err := e.eng.EnsureRunning(ctx); err != nil {
		return err
	}
	if err := checkWorkspace(e.cfg.Workspace); err != nil {
		return err
	}
	ok, err := e.eng.ImageExists(ctx, e.cfg.Image)
	if err != nil {
		return fmt.Errorf("looking for image %s: %w", e.cfg.Image, err)
	}
	if !ok {
		e.step("image %s is missing: building it (once)", e.cfg.Image)
		if err := e.build(ctx); err != nil {
			return err
		}
	}
	return nil
}

// startContainer makes sure the container runs: it is started when stopped
// and created when absent. The firewall is up before this is called.
func (e *env) startContainer(ctx context.Context, p policy.Policy) error {
	state, err := e.eng.State(ctx, e.cfg.Container)
	if err != nil {
		return fmt.Errorf("reading the state of container %s: %w", e.cfg.Container, err)
	}
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
	return e.stopAndLift(ctx, true)
}

// stopAndLift stops the container (when stopContainer is set) and then
// lifts the firewall, unless containers still run on the network or a hold
// is in place. The caller holds the session lock.
func (e *env) stopAndLift(ctx context.Context, stopContainer bool) error {
	running, err := e.eng.RunningOn(ctx, e.cfg.Network)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("cannot tell whether containers run on network %s, so the firewall stays up (run `mage reset` once the runtime answers): %w", e.cfg.Network, err)
	}
	if stopContainer && slices.Contains(running, e.cfg.Container) {
		e.step("stopping container %s", e.cfg.Container)
		if err := e.eng.Stop(ctx, e.cfg.Container); err != nil {
			return fmt.Errorf("stopping container %s (the firewall stays up; run `mage reset -stop`): %w", e.cfg.Container, err)
		}
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
	if err := e.fw.Down(ctx); err != nil {
		return fmt.Errorf("lifting the firewall (run `mage reset` to retry): %w", err)
	}
	return e.forgetLoaded()
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
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return fmt.Errorf("workspace %s: %w; set CLAUDECONTAINER_WORKSPACE or pass -workspace=DIR", ws, err)
	}
	fi, err := os.Stat(ws)
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("workspace %s is not a directory: set CLAUDECONTAINER_WORKSPACE or pass -workspace=DIR", ws)
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
