package apple

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	"github.com/VerilyPete/claudecontainer/internal/fakes/container"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

func TestMain(m *testing.M) {
	fakebin.Main(m, map[string]func() int{"container": container.Main, "ifconfig": container.Ifconfig})
}

// mac sets up a fake Mac running the given container release and returns
// the driver and a reader of the calls made.
func mac(t *testing.T, version string, env ...string) (*Engine, func() []string) {
	t.Helper()
	container.Use(t, append([]string{container.EnvVersion + "=" + version}, env...)...)
	calls := fakebin.NewLog(t)
	e := New(quiet{})
	e.StdinIsTerminal = func() bool { return true }
	return e, calls
}

// quiet runs interactive commands like the others, capturing their output
// instead of writing it over the test's. The argv is the same.
type quiet struct{ proc.Exec }

func (q quiet) Interactive(ctx context.Context, c proc.Cmd) error {
	_, err := q.Run(ctx, c)
	return err
}

// find returns the first call that starts with prefix.
func find(calls []string, prefix string) string {
	for _, c := range calls {
		if strings.HasPrefix(c, prefix) {
			return c
		}
	}
	return ""
}

// without drops the version query, which the driver makes once, whenever.
func without(calls []string) []string {
	var out []string
	for _, c := range calls {
		if c != "container --version" {
			out = append(out, c)
		}
	}
	return out
}

// shell runs the fake CLI directly, to arrange a scene.
func shell(t *testing.T, args ...string) {
	t.Helper()
	if _, err := (proc.Exec{}).Run(context.Background(), proc.Cmd{Name: "container", Args: args}); err != nil {
		t.Fatal(err)
	}
}

// since drops the calls logged before mark.
func since(calls []string, mark int) []string { return calls[mark:] }

// releases are the releases the driver is tested against, through the fake.
var releases = container.Versions

func TestTheReleaseIsReadForEveryRelease(t *testing.T) {
	for _, v := range append([]string{"1.2.2-35-g899081d"}, releases...) {
		e, _ := mac(t, v)
		got, err := e.release(context.Background())
		if err != nil || got.Raw != v {
			t.Errorf("release = %q, %v; want %q", got, err, v)
		}
	}
}

func TestEnsureRunningStartsTheServiceWithTheKernelFlag(t *testing.T) {
	want := []string{"container --version", "container system status --format json", "container system start --enable-kernel-install", "container system status --format json"}
	for _, v := range releases {
		t.Run(v, func(t *testing.T) {
			e, calls := mac(t, v, container.EnvService+"=unregistered", container.EnvKernel+"=missing", container.EnvImages+"=alpine")
			started, err := e.EnsureRunning(context.Background())
			if err != nil || !started {
				t.Fatalf("EnsureRunning = %v, %v; want it to say it started the service", started, err)
			}
			if diff := cmp.Diff(want, calls()); diff != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", diff)
			}
			// The kernel was installed without a prompt: containers can run.
			shell(t, "run", "-d", "--name", "probe", "alpine", "sleep", "9")
		})
	}
}

func TestEnsureRunningLeavesARunningServiceAlone(t *testing.T) {
	for _, v := range releases {
		e, calls := mac(t, v)
		started, err := e.EnsureRunning(context.Background())
		if err != nil || started {
			t.Fatalf("EnsureRunning = %v, %v; want it to say it started nothing", started, err)
		}
		for _, c := range calls() {
			if strings.Contains(c, "system start") {
				t.Errorf("%s: started a running service: %v", v, calls())
			}
		}
	}
}

func TestEnsureRunningSaysWhatToDoWhenTheStartFails(t *testing.T) {
	e, _ := mac(t, "1.2.2", container.EnvService+"=not running", container.EnvFail+"=system start")
	_, err := e.EnsureRunning(context.Background())
	if err == nil || !strings.Contains(err.Error(), "run `container system start` in a terminal") ||
		!strings.Contains(err.Error(), "injected failure") {
		t.Errorf("EnsureRunning error = %v", err)
	}
}

func TestCreateNetworkPassesTheSubnet(t *testing.T) {
	want := netip.MustParsePrefix("192.168.218.0/24")
	for _, v := range releases {
		t.Run(v, func(t *testing.T) {
			e, calls := mac(t, v)
			ctx := context.Background()
			if _, err := e.Network(ctx, "claude"); !errors.Is(err, engine.ErrNotFound) {
				t.Fatalf("Network before creation: %v, want ErrNotFound", err)
			}
			mark := len(calls())
			if err := e.CreateNetwork(ctx, "claude", want); err != nil {
				t.Fatal(err)
			}
			if got := without(since(calls(), mark)); got[0] != "container network create --subnet 192.168.218.0/24 claude" {
				t.Errorf("first call %q", got[0])
			}
			n, err := e.Network(ctx, "claude")
			if err != nil {
				t.Fatal(err)
			}
			if n.IPv4 != want || n.Gateway4 != want.Addr().Next() || n.Interface != "" || !n.IPv6.IsValid() {
				t.Errorf("Network = %+v, want subnet %s, gateway .1, an IPv6 subnet, no interface yet", n, want)
			}
		})
	}
}

