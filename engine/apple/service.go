package apple

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// Service states printed by `container system status --format json`.
const (
	ServiceRunning      = "running"
	ServiceNotRunning   = "not running"
	ServiceUnregistered = "unregistered"
)

// ParseStatus reads the output of `container system status --format json`
// and returns its status: ServiceRunning, ServiceNotRunning or
// ServiceUnregistered. Through 1.2.2 the document is flat
// (1.2.2:Sources/ContainerCommands/System/SystemStatus.swift,
// PrintableStatus); 1.4.1 nests the rest under client, server, host, paths
// and resources (apple/container PR #1769) and, while the service is down,
// prints the status alone. Both keep "status" at the top, the one key read.
func ParseStatus(data []byte) (string, error) {
	var s struct {
		Status *string `json:"status"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return "", fmt.Errorf("reading `container system status` output: %w (output: %q)", err, engine.Clip(data))
	}
	if s.Status == nil {
		return "", fmt.Errorf(`reading "container system status" output: no "status" key (output: %q)`, engine.Clip(data))
	}
	switch *s.Status {
	case ServiceRunning, ServiceNotRunning, ServiceUnregistered:
		return *s.Status, nil
	}
	return "", fmt.Errorf("`container system status` reports unknown status %q", *s.Status)
}

// EnsureRunning starts the container service when it is down, and
// reports whether it did. It passes --enable-kernel-install so that a first
// start installs the recommended kernel instead of waiting at a [Y/n]
// prompt, and gives the command no input, so it can never hang on a
// question.
func (e *Engine) EnsureRunning(ctx context.Context) (started bool, err error) {
	if _, err := e.release(ctx); err != nil {
		return false, err
	}
	if up, err := e.serviceRunning(ctx); err != nil || up {
		return false, err
	}
	if _, err := e.runner.Run(ctx, proc.Cmd{Name: Program, Args: []string{"system", "start", "--enable-kernel-install"}, Stdin: []byte{}}); err != nil {
		return false, fmt.Errorf("starting the container service: %w\n"+
			"run `container system start` in a terminal to see what it needs; `container system logs` shows the service's log", err)
	}
	up, err := e.serviceRunning(ctx)
	if err == nil && !up {
		err = fmt.Errorf("`container system start` succeeded but the container service still does not run: " +
			"check `container system logs`, then try `container system stop` and `container system start`")
	}
	return true, err
}

// serviceRunning asks `container system status --format json`, which
// prints its JSON whether the service runs (exit 0) or not (exit 1). When
// the JSON is not what ParseStatus expects, the exit status decides.
func (e *Engine) serviceRunning(ctx context.Context) (bool, error) {
	res, err := e.runner.Run(ctx, proc.Cmd{Name: Program, Args: []string{"system", "status", "--format", "json"}})
	switch status, perr := ParseStatus(res.Stdout); {
	case perr == nil:
		return status == ServiceRunning && err == nil, nil
	case err == nil:
		return true, nil
	case proc.ExitCode(err) == 1:
		return false, nil // "apiserver is not running"
	}
	return false, fmt.Errorf("asking whether the container service runs: %w", explain(err))
}
