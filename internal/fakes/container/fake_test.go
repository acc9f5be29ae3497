package container_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	"github.com/VerilyPete/claudecontainer/internal/fakes/container"
)

func TestMain(m *testing.M) {
	fakebin.Main(m, map[string]func() int{"container": container.Main, "ifconfig": container.Ifconfig})
}

// host is one emulated Mac: a state directory and the knobs for it.
type host struct {
	t   *testing.T
	env []string
}

func newHost(t *testing.T, env ...string) *host {
	t.Helper()
	return &host{t: t, env: append([]string{container.EnvState + "=" + t.TempDir()}, env...)}
}

// with returns a copy of h with more knobs set.
func (h *host) with(env ...string) *host {
	return &host{t: h.t, env: append(append([]string(nil), h.env...), env...)}
}

type result struct {
	stdout, stderr string
	code           int
}

func (h *host) run(name string, args ...string) result {
	h.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), h.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs `container args…` and fails the test unless it exits 0.
func (h *host) ok(args ...string) string {
	h.t.Helper()
	r := h.run("container", args...)
	if r.code != 0 {
		h.t.Fatalf("container %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "engine", "apple", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNetworkListPrintsTheReferenceFixturesByteForByte(t *testing.T) {
	for _, version := range []string{"1.0.0", "1.2.2", "1.4.1"} {
		t.Run(version, func(t *testing.T) {
			h := newHost(t, container.EnvVersion+"="+version)
			h.with(container.EnvNow+"=2026-07-21T13:40:02Z").ok("network", "list", "--format", "json")
			h.with(container.EnvNow+"=2026-07-21T13:41:10Z").ok("network", "create", "--subnet", "10.77.0.0/24", "devnet")
			got := h.ok("network", "list", "--format", "json")
			want := fixture(t, "networks-1.2.2.json")
			if version == "1.4.1" {
				// 1.4.1 no longer escapes '/' (apple/container PR #2205).
				want = strings.ReplaceAll(want, `\/`, "/")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("network list mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// keyOrder maps each object's path in a JSON document to its keys, in the
// order they appear.
func keyOrder(t *testing.T, doc string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(doc))
	var read func(path string) error
	read = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{':
				out[path] = []string{}
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return err
					}
					key := k.(string)
					out[path] = append(out[path], key)
					if err := read(path + "." + key); err != nil {
						return err
					}
				}
				_, err = dec.Token()
				return err
			case '[':
				for i := 0; dec.More(); i++ {
					if err := read(fmt.Sprintf("%s[%d]", path, i)); err != nil {
						return err
					}
				}
				_, err = dec.Token()
				return err
			}
		}
		return nil
	}
	if err := read(""); err != nil {
		t.Fatalf("reading %q: %v", doc, err)
	}
	return out
}

func TestListsHaveTheReferenceKeysInTheReferenceOrder(t *testing.T) {
	bind := t.TempDir()
	tests := []struct {
		name, version, fixture string
		setup                  func(h *host)
		list                   []string
	}{
		{"containers 1.2.2", "1.2.2", "containers-1.2.2.json", func(h *host) {
			h.ok("run", "-d", "--name", "web", "-v", bind+":/src", "nginx", "nginx", "-g", "daemon off;")
			h.ok("create", "--name", "old", "-t", "alpine")
		}, []string{"ls", "--all", "--format", "json"}},
		{"images 1.2.2", "1.2.2", "images-1.2.2.json", func(h *host) {}, []string{"image", "list", "--format", "json"}},
		{"status 1.2.2", "1.2.2", "status-1.2.2-running.json", func(h *host) {}, []string{"system", "status", "--format", "json"}},
		{"status 1.2.2 down", "1.2.2", "status-1.2.2-down.json", func(h *host) { h.ok("system", "stop") }, []string{"system", "status", "--format", "json"}},
		{"status 1.4.1", "1.4.1", "status-1.4.1-running.json", func(h *host) {}, []string{"system", "status", "--format", "json"}},
		{"status 1.4.1 down", "1.4.1", "status-1.4.1-unregistered.json", func(h *host) { h.ok("system", "stop") }, []string{"system", "status", "--format", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := fixture(t, tt.fixture)
			var items []any
			json.Unmarshal([]byte(want), &items)
			images := "nginx,alpine"
			if len(items) == 1 && strings.HasPrefix(tt.fixture, "images") {
				images = "alpine"
			}
			h := newHost(t, container.EnvVersion+"="+tt.version, container.EnvImages+"="+images)
			tt.setup(h)
			r := h.run("container", tt.list...)
			if diff := cmp.Diff(keyOrder(t, want), keyOrder(t, r.stdout)); diff != "" {
				t.Errorf("keys mismatch (-fixture +fake):\n%s\nfake printed: %s", diff, r.stdout)
			}
			if strings.Contains(want, `\/`) && !strings.Contains(r.stdout, `\/`) {
				t.Errorf("fake does not escape slashes: %s", r.stdout)
			}
		})
	}
}

func TestTheFakeFailsLikeTheRealCLI(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		args     []string
		code     int
		inStderr string
	}{
		{"an unknown command", nil, []string{"frobnicate"}, 64, pluginNotFound("frobnicate")},
		{"network commands on macOS 15", []string{container.EnvMacOS + "=15"}, []string{"network", "list", "--format", "json"}, 64, pluginNotFound("network")},
		{"an invalid subnet", nil, []string{"network", "create", "--subnet", "10.9.0.0/33", "x"}, 64, "is invalid for '--subnet <subnet>'"},
		{"an unknown option", nil, []string{"network", "create", "--frob", "x"}, 64, "Unknown option '--frob'"},
		{"any command while the service is down", []string{container.EnvService + "=not running"}, []string{"ls", "--all"}, 1, "Ensure container system service has been started with `container system start`."},
		{"exec in a missing container", nil, []string{"exec", "-it", "ghost", "sh"}, 1, "get failed: container ghost not found"},
		{"an injected failure", []string{container.EnvFail + "=network create"}, []string{"network", "create", "x"}, 1, "injected failure of `container network create`"},
		{"an injected failure with a code", []string{container.EnvFail + "=run:125"}, []string{"run", "-d", "alpine"}, 125, "injected failure"},
		{"a missing image", nil, []string{"run", "-d", "--name", "xx", "nope"}, 1, "docker.io/library/nope:latest"},
		{"a non-default network on macOS 15", []string{container.EnvMacOS + "=15", container.EnvImages + "=alpine"}, []string{"run", "-d", "--name", "xx", "--network", "claude", "alpine"}, 1, "non-default network configuration requires macOS 26 or newer"},
		{"a missing bind mount", []string{container.EnvImages + "=alpine"}, []string{"run", "-d", "--name", "xx", "-v", "/does/not/exist:/w", "alpine"}, 1, "path '/does/not/exist' does not exist"},
		{"a missing relative path", []string{container.EnvImages + "=alpine"}, []string{"run", "-d", "--name", "xx", "-v", "./x:/w", "alpine"}, 1, "path './x' does not exist"},
		{"a Dockerfile of 16 KiB", nil, []string{"build", "-t", "big", "-f", bigDockerfile(t), t.TempDir()}, 1, "the maximum is 16 KiB"},
		// A bare number is bytes; 4096 bytes are 0 whole MiB.
		{"a memory size without a unit", []string{container.EnvImages + "=alpine"}, []string{"run", "-d", "--name", "xx", "-m", "4096", "alpine"}, 1, `minimum memory amount allowed is 200 MiB (got 0 bytes)`},
		{"a memory size below 200 MiB", []string{container.EnvImages + "=alpine"}, []string{"run", "-d", "--name", "xx", "-m", "199m", "alpine"}, 1, `(got 208666624 bytes)`},
		{"a memory size that is not one", []string{container.EnvImages + "=alpine"}, []string{"run", "-d", "--name", "xx", "-m", "8x", "alpine"}, 1, "invalid size"},
		{"any command of a release before 1.0", []string{container.EnvVersion + "=0.12.3"}, []string{"list"}, 2, "answers only --version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newHost(t, tt.env...).run("container", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.inStderr) {
				t.Errorf("exit %d, stderr %q; want exit %d and stderr containing %q", r.code, r.stderr, tt.code, tt.inStderr)
			}
			if tt.code != 2 && !strings.HasPrefix(r.stderr, "Error: ") {
				t.Errorf("stderr %q does not start with \"Error: \"", r.stderr)
			}
		})
	}
}

