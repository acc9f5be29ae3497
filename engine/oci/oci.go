// Package oci drives podman and docker, the Linux container runtimes, through
// their command-line tools. The two share almost every command; where their
// answers differ in shape (podman prints JSON arrays with lower-case keys,
// docker one object per line with capitalised keys) the parsers here accept
// both, so that podman standing in for docker (the podman-docker package)
// works too.
//
// The container runs engine.KeepAlive, a shell loop that idles until
// SIGTERM, after the image's entrypoint (the image's default command, an
// interactive shell, would exit at once without a terminal), and shells join
// it with `exec`.
//
// Only a rootful runtime is accepted: a rootless one keeps its bridges in a
// network namespace of its own, where the host firewall cannot see them. So
// podman runs through sudo when this process is not root (Engine.Privileged),
// and EnsureRunning refuses a runtime that reports itself rootless.
package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// Programs this package drives.
const (
	Podman = "podman"
	Docker = "docker"
)

// Engine is podman or docker.
type Engine struct {
	run     proc.Runner
	program string
	// Privileged runs every command with root rights (through sudo when this
	// process is not root). New sets it for podman: only a rootful runtime
	// puts the network's bridge in the host's network namespace, where the
	// host firewall sees it; rootless podman keeps it in a namespace of its
	// own. docker's daemon is rootful already and is reached through its
	// socket.
	Privileged bool
	// StdinIsTerminal reports whether this process's standard input is a
	// terminal; nil means checking os.Stdin. Tests set it.
	StdinIsTerminal func() bool

	// first is held while the first privileged command runs: through sudo
	// it may ask for a password, and commands started together would each
	// ask at once. firstDone is set once it has returned.
	first     sync.Mutex
	firstDone atomic.Bool
}

// Interface guard.
var _ engine.Engine = (*Engine)(nil)

// New returns the engine for program, "podman" or "docker", found on PATH
// and run through runner; podman runs with root rights (see Privileged). It
// panics on any other program: the caller picks one of the two constants.
func New(runner proc.Runner, program string) *Engine {
	if program != Podman && program != Docker {
		panic(fmt.Sprintf("oci.New: program %q is neither podman nor docker", program))
	}
	return &Engine{run: runner, program: program, Privileged: program == Podman}
}

// Name returns "podman" or "docker".
func (e *Engine) Name() string { return e.program }

func (e *Engine) cmd(args ...string) proc.Cmd {
	return proc.Cmd{Name: e.program, Args: args, Privileged: e.Privileged}
}

// output runs the program and returns its standard output. The first
// privileged command runs alone.
func (e *Engine) output(ctx context.Context, args ...string) ([]byte, error) {
	if e.Privileged && !e.firstDone.Load() {
		e.first.Lock()
		if e.firstDone.Load() {
			e.first.Unlock()
		} else {
			defer e.first.Unlock()
			defer e.firstDone.Store(true)
		}
	}
	res, err := e.run.Run(ctx, e.cmd(args...))
	return res.Stdout, err
}

// info is what claudecontainer reads of `podman info --format json` and
// `docker info --format '{{json .}}'`.
type info struct {
	// podman
	Host *struct {
		NetworkBackend *string `json:"networkBackend"` // from podman 4.0
		Security       struct {
			Rootless *bool `json:"rootless"`
		} `json:"security"`
	} `json:"host"`
	Version *struct {
		Version string `json:"Version"`
	} `json:"version"`
	// docker
	ServerVersion   *string  `json:"ServerVersion"`
	SecurityOptions []string `json:"SecurityOptions"`
}

// jsonFormat is the --format value that makes each program print JSON.
var jsonFormat = map[string]string{Podman: "json", Docker: "{{json .}}"}

func (e *Engine) info(ctx context.Context) (info, error) {
	out, err := e.output(ctx, "info", "--format", jsonFormat[e.program])
	if err != nil {
		return info{}, e.explainInfo(err)
	}
	var i info
	if err := json.Unmarshal(out, &i); err != nil {
		return info{}, fmt.Errorf("reading `%s info` output: %w (output: %q)", e.program, err, engine.Clip(out))
	}
	switch {
	case i.Host != nil:
		if i.Host.Security.Rootless == nil {
			return info{}, fmt.Errorf("reading `%s info` output: no host.security.rootless key", e.program)
		}
	case i.ServerVersion != nil:
		if *i.ServerVersion == "" {
			return info{}, fmt.Errorf("`%s info` reports no server version: is the daemon running?", e.program)
		}
	default:
		return info{}, fmt.Errorf("reading `%s info` output: neither podman's host nor docker's ServerVersion key (output: %q)", e.program, engine.Clip(out))
	}
	return i, nil
}

func (e *Engine) explainInfo(err error) error {
	msg := stderrOf(err)
	switch {
	case dockerDown.MatchString(msg):
		return fmt.Errorf("the Docker daemon is not running: start it (`sudo systemctl start docker`) and try again: %w", err)
	case e.program == Docker && strings.Contains(msg, "permission denied"):
		return fmt.Errorf("cannot reach the Docker daemon's socket: add yourself to the docker group "+
			"(`sudo usermod -aG docker $USER`, then log in again) or run as root: %w", err)
	case e.program == Podman:
		return fmt.Errorf("podman cannot run (see its message; `podman system migrate` repairs a storage left by an older podman): %w", err)
	}
	return err
}

var dockerDown = regexp.MustCompile(`cannot connect to the docker daemon|is the docker daemon running`)

