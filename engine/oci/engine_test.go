package oci_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/engine/oci"
	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	fakeoci "github.com/VerilyPete/claudecontainer/internal/fakes/oci"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

func TestMain(m *testing.M) {
	// A program built with -race sleeps a second on exit unless told not
	// to; the fakes are this test binary.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	fakebin.Main(m, map[string]func() int{"podman": fakeoci.PodmanMain, "docker": fakeoci.DockerMain})
}

var programs = []string{oci.Podman, oci.Docker}

// setup points the fakes at a fresh world and returns the engine for
// program and a reader of the calls made.
func setup(t *testing.T, program string, w fakeoci.World) (*oci.Engine, func() []string, string) {
	t.Helper()
	dir := fakeoci.Use(t, w)
	calls := fakebin.NewLog(t)
	e := oci.New(proc.Exec{}, program)
	// The fakes run as whoever runs the tests, never through sudo.
	e.Privileged = false
	e.StdinIsTerminal = func() bool { return true }
	return e, calls, dir
}

func world(t *testing.T, dir string) fakeoci.World {
	t.Helper()
	w, err := fakeoci.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var claudeNet = fakeoci.Network{Name: "claude", Subnet: "192.168.218.0/24"}

func TestNetworkReturnsTheBridgeAndItsAddresses(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, calls, _ := setup(t, program, fakeoci.World{Networks: []fakeoci.Network{
				{Name: "other", Subnet: "10.89.5.0/24"},
				{Name: "claude", ID: "5c1a9f0e3b7d4c2a8e6f1b0d9c8a7e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a", Subnet: "192.168.218.0/24", Subnet6: "fd00:218::/64"},
			}})
			got, err := e.Network(context.Background(), "claude")
			if err != nil {
				t.Fatal(err)
			}
			want := policy.Network{
				Name: "claude", IPv4: netip.MustParsePrefix("192.168.218.0/24"), Gateway4: netip.MustParseAddr("192.168.218.1"),
				IPv6: netip.MustParsePrefix("fd00:218::/64"), Interface: map[string]string{"podman": "podman2", "docker": "br-5c1a9f0e3b7d"}[program],
			}
			if got != want {
				t.Errorf("Network = %+v; want %+v", got, want)
			}
			if diff := cmp.Diff([]string{program + " network inspect claude"}, calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNetworkThatDoesNotExistWrapsErrNotFound(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{})
			_, err := e.Network(context.Background(), "claude")
			if !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("Network error %v does not wrap engine.ErrNotFound", err)
			}
			if !strings.Contains(err.Error(), `network "claude"`) {
				t.Errorf("error %q does not name the network", err)
			}
		})
	}
}

func TestNetworkFailureOtherThanMissingIsNotErrNotFound(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{Networks: []fakeoci.Network{claudeNet}})
			t.Setenv(fakeoci.FailEnv, "network inspect")
			_, err := e.Network(context.Background(), "claude")
			if err == nil || errors.Is(err, engine.ErrNotFound) {
				t.Errorf("Network error = %v; want a failure that is not ErrNotFound", err)
			}
		})
	}
}

func TestNetworkRefusesAPublicSubnetFromTheRuntime(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{Networks: []fakeoci.Network{{Name: "claude", Subnet: "8.8.8.0/24"}}})
			_, err := e.Network(context.Background(), "claude")
			if err == nil || !strings.Contains(err.Error(), "not inside a private range") {
				t.Errorf("Network error = %v; want a refusal of the public subnet", err)
			}
		})
	}
}

func TestCreateNetworkCreatesABridgeWithTheSubnet(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, calls, _ := setup(t, program, fakeoci.World{})
			ctx := context.Background()
			subnet := netip.MustParsePrefix("192.168.218.0/24")
			if err := e.CreateNetwork(ctx, "claude", subnet); err != nil {
				t.Fatal(err)
			}
			n, err := e.Network(ctx, "claude")
			if err != nil {
				t.Fatal(err)
			}
			if n.IPv4 != subnet || n.Gateway4 != netip.MustParseAddr("192.168.218.1") || n.IPv6.IsValid() || n.Interface == "" {
				t.Errorf("created network = %+v", n)
			}
			want := []string{
				program + " network create --driver bridge --subnet 192.168.218.0/24 claude",
				program + " network inspect claude",
			}
			if diff := cmp.Diff(want, calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if err := e.CreateNetwork(ctx, "claude", subnet); err == nil || !strings.Contains(err.Error(), "already") {
				t.Errorf("creating the network again: %v; want the runtime's refusal", err)
			}
		})
	}
}

