// Package proc runs the host programs claudecontainer drives (pfctl, nft,
// container, podman, docker, sudo) and turns their failures into errors that
// name the command and quote what it printed.
//
// Every external program goes through a Runner, so packages that shell out can
// be tested against fakes of those programs, and so no command line is ever
// built as a string for a shell: arguments are always passed as argv.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/bitfield/script"
)

// Cmd is one invocation of a host program.
type Cmd struct {
	Name  string   // program, looked up on PATH
	Args  []string // arguments, passed as argv (never through a shell)
	Stdin []byte   // standard input; nil means empty
	// Privileged runs the program with root rights: directly when this process
	// is root, through sudo otherwise.
	Privileged bool
}

// String renders c for messages, quoting each word as Go would.
func (c Cmd) String() string {
	words := make([]string, 0, len(c.Args)+1)
	words = append(words, c.Name)
	for _, a := range c.Args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			a = fmt.Sprintf("%q", a)
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

// Result is what a finished program printed.
type Result struct {
	Stdout []byte
	Stderr []byte
}

// Runner runs host programs. A non-nil error from Run means the program could
// not be started or exited with a non-zero status; the Result still holds
// whatever it printed.
type Runner interface {
	Run(ctx context.Context, c Cmd) (Result, error)
	// Interactive runs c attached to this process's terminal (standard input,
	// output and error), for shells and builds whose output the user watches.
	Interactive(ctx context.Context, c Cmd) error
}

// ExitError reports a program that ran and exited with a non-zero status.
type ExitError struct {
	Cmd    Cmd
	Code   int
	Stderr string // trimmed; may be empty
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: exit status %d", e.Cmd, e.Code)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// ExitStatus lets mage pass the program's exit code through.
func (e *ExitError) ExitStatus() int { return e.Code }

// ExitCode reports the exit status of the program behind err, or -1 when err
// does not come from a program that ran and exited.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return -1
}

// Exec is the Runner that really runs programs. It sets LC_ALL=C so that the
// output parsed by callers does not depend on the user's locale.
type Exec struct {
	// Euid reports the effective user id; nil means os.Geteuid. Tests set it
	// to exercise the sudo path without being unprivileged.
	Euid func() int
}

// argv returns the program and arguments actually run for c.
func (x Exec) argv(c Cmd) (string, []string) {
	euid := os.Geteuid
	if x.Euid != nil {
		euid = x.Euid
	}
	if c.Privileged && euid() != 0 {
		return "sudo", append([]string{"--", c.Name}, c.Args...)
	}
	return c.Name, c.Args
}

func environ() []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LC_ALL=") {
			env = append(env, kv)
		}
	}
	return append(env, "LC_ALL=C")
}

// Run runs c to completion and captures its output.
func (x Exec) Run(ctx context.Context, c Cmd) (Result, error) {
	name, args := x.argv(c)
	var stderr bytes.Buffer
	p := script.NewPipe().WithContext(ctx).WithStderr(&stderr).WithEnv(environ())
	if c.Stdin != nil {
		p = p.WithReader(bytes.NewReader(c.Stdin))
	}
	out, err := p.ExecCommand(name, args...).Bytes()
	res := Result{Stdout: out, Stderr: stderr.Bytes()}
	if err != nil {
		return res, wrap(ctx, c, err, p.ExitStatus(), res.Stderr)
	}
	return res, nil
}

// Interactive runs c on this process's terminal.
func (x Exec) Interactive(ctx context.Context, c Cmd) error {
	name, args := x.argv(c)
	// bitfield/script pipes cannot hand a terminal to a child, so this one
	// path uses os/exec directly.
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = environ()
	if c.Stdin != nil {
		cmd.Stdin = bytes.NewReader(c.Stdin)
	}
	err := cmd.Run()
	if err == nil {
		return nil
	}
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	return wrap(ctx, c, err, code, nil)
}

func wrap(ctx context.Context, c Cmd, err error, code int, stderr []byte) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", c, ctx.Err())
	}
	var notFound *exec.Error
	if errors.As(err, &notFound) {
		return fmt.Errorf("%s: %w (is it installed and on PATH?)", c, notFound.Err)
	}
	if code > 0 {
		return &ExitError{Cmd: c, Code: code, Stderr: strings.TrimSpace(string(stderr))}
	}
	return fmt.Errorf("%s: %w", c, err)
}
