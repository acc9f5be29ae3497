// Package engine drives a container runtime's command-line tool: Apple's
// `container` on macOS, podman or docker on Linux. Every answer a runtime
// gives is parsed into typed values before the rest of claudecontainer sees
// it.
package engine

import (
	"bytes"
	"context"
	"net/netip"

	"github.com/VerilyPete/claudecontainer/policy"
)

// State is a container's state.
type State string

// Container states. Absent means no container has the name.
const (
	Absent  State = "absent"
	Stopped State = "stopped"
	Running State = "running"
)

// Engine is one container runtime.
type Engine interface {
	// Name is the runtime's setting value: "container", "podman" or "docker".
	Name() string
	// EnsureRunning checks that the runtime can be used and starts its
	// background service when it is down (never prompting). started reports
	// that it had to: what was read of the runtime before may be out of date.
	EnsureRunning(ctx context.Context) (started bool, err error)

	// Network returns the named network, or an error wrapping ErrNotFound.
	Network(ctx context.Context, name string) (policy.Network, error)
	// CreateNetwork creates the named network with a fixed IPv4 subnet.
	CreateNetwork(ctx context.Context, name string, subnet netip.Prefix) error

	ImageExists(ctx context.Context, ref string) (bool, error)
	Build(ctx context.Context, b BuildSpec) error

	State(ctx context.Context, name string) (State, error)
	// RunningOn lists the running containers attached to the network.
	RunningOn(ctx context.Context, network string) ([]string, error)
	// Create creates and starts the container detached, running KeepAlive,
	// so that shells can be exec'd into it. Whether it still runs a moment
	// later is State's to tell.
	Create(ctx context.Context, r RunSpec) error
	// Start starts a stopped container; the error wraps ErrNotFound when
	// there is none.
	Start(ctx context.Context, name string) error
	// Exec runs an interactive command in the container on this terminal.
	Exec(ctx context.Context, name string, argv ...string) error
	Stop(ctx context.Context, name string) error
	// Remove deletes a stopped container; the error wraps ErrNotFound when
	// there is none.
	Remove(ctx context.Context, name string) error
}

// BuildSpec is an image build.
type BuildSpec struct {
	Context    string // directory holding the Dockerfile
	Dockerfile string // path, "" for Context/Dockerfile
	Tag        string
	Args       map[string]string // --build-arg
}

// RunSpec is a container to create.
type RunSpec struct {
	Name    string
	Image   string
	Network string
	DNS     []netip.Addr
	Volumes []Volume
	Memory  string
	CPUs    int
	// AutoRemove has the runtime delete the container when it stops (--rm).
	AutoRemove bool
}

// KeepAlive is the command a driver's Create gives the container. The
// image's default command is an interactive shell, which exits at once in a
// detached container (it has no terminal and reads end-of-file), so the
// container would stop before any session could join it. KeepAlive replaces
// the image's CMD, so the image's entrypoint still runs first and then execs
// it; it idles in any POSIX sh, needs no `sleep infinity` (BusyBox builds
// differ there), and exits on SIGTERM, which a shell or a plain `sleep`
// running as the container's first process would ignore, making a stop wait
// for the runtime's timeout. Shells then join with Exec.
var KeepAlive = []string{"/bin/sh", "-c", "trap 'exit 0' TERM INT HUP; while :; do sleep 3600 & wait $!; done"}

// Volume mounts a named volume (Source without a slash) or a host directory
// (absolute Source) at Target.
type Volume struct {
	Source, Target string
}

// ErrNotFound marks a network or container that does not exist.
var ErrNotFound = errNotFound{}

type errNotFound struct{}

func (errNotFound) Error() string { return "not found" }

// Clip shortens a runtime's output for quoting in an error message.
func Clip(b []byte) string {
	const max = 200
	if b = bytes.TrimSpace(b); len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
