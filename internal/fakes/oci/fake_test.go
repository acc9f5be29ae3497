package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	"github.com/VerilyPete/claudecontainer/internal/fakes/oci"
)

func TestMain(m *testing.M) {
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	fakebin.Main(m, map[string]func() int{"podman": oci.PodmanMain, "docker": oci.DockerMain})
}

func setup(t *testing.T, w oci.World) string {
	t.Helper()
	return oci.Use(t, w)
}

// run runs a fake and returns its output and exit status.
func run(t *testing.T, program string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(program, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

var running = oci.World{
	Networks:   []oci.Network{{Name: "claude", Subnet: "192.168.218.0/24"}},
	Containers: []oci.Container{{Name: "claude-alpine", ID: "2222222222222222", Image: "claudepine:latest", State: "running", Networks: []string{"claude"}}},
	Images:     []string{"claudepine:latest"},
}

func TestHeldSessionsStayOpenUntilTheTestEndsThem(t *testing.T) {
	for _, program := range []string{"podman", "docker"} {
		t.Run(program, func(t *testing.T) {
			setup(t, running)
			sessions := oci.HoldSessions(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := func(argv ...string) chan error {
				cmd := exec.CommandContext(ctx, program, append([]string{"exec", "-it", "claude-alpine"}, argv...)...)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				return done
			}
			first := start("/bin/zsh")
			if got := sessions.WaitOpen(t, 1); got != "/bin/zsh" {
				t.Errorf("session 1 runs %q; want /bin/zsh", got)
			}
			second := start("/bin/zsh", "-l")
			if got := sessions.WaitOpen(t, 2); got != "/bin/zsh -l" {
				t.Errorf("session 2 runs %q; want /bin/zsh -l", got)
			}
			if n := sessions.Open(); n != 2 {
				t.Errorf("Open = %d; want 2", n)
			}
			select {
			case err := <-first:
				t.Fatalf("session 1 ended before the test ended it: %v", err)
			default:
			}
			sessions.End(t, 1, 7)
			if code := sessions.WaitClosed(t, 1); code != 7 {
				t.Errorf("session 1 closed with %d; want 7", code)
			}
			if err := <-first; exitStatus(err) != 7 {
				t.Errorf("session 1 exec ended with %v; want exit status 7", err)
			}
			if n := sessions.Open(); n != 1 {
				t.Errorf("Open = %d; want 1", n)
			}
			// Stopping the container ends the other shell, as it would.
			if _, stderr, code := run(t, program, "stop", "-t", "5", "claude-alpine"); code != 0 {
				t.Fatalf("stop: exit %d: %s", code, stderr)
			}
			if code := sessions.WaitClosed(t, 2); code != 137 {
				t.Errorf("session 2 closed with %d after the container stopped; want 137", code)
			}
			if err := <-second; exitStatus(err) != 137 {
				t.Errorf("session 2 exec ended with %v; want exit status 137", err)
			}
		})
	}
}

func TestExecWithoutHeldSessionsExitsWithTheChosenStatus(t *testing.T) {
	setup(t, running)
	t.Setenv(oci.ExecCodeEnv, "4")
	for _, program := range []string{"podman", "docker"} {
		if _, _, code := run(t, program, "exec", "-i", "-t", "claude-alpine", "/bin/zsh"); code != 4 {
			t.Errorf("%s exec: exit %d; want 4", program, code)
		}
		if _, _, code := run(t, program, "exec", "-i", "-t", "missing", "/bin/zsh"); code == 0 || code == 4 {
			t.Errorf("%s exec in a missing container: exit %d; want the runtime's failure", program, code)
		}
	}
}

func exitStatus(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err == nil {
		return 0
	}
	return -1
}

func TestFailMakesTheNamedCommandsFail(t *testing.T) {
	setup(t, running)
	t.Setenv(oci.FailEnv, "network inspect, run:3")
	if _, stderr, code := run(t, "podman", "network", "inspect", "claude"); code != 125 || !strings.Contains(stderr, "injected failure") {
		t.Errorf("podman network inspect: exit %d, %q; want 125 and the injected failure", code, stderr)
	}
	if _, _, code := run(t, "docker", "network", "inspect", "claude"); code != 1 {
		t.Errorf("docker network inspect: exit %d; want 1", code)
	}
	if _, _, code := run(t, "docker", "run", "-d", "--name", "x", "claudepine:latest"); code != 3 {
		t.Errorf("docker run: exit %d; want 3", code)
	}
	if _, _, code := run(t, "podman", "network", "create", "other"); code != 0 {
		t.Errorf("podman network create (not named): exit %d; want 0", code)
	}
}

func TestUnknownOptionsAreRefusedLikeTheRealPrograms(t *testing.T) {
	setup(t, running)
	for _, program := range []string{"podman", "docker"} {
		_, stderr, code := run(t, program, "run", "-d", "--privileged", "--name", "x", "claudepine:latest")
		if code != 125 || !strings.Contains(stderr, "unknown flag: --privileged") {
			t.Errorf("%s run --privileged: exit %d, %q; want 125 and unknown flag", program, code, stderr)
		}
		if _, _, code := run(t, program, "frobnicate"); code == 0 {
			t.Errorf("%s frobnicate succeeded", program)
		}
	}
	if _, _, code := run(t, "docker", "image", "exists", "claudepine:latest"); code == 0 {
		t.Error("docker image exists succeeded; docker has no such command")
	}
}

func TestRunWithoutATerminalLeavesTheShellImageExited(t *testing.T) {
	dir := setup(t, oci.World{Networks: running.Networks, Images: running.Images})
	if _, stderr, code := run(t, "podman", "run", "-d", "--name", "bare", "--network", "claude", "claudepine:latest"); code != 0 {
		t.Fatalf("run: exit %d: %s", code, stderr)
	}
	if _, stderr, code := run(t, "podman", "run", "-dit", "--name", "tty", "--network", "claude", "claudepine:latest"); code != 0 {
		t.Fatalf("run -dit: exit %d: %s", code, stderr)
	}
	if _, stderr, code := run(t, "podman", "run", "-d", "--name", "cmd", "--network", "claude", "claudepine:latest", "sleep", "infinity"); code != 0 {
		t.Fatalf("run with a command: exit %d: %s", code, stderr)
	}
	w, err := oci.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range w.Containers {
		got[c.Name] = c.State
	}
	if diff := cmp.Diff(map[string]string{"bare": "exited", "tty": "running", "cmd": "running"}, got); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
}

func TestDockerWithItsDaemonDownFailsLikeDocker(t *testing.T) {
	setup(t, oci.World{DaemonDown: true})
	_, stderr, code := run(t, "docker", "ps", "-a", "--format", "{{json .}}")
	if code != 1 || !strings.Contains(stderr, "Is the docker daemon running?") {
		t.Errorf("docker ps: exit %d, %q", code, stderr)
	}
	stdout, _, code := run(t, "docker", "version", "--format", "{{json .}}")
	var v struct {
		Client struct{ Version string }
		Server *struct{}
	}
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || code != 1 || v.Client.Version == "" || v.Server != nil {
		t.Errorf("docker version: exit %d, %q (%v); want the client part and exit 1", code, stdout, err)
	}
	if out, _, code := run(t, "docker", "--version"); code != 0 || !strings.HasPrefix(out, "Docker version ") {
		t.Errorf("docker --version: exit %d, %q", code, out)
	}
}

func TestNetworkInspectPrintsEachProgramsShape(t *testing.T) {
	setup(t, running)
	out, _, code := run(t, "podman", "network", "inspect", "claude")
	var p []map[string]any
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != 0 || len(p) != 1 {
		t.Fatalf("podman network inspect: exit %d, %v: %s", code, err, out)
	}
	for _, key := range []string{"name", "id", "driver", "network_interface", "subnets", "ipv6_enabled", "internal", "dns_enabled"} {
		if _, ok := p[0][key]; !ok {
			t.Errorf("podman's network object has no %q key", key)
		}
	}
	out, _, code = run(t, "docker", "network", "inspect", "claude")
	var d []map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != 0 || len(d) != 1 {
		t.Fatalf("docker network inspect: exit %d, %v: %s", code, err, out)
	}
	for _, key := range []string{"Name", "Id", "Driver", "EnableIPv6", "IPAM", "Options", "Containers"} {
		if _, ok := d[0][key]; !ok {
			t.Errorf("docker's network object has no %q key", key)
		}
	}
	if out, stderr, code := run(t, "docker", "network", "inspect", "missing"); code != 1 || strings.TrimSpace(out) != "[]" || !strings.Contains(stderr, "network missing not found") {
		t.Errorf("docker network inspect missing: exit %d, %q, %q", code, out, stderr)
	}
	if _, stderr, code := run(t, "podman", "network", "inspect", "missing"); code != 125 || !strings.Contains(stderr, "network not found") {
		t.Errorf("podman network inspect missing: exit %d, %q", code, stderr)
	}
}
