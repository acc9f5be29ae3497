// Package apple drives Apple's `container` command-line tool, release 1.0.0
// or later, on macOS 26 (on macOS 15 only the default network exists, and
// it is guarded as such). The JSON shapes are those of the apple/container
// sources of 1.0.0 to 1.2.2; 1.3 and 1.4.1 changed none of the keys read
// here, and 1.4.1 nests `system status` differently, which the status check
// survives. An older release is refused with an error that says to upgrade.
//
// Every call goes through a proc.Runner as argv, never through a shell, and
// every answer is parsed from the tool's JSON output before anything else
// sees it: keys the driver does not read are ignored, and a key it needs
// that is missing is an error naming the release, the command and the key.
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

	// VersionFile, when set, is where release records what `container
	// --version` printed, with the identity of the program file that
	// printed it, so that later runs skip asking while the file is the same.
	VersionFile string

	// poll is the pause between looks at a container that is stopping, and
	// stopWait how long State waits for it to finish.
	poll, stopWait time.Duration

	mu         sync.Mutex // guards version and versionErr
	version    Version    // the installed release once known; Raw is never "" then
	versionErr error
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
	return res.Stdout, explain(err)
}

// list runs `container ARGS… --format json`, which lists what, and returns
// its output with the release that printed it.
func (e *Engine) list(ctx context.Context, what string, args ...string) ([]byte, Version, error) {
	v, err := e.release(ctx)
	if err != nil {
		return nil, v, err
	}
	out, err := e.run(ctx, append(args, "--format", "json")...)
	if err != nil {
		return nil, v, fmt.Errorf("listing %s: %w", what, err)
	}
	return out, v, nil
}

// explain adds what to do to the failures that have a known remedy; nil
// stays nil. The service is down when the CLI rewraps an XPC error with
// "Ensure container system service has been started" (Application.main) or
// finds no plugins ("Plugins are unavailable", DefaultCommand.run), both in
// 1.0.0 to 1.2.2. Not on "container system start" alone: the message for a
// missing plugin mentions it too, and on macOS 15 `container network` is
// such a plugin.
func explain(err error) error {
	var ee *proc.ExitError
	switch {
	case errors.As(err, &ee) && (strings.Contains(ee.Stderr, "Ensure container system service has been started") ||
		strings.Contains(ee.Stderr, "Plugins are unavailable")):
		return fmt.Errorf("%w\nthe container service is not running: start it with `container system start`", err)
	case errors.Is(err, exec.ErrNotFound):
		return fmt.Errorf("%w\ninstall Apple's container tool (a signed installer is on https://github.com/apple/container/releases) and make sure `container` is on PATH", err)
	}
	return err
}