func TestCreateNetworkPassesOnTheRuntimesRefusal(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{Networks: []fakeoci.Network{{Name: "other", Subnet: "192.168.0.0/16"}}})
			err := e.CreateNetwork(context.Background(), "claude", netip.MustParsePrefix("192.168.218.0/24"))
			if proc.ExitCode(err) <= 0 || !strings.Contains(strings.ToLower(err.Error()), "overlap") && !strings.Contains(err.Error(), "already used") {
				t.Errorf("CreateNetwork over a used subnet: %v; want the runtime's message", err)
			}
		})
	}
}

func TestCreateNetworkRefusesBadInputWithoutCallingTheRuntime(t *testing.T) {
	e, calls, _ := setup(t, oci.Podman, fakeoci.World{})
	for _, tc := range []struct {
		name   string
		subnet netip.Prefix
	}{
		{"claude", netip.MustParsePrefix("8.8.8.0/24")},
		{"claude", netip.MustParsePrefix("192.168.218.1/24")},
		{"claude", netip.MustParsePrefix("fd00::/64")},
		{"claude", netip.Prefix{}},
		{"--internal", netip.MustParsePrefix("192.168.218.0/24")},
	} {
		if err := e.CreateNetwork(context.Background(), tc.name, tc.subnet); err == nil {
			t.Errorf("CreateNetwork(%q, %v) succeeded", tc.name, tc.subnet)
		}
	}
	if got := calls(); got != nil {
		t.Errorf("the runtime was called: %q", got)
	}
}

func TestImageExistsAsksLocalStorageOnly(t *testing.T) {
	want := map[string]string{
		"podman": "podman image exists claudepine:latest",
		"docker": "docker image inspect --format {{.Id}} claudepine:latest",
	}
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, calls, _ := setup(t, program, fakeoci.World{Images: []string{"localhost/claudepine:latest"}})
			ctx := context.Background()
			if ok, err := e.ImageExists(ctx, "claudepine:latest"); err != nil || !ok {
				t.Errorf("ImageExists(present) = %t, %v; want true", ok, err)
			}
			if ok, err := e.ImageExists(ctx, "missing:1"); err != nil || ok {
				t.Errorf("ImageExists(missing) = %t, %v; want false", ok, err)
			}
			if got := calls()[0]; got != want[program] {
				t.Errorf("call = %q; want %q", got, want[program])
			}
			t.Setenv(fakeoci.FailEnv, "image exists,image inspect")
			if ok, err := e.ImageExists(ctx, "claudepine:latest"); err == nil {
				t.Errorf("ImageExists with a failing runtime = %t, nil; want an error", ok)
			}
		})
	}
}

func TestBuildPassesTagFileArgsAndContext(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, calls, _ := setup(t, program, fakeoci.World{})
			ctxDir := t.TempDir()
			file := filepath.Join(ctxDir, "Dockerfile")
			if err := os.WriteFile(file, []byte("FROM scratch\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := e.Build(context.Background(), engine.BuildSpec{Context: ctxDir, Dockerfile: file, Tag: "claudepine:latest", Args: map[string]string{"USER_UID": "1000"}})
			if err != nil {
				t.Fatal(err)
			}
			want := program + " build -t claudepine:latest -f " + file + " --build-arg USER_UID=1000 " + ctxDir
			if diff := cmp.Diff([]string{want}, calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if ok, err := e.ImageExists(context.Background(), "claudepine:latest"); err != nil || !ok {
				t.Errorf("after Build, ImageExists = %t, %v", ok, err)
			}
			err = e.Build(context.Background(), engine.BuildSpec{Context: filepath.Join(ctxDir, "missing"), Tag: "x"})
			if proc.ExitCode(err) <= 0 {
				t.Errorf("Build of a missing context: %v; want the runtime's exit status", err)
			}
		})
	}
}

func runSpec(t *testing.T) engine.RunSpec {
	return engine.RunSpec{
		Name:    "claude-alpine",
		Image:   "claudepine:latest",
		Network: "claude",
		DNS:     []netip.Addr{netip.MustParseAddr("192.168.218.1")},
		Volumes: []engine.Volume{
			{Source: "alpine-home", Target: "/home/claude"},
			{Source: "claude-history", Target: "/commandhistory"},
			{Source: t.TempDir(), Target: "/workspace"},
		},
		Memory: "8g",
		CPUs:   4,
	}
}

