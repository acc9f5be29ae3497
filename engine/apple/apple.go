// Package apple drives Apple's `container` command-line tool (releases 0.1.0
// to 1.2.2; later ones are read by the same rules) on macOS. Every call goes
// through a proc.Runner as argv, never through a shell, and every answer is
// parsed from the tool's JSON output, in whichever of its shapes the
// installed release prints, before anything else sees it.
//
// The parsers (ParseNetworks, FindNetwork, ParseContainers, ParseImages,
// ParseStatus, ParseIfconfig, ParseVersion) work on bytes and need no
// `container` program, so other packages can use them too.
package apple

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// Program is the command this driver runs, looked up on PATH.
const Program = "container"

// Engine is the Apple container runtime. The zero value is not usable; call
// New.
type Engine struct {
	runner proc.Runner

	// StdinIsTerminal reports whether this process's standard input is a
	// terminal; nil means checking os.Stdin. Tests set it.
	StdinIsTerminal func() bool

	// poll is the pause between looks at a container that is stopping, and
	// stopWait how long State waits for it to finish.
	poll, stopWait time.Duration

	mu      sync.Mutex
	version *Version
}

var _ engine.Engine = (*Engine)(nil)

// New returns the driver, running `container` through runner.
func New(runner proc.Runner) *Engine {
	return &Engine{runner: runner, poll: 250 * time.Millisecond, stopWait: 20 * time.Second}
}

// Name returns "container", the CLAUDECONTAINER_RUNTIME value of this runtime.
func (e *Engine) Name() string { return Program }

// run runs `container args…` and returns what it printed on standard output.
func (e *Engine) run(ctx context.Context, args ...string) ([]byte, error) {
	res, err := e.runner.Run(ctx, proc.Cmd{Name: Program, Args: args})
	if err != nil {
		return res.Stdout, explain(err)
	}
	return res.Stdout, nil
}

// explain adds what to do to the failures that have a known remedy.
func explain(err error) error {
	var ee *proc.ExitError
	switch {
	case errors.As(err, &ee) && strings.Contains(ee.Stderr, "container system start"):
		return fmt.Errorf("%w\nthe container service is not running: start it with `container system start`", err)
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("%w\ninstall Apple's container tool (a signed installer is on https://github.com/apple/container/releases) and make sure `container` is on PATH", err)
	}
	return err
}

// Version returns the release of the installed `container`, such as "1.2.2".
func (e *Engine) Version(ctx context.Context) (string, error) {
	v, err := e.ParsedVersion(ctx)
	return v.Raw, err
}

// ParsedVersion returns the installed release, asking `container --version`
// once per Engine.
func (e *Engine) ParsedVersion(ctx context.Context) (Version, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.version != nil {
		return *e.version, nil
	}
	out, err := e.run(ctx, "--version")
	if err != nil {
		return Version{}, err
	}
	v, err := ParseVersion(out)
	if err != nil {
		return Version{}, err
	}
	e.version = &v
	return v, nil
}