// Oldest releases claudecontainer supports: podman 4 with netavark (the
// network backend whose `network inspect` shape and bridge naming the
// driver reads; podman 4 may still run CNI, podman 3 has only CNI), and
// Docker Engine 24.
const (
	minPodman = 4
	minDocker = 24
)

var majorVersion = regexp.MustCompile(`^v?([0-9]{1,4})\.[0-9]`)

// supported fails for a runtime older than the oldest claudecontainer
// supports, saying which one is installed and what to do. podman-docker
// answers `docker info` with podman's document and is held to podman's floor.
func (e *Engine) supported(i info) error {
	if i.Host != nil {
		if i.Version == nil || i.Version.Version == "" {
			return fmt.Errorf("reading `%s info` output: no version.Version key", e.program)
		}
		v := i.Version.Version
		if m := majorVersion.FindStringSubmatch(v); m == nil {
			return fmt.Errorf("`%s info` reports podman version %q, want MAJOR.MINOR.PATCH", e.program, v)
		} else if n, _ := strconv.Atoi(m[1]); n < minPodman {
			return fmt.Errorf("podman %s is installed; claudecontainer needs podman %d or later with the netavark network backend: "+
				"upgrade podman (and install netavark and aardvark-dns)", v, minPodman)
		}
		if b := i.Host.NetworkBackend; b == nil || *b != "netavark" {
			got := "no network backend"
			if b != nil {
				got = fmt.Sprintf("the %q network backend", *b)
			}
			return fmt.Errorf("podman %s reports %s; claudecontainer needs netavark: install netavark and aardvark-dns, "+
				"set network_backend = \"netavark\" in the [network] section of /etc/containers/containers.conf, "+
				"then run `sudo podman system reset` (it deletes every container, image and network of root's podman)", v, got)
		}
		return nil
	}
	v := *i.ServerVersion
	if m := majorVersion.FindStringSubmatch(v); m == nil {
		return fmt.Errorf("`%s info` reports server version %q, want MAJOR.MINOR.PATCH", e.program, v)
	} else if n, _ := strconv.Atoi(m[1]); n < minDocker {
		return fmt.Errorf("docker: Docker Engine %s is installed; claudecontainer needs %d or later: "+
			"upgrade it (https://docs.docker.com/engine/install/)", v, minDocker)
	}
	return nil
}

// EnsureRunning checks that the runtime answers and runs as root; it never
// starts anything (started is always false). podman has no daemon, so this
// only checks that `podman info` works; docker's daemon is a system service
// that claudecontainer does not start (it would need a password prompt), so
// a stopped daemon is an error that says how to start it. A release older than claudecontainer supports is refused, and so is a
// rootless runtime: its networks live in a network namespace of its own,
// where the host firewall can neither see nor filter them, so the container
// would run unguarded.
func (e *Engine) EnsureRunning(ctx context.Context) (started bool, err error) {
	i, err := e.info(ctx)
	if err != nil {
		return false, err
	}
	if err := e.supported(i); err != nil {
		return false, err
	}
	if !i.rootless() {
		return false, nil
	}
	if i.Host != nil {
		return false, fmt.Errorf("%s runs podman rootless: its networks live in a network namespace of its own, "+
			"where the host firewall cannot see them, so claudecontainer refuses to run the container; "+
			"podman must run as root (claudecontainer runs it through sudo unless told otherwise)", e.program)
	}
	return false, errors.New("docker runs rootless (dockerd-rootless): its networks live in a network namespace of its own, " +
		"where the host firewall cannot see them, so claudecontainer refuses to run the container; " +
		"use the system daemon (`docker context use default`, `sudo systemctl start docker`) or podman")
}

// Rootless reports whether the runtime runs without root rights. A rootless
// runtime keeps its bridge inside a network namespace of its own, out of the
// host firewall's sight.
func (e *Engine) Rootless(ctx context.Context) (bool, error) {
	i, err := e.info(ctx)
	if err != nil {
		return false, err
	}
	return i.rootless(), nil
}

func (i info) rootless() bool {
	if i.Host != nil {
		return *i.Host.Security.Rootless
	}
	return slices.ContainsFunc(i.SecurityOptions, func(opt string) bool {
		return slices.Contains(strings.Split(opt, ","), "name=rootless")
	})
}

// stderrOf returns what the failed program printed on standard error,
// lower-cased for matching.
func stderrOf(err error) string {
	var ee *proc.ExitError
	if errors.As(err, &ee) {
		return strings.ToLower(ee.Stderr)
	}
	return ""
}

// notFound reports whether a failed command's message says the object it
// named does not exist. podman exits 125 ("no such network", "network not
// found", "no container with name or ID … found: no such container"); docker
// exits 1 ("No such network: x", "network x not found", "No such container: x").
func notFound(err error, kind string) bool {
	return proc.ExitCode(err) > 0 && notFoundMessage[kind].MatchString(stderrOf(err))
}

// notFoundMessage matches, per kind of object, the lower-cased messages of
// both programs that say it does not exist.
var notFoundMessage = map[string]*regexp.Regexp{
	"network":   regexp.MustCompile(`no such network|network (\S+ )?not found`),
	"container": regexp.MustCompile(`no such container|no container with name or id`),
	"image":     regexp.MustCompile(`no such image|image not known`),
}

// missing returns an error that wraps both engine.ErrNotFound and the
// program's own error: `network "claude": not found (podman network …)`.
func missing(kind, name string, err error) error {
	return fmt.Errorf("%s %q: %w (%w)", kind, name, engine.ErrNotFound, err)
}