func TestContainerLifecycleFromAbsentToRunningToStopped(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, calls, dir := setup(t, program, fakeoci.World{Networks: []fakeoci.Network{claudeNet}, Images: []string{"claudepine:latest"}})
			ctx := context.Background()
			r := runSpec(t)
			ws := r.Volumes[2].Source
			step := func(what string, want engine.State) {
				t.Helper()
				got, err := e.State(ctx, "claude-alpine")
				if err != nil || got != want {
					t.Fatalf("%s: State = %q, %v; want %q", what, got, err, want)
				}
			}
			step("before Create", engine.Absent)
			if err := e.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			step("after Create", engine.Running)
			if err := e.Stop(ctx, "claude-alpine"); err != nil {
				t.Fatal(err)
			}
			step("after Stop", engine.Stopped)
			if err := e.Start(ctx, "claude-alpine"); err != nil {
				t.Fatal(err)
			}
			step("after Start", engine.Running)

			ps := program + " ps -a --format json"
			info := []string{"podman info --format json"}
			if program == "docker" {
				ps = "docker ps -a --format {{json .}}"
				info = nil
			}
			want := []string{ps}
			want = append(want, info...)
			want = append(want,
				program+" run -d --name claude-alpine --network claude --dns 192.168.218.1"+
					" -v alpine-home:/home/claude -v claude-history:/commandhistory -v "+ws+":/workspace --memory 8g --cpus 4 claudepine:latest "+
					strings.Join(engine.KeepAlive, " "),
				ps,
				program+" stop -t 5 claude-alpine",
				ps,
				program+" start claude-alpine",
				ps,
			)
			if diff := cmp.Diff(want, calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if vs := world(t, dir).Volumes; !cmp.Equal(vs, []string{"alpine-home", "claude-history"}) {
				t.Errorf("named volumes after Create = %q", vs)
			}
		})
	}
}

func TestAContainerCreatedWithAutoRemoveIsGoneOnceStoppedAndRemoveDeletesAStoppedOne(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, calls, _ := setup(t, program, fakeoci.World{Networks: []fakeoci.Network{claudeNet}, Images: []string{"claudepine:latest"}})
			ctx := context.Background()
			if err := e.Create(ctx, engine.RunSpec{Name: "gate", Image: "claudepine:latest", Network: "claude", AutoRemove: true}); err != nil {
				t.Fatal(err)
			}
			if err := e.Stop(ctx, "gate"); err != nil {
				t.Fatal(err)
			}
			if st, err := e.State(ctx, "gate"); err != nil || st != engine.Absent {
				t.Errorf("after Stop: State = %q, %v; want absent (--rm)", st, err)
			}
			if !slices.ContainsFunc(calls(), func(c string) bool { return strings.HasPrefix(c, program+" run -d --name gate --network claude --rm ") }) {
				t.Errorf("no run with --rm: %q", calls())
			}
			if err := e.Create(ctx, engine.RunSpec{Name: "kept", Image: "claudepine:latest", Network: "claude"}); err != nil {
				t.Fatal(err)
			}
			if err := e.Stop(ctx, "kept"); err != nil {
				t.Fatal(err)
			}
			if err := e.Remove(ctx, "kept"); err != nil {
				t.Fatal(err)
			}
			if st, err := e.State(ctx, "kept"); err != nil || st != engine.Absent {
				t.Errorf("after Remove: State = %q, %v; want absent", st, err)
			}
			if err := e.Remove(ctx, "kept"); !errors.Is(err, engine.ErrNotFound) {
				t.Errorf("Remove of a missing container: %v; want engine.ErrNotFound", err)
			}
		})
	}
}

func TestCreateMapsTheWorkspaceOwnerOnlyForRootlessPodman(t *testing.T) {
	for _, tc := range []struct {
		program  string
		rootless bool
		want     bool
	}{
		{"podman", true, true},
		{"podman", false, false},
		{"docker", true, false},
		{"docker", false, false},
	} {
		t.Run(tc.program, func(t *testing.T) {
			e, _, dir := setup(t, tc.program, fakeoci.World{Rootless: tc.rootless, Networks: []fakeoci.Network{claudeNet}, Images: []string{"claudepine:latest"}})
			if err := e.Create(context.Background(), runSpec(t)); err != nil {
				t.Fatal(err)
			}
			c, ok := func() (fakeoci.Container, bool) {
				w := world(t, dir)
				c, ok := w.Container("claude-alpine")
				if !ok {
					return fakeoci.Container{}, false
				}
				return *c, true
			}()
			if !ok {
				t.Fatal("no container after Create")
			}
			got := strings.Contains(strings.Join(c.Args, " "), "--userns=keep-id")
			if got != tc.want {
				t.Errorf("rootless=%t: --userns=keep-id passed = %t; want %t (args %q)", tc.rootless, got, tc.want, c.Args)
			}
		})
	}
}

