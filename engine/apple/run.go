package apple

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

var (
	volumeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$`)
	// A size with a unit: without one `container` reads bytes
	// (1.2.2:Sources/ContainerPersistence/Measurement+Parse.swift, parseUnit
	// defaults to "b"), so `--memory 4096` asks for 4 KiB, not 4 GiB.
	memorySize = regexp.MustCompile(`^[1-9][0-9]{0,8}[kKmMgGtTpP](?:[iI]?[bB])?$`)
)

// containers lists every container, running or not.
func (e *Engine) containers(ctx context.Context) ([]ContainerInfo, error) {
	out, v, err := e.list(ctx, "containers", "list", "--all")
	if err != nil {
		return nil, err
	}
	return ParseContainers(out, v)
}

// State returns the container's state. A container that is stopping is
// waited for, for a while, since it can neither be joined nor started until
// it has stopped; a container in state "unknown" is an error.
func (e *Engine) State(ctx context.Context, name string) (engine.State, error) {
	deadline := time.Now().Add(e.stopWait)
	for {
		cs, err := e.containers(ctx)
		if err != nil {
			return "", err
		}
		i := slices.IndexFunc(cs, func(c ContainerInfo) bool { return c.Name == name })
		switch {
		case i < 0:
			return engine.Absent, nil
		case cs[i].State == "running":
			return engine.Running, nil
		case cs[i].State == "stopped":
			return engine.Stopped, nil
		case cs[i].State == "unknown":
			return "", fmt.Errorf("container %s is in state unknown (the container service lost track of it): "+
				"remove it with `container rm -f %s` and start again", name, name)
		}
		// stopping
		if !time.Now().Before(deadline) {
			return "", fmt.Errorf("container %s is still stopping after %s: wait for `container ls --all` to show it stopped, "+
				"or end it with `container kill %s`", name, e.stopWait, name)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(e.poll):
		}
	}
}

// RunningOn lists, sorted, the running containers attached to the network
// (the builder container "buildkit" included, when it runs there).
func (e *Engine) RunningOn(ctx context.Context, network string) ([]string, error) {
	cs, err := e.containers(ctx)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, c := range cs {
		if c.State == "running" && c.OnNetwork(network) {
			names = append(names, c.Name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Create creates and starts the container detached, running
// engine.KeepAlive:
//
//	container run -d --name NAME --network NET --dns IP -v SRC:DST … --memory M --cpus N IMAGE /bin/sh -c …
//
// Host directories must be absolute and exist; named volumes are created
// by `container run` when missing.
func (e *Engine) Create(ctx context.Context, r engine.RunSpec) error {
	if _, err := e.release(ctx); err != nil {
		return err
	}
	args, err := runArgs(r)
	if err != nil {
		return err
	}
	if _, err := e.run(ctx, args...); err != nil {
		var ee *proc.ExitError
		if errors.As(err, &ee) && strings.Contains(ee.Stderr, "requires macOS 26") {
			err = noNetworks(r.Network)
		}
		return fmt.Errorf("creating container %s: %w", r.Name, err)
	}
	return nil
}

// runArgs checks r and returns the `container run` argv.
func runArgs(r engine.RunSpec) (args []string, err error) {
	if !containerName.MatchString(r.Name) || len(r.Name) > 63 {
		return nil, fmt.Errorf("container name %q: want 2 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", r.Name)
	}
	if r.Image == "" || strings.HasPrefix(r.Image, "-") {
		return nil, fmt.Errorf("container %s: bad image %q", r.Name, r.Image)
	}
	if _, err := NormalizeReference(r.Image); err != nil {
		return nil, fmt.Errorf("container %s: %w", r.Name, err)
	}
	args = []string{"run", "-d", "--name", r.Name}
	if r.AutoRemove {
		args = append(args, "--rm")
	}
	switch {
	case r.Network == "":
	case !networkName.MatchString(r.Network):
		return nil, fmt.Errorf("container %s: bad network name %q", r.Name, r.Network)
	default:
		args = append(args, "--network", r.Network)
	}
	for _, a := range r.DNS {
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			return nil, fmt.Errorf("container %s: DNS server %v is not a plain IP address", r.Name, a)
		}
		args = append(args, "--dns", a.String())
	}
	for _, vol := range r.Volumes {
		if !filepath.IsAbs(vol.Target) || strings.ContainsAny(vol.Target, ":,") {
			return nil, fmt.Errorf("container %s: mount target %q must be an absolute path without ':' or ','", r.Name, vol.Target)
		}
		if strings.Contains(vol.Source, "/") {
			if !filepath.IsAbs(vol.Source) || strings.ContainsAny(vol.Source, ":,") {
				return nil, fmt.Errorf("container %s: host directory %q must be an absolute path without ':' or ','", r.Name, vol.Source)
			}
			if fi, err := os.Stat(vol.Source); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("container %s: host directory %s does not exist; create it or choose another", r.Name, vol.Source)
			}
		} else if !volumeName.MatchString(vol.Source) {
			return nil, fmt.Errorf("container %s: volume name %q: want letters, digits, '.', '_' or '-'", r.Name, vol.Source)
		}
		args = append(args, "--volume", vol.Source+":"+vol.Target)
	}
	if r.Memory != "" {
		if !memorySize.MatchString(r.Memory) {
			return nil, fmt.Errorf("container %s: memory %q: want a size with a unit, such as 8g or 4096m (a bare number is bytes to container)", r.Name, r.Memory)
		}
		args = append(args, "--memory", r.Memory)
	}
	if r.CPUs < 0 {
		return nil, fmt.Errorf("container %s: %d CPUs", r.Name, r.CPUs)
	}
	if r.CPUs > 0 {
		args = append(args, "--cpus", strconv.Itoa(r.CPUs))
	}
	args = append(args, r.Image)
	return append(args, engine.KeepAlive...), nil
}

// Start starts a stopped container.
func (e *Engine) Start(ctx context.Context, name string) error {
	if _, err := e.release(ctx); err != nil {
		return err
	}
	return e.act(ctx, "starting", "start", name, "")
}

// Stop stops the container; stopping one that is already stopped does
// nothing, and the error wraps engine.ErrNotFound when there is none.
func (e *Engine) Stop(ctx context.Context, name string) error {
	return e.act(ctx, "stopping", "stop", name, engine.Stopped)
}

// Remove deletes a stopped container (`container delete NAME`); the error
// wraps engine.ErrNotFound when there is none, as when a container created
// with --rm was deleted by the runtime meanwhile.
func (e *Engine) Remove(ctx context.Context, name string) error {
	if !containerName.MatchString(name) {
		return fmt.Errorf("removing container %q: not a valid container name", name)
	}
	return e.act(ctx, "removing", "delete", name, "")
}

// act runs `container VERB NAME`. When that fails, the container's state
// decides: the error wraps engine.ErrNotFound when there is no container,
// and there is none when the container is already in state done.
func (e *Engine) act(ctx context.Context, doing, verb, name string, done engine.State) error {
	_, err := e.run(ctx, verb, name)
	if err == nil {
		return nil
	}
	switch st, serr := e.State(ctx, name); {
	case serr != nil:
	case st == engine.Absent:
		err = engine.ErrNotFound
	case done != "" && st == done:
		return nil
	}
	return fmt.Errorf("%s container %s: %w", doing, name, err)
}

// Exec runs argv in the running container on this terminal (`container
// exec -it NAME ARGV…`). It asks for a terminal (-t) only when standard
// input is one: `container exec -t` fails without it, where piped input
// still works with -i alone. The error carries the command's exit status
// (proc.ExitCode).
func (e *Engine) Exec(ctx context.Context, name string, argv ...string) error {
	if len(argv) == 0 || argv[0] == "" {
		return fmt.Errorf("exec in container %s: no command", name)
	}
	isTerminal := e.StdinIsTerminal
	if isTerminal == nil {
		isTerminal = func() bool { return term.IsTerminal(int(os.Stdin.Fd())) }
	}
	flags := "-i"
	if isTerminal() {
		flags = "-it"
	}
	args := append([]string{"exec", flags, name}, argv...)
	if err := e.runner.Interactive(ctx, proc.Cmd{Name: Program, Args: args}); err != nil {
		return fmt.Errorf("exec in container %s: %w", name, explain(err))
	}
	return nil
}