func bigDockerfile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "Dockerfile")
	if err := os.WriteFile(p, []byte("FROM alpine\n"+strings.Repeat("# padding\n", 1700)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pluginNotFound is DefaultCommand's message for a missing plugin (1.0.0 to
// 1.2.2: Sources/ContainerCommands/DefaultCommand.swift), with the paths of
// an install under /usr/local.
func pluginNotFound(word string) string {
	return "Error: Plugin 'container-" + word + "' not found.\n\n" +
		"- If system services are not running, start them with: container system start\n" +
		"- If the plugin isn't installed, ensure it exists under:\n\n" +
		"Check to see that the plugin exists under:\n" +
		"  - /usr/local/libexec/container-plugins/" + word + "\n" +
		"  - /usr/local/libexec/container/plugins/" + word + "\n"
}

func TestMemorySizesAreReadAsTheCLIReadsThem(t *testing.T) {
	h := newHost(t, container.EnvImages+"=alpine")
	for size, want := range map[string]float64{"4096m": 4 << 30, "8g": 8 << 30, "1.5G": 3 << 29, "512MiB": 512 << 20, "209715200": 200 << 20} {
		name := "m" + strings.NewReplacer(".", "-").Replace(size)
		h.ok("run", "-d", "--name", name, "-m", size, "alpine", "sleep", "9")
		var items []struct {
			ID            string
			Configuration struct {
				Resources struct{ MemoryInBytes float64 }
			}
		}
		if err := json.Unmarshal([]byte(h.ok("ls", "--format", "json")), &items); err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if it.ID == name && it.Configuration.Resources.MemoryInBytes != want {
				t.Errorf("-m %s: memoryInBytes %v, want %v", size, it.Configuration.Resources.MemoryInBytes, want)
			}
		}
	}
}

func TestVersionPrintsTheReleaseLine(t *testing.T) {
	for _, v := range []string{"1.2.2", "1.2.2-35-g899081d", "0.12.3"} {
		got := newHost(t, container.EnvVersion+"="+v).ok("--version")
		if !strings.HasPrefix(got, "container CLI version "+v+" (build: release, commit: ") {
			t.Errorf("--version printed %q", got)
		}
	}
}

func TestSystemStatusAnswersByRelease(t *testing.T) {
	tests := []struct {
		version, service string
		args             []string
		code             int
		out              string
	}{
		{"1.2.2", "unregistered", []string{"system", "status"}, 1, "apiserver is not running and not registered with launchd\n"},
		{"1.2.2", "not running", []string{"system", "status"}, 1, "apiserver is not running\n"},
		{"1.2.2", "not running", []string{"system", "status", "--format", "json"}, 1, `"appRoot":"","installRoot":"","status":"not running"}`},
		{"1.2.2", "running", []string{"system", "status", "--format", "json"}, 0, `"appRoot":"\/Users\/me`},
		{"1.4.1", "running", []string{"system", "status", "--format", "json"}, 0, `"paths":{"appRoot":"/Users/me/Library/Application Support/com.apple.container/","installRoot":"/usr/local/"}`},
		{"1.4.1", "not running", []string{"system", "status", "--format", "json"}, 1, "{\"status\":\"not running\"}\n"},
	}
	for _, tt := range tests {
		r := newHost(t, container.EnvVersion+"="+tt.version, container.EnvService+"="+tt.service).run("container", tt.args...)
		if r.code != tt.code || !strings.Contains(r.stdout, tt.out) {
			t.Errorf("%s %v (%s): exit %d, stdout %q; want exit %d, stdout containing %q", tt.version, tt.args, tt.service, r.code, r.stdout, tt.code, tt.out)
		}
	}
}

func TestSystemStartPromptsForTheKernelUnlessToldWhatToDo(t *testing.T) {
	h := newHost(t, container.EnvService+"=unregistered", container.EnvKernel+"=missing")
	r := h.run("container", "system", "start")
	if r.code != 1 || !strings.Contains(r.stdout, "[Y/n]: ") || !strings.Contains(r.stderr, `Failed to read user input`) {
		t.Fatalf("system start without a kernel flag: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := h.run("container", "run", "-d", "alpine"); !strings.Contains(r.stderr, "default kernel not configured") {
		t.Errorf("run without a kernel: %q", r.stderr)
	}
	r = h.run("container", "system", "start", "--enable-kernel-install")
	if r.code != 0 || !strings.Contains(r.stdout, "Installing kernel...") {
		t.Fatalf("system start --enable-kernel-install: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := h.run("container", "system", "status"); r.code != 0 {
		t.Errorf("status after start: exit %d", r.code)
	}
}

func TestABareShellWithoutATerminalExitsAtOnce(t *testing.T) {
	h := newHost(t, container.EnvImages+"=alpine")
	h.ok("run", "-d", "--name", "shell", "alpine")
	h.ok("run", "-d", "--name", "tty", "-t", "alpine")
	h.ok("run", "-d", "--name", "idle", "alpine", "/bin/sh", "-c", "while :; do sleep 3600; done")
	got := h.ok("ls", "--all")
	for name, state := range map[string]string{"shell": "stopped", "tty": "running", "idle": "running"} {
		if !strings.Contains(got, fmt.Sprintf("%-16s%-40s%-6s%-6s%-9s", name, "docker.io/library/alpine:latest", "linux", "arm64", state)) {
			t.Errorf("container %s is not %s:\n%s", name, state, got)
		}
	}
	if r := h.run("container", "exec", "-it", "shell", "zsh"); r.code != 1 || !strings.Contains(r.stderr, "container shell is not running") {
		t.Errorf("exec in a stopped container: exit %d, %q", r.code, r.stderr)
	}
}

func TestIfconfigShowsABridgeWhileAContainerRunsOnTheNetwork(t *testing.T) {
	h := newHost(t, container.EnvImages+"=alpine")
	h.ok("network", "create", "--subnet", "192.168.218.0/24", "claude")
	if out := h.run("ifconfig").stdout; strings.Contains(out, "bridge") {
		t.Fatalf("a bridge before any container runs:\n%s", out)
	}
	h.ok("run", "-d", "--name", "aa", "--network", "claude", "alpine", "sleep", "60")
	out := h.run("ifconfig").stdout
	if !strings.Contains(out, "bridge100: flags=8a63<UP,BROADCAST,SMART,RUNNING,ALLMULTI,SIMPLEX,MULTICAST> mtu 1500\n") ||
		!strings.Contains(out, "\tinet 192.168.218.1 netmask 0xffffff00 broadcast 192.168.218.255\n") {
		t.Fatalf("no bridge for claude:\n%s", out)
	}
	if r := h.run("ifconfig", "bridge100"); r.code != 0 || !strings.HasPrefix(r.stdout, "bridge100:") {
		t.Errorf("ifconfig bridge100: exit %d, %q", r.code, r.stdout)
	}
	h.ok("stop", "aa")
	if out := h.run("ifconfig").stdout; strings.Contains(out, "bridge100") {
		t.Errorf("the bridge outlived the last container:\n%s", out)
	}
	if r := h.run("ifconfig", "bridge100"); r.code != 1 || r.stderr != "ifconfig: interface bridge100 does not exist\n" {
		t.Errorf("ifconfig of a missing interface: exit %d, %q", r.code, r.stderr)
	}
}

func TestNetworksGetTheSubnetAskedForOrTheNextFreeOne(t *testing.T) {
	h := newHost(t)
	h.ok("network", "create", "a")
	h.ok("network", "create", "--subnet", "10.9.0.0/24", "b")
	out := h.ok("network", "list", "--format", "json")
	for _, want := range []string{`"id":"a","status":{"ipv4Gateway":"192.168.65.1","ipv4Subnet":"192.168.65.0\/24"`, `"ipv4Subnet":"10.9.0.0\/24"`} {
		if !strings.Contains(out, want) {
			t.Errorf("network list lacks %s:\n%s", want, out)
		}
	}
	if r := h.run("container", "network", "create", "--subnet", "10.9.0.128/25", "c"); r.code != 1 || !strings.Contains(r.stderr, "overlaps an existing network") {
		t.Errorf("overlapping subnet: exit %d, %q", r.code, r.stderr)
	}
	if r := h.run("container", "network", "create", "a"); r.code != 1 || !strings.Contains(r.stderr, "network a already exists") {
		t.Errorf("duplicate network: exit %d, %q", r.code, r.stderr)
	}
	d := h.with(container.EnvDrift + "=1")
	d.ok("system", "stop")
	d.ok("system", "start")
	out = d.ok("network", "list", "--format", "json")
	if strings.Contains(out, "192.168.65.0") || !strings.Contains(out, `"ipv4Subnet":"10.9.0.0\/24"`) {
		t.Errorf("after a restart with drift, a should have moved and b stayed:\n%s", out)
	}
}

func TestBuildAddsTheTagAndStartsTheBuilder(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM alpine\nENTRYPOINT [\"/usr/local/bin/entrypoint.sh\"]\nCMD [\"/bin/zsh\"]\n"), 0o644)
	h.ok("build", "-t", "claudepine:latest", "--build-arg", "TZ=UTC", dir)
	out := h.ok("image", "list", "--format", "json")
	if !strings.Contains(out, `"name":"docker.io\/library\/claudepine:latest"`) {
		t.Errorf("image list lacks the build:\n%s", out)
	}
	if !strings.Contains(h.ok("ls"), "buildkit") {
		t.Error("the builder container does not run after a build")
	}
	// The image's CMD is a bare zsh: detached without a terminal it ends at once,
	// while the entrypoint execs an explicit command that keeps running.
	h.ok("run", "-d", "--name", "dflt", "claudepine:latest")
	h.ok("run", "-d", "--name", "kept", "claudepine:latest", "/bin/sh", "-c", "while :; do sleep 3600; done")
	ls := h.ok("ls")
	if strings.Contains(ls, "dflt") || !strings.Contains(ls, "kept") {
		t.Errorf("running containers:\n%s", ls)
	}
}

func TestExecSessionsStayOpenUntilReleased(t *testing.T) {
	sessions := container.HoldSessions(t)
	h := newHost(t, container.EnvImages+"=alpine")
	h.ok("run", "-d", "--name", "cc", "alpine", "sleep", "60")
	results := make(chan result, 2)
	for i := 1; i <= 2; i++ {
		go func() { results <- h.run("container", "exec", "-it", "cc", "/bin/zsh", "-l") }()
		if argv := sessions.WaitOpen(t, i); argv != "/bin/zsh -l" {
			t.Errorf("session %d runs %q", i, argv)
		}
	}
	if n := sessions.Open(); n != 2 {
		t.Errorf("Open() = %d, want 2", n)
	}
	sessions.End(t, 1, 3)
	if r := <-results; r.code != 3 {
		t.Errorf("first session ended with %d, want 3", r.code)
	}
	if code := sessions.WaitClosed(t, 1); code != 3 {
		t.Errorf("WaitClosed(1) = %d, want 3", code)
	}
	if n := sessions.Open(); n != 1 {
		t.Errorf("Open() after the first ended = %d, want 1", n)
	}
	h.ok("stop", "cc")
	if r := <-results; r.code != 137 {
		t.Errorf("session in a stopped container ended with %d, want 137", r.code)
	}
	if n := sessions.Open(); n != 0 {
		t.Errorf("Open() at the end = %d, want 0", n)
	}
}

func TestUseSetsTheStateDirectoryAndKnobs(t *testing.T) {
	dir := container.Use(t, container.EnvVersion+"=1.0.0", container.EnvImages+"=alpine")
	if os.Getenv(container.EnvState) != dir || os.Getenv(container.EnvVersion) != "1.0.0" {
		t.Fatalf("environment not set")
	}
	h := &host{t: t}
	if r := h.run("container", "--version"); !strings.Contains(r.stdout, "version 1.0.0 ") {
		t.Errorf("--version = %q", r.stdout)
	}
	h.ok("run", "-d", "--name", "uu", "alpine", "sleep", "9")
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		t.Errorf("no state in %s: %v", dir, err)
	}
}

func TestExecWithoutASessionDirectoryExitsWithTheCodeAsked(t *testing.T) {
	h := newHost(t, container.EnvImages+"=alpine", container.EnvExecExit+"=42")
	h.ok("run", "-d", "--name", "cc", "alpine", "sleep", "60")
	r := h.run("container", "exec", "-it", "cc", "ls", "-l")
	if r.code != 42 || r.stdout != "fake exec in cc: ls -l\n" {
		t.Errorf("exec: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestCallsAreRecordedInTheFakebinLog(t *testing.T) {
	calls := fakebin.NewLog(t)
	h := newHost(t)
	h.env = append(h.env, fakebin.LogEnv+"="+os.Getenv(fakebin.LogEnv))
	h.ok("network", "list", "--format", "json")
	h.run("ifconfig")
	want := []string{"container network list --format json", "ifconfig"}
	if diff := cmp.Diff(want, calls()); diff != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", diff)
	}
}
