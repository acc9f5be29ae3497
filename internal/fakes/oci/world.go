// Package oci fakes the podman and docker command-line tools for tests. A
// test package installs them with
//
//	fakebin.Main(m, map[string]func() int{"podman": oci.PodmanMain, "docker": oci.DockerMain})
//
// and describes the world the fakes see (networks, containers, images) in a
// state file that the fakes read and update, so that a sequence of calls
// behaves like the real program: a network created by one call is inspected
// by the next.
//
// What the fakes print follows the real programs: podman 5.4 with netavark
// (network objects with lower-case keys, `ps --format json` as one JSON array
// with Names and Networks as lists, exit status 125 and "Error: …" messages)
// and docker 28.2 (`network inspect` objects with capitalised keys and IPAM,
// `ps --format '{{json .}}'` as one object per line with Names and Networks
// as comma-separated strings, exit status 1 and "Error response from daemon:
// …" messages). Only the options claudecontainer passes are understood; any
// other option fails as an unknown flag, so that a change in what the driver
// passes shows up in tests.
//
// Knobs, all environment variables:
//
//   - StateEnv (required): a directory holding state.json, the World. Write
//     it with Save before the first call; read it back with Load.
//   - FailEnv: comma-separated commands that fail, each "network create",
//     "run", "ps", "exec", "--version", … optionally followed by ":CODE"
//     (default 125 for podman, 1 for docker).
//   - ExecCodeEnv: `exec`'s exit status (default 0) when sessions are not
//     held.
//   - ExecDirEnv: when set, each `exec` session is held open: it creates
//     DIR/session-N.open (N = 1, 2, … in order of arrival) holding its command
//     and process ID, waits until DIR/session-N.exit exists, exits with the
//     number written in it (empty: 0), and creates DIR/session-N.closed
//     holding that status. A session whose container stops meanwhile ends
//     with 137. HoldSessions drives this protocol, the same as the fake of
//     Apple's container CLI (internal/fakes/container).
//
// From another package's tests: register the fakes in TestMain with
// fakebin.Main, call Use(t, world) in each test, and HoldSessions to keep
// shells attached and end them one by one.
//
// One behaviour of the image claudecontainer runs is modelled: its default
// command is an interactive shell, so a container run without both -i and -t
// and without a command of its own exits at once.
//
// The fakes are the test binary; built with -race, each call would sleep a
// second on exit, so a TestMain should add atexit_sleep_ms=0 to GORACE
// before fakebin.Main, as this package's tests do.
package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
)

// Environment variables that steer the fakes.
const (
	StateEnv    = "FAKEOCI_STATE"
	FailEnv     = "FAKEOCI_FAIL"
	ExecCodeEnv = "FAKEOCI_EXEC_CODE"
	ExecDirEnv  = "FAKEOCI_EXEC_DIR"
)

// World is everything a fake runtime knows.
type World struct {
	// Rootless makes `info` report a rootless runtime.
	Rootless bool `json:"rootless,omitempty"`
	// DaemonDown makes docker fail every command that needs its daemon, as it
	// does when the daemon is stopped.
	DaemonDown bool `json:"daemonDown,omitempty"`
	// Version, when set, is the release the fake reports instead of podman
	// 5.4.2 or docker 28.2.2, in `--version`, `version` and `info`.
	Version string `json:"version,omitempty"`
	// NetworkBackend, when set, is what podman's `info` reports instead of
	// "netavark"; "-" leaves the key out, as podman 3 does.
	NetworkBackend string      `json:"networkBackend,omitempty"`
	Networks       []Network   `json:"networks,omitempty"`
	Containers     []Container `json:"containers,omitempty"`
	// Images are references in local storage, such as "claudepine:latest".
	Images []string `json:"images,omitempty"`
	// Volumes are the named volumes, created by `run` when missing.
	Volumes []string `json:"volumes,omitempty"`
}

// Network is one network. Fields left empty are filled in the way the real
// runtime would (an ID from the name, the interface podmanN or br-<ID>, the
// gateway as the subnet's first host) when it is printed.
type Network struct {
	Name      string `json:"name"`
	ID        string `json:"id,omitempty"`
	Driver    string `json:"driver,omitempty"` // default "bridge"
	Interface string `json:"interface,omitempty"`
	Subnet    string `json:"subnet,omitempty"` // IPv4
	Gateway   string `json:"gateway,omitempty"`
	Subnet6   string `json:"subnet6,omitempty"`
	Gateway6  string `json:"gateway6,omitempty"`
	Internal  bool   `json:"internal,omitempty"`
	// Raw, when set, is printed by `network inspect` as the network's object
	// instead of one built from the fields above: for malformed output.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// Container is one container.
type Container struct {
	Name     string   `json:"name"`
	ID       string   `json:"id,omitempty"`
	Image    string   `json:"image"`
	State    string   `json:"state"` // running, exited, created, paused, …
	Networks []string `json:"networks,omitempty"`
	// Args are the arguments of the `run` that created it.
	Args []string `json:"args,omitempty"`
	// Remove is set by `run --rm`: stopping the container deletes it.
	Remove bool `json:"remove,omitempty"`
}

const stateFile = "state.json"

// Load reads the world from dir.
func Load(dir string) (World, error) {
	var w World
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return w, err
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return w, fmt.Errorf("fake state %s: %w", filepath.Join(dir, stateFile), err)
	}
	return w, nil
}

// Save writes the world to dir.
func Save(dir string, w World) error {
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, stateFile), append(b, '\n'), 0o644)
}

// Container returns the named container.
func (w *World) Container(name string) (*Container, bool) {
	for i := range w.Containers {
		if w.Containers[i].Name == name || len(name) >= 12 && strings.HasPrefix(w.Containers[i].ID, name) {
			return &w.Containers[i], true
		}
	}
	return nil, false
}

// remove deletes the named container.
func (w *World) remove(name string) {
	w.Containers = slices.DeleteFunc(w.Containers, func(c Container) bool { return c.Name == name })
}

func (w *World) hasNetwork(name string) bool {
	return slices.ContainsFunc(w.Networks, func(n Network) bool { return n.Name == name })
}
