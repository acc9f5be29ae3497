package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/firewall"
)

// Subnet finds (or creates) the container network and prints the firewall
// rules rendered for it.
func Subnet(ctx context.Context, out io.Writer) error {
	return withEnv(out, func(e *env) error { return e.subnet(ctx) })
}

func (e *env) subnet(ctx context.Context) error {
	n, err := e.network(ctx)
	if err != nil {
		return err
	}
	p, err := e.policyFor(n)
	if err != nil {
		return err
	}
	text, err := e.fw.Render(p)
	if err != nil {
		return err
	}
	e.step("network %s: %s; DNS only to %v", n.Name, describe(n), p.DNS)
	if n.Interface == "" {
		e.note("the host interface appears when the first container attaches; `mage dev` brings it up with a short-lived container and loads the rules for it before its own container starts")
	}
	e.step("%s rules:", e.fw.Name())
	fmt.Fprint(e.out, text)
	return nil
}

// Up brings the firewall up without touching any container. It stays up
// until `mage reset`.
func Up(ctx context.Context, out io.Writer) error {
	return withEnv(out, func(e *env) error { return e.up(ctx) })
}

func (e *env) up(ctx context.Context) (err error) {
	n, err := e.network(ctx)
	if err != nil {
		return err
	}
	unlock, err := e.sessions.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	wasHeld := e.sessions.Held()
	if err := e.sessions.SetHold(true); err != nil {
		return fmt.Errorf("recording the hold: %w", err)
	}
	if _, _, err := e.firewallUp(ctx, n, e.cfg.AllowlistMaxAge); err != nil {
		// Leave nothing loaded that nothing owns.
		if !wasHeld {
			e.sessions.SetHold(false)
		}
		if live, _ := e.sessions.Live(); len(live) == 0 && !wasHeld {
			// Never lift it under a container that runs on the network
			// (one started by hand): what loaded stays, and reset lifts
			// it once the container is stopped.
			running, rerr := e.eng.RunningOn(context.WithoutCancel(ctx), e.cfg.Network)
			if rerr != nil && !isNotFound(rerr) || len(running) > 0 {
				return errors.Join(err, fmt.Errorf("the firewall is left as it loaded, since a container may run on network %s (%s); stop it, then run `mage reset`",
					e.cfg.Network, cmp.Or(strings.Join(running, ", "), fmt.Sprint(rerr))))
			}
			derr := e.stopFilter(context.WithoutCancel(ctx))
			if derr == nil {
				derr = e.fw.Down(context.WithoutCancel(ctx))
			}
			if derr != nil {
				err = errors.Join(err, fmt.Errorf("taking the half-loaded firewall down (run `mage reset`): %w", derr))
			}
		}
		return err
	}
	e.step("the firewall stays up until `mage reset`")
	return nil
}

// Reset takes the firewall down and repairs what crashed runs left behind.
// It refuses while a container on the network runs, unless stop is set, in
// which case it stops those containers first.
func Reset(ctx context.Context, out io.Writer, stop bool) error {
	return withEnv(out, func(e *env) error { return e.reset(ctx, stop) })
}

func (e *env) reset(ctx context.Context, stop bool) error {
	unlock, err := e.sessions.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	live, err := e.sessions.Live()
	if err != nil {
		return err
	}
	running, err := e.eng.RunningOn(ctx, e.cfg.Network)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("cannot tell whether containers run on network %s, so the firewall stays up: %w", e.cfg.Network, err)
	}
	// A gate container left by `mage dev` is ours and holds nothing of the
	// user's: it is stopped without -stop.
	others := slices.DeleteFunc(slices.Clone(running), func(name string) bool { return name == e.gateName() })
	if len(others) > 0 && !stop {
		msg := fmt.Sprintf("refusing to lift the firewall: %s still running on network %s", strings.Join(others, ", "), e.cfg.Network)
		if len(live) > 0 {
			msg += fmt.Sprintf(" (%d `mage dev` session(s) attached)", len(live))
		}
		return errors.New(msg + "; run `mage reset -stop` to stop them first")
	}
	for _, name := range running {
		e.step("stopping container %s", name)
		if err := e.eng.Stop(ctx, name); err != nil {
			return fmt.Errorf("stopping container %s (the firewall stays up): %w", name, err)
		}
	}
	if err := e.clearGate(ctx); err != nil {
		return fmt.Errorf("%w (the firewall stays up)", err)
	}
	if err := e.sessions.SetHold(false); err != nil {
		return err
	}
	for _, pid := range live {
		e.sessions.Leave(pid)
	}
	return e.stopAndLift(ctx, e.gateName())
}