func TestCreateFailsClearlyWhenTheNetworkOrImageIsMissing(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{Images: []string{"claudepine:latest"}})
			err := e.Create(context.Background(), runSpec(t))
			if proc.ExitCode(err) <= 0 || !strings.Contains(err.Error(), "claude") || !strings.Contains(err.Error(), "not found") {
				t.Errorf("Create without the network: %v", err)
			}
			e, _, _ = setup(t, program, fakeoci.World{Networks: []fakeoci.Network{claudeNet}})
			if err := e.Create(context.Background(), runSpec(t)); proc.ExitCode(err) <= 0 {
				t.Errorf("Create without the image: %v", err)
			}
			e, calls, _ := setup(t, program, fakeoci.World{Networks: []fakeoci.Network{claudeNet}, Images: []string{"claudepine:latest"}})
			r := runSpec(t)
			r.Volumes[2].Source = filepath.Join(r.Volumes[2].Source, "missing")
			if err := e.Create(context.Background(), r); err == nil || proc.ExitCode(err) > 0 {
				t.Errorf("Create with a missing workspace: %v; want a refusal before run", err)
			}
			for _, c := range calls() {
				if strings.Contains(c, " run ") {
					t.Errorf("run was called with a missing workspace: %s", c)
				}
			}
		})
	}
}

func TestStateTellsTheExactNameFromSimilarOnes(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{Containers: []fakeoci.Container{
				{Name: "claude-alpine-2", ID: "1111111111111111", Image: "x", State: "running", Networks: []string{"claude"}},
				{Name: "claude-alpine", ID: "2222222222222222", Image: "x", State: "exited", Networks: []string{"claude"}},
			}})
			got, err := e.State(context.Background(), "claude-alpine")
			if err != nil || got != engine.Stopped {
				t.Errorf("State = %q, %v; want stopped", got, err)
			}
			got, err = e.State(context.Background(), "claude")
			if err != nil || got != engine.Absent {
				t.Errorf("State of a prefix = %q, %v; want absent", got, err)
			}
		})
	}
}

func TestStateOfAPausedContainerSaysHowToResumeIt(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{Containers: []fakeoci.Container{
				{Name: "claude-alpine", ID: "2222222222222222", Image: "x", State: "paused", Networks: []string{"claude"}},
			}})
			_, err := e.State(context.Background(), "claude-alpine")
			if err == nil || !strings.Contains(err.Error(), program+" unpause claude-alpine") {
				t.Errorf("State of a paused container: %v", err)
			}
		})
	}
}

func TestRunningOnListsOnlyUpContainersOnTheNetwork(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, calls, _ := setup(t, program, fakeoci.World{Containers: []fakeoci.Container{
				{Name: "zeta", ID: "1111111111111111", Image: "x", State: "running", Networks: []string{"bridge", "claude"}},
				{Name: "claude-alpine", ID: "2222222222222222", Image: "x", State: "running", Networks: []string{"claude"}},
				{Name: "stopped", ID: "3333333333333333", Image: "x", State: "exited", Networks: []string{"claude"}},
				{Name: "elsewhere", ID: "4444444444444444", Image: "x", State: "running", Networks: []string{"claude2"}},
				{Name: "nonet", ID: "5555555555555555", Image: "x", State: "running"},
			}})
			got, err := e.RunningOn(context.Background(), "claude")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"claude-alpine", "zeta"}, got); diff != "" {
				t.Errorf("RunningOn (-want +got):\n%s", diff)
			}
			want := map[string]string{"podman": "podman ps --format json", "docker": "docker ps --format {{json .}}"}[program]
			if diff := cmp.Diff([]string{want}, calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			got, err = e.RunningOn(context.Background(), "empty")
			if err != nil || len(got) != 0 {
				t.Errorf("RunningOn(empty) = %q, %v; want none", got, err)
			}
		})
	}
}

