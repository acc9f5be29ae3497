package apple

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// Service states printed by `container system status --format json`
// (0.10 and later).
const (
	ServiceRunning      = "running"
	ServiceNotRunning   = "not running"
	ServiceUnregistered = "unregistered"
)

// ParseStatus reads the output of `container system status --format json`
// and returns its status: ServiceRunning, ServiceNotRunning or
// ServiceUnregistered.
func ParseStatus(data []byte) (string, error) {
	var s struct {
		Status *string `json:"status"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return "", fmt.Errorf("reading `container system status` output: %w (output: %q)", err, clip(data))
	}
	if s.Status == nil {
		return "", fmt.Errorf(`reading "container system status" output: no "status" key (output: %q)`, clip(data))
	}
	switch *s.Status {
	case ServiceRunning, ServiceNotRunning, ServiceUnregistered:
		return *s.Status, nil
	}
	return "", fmt.Errorf("`container system status` reports unknown status %q", *s.Status)
}

// EnsureRunning starts the container service when it is down. It passes
// --enable-kernel-install so that a first start installs the recommended
// kernel instead of waiting at a [Y/n] prompt, and gives the command no
// input, so it can never hang on a question.
func (e *Engine) EnsureRunning(ctx context.Context) error {
	v, err := e.ParsedVersion(ctx)
	if err != nil {
		return err
	}
	up, err := e.serviceRunning(ctx, v)
	if err != nil {
		return err
	}
	if up {
		return nil
	}
	if _, err := e.runner.Run(ctx, proc.Cmd{Name: Program, Args: []string{"system", "start", "--enable-kernel-install"}, Stdin: []byte{}}); err != nil {
		return fmt.Errorf("starting the container service: %w\n"+
			"run `container system start` in a terminal to see what it needs; `container system logs` shows the service's log", err)
	}
	if !v.hasSystemStatus() {
		return nil // `system start` itself waits for the service to answer
	}
	up, err = e.serviceRunning(ctx, v)
	if err != nil {
		return err
	}
	if !up {
		return fmt.Errorf("`container system start` succeeded but the container service still does not run: " +
			"check `container system logs`, then try `container system stop` and `container system start`")
	}
	return nil
}

// serviceRunning asks `container system status`. Releases before 0.2.0 have
// no such command; for them it reports false, since `system start` is
// harmless when the service already runs.
func (e *Engine) serviceRunning(ctx context.Context, v Version) (bool, error) {
	if !v.hasSystemStatus() {
		return false, nil
	}
	args := []string{"system", "status"}
	if v.hasStatusJSON() {
		args = append(args, "--format", "json")
	}
	res, err := e.runner.Run(ctx, proc.Cmd{Name: Program, Args: args})
	if v.hasStatusJSON() {
		// The JSON is printed whether the service runs (exit 0) or not (exit 1).
		if status, perr := ParseStatus(res.Stdout); perr == nil {
			return status == ServiceRunning && err == nil, nil
		}
	}
	if err == nil {
		return true, nil
	}
	if proc.ExitCode(err) == 1 {
		return false, nil // "apiserver is not running"
	}
	return false, fmt.Errorf("asking whether the container service runs: %w", explain(err))
}
