package oci_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	dir := t.TempDir()
	t.Setenv(oci.StateEnv, dir)
	t.Setenv(oci.FailEnv, "")
	t.Setenv(oci.ExecWaitEnv, "")
	t.Setenv(oci.ExecCodeEnv, "")
	t.Setenv(oci.ExecOpenEnv, "")
	if err := oci.Save(dir, w); err != nil {
		t.Fatal(err)
	}
	return dir
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

func TestExecWaitsForTheGateFileAndExitsWithTheChosenStatus(t *testing.T) {
	for _, program := range []string{"podman", "docker"} {
		t.Run(program, func(t *testing.T) {
			setup(t, running)
			gate := filepath.Join(t.TempDir(), "gate")
			open := t.TempDir()
			t.Setenv(oci.ExecWaitEnv, gate)
			t.Setenv(oci.ExecCodeEnv, "7")
			t.Setenv(oci.ExecOpenEnv, open)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, program, "exec", "-it", "claude-alpine", "/bin/zsh")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			sessions := func() []string {
				t.Helper()
				es, err := os.ReadDir(open)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, e := range es {
					names = append(names, e.Name())
				}
				return names
			}
			for len(sessions()) == 0 {
				select {
				case err := <-done:
					t.Fatalf("exec returned before the gate opened: %v", err)
				case <-time.After(5 * time.Millisecond):
				}
			}
			if want := []string{strconv.Itoa(cmd.Process.Pid)}; !cmp.Equal(sessions(), want) {
				t.Errorf("open sessions = %q; want %q", sessions(), want)
			}
			// While the gate is closed, the session stays open: a second
			// command sees the container running and can stop it.
			if _, _, code := run(t, program, "stop", "-t", "5", "claude-alpine"); code != 0 {
				t.Fatalf("stop while a session is open exited %d", code)
			}
			select {
			case err := <-done:
				t.Fatalf("exec returned before the gate opened: %v", err)
			default:
			}
			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			err := <-done
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
				t.Errorf("exec ended with %v; want exit status 7", err)
			}
			if got := sessions(); len(got) != 0 {
				t.Errorf("open sessions after exec ended = %q; want none", got)
			}
		})
	}
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