func TestRunningOnCountsAPausedDockerContainer(t *testing.T) {
	e, _, _ := setup(t, oci.Docker, fakeoci.World{Containers: []fakeoci.Container{
		{Name: "claude-alpine", ID: "2222222222222222", Image: "x", State: "paused", Networks: []string{"claude"}},
	}})
	got, err := e.RunningOn(context.Background(), "claude")
	if err != nil || !cmp.Equal(got, []string{"claude-alpine"}) {
		t.Errorf("RunningOn = %q, %v; want the paused container, which can be resumed behind the firewall's back", got, err)
	}
}

func TestRunningOnFailsWhenTheRuntimeFails(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{})
			t.Setenv(fakeoci.FailEnv, "ps")
			if got, err := e.RunningOn(context.Background(), "claude"); err == nil {
				t.Errorf("RunningOn = %q, nil; want the failure", got)
			}
			if got, err := e.State(context.Background(), "claude-alpine"); err == nil {
				t.Errorf("State = %q, nil; want the failure", got)
			}
		})
	}
}

func TestStartAndStopOfAMissingContainerWrapErrNotFound(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{})
			ctx := context.Background()
			for what, err := range map[string]error{"Start": e.Start(ctx, "claude-alpine"), "Stop": e.Stop(ctx, "claude-alpine")} {
				if !errors.Is(err, engine.ErrNotFound) {
					t.Errorf("%s of a missing container: %v; want engine.ErrNotFound", what, err)
				}
			}
		})
	}
}

func TestExecPassesTheShellsExitStatusThrough(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, calls, _ := setup(t, program, fakeoci.World{Containers: []fakeoci.Container{
				{Name: "claude-alpine", ID: "2222222222222222", Image: "x", State: "running", Networks: []string{"claude"}},
				{Name: "stopped", ID: "3333333333333333", Image: "x", State: "exited", Networks: []string{"claude"}},
			}})
			ctx := context.Background()
			if err := e.Exec(ctx, "claude-alpine", "/bin/zsh"); err != nil {
				t.Fatal(err)
			}
			t.Setenv(fakeoci.ExecCodeEnv, "3")
			if err := e.Exec(ctx, "claude-alpine", "/bin/zsh", "-c", "exit 3"); proc.ExitCode(err) != 3 {
				t.Errorf("Exec = %v; want exit status 3", err)
			}
			t.Setenv(fakeoci.ExecCodeEnv, "")
			if err := e.Exec(ctx, "stopped", "/bin/zsh"); proc.ExitCode(err) <= 0 {
				t.Errorf("Exec in a stopped container = %v; want the runtime's refusal", err)
			}
			want := []string{
				program + " exec -i -t claude-alpine /bin/zsh",
				program + " exec -i -t claude-alpine /bin/zsh -c exit 3",
				program + " exec -i -t stopped /bin/zsh",
			}
			if diff := cmp.Diff(want, calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if err := e.Exec(ctx, "claude-alpine"); err == nil {
				t.Error("Exec without a command succeeded")
			}
			e.StdinIsTerminal = func() bool { return false }
			if err := e.Exec(ctx, "claude-alpine", "/bin/zsh"); err != nil {
				t.Fatal(err)
			}
			if got, want := calls()[len(want)], program+" exec -i claude-alpine /bin/zsh"; got != want {
				t.Errorf("Exec without a terminal on standard input ran %q; want %q (docker refuses -t then)", got, want)
			}
		})
	}
}

func TestEnsureRunningSaysHowToStartTheDockerDaemon(t *testing.T) {
	e, _, _ := setup(t, oci.Docker, fakeoci.World{DaemonDown: true})
	_, err := e.EnsureRunning(context.Background())
	if err == nil || !strings.Contains(err.Error(), "sudo systemctl start docker") {
		t.Errorf("EnsureRunning with the daemon down: %v", err)
	}
	e, _, _ = setup(t, oci.Docker, fakeoci.World{})
	if _, err := e.EnsureRunning(context.Background()); err != nil {
		t.Errorf("EnsureRunning with the daemon up: %v", err)
	}
}

func TestEnsureRunningChecksThatPodmanWorks(t *testing.T) {
	e, calls, _ := setup(t, oci.Podman, fakeoci.World{})
	if _, err := e.EnsureRunning(context.Background()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"podman info --format json"}, calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	t.Setenv(fakeoci.FailEnv, "info")
	if _, err := e.EnsureRunning(context.Background()); err == nil || !strings.Contains(err.Error(), "podman cannot run") {
		t.Errorf("EnsureRunning with podman failing: %v", err)
	}
}