// Status checks every part and says how to fix what is wrong. It returns an
// error when anything is.
func Status(ctx context.Context, out io.Writer) error {
	return withEnv(out, func(e *env) error { return e.status(ctx) })
}

func (e *env) status(ctx context.Context) error {
	var checks []firewall.Check
	fwUp, err := e.fw.IsUp(ctx)
	if err != nil {
		checks = append(checks, firewall.Check{What: "firewall", Detail: err.Error(), Fix: "see the error; `mage reset` then `mage up` reloads everything"})
	}
	checks = append(checks, e.fw.Status(ctx)...) // the backend's own
	checks = append(checks, e.allowlistCheck())
	checks = append(checks, e.networkChecks(ctx, fwUp)...)
	checks = append(checks, e.filterChecks(ctx, fwUp)...)
	state, c := e.containerCheck(ctx, fwUp)
	checks = append(checks, c, e.sessionsCheck(fwUp, state))
	bad := 0
	for _, c := range checks {
		if c.OK {
			fmt.Fprintf(e.out, "ok    %s: %s\n", c.What, c.Detail)
			continue
		}
		bad++
		fmt.Fprintf(e.out, "FAIL  %s: %s\n", c.What, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(e.out, "      fix: %s\n", c.Fix)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d problem(s) found", bad)
	}
	return nil
}

func (e *env) allowlistCheck() firewall.Check {
	fi, err := os.Stat(e.cfg.AllowlistFile)
	if err != nil {
		return firewall.Check{What: "allowlist file", Detail: err.Error(), Fix: "run `mage allowlist`"}
	}
	age := time.Since(fi.ModTime()).Round(time.Second)
	c := firewall.Check{What: "allowlist file", OK: true, Detail: fmt.Sprintf("%s, %v old", e.cfg.AllowlistFile, age)}
	if age > e.cfg.AllowlistMaxAge {
		c.Detail += fmt.Sprintf(" (older than %v: `mage dev` will refetch it)", e.cfg.AllowlistMaxAge)
	}
	return c
}

// networkChecks reads the network and, while the firewall is up, compares
// it with what the rules were loaded for.
func (e *env) networkChecks(ctx context.Context, fwUp bool) []firewall.Check {
	what := "network " + e.cfg.Network
	n, err := e.eng.Network(ctx, e.cfg.Network)
	if err != nil {
		return []firewall.Check{{What: what, Detail: err.Error(), Fix: "run `mage subnet` to create it"}}
	}
	checks := []firewall.Check{{What: what, OK: true, Detail: describe(n)}}
	const match = "rules match the network"
	switch l, ok, err := firewall.ReadLoaded(e.cfg.StateDir); {
	case err != nil:
		checks = append(checks, firewall.Check{What: match, Detail: err.Error(), Fix: "run `mage up` to reload the rules"})
	case ok && fwUp && !l.Same(n):
		checks = append(checks, firewall.Check{What: match, Detail: fmt.Sprintf("the rules guard %s, but the network is now %s", l, describe(n)),
			Fix: "run `mage up` (or `mage dev`) to reload the rules for the network as it is"})
	case ok && fwUp:
		checks = append(checks, firewall.Check{What: match, OK: true, Detail: "rendered for " + l.String()})
	}
	return checks
}

func (e *env) containerCheck(ctx context.Context, fwUp bool) (engine.State, firewall.Check) {
	what := "container " + e.cfg.Container
	state, err := e.eng.State(ctx, e.cfg.Container)
	switch {
	case err != nil:
		return state, firewall.Check{What: what, Detail: err.Error(), Fix: "check the runtime (`" + e.eng.Name() + "`)"}
	case state == engine.Running && !fwUp:
		return state, firewall.Check{What: what, Detail: "running WITHOUT the firewall", Fix: "run `mage up` now, or `mage reset -stop` to stop it"}
	}
	return state, firewall.Check{What: what, OK: true, Detail: string(state)}
}

func (e *env) sessionsCheck(fwUp bool, state engine.State) firewall.Check {
	live, _ := e.sessions.Live()
	held := e.sessions.Held()
	c := firewall.Check{What: "sessions", OK: true, Detail: fmt.Sprintf("%d attached", len(live))}
	if held {
		c.Detail += ", held up by `mage up`"
	}
	if fwUp && len(live) == 0 && !held && state != engine.Running {
		c.OK = false
		c.Detail += "; the firewall is up with nothing attached (a crashed run?)"
		c.Fix = "run `mage reset`"
	}
	return c
}