func TestNetworkFindsTheBridgeOnceAContainerRuns(t *testing.T) {
	e, _ := mac(t, "1.2.2", container.EnvImages+"=claudepine:latest")
	ctx := context.Background()
	if err := e.CreateNetwork(ctx, "claude", netip.MustParsePrefix("10.77.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := e.Create(ctx, engine.RunSpec{Name: "claude-alpine", Image: "claudepine:latest", Network: "claude"}); err != nil {
		t.Fatal(err)
	}
	n, err := e.Network(ctx, "claude")
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Network{Name: "claude", IPv4: netip.MustParsePrefix("10.77.0.0/24"), Gateway4: netip.MustParseAddr("10.77.0.1"),
		IPv6: netip.MustParsePrefix("fd12:3456:789a:1::/64"), Interface: "bridge100"}
	if n != want {
		t.Errorf("Network = %+v, want %+v", n, want)
	}
	if _, err := policy.New(n, "allowed_destinations"); err != nil {
		t.Errorf("the network does not make a valid policy: %v", err)
	}
}

func TestNetworkRefusesASubnetThatCollidesWithTheLAN(t *testing.T) {
	e, _ := mac(t, "1.2.2", container.EnvEn0+"=192.168.218.1/24")
	ctx := context.Background()
	if err := e.CreateNetwork(ctx, "claude", netip.MustParsePrefix("192.168.218.0/24")); err != nil {
		t.Fatal(err)
	}
	_, err := e.Network(ctx, "claude")
	if err == nil || !strings.Contains(err.Error(), `on interface "en0", not on a vmnet bridge`) {
		t.Errorf("Network error = %v", err)
	}
}

func TestOnMacOS15OnlyTheDefaultNetworkCanBeUsed(t *testing.T) {
	e, _ := mac(t, "1.2.2", container.EnvMacOS+"=15", container.EnvImages+"=claudepine")
	ctx := context.Background()
	for _, err := range []error{
		func() error { _, err := e.Network(ctx, "claude"); return err }(),
		e.CreateNetwork(ctx, "claude", netip.MustParsePrefix("192.168.218.0/24")),
		e.Create(ctx, engine.RunSpec{Name: "cc", Image: "claudepine", Network: "claude"}),
	} {
		if err == nil || !strings.Contains(err.Error(), "macOS 26") || !strings.Contains(err.Error(), "CLAUDECONTAINER_NETWORK=default") {
			t.Errorf("error = %v, want one that explains macOS 15 and the default network", err)
		}
		if err != nil && strings.Contains(err.Error(), "the container service is not running") {
			t.Errorf("error = %v: the missing plugin is taken for a stopped service", err)
		}
	}
	n, err := e.Network(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	want := policy.Network{Name: "default", IPv4: DefaultSubnet, Gateway4: netip.MustParseAddr("192.168.64.1")}
	if n != want {
		t.Errorf("Network(default) with no container = %+v, want %+v", n, want)
	}
	if err := e.Create(ctx, engine.RunSpec{Name: "cc", Image: "claudepine", Network: "default"}); err != nil {
		t.Fatal(err)
	}
	want.Interface = "bridge100"
	if n, err = e.Network(ctx, "default"); err != nil || n != want {
		t.Errorf("Network(default) with a container = %+v, %v; want %+v", n, err, want)
	}
}

func TestAReleaseBefore1_0IsRefusedBeforeAnythingRuns(t *testing.T) {
	ctx := context.Background()
	dir := dockerfile(t, claudepine)
	for name, call := range map[string]func(e *Engine) error{
		"EnsureRunning": func(e *Engine) error { _, err := e.EnsureRunning(ctx); return err },
		"Network":       func(e *Engine) error { _, err := e.Network(ctx, "claude"); return err },
		"CreateNetwork": func(e *Engine) error {
			return e.CreateNetwork(ctx, "claude", netip.MustParsePrefix("192.168.218.0/24"))
		},
		"ImageExists": func(e *Engine) error { _, err := e.ImageExists(ctx, "claudepine"); return err },
		"Build":       func(e *Engine) error { return e.Build(ctx, engine.BuildSpec{Context: dir, Tag: "claudepine"}) },
		"Create":      func(e *Engine) error { return e.Create(ctx, spec(t)) },
		"State":       func(e *Engine) error { _, err := e.State(ctx, "claude-alpine"); return err },
		"RunningOn":   func(e *Engine) error { _, err := e.RunningOn(ctx, "claude"); return err },
	} {
		t.Run(name, func(t *testing.T) {
			e, calls := mac(t, "0.12.3")
			err := call(e)
			if err == nil || !strings.Contains(err.Error(), "container 0.12.3 is installed; claudecontainer needs 1.0 or later") {
				t.Errorf("error = %v", err)
			}
			if diff := cmp.Diff([]string{"container --version"}, calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func dockerfile(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The project's image: an entrypoint that execs "$@" and a bare zsh as CMD.
const claudepine = "FROM alpine:latest\nENTRYPOINT [\"/usr/local/bin/entrypoint.sh\"]\nCMD [\"/bin/zsh\"]\n"

func TestBuildThenImageExistsAcrossReleases(t *testing.T) {
	for _, v := range releases {
		t.Run(v, func(t *testing.T) {
			e, calls := mac(t, v)
			ctx := context.Background()
			dir := dockerfile(t, claudepine)
			if ok, err := e.ImageExists(ctx, "claudepine:latest"); err != nil || ok {
				t.Fatalf("ImageExists before the build = %v, %v", ok, err)
			}
			mark := len(calls())
			if err := e.Build(ctx, engine.BuildSpec{Context: dir, Tag: "claudepine:latest", Args: map[string]string{"TZ": "UTC", "USER_UID": "1000"}}); err != nil {
				t.Fatal(err)
			}
			want := "container build -t claudepine:latest -f " + filepath.Join(dir, "Dockerfile") + " --build-arg TZ=UTC --build-arg USER_UID=1000 " + dir
			if got := find(since(calls(), mark), "container build"); got != want {
				t.Errorf("build call %q, want %q", got, want)
			}
			for _, ref := range []string{"claudepine", "claudepine:latest", "docker.io/library/claudepine:latest"} {
				if ok, err := e.ImageExists(ctx, ref); err != nil || !ok {
					t.Errorf("ImageExists(%s) = %v, %v", ref, ok, err)
				}
			}
			if ok, err := e.ImageExists(ctx, "claudepine:v2"); err != nil || ok {
				t.Errorf("ImageExists(claudepine:v2) = %v, %v", ok, err)
			}
		})
	}
}

func TestBuildRefusesABigDockerfile(t *testing.T) {
	big := "FROM alpine\n" + strings.Repeat("# line\n", MaxDockerfile/7)
	e, calls := mac(t, "1.2.2")
	err := e.Build(context.Background(), engine.BuildSpec{Context: dockerfile(t, big), Tag: "big"})
	if err == nil || !strings.Contains(err.Error(), "16 KiB") || strings.Contains(strings.Join(calls(), "\n"), "build") {
		t.Errorf("Build of a %d-byte Dockerfile: %v, calls %v; want a 16 KiB error before any build", len(big), err, calls())
	}
}

func TestBuildRefusesBadSpecs(t *testing.T) {
	e, _ := mac(t, "1.2.2")
	dir := dockerfile(t, claudepine)
	for _, b := range []engine.BuildSpec{
		{Context: dir, Tag: "Bad Tag"},
		{Context: filepath.Join(dir, "missing"), Tag: "x"},
		{Context: dir, Dockerfile: filepath.Join(dir, "nope"), Tag: "x"},
		{Context: dir, Tag: "x", Args: map[string]string{"A=B": "c"}},
	} {
		if err := e.Build(context.Background(), b); err == nil {
			t.Errorf("Build(%+v) succeeded", b)
		}
	}
}

// spec is the container `mage dev` makes.
func spec(t *testing.T) engine.RunSpec {
	return engine.RunSpec{
		Name: "claude-alpine", Image: "claudepine:latest", Network: "claude",
		DNS: []netip.Addr{netip.MustParseAddr("192.168.218.1")},
		Volumes: []engine.Volume{
			{Source: "alpine-home", Target: "/home/claude"},
			{Source: "claude-history", Target: "/commandhistory"},
			{Source: t.TempDir(), Target: "/workspace"},
		},
		Memory: "8g", CPUs: 4,
	}
}

func TestCreateRunsTheContainerDetachedAndKeepsItAlive(t *testing.T) {
	for _, v := range releases {
		t.Run(v, func(t *testing.T) {
			e, calls := mac(t, v)
			ctx := context.Background()
			if err := e.Build(ctx, engine.BuildSpec{Context: dockerfile(t, claudepine), Tag: "claudepine:latest"}); err != nil {
				t.Fatal(err)
			}
			if err := e.CreateNetwork(ctx, "claude", netip.MustParsePrefix("192.168.218.0/24")); err != nil {
				t.Fatal(err)
			}
			r := spec(t)
			mark := len(calls())
			if err := e.Create(ctx, r); err != nil {
				t.Fatal(err)
			}
			run := "container run -d --name claude-alpine --network claude --dns 192.168.218.1" +
				" --volume alpine-home:/home/claude --volume claude-history:/commandhistory --volume " + r.Volumes[2].Source + ":/workspace" +
				" --memory 8g --cpus 4 claudepine:latest " + strings.Join(engine.KeepAlive, " ")
			if diff := cmp.Diff([]string{run}, without(since(calls(), mark))); diff != "" {
				t.Errorf("calls mismatch (-want +got):\n%s", diff)
			}
			if st, err := e.State(ctx, "claude-alpine"); err != nil || st != engine.Running {
				t.Errorf("State = %v, %v; want running", st, err)
			}
		})
	}
}

func TestCreateRefusesWhatTheReleaseOrHostCannotDo(t *testing.T) {
	tests := []struct {
		name, version string
		change        func(r *engine.RunSpec)
		want          string
	}{
		{"a missing host directory", "1.2.2", func(r *engine.RunSpec) { r.Volumes[2].Source = "/does/not/exist" }, "does not exist"},
		{"a relative host directory", "1.2.2", func(r *engine.RunSpec) { r.Volumes[2].Source = "./work" }, "must be an absolute path"},
		{"a relative target", "1.2.2", func(r *engine.RunSpec) { r.Volumes[0].Target = "home" }, "mount target"},
		{"a bad volume name", "1.2.2", func(r *engine.RunSpec) { r.Volumes[0].Source = "-x" }, "volume name"},
		{"a bad name", "1.2.2", func(r *engine.RunSpec) { r.Name = "x" }, "container name"},
		{"a bad image", "1.2.2", func(r *engine.RunSpec) { r.Image = "--privileged" }, "bad image"},
		{"a bad memory size", "1.2.2", func(r *engine.RunSpec) { r.Memory = "lots" }, "memory"},
		{"a memory size without a unit", "1.2.2", func(r *engine.RunSpec) { r.Memory = "4096" }, "want a size with a unit"},
		{"a DNS server with a zone", "1.2.2", func(r *engine.RunSpec) { r.DNS = []netip.Addr{netip.MustParseAddr("fe80::1%en0")} }, "DNS server"},
		{"a bad network name", "1.2.2", func(r *engine.RunSpec) { r.Network = "Claude" }, "bad network name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, calls := mac(t, tt.version)
			r := spec(t)
			tt.change(&r)
			err := e.Create(context.Background(), r)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Create error = %v, want one containing %q", err, tt.want)
			}
			for _, c := range calls() {
				if strings.HasPrefix(c, "container run") || strings.HasPrefix(c, "container volume") {
					t.Errorf("ran %q despite the bad spec", c)
				}
			}
		})
	}
}

func TestStateRunningOnStartStopAcrossReleases(t *testing.T) {
	for _, v := range releases {
		t.Run(v, func(t *testing.T) {
			e, _ := mac(t, v, container.EnvImages+"=claudepine:latest,alpine")
			ctx := context.Background()
			if err := e.CreateNetwork(ctx, "claude", netip.MustParsePrefix("192.168.218.0/24")); err != nil {
				t.Fatal(err)
			}
			if st, err := e.State(ctx, "claude-alpine"); err != nil || st != engine.Absent {
				t.Fatalf("State before creation = %v, %v", st, err)
			}
			if err := e.Create(ctx, engine.RunSpec{Name: "claude-alpine", Image: "claudepine:latest", Network: "claude"}); err != nil {
				t.Fatal(err)
			}
			shell(t, "run", "-d", "--name", "other", "--network", "claude", "alpine", "sleep", "60")
			shell(t, "run", "-d", "--name", "elsewhere", "alpine", "sleep", "60")
			shell(t, "create", "--name", "idle", "--network", "claude", "alpine")
			got, err := e.RunningOn(ctx, "claude")
			if diff := cmp.Diff([]string{"claude-alpine", "other"}, got); err != nil || diff != "" {
				t.Errorf("RunningOn(claude) = %v, %v (-want +got):\n%s", got, err, diff)
			}
			if st, err := e.State(ctx, "idle"); err != nil || st != engine.Stopped {
				t.Errorf("State(idle) = %v, %v; want stopped", st, err)
			}
			if err := e.Stop(ctx, "claude-alpine"); err != nil {
				t.Fatal(err)
			}
			if st, _ := e.State(ctx, "claude-alpine"); st != engine.Stopped {
				t.Errorf("State after Stop = %v", st)
			}
			if err := e.Stop(ctx, "claude-alpine"); err != nil {
				t.Errorf("Stop of a stopped container: %v", err)
			}
			if got, _ := e.RunningOn(ctx, "claude"); len(got) != 1 || got[0] != "other" {
				t.Errorf("RunningOn(claude) after Stop = %v", got)
			}
			if err := e.Start(ctx, "claude-alpine"); err != nil {
				t.Fatal(err)
			}
			if st, _ := e.State(ctx, "claude-alpine"); st != engine.Running {
				t.Errorf("State after Start = %v", st)
			}
			// A container whose command is a bare shell ends as soon as it
			// starts, and State says so.
			if err := e.Start(ctx, "idle"); err != nil {
				t.Errorf("Start(idle) = %v", err)
			}
			if st, err := e.State(ctx, "idle"); err != nil || st != engine.Stopped {
				t.Errorf("State(idle) after Start = %v, %v; want stopped", st, err)
			}
			for _, err := range []error{e.Stop(ctx, "ghost"), e.Start(ctx, "ghost")} {
				if !errors.Is(err, engine.ErrNotFound) {
					t.Errorf("on a missing container: %v, want ErrNotFound", err)
				}
			}
		})
	}
}

func TestExecPassesTheShellsExitStatusThrough(t *testing.T) {
	e, calls := mac(t, "1.2.2", container.EnvImages+"=claudepine", container.EnvExecExit+"=3")
	ctx := context.Background()
	if err := e.Create(ctx, engine.RunSpec{Name: "cc", Image: "claudepine"}); err != nil {
		t.Fatal(err)
	}
	mark := len(calls())
	err := e.Exec(ctx, "cc", "/bin/zsh", "-l")
	if proc.ExitCode(err) != 3 {
		t.Errorf("Exec error = %v, want exit status 3", err)
	}
	if diff := cmp.Diff([]string{"container exec -it cc /bin/zsh -l"}, since(calls(), mark)); diff != "" {
		t.Errorf("calls mismatch (-want +got):\n%s", diff)
	}
	if err := e.Exec(ctx, "cc"); err == nil {
		t.Error("Exec with no command succeeded")
	}
	e.StdinIsTerminal = func() bool { return false }
	mark = len(calls())
	if err := e.Exec(ctx, "cc", "/bin/sh", "-c", "true"); proc.ExitCode(err) != 3 {
		t.Errorf("Exec without a terminal: %v, want exit status 3", err)
	}
	if diff := cmp.Diff([]string{"container exec -i cc /bin/sh -c true"}, since(calls(), mark)); diff != "" {
		t.Errorf("without a terminal on stdin (-want +got):\n%s", diff)
	}
	if err := e.Stop(ctx, "cc"); err != nil {
		t.Fatal(err)
	}
	if err := e.Exec(ctx, "cc", "/bin/zsh"); err == nil {
		t.Error("Exec in a stopped container succeeded")
	}
}

func TestCommandsExplainAServiceThatIsDown(t *testing.T) {
	e, _ := mac(t, "1.2.2", container.EnvService+"=not running")
	_, err := e.State(context.Background(), "cc")
	if err == nil || !strings.Contains(err.Error(), "start it with `container system start`") {
		t.Errorf("State error = %v", err)
	}
}

func TestTwoShellsShareOneContainer(t *testing.T) {
	e, _ := mac(t, "1.2.2", container.EnvImages+"=claudepine")
	sessions := container.HoldSessions(t)
	ctx := context.Background()
	if err := e.Create(ctx, engine.RunSpec{Name: "cc", Image: "claudepine"}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for i := 1; i <= 2; i++ {
		go func() { errs <- e.Exec(ctx, "cc", "/bin/zsh") }()
		sessions.WaitOpen(t, i)
	}
	sessions.End(t, 2, 0)
	if err := <-errs; err != nil {
		t.Errorf("second shell: %v", err)
	}
	if st, err := e.State(ctx, "cc"); err != nil || st != engine.Running || sessions.Open() != 1 {
		t.Errorf("after one shell left: State = %v, %v, %d open; want running with 1 open", st, err, sessions.Open())
	}
	sessions.End(t, 1, 130)
	if err := <-errs; proc.ExitCode(err) != 130 {
		t.Errorf("first shell: %v, want exit status 130", err)
	}
}
