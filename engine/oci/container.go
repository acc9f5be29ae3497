package oci

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/VerilyPete/claudecontainer/engine"
)

// StopTimeout is how many seconds Stop lets the container's command exit on
// SIGTERM before the runtime kills it.
const StopTimeout = 5

// psJSON is one container as `podman ps --format json` (a JSON array, Names
// and Networks as lists) or `docker ps --format '{{json .}}'` (one object per
// line, Names and Networks as comma-separated strings) prints it.
type psJSON struct {
	Names    list   `json:"Names"`
	State    string `json:"State"`
	Status   string `json:"Status"`
	Networks list   `json:"Networks"`
}

// list is a JSON list of strings or a comma-separated string. present tells a
// missing key from an empty or null value.
type list struct {
	items   []string
	present bool
}

func (l *list) UnmarshalJSON(b []byte) error {
	l.present = true
	l.items = nil
	var s string // null leaves it empty
	if err := json.Unmarshal(b, &s); err != nil {
		return json.Unmarshal(b, &l.items)
	}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			l.items = append(l.items, f)
		}
	}
	return nil
}

// parsePS reads ps output of either shape: one JSON array, or JSON objects
// one after another. Empty output is no containers.
func parsePS(program string, data []byte) ([]psJSON, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var out []psJSON
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading `%s ps` output: %w (output: %q)", program, err, engine.Clip(data))
		}
		raw = bytes.TrimSpace(raw)
		var batch []psJSON
		if len(raw) > 0 && raw[0] == '[' {
			err = json.Unmarshal(raw, &batch)
		} else {
			var c psJSON
			err = json.Unmarshal(raw, &c)
			batch = []psJSON{c}
		}
		if err != nil {
			return nil, fmt.Errorf("reading `%s ps` output: %w (output: %q)", program, err, engine.Clip(raw))
		}
		for _, c := range batch {
			if !c.Names.present || len(c.Names.items) == 0 {
				return nil, fmt.Errorf("reading `%s ps` output: a container without names (output: %q)", program, engine.Clip(raw))
			}
			for i, n := range c.Names.items {
				c.Names.items[i] = strings.TrimPrefix(n, "/")
			}
			out = append(out, c)
		}
	}
}

func (e *Engine) ps(ctx context.Context, all bool) ([]psJSON, error) {
	args := []string{"ps"}
	if all {
		args = append(args, "-a")
	}
	out, err := e.output(ctx, append(args, "--format", jsonFormat[e.program])...)
	if err != nil {
		return nil, err
	}
	return parsePS(e.program, out)
}

// state maps a runtime's state word to an engine.State. Docker reports
// created, restarting, running, removing, paused, exited and dead; podman
// also configured, initialized, stopping and stopped. A container in a
// state that neither Start nor Exec can work from is an error that says
// what to do. Without a State (very old docker), Status decides.
func (c psJSON) state(program, name string) (engine.State, error) {
	s := strings.ToLower(strings.TrimSpace(c.State))
	if s == "" {
		status := strings.ToLower(c.Status)
		switch {
		case strings.HasPrefix(status, "up") && strings.Contains(status, "paused"):
			s = "paused"
		case strings.HasPrefix(status, "up"):
			s = "running"
		case strings.HasPrefix(status, "exited"), strings.HasPrefix(status, "created"):
			s = "exited"
		}
	}
	switch s {
	case "running":
		return engine.Running, nil
	case "created", "configured", "initialized", "exited", "stopped":
		return engine.Stopped, nil
	case "paused":
		return "", fmt.Errorf("container %s is paused: resume it with `%s unpause %s`", name, program, name)
	case "restarting", "removing", "stopping":
		return "", fmt.Errorf("container %s is %s: try again in a moment", name, s)
	case "dead":
		return "", fmt.Errorf("container %s is dead: remove it with `%s rm %s` and claudecontainer creates it again", name, program, name)
	}
	return "", fmt.Errorf("container %s is in a state claudecontainer does not know (State %q, Status %q)", name, c.State, c.Status)
}

// State returns the state of the named container: Absent when no container
// has that exact name.
func (e *Engine) State(ctx context.Context, name string) (engine.State, error) {
	if err := checkName("container", name); err != nil {
		return "", err
	}
	cs, err := e.ps(ctx, true)
	if err != nil {
		return "", err
	}
	found := slices.DeleteFunc(cs, func(c psJSON) bool { return !slices.Contains(c.Names.items, name) })
	switch len(found) {
	case 0:
		return engine.Absent, nil
	case 1:
		return found[0].state(e.program, name)
	}
	return "", fmt.Errorf("`%s ps -a` lists %d containers named %s", e.program, len(found), name)
}

// RunningOn lists the containers that `ps` shows as up (running, and with
// docker also paused or restarting) and that are attached to the network,
// sorted by name. A container whose networks the runtime does not report is
// an error rather than a guess: the caller lifts the firewall only when this
// list is empty.
func (e *Engine) RunningOn(ctx context.Context, network string) ([]string, error) {
	if err := checkName("network", network); err != nil {
		return nil, err
	}
	cs, err := e.ps(ctx, false)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range cs {
		if !c.Networks.present {
			return nil, fmt.Errorf("`%s ps` does not say which networks container %s is attached to (podman 4 or later, docker 20.10 or later needed)", e.program, c.Names.items[0])
		}
		if slices.Contains(c.Networks.items, network) {
			out = append(out, c.Names.items[0])
		}
	}
	slices.Sort(out)
	return out, nil
}