func TestEnsureRunningRefusesARootlessRuntime(t *testing.T) {
	for _, program := range programs {
		t.Run(program, func(t *testing.T) {
			e, _, _ := setup(t, program, fakeoci.World{Rootless: true})
			_, err := e.EnsureRunning(context.Background())
			if err == nil || !strings.Contains(err.Error(), "rootless") || !strings.Contains(err.Error(), "host firewall cannot see them") {
				t.Errorf("EnsureRunning with a rootless %s: %v; want a refusal that says why", program, err)
			}
		})
	}
}

func TestRootlessReadsBothProgramsInfo(t *testing.T) {
	for _, program := range programs {
		for _, rootless := range []bool{false, true} {
			e, _, _ := setup(t, program, fakeoci.World{Rootless: rootless})
			got, err := e.Rootless(context.Background())
			if err != nil || got != rootless {
				t.Errorf("%s: Rootless = %t, %v; want %t", program, got, err, rootless)
			}
		}
	}
}

// recorder is a Runner that records commands without running them.
type recorder struct{ cmds []proc.Cmd }

func (r *recorder) Run(_ context.Context, c proc.Cmd) (proc.Result, error) {
	r.cmds = append(r.cmds, c)
	return proc.Result{Stdout: []byte("[]")}, nil
}

func (r *recorder) Interactive(_ context.Context, c proc.Cmd) error {
	r.cmds = append(r.cmds, c)
	return nil
}

func TestPodmanRunsEveryCommandWithRootRightsAndDockerThroughItsSocket(t *testing.T) {
	if d := oci.New(&recorder{}, oci.Docker); d.Privileged {
		t.Error("docker runs with root rights by default; its daemon is reached through its socket")
	}
	r := &recorder{}
	e := oci.New(r, oci.Podman)
	ctx := context.Background()
	e.RunningOn(ctx, "claude")
	e.Exec(ctx, "claude-alpine", "/bin/zsh")
	e.Stop(ctx, "claude-alpine")
	if len(r.cmds) != 3 {
		t.Fatalf("recorded %d commands; want 3", len(r.cmds))
	}
	for _, c := range r.cmds {
		if !c.Privileged || c.Name != "podman" {
			t.Errorf("command %s: Privileged = %t; want true", c, c.Privileged)
		}
	}
}

func TestNewRefusesOtherPrograms(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("oci.New accepted \"container\"")
		}
	}()
	oci.New(proc.Exec{}, "container")
}

// overlap is a Runner that notes, for each command, how many others were
// running while it ran. Each command lasts a moment, so that commands
// started together overlap.
type overlap struct {
	mu     sync.Mutex
	active map[int]bool // commands running, by index in seen
	seen   []int        // per command in order of start: the most others seen running
}

func (o *overlap) Run(_ context.Context, c proc.Cmd) (proc.Result, error) {
	o.mu.Lock()
	if o.active == nil {
		o.active = map[int]bool{}
	}
	i := len(o.seen)
	o.seen = append(o.seen, len(o.active))
	for j := range o.active {
		o.seen[j] = max(o.seen[j], len(o.active))
	}
	o.active[i] = true
	o.mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	o.mu.Lock()
	delete(o.active, i)
	o.mu.Unlock()
	return proc.Result{Stdout: []byte("[]")}, nil
}

func (o *overlap) Interactive(ctx context.Context, c proc.Cmd) error {
	_, err := o.Run(ctx, c)
	return err
}

func TestTheFirstPrivilegedCommandRunsAlone(t *testing.T) {
	// Through sudo, it may ask for a password: commands started together
	// must not each ask at the same time.
	o := &overlap{}
	e := oci.New(o, oci.Podman)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 2 { // two rounds of four commands started together
		for range 4 {
			wg.Go(func() { e.RunningOn(ctx, "claude") })
		}
		wg.Wait()
	}
	if len(o.seen) != 8 {
		t.Fatalf("ran %d commands, want 8", len(o.seen))
	}
	if o.seen[0] != 0 {
		t.Errorf("the first privileged command ran beside %d others", o.seen[0])
	}
	if slices.Max(o.seen[4:]) == 0 {
		t.Errorf("commands started together after the first never ran at the same time: %v", o.seen)
	}
}
