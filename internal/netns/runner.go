package netns

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// Runner runs host programs inside network namespace NS (`ip netns exec`),
// so that a firewall backend under test drives that namespace's nftables.
type Runner struct{ NS string }

func (r Runner) wrap(c proc.Cmd) proc.Cmd {
	c.Args = append([]string{"netns", "exec", r.NS, c.Name}, c.Args...)
	c.Name = "ip"
	return c
}

// Run runs c in the namespace.
func (r Runner) Run(ctx context.Context, c proc.Cmd) (proc.Result, error) {
	res, err := proc.Exec{}.Run(ctx, r.wrap(c))
	return res, notFound(c, err)
}

// Interactive runs c in the namespace on this process's terminal.
func (r Runner) Interactive(ctx context.Context, c proc.Cmd) error {
	return proc.Exec{}.Interactive(ctx, r.wrap(c))
}

// notFound turns ip's report that the program it was to run in the
// namespace does not exist (iproute2 6.1: `exec of "conntrack" failed: No
// such file or directory`, exit status 1) into the error proc.Exec gives
// for a program missing from PATH, so that the backend sees what it would
// see outside a namespace.
func notFound(c proc.Cmd, err error) error {
	var ee *proc.ExitError
	if errors.As(err, &ee) && strings.Contains(ee.Stderr, `exec of "`+c.Name+`" failed: No such file or directory`) {
		return fmt.Errorf("%s: %w (is it installed and on PATH?)", c, exec.ErrNotFound)
	}
	return err
}