// Create creates and starts the container detached, running
// engine.KeepAlive after the image's entrypoint. Rootless podman also gets
// --userns=keep-id, so that files written in the workspace belong to the
// user who ran claudecontainer (EnsureRunning refuses rootless runtimes, so
// this matters only to callers that skip it).
func (e *Engine) Create(ctx context.Context, r engine.RunSpec) error {
	rootless := false
	if e.program == Podman {
		var err error
		if rootless, err = e.Rootless(ctx); err != nil {
			return err
		}
	}
	args, err := runArgs(r, rootless)
	if err != nil {
		return fmt.Errorf("creating container %s: %w", r.Name, err)
	}
	_, err = e.output(ctx, args...)
	return err
}

var (
	imageRef   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._/:@-]{0,254}$`)
	volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	memorySize = regexp.MustCompile(`^[1-9][0-9]{0,12}[bkmgBKMG]?$`)
	envKey     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func checkImage(ref string) error {
	if !imageRef.MatchString(ref) {
		return fmt.Errorf("image reference %q: want a reference such as claudepine:latest", ref)
	}
	return nil
}

// runArgs returns the arguments of `run` for r.
func runArgs(r engine.RunSpec, rootless bool) ([]string, error) {
	if err := cmp.Or(checkName("container", r.Name), checkName("network", r.Network), checkImage(r.Image)); err != nil {
		return nil, err
	}
	args := []string{"run", "-d", "--name", r.Name, "--network", r.Network}
	if r.AutoRemove {
		args = append(args, "--rm")
	}
	for _, a := range r.DNS {
		if !a.IsValid() || a.Zone() != "" {
			return nil, fmt.Errorf("DNS server %v is not a plain IP address", a)
		}
		args = append(args, "--dns", a.Unmap().String())
	}
	if rootless {
		args = append(args, "--userns=keep-id")
	}
	for _, v := range r.Volumes {
		spec, err := volumeSpec(v)
		if err != nil {
			return nil, err
		}
		args = append(args, "-v", spec)
	}
	if r.Memory != "" {
		if !memorySize.MatchString(r.Memory) {
			return nil, fmt.Errorf("memory limit %q: want a size such as 8g or 4096m", r.Memory)
		}
		args = append(args, "--memory", r.Memory)
	}
	switch {
	case r.CPUs < 0:
		return nil, fmt.Errorf("CPU limit %d: want a positive number", r.CPUs)
	case r.CPUs > 0:
		args = append(args, "--cpus", strconv.Itoa(r.CPUs))
	}
	args = append(args, r.Image)
	return append(args, engine.KeepAlive...), nil
}

// volumeSpec renders a -v value: a named volume (created by the runtime when
// missing) or an existing host directory or file, absolute.
func volumeSpec(v engine.Volume) (string, error) {
	if !path.IsAbs(v.Target) || path.Clean(v.Target) != v.Target || strings.ContainsAny(v.Target, ":,") {
		return "", fmt.Errorf("volume target %q: want a clean absolute path without ':' or ','", v.Target)
	}
	switch {
	case !strings.Contains(v.Source, "/"):
		if !volumeName.MatchString(v.Source) {
			return "", fmt.Errorf("volume name %q: want letters, digits, '_', '.' or '-' (at least two)", v.Source)
		}
	case !filepath.IsAbs(v.Source) || filepath.Clean(v.Source) != v.Source || strings.ContainsAny(v.Source, ":,"):
		return "", fmt.Errorf("host path %q for %s: want a clean absolute path without ':' or ','", v.Source, v.Target)
	default:
		if _, err := os.Stat(v.Source); err != nil {
			return "", fmt.Errorf("host path for %s: %w", v.Target, err)
		}
	}
	return v.Source + ":" + v.Target, nil
}

// Start starts a stopped container.
func (e *Engine) Start(ctx context.Context, name string) error {
	return e.lifecycle(ctx, name, "start")
}

// Stop stops the container, killing it when its shell has not exited
// StopTimeout seconds after the stop signal.
func (e *Engine) Stop(ctx context.Context, name string) error {
	return e.lifecycle(ctx, name, "stop", "-t", strconv.Itoa(StopTimeout))
}

// Remove deletes a stopped container.
func (e *Engine) Remove(ctx context.Context, name string) error {
	return e.lifecycle(ctx, name, "rm")
}

func (e *Engine) lifecycle(ctx context.Context, name string, args ...string) error {
	if err := checkName("container", name); err != nil {
		return err
	}
	_, err := e.output(ctx, append(args, name)...)
	if err != nil && notFound(err, "container") {
		return missing("container", name, err)
	}
	return err
}

// Exec runs argv in the running container, attached to this terminal. It
// asks for a terminal in the container (-t) only when standard input is one:
// docker refuses -t otherwise. The error of a command that ran and failed is
// a *proc.ExitError carrying its exit status.
func (e *Engine) Exec(ctx context.Context, name string, argv ...string) error {
	if err := checkName("container", name); err != nil {
		return err
	}
	if len(argv) == 0 {
		return errors.New("exec: no command")
	}
	isTerminal := e.StdinIsTerminal
	if isTerminal == nil {
		isTerminal = func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }
	}
	args := []string{"exec", "-i"}
	if isTerminal() {
		args = append(args, "-t")
	}
	args = append(append(args, name), argv...)
	return e.run.Interactive(ctx, e.cmd(args...))
}
