// Package container is a fake of Apple's `container` command-line tool and
// of macOS `ifconfig`, for tests that run them through fakebin.
//
// It follows the apple/container sources of releases 1.0.0 to 1.2.2 and
// reproduces byte for byte the JSON of the reference fixtures for 1.2.2:
// compact lists with sorted keys, ISO 8601 dates and "\/" escaping. As
// release 1.4.1 it prints `system status` in that release's nested shape
// (apple/container PR #1769) and leaves '/' unescaped (PR #2205). A release
// before 1.0.0 answers `--version` only, so that the driver's refusal of it
// can be tested. It reproduces the CLI's exit codes (64 for an unknown
// command or option, 1 with "Error: …" on standard error for failures) and
// the error texts of the sources; texts the reference does not quote are
// close paraphrases, so callers should match substrings. `ifconfig` prints
// macOS's format, with one bridgeNNN per network that has a running
// container.
//
// State (service, networks, images, containers, bridges) is kept in
// $FAKE_CONTAINER_STATE/state.json, shared by every call of the fakes in a
// test. Knobs, all environment variables:
//
//	FAKE_CONTAINER_STATE    directory for the state (required)
//	FAKE_CONTAINER_VERSION  release to emulate, e.g. 1.0.0, 1.2.2 (default) or 1.4.1,
//	                        or a build between releases such as 1.2.2-35-g899081d
//	FAKE_CONTAINER_MACOS    "26" (default) or "15": on 15 `container network` is missing
//	                        (exit 64), only the default network exists (192.168.64.1/24, no IPv6)
//	FAKE_CONTAINER_FAIL     comma-separated commands that fail with exit 1, such as
//	                        "run,network create,system start"; "cmd:N" exits with N instead
//
// Read when the state is first created:
//
//	FAKE_CONTAINER_SERVICE  "running" (default), "not running" or "unregistered"
//	FAKE_CONTAINER_KERNEL   "installed" (default) or "missing": `system start` then prompts
//	                        [Y/n] unless given --enable-kernel-install or --disable-kernel-install
//	FAKE_CONTAINER_IMAGES   comma-separated images already pulled, e.g. "alpine:latest"
//
// Read at each call:
//
//	FAKE_CONTAINER_DRIFT          "1": `system start` moves networks created without
//	                              --subnet to the next free /24, as vmnet may after a restart
//	FAKE_CONTAINER_EXEC_EXIT      exit code of `exec` (and of a foreground `run`), default 0
//	FAKE_CONTAINER_EXEC_DIR       when set, each exec session is held open: it creates
//	                              DIR/session-N.open (N = 1, 2, … in order of arrival) holding
//	                              its argv, waits until DIR/session-N.exit exists, exits with
//	                              the number written in it (empty: 0), and creates
//	                              DIR/session-N.closed. A session whose container stops
//	                              meanwhile ends with 137.
//	FAKE_IFCONFIG_EN0             address/prefix of en0 (default 192.168.1.23/24)
//	FAKE_IFCONFIG_EXTRA           text appended to `ifconfig` output, verbatim
//	FAKE_CONTAINER_NOW            RFC 3339 time used for every date the fake records
//
// A container's command keeps it running until it is stopped, except a bare
// shell (sh, bash, zsh, …, no arguments) started without a terminal (-t),
// which reads end-of-file and exits at once, as the image's default
// `/bin/zsh` does in a detached container. Unlike the real CLI, `-it` does
// not need a terminal on standard input.
//
// From another package's tests: register the fakes in TestMain with
// fakebin.Main (see Use), call Use(t, knobs…) in each test, and use
// HoldSessions to keep exec sessions open and end them one by one.
package container

import (
	"cmp"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/fakebin"
)

// Environment variables that drive the fake.
const (
	EnvState    = "FAKE_CONTAINER_STATE"
	EnvVersion  = "FAKE_CONTAINER_VERSION"
	EnvMacOS    = "FAKE_CONTAINER_MACOS"
	EnvFail     = "FAKE_CONTAINER_FAIL"
	EnvService  = "FAKE_CONTAINER_SERVICE"
	EnvKernel   = "FAKE_CONTAINER_KERNEL"
	EnvImages   = "FAKE_CONTAINER_IMAGES"
	EnvDrift    = "FAKE_CONTAINER_DRIFT"
	EnvExecExit = "FAKE_CONTAINER_EXEC_EXIT"
	EnvExecDir  = "FAKE_CONTAINER_EXEC_DIR"
	EnvEn0      = "FAKE_IFCONFIG_EN0"
	EnvIfExtra  = "FAKE_IFCONFIG_EXTRA"
	EnvNow      = "FAKE_CONTAINER_NOW"
)

// now is the fake's clock: FAKE_CONTAINER_NOW (RFC 3339) when set, so that
// tests can reproduce the reference fixtures' dates, else the time of day.
func now() time.Time {
	if v := os.Getenv(EnvNow); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

// DefaultVersion is the release emulated when FAKE_CONTAINER_VERSION is unset.
const DefaultVersion = "1.2.2"

// Versions lists the releases whose output the fake reproduces.
var Versions = []string{"1.0.0", "1.2.2", "1.4.1"}

// ver is the emulated release.
type ver struct {
	n   [3]int // major, minor, patch
	raw string
}

var verRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(?:-.*)?$`)

func parseVer(s string) (ver, error) {
	m := verRE.FindStringSubmatch(s)
	if m == nil {
		return ver{}, fmt.Errorf("%s=%q: want a release such as 1.2.2", EnvVersion, s)
	}
	v := ver{raw: s}
	for i := range v.n {
		v.n[i], _ = strconv.Atoi(m[i+1])
	}
	return v, nil
}

func (v ver) atLeast(major, minor, patch int) bool {
	return slices.Compare(v.n[:], []int{major, minor, patch}) >= 0
}

// cli is one invocation of the fake.
type cli struct {
	v      ver
	macos  int
	stdout *os.File
	stderr *os.File
	stdin  *os.File
	dir    string
}

// exit is how a command ends: a code and, for failures, a message.
type exit struct {
	code int
	msg  string // printed as "Error: msg" on standard error when non-empty
}

func fail(format string, a ...any) *exit { return &exit{code: 1, msg: fmt.Sprintf(format, a...)} }

func usage(path, format string, a ...any) *exit {
	return &exit{code: 64, msg: fmt.Sprintf(format, a...) + "\nUsage: container " + path + " [<options>]\n  See 'container " + path + " --help' for more help."}
}

// newCLI reads the knobs that both fakes share: the release, the version
// of macOS and the state directory.
func newCLI() (*cli, error) {
	v, err := parseVer(cmp.Or(os.Getenv(EnvVersion), DefaultVersion))
	if err != nil {
		return nil, err
	}
	c := &cli{v: v, macos: 26, stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, dir: os.Getenv(EnvState)}
	if os.Getenv(EnvMacOS) == "15" {
		c.macos = 15
	}
	return c, nil
}

// Main runs the fake `container`. It records its argv (fakebin.Record)
// first, and returns the exit code.
func Main() int {
	fakebin.Record()
	c, err := newCLI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake container:", err)
		return 2
	}
	if c.dir == "" {
		fmt.Fprintf(os.Stderr, "fake container: %s is not set\n", EnvState)
		return 2
	}
	if !c.v.atLeast(1, 0, 0) && (len(os.Args) < 2 || os.Args[1] != "--version") {
		fmt.Fprintf(os.Stderr, "fake container: release %s answers only --version\n", c.v.raw)
		return 2
	}
	e := c.dispatch(os.Args[1:])
	if e == nil {
		return 0
	}
	if e.msg != "" {
		fmt.Fprintln(c.stderr, "Error: "+e.msg)
	}
	return e.code
}

// injected reports the failure FAKE_CONTAINER_FAIL asks for the command.
func injected(path string) *exit {
	for _, f := range strings.Split(os.Getenv(EnvFail), ",") {
		name, code, _ := strings.Cut(strings.TrimSpace(f), ":")
		if name == path {
			n, err := strconv.Atoi(code)
			if err != nil {
				n = 1 // no code, or not a number
			}
			return &exit{code: n, msg: "injected failure of `container " + path + "`"}
		}
	}
	return nil
}
