package oci

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// ps output as podman 5 (`ps -a --format json`) and docker 28
// (`ps -a --format '{{json .}}'`) print it.
const (
	podmanPS = `[
  {
    "AutoRemove": false,
    "Command": ["/bin/zsh"],
    "Created": "2026-01-02T03:04:05Z",
    "CreatedAt": "2 minutes ago",
    "Exited": false,
    "ExitedAt": 1767323105,
    "ExitCode": 0,
    "Id": "8d0e5c1a9f0e3b7d4c2a8e6f1b0d9c8a7e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c",
    "Image": "localhost/claudepine:latest",
    "ImageID": "0a1b2c3d4e5f",
    "IsInfra": false,
    "Labels": null,
    "Mounts": ["/workspace"],
    "Names": ["claude-alpine"],
    "Namespaces": {},
    "Networks": ["claude"],
    "Pid": 4242,
    "Pod": "",
    "PodName": "",
    "Ports": null,
    "Restarts": 0,
    "Size": null,
    "StartedAt": 1767323045,
    "State": "running",
    "Status": "Up 2 minutes"
  },
  {"Names": ["old"], "State": "exited", "Status": "Exited (0) 1 minute ago", "Networks": ["claude", "podman"]},
  {"Names": ["slirp"], "State": "running", "Status": "Up 1 minute", "Networks": null}
]`
	dockerPS = `{"Command":"\"/entrypoint.sh /bin/zsh\"","CreatedAt":"2026-01-02 03:04:05 +0000 UTC","ID":"8d0e5c1a9f0e","Image":"claudepine:latest","Labels":"","LocalVolumes":"2","Mounts":"alpine-home,claude-history","Names":"claude-alpine","Networks":"claude","Ports":"","RunningFor":"2 minutes ago","Size":"0B","State":"running","Status":"Up 2 minutes"}
{"Command":"\"sleep 1\"","CreatedAt":"2026-01-02 03:04:05 +0000 UTC","ID":"9e1f","Image":"alpine","Labels":"","LocalVolumes":"0","Mounts":"","Names":"old,web/old","Networks":"claude,bridge","Ports":"","RunningFor":"3 minutes ago","Size":"0B","State":"exited","Status":"Exited (0) 1 minute ago"}
{"Command":"\"sh\"","ID":"af12","Image":"alpine","Names":"none","Networks":"","State":"running","Status":"Up 1 second"}
`
)

type psRow struct {
	Names, Networks []string
	NetworksKnown   bool
	State, Status   string
}

func rows(cs []psJSON) []psRow {
	var out []psRow
	for _, c := range cs {
		out = append(out, psRow{Names: c.Names.items, Networks: c.Networks.items, NetworksKnown: c.Networks.present, State: c.State, Status: c.Status})
	}
	return out
}

func TestParsePSReadsBothShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, out string
		want      []psRow
	}{
		{"podman's JSON array", podmanPS, []psRow{
			{Names: []string{"claude-alpine"}, Networks: []string{"claude"}, NetworksKnown: true, State: "running", Status: "Up 2 minutes"},
			{Names: []string{"old"}, Networks: []string{"claude", "podman"}, NetworksKnown: true, State: "exited", Status: "Exited (0) 1 minute ago"},
			{Names: []string{"slirp"}, NetworksKnown: true, State: "running", Status: "Up 1 minute"},
		}},
		{"docker's object per line", dockerPS, []psRow{
			{Names: []string{"claude-alpine"}, Networks: []string{"claude"}, NetworksKnown: true, State: "running", Status: "Up 2 minutes"},
			{Names: []string{"old", "web/old"}, Networks: []string{"claude", "bridge"}, NetworksKnown: true, State: "exited", Status: "Exited (0) 1 minute ago"},
			{Names: []string{"none"}, NetworksKnown: true, State: "running", Status: "Up 1 second"},
		}},
		{"podman with no containers", "[]\n", nil},
		{"docker with no containers", "", nil},
		{"docker names with a leading slash", `{"Names":"/web","State":"running"}`, []psRow{{Names: []string{"web"}, State: "running"}}},
		{"podman standing in for docker, one object per line", `{"Names":["a"],"Networks":["claude"],"State":"running"}` + "\n" + `{"Names":["b"],"Networks":[],"State":"created"}`, []psRow{
			{Names: []string{"a"}, Networks: []string{"claude"}, NetworksKnown: true, State: "running"},
			{Names: []string{"b"}, Networks: []string{}, NetworksKnown: true, State: "created"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parsePS("podman", []byte(tc.out))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, rows(got)); diff != "" {
				t.Errorf("parsePS (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePSRefusesMalformedOutput(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, out, wantErr string }{
		{"truncated JSON", `[{"Names":["a"],`, "reading `podman ps` output"},
		{"text", "CONTAINER ID  IMAGE", "reading `podman ps` output"},
		{"a container without names", `[{"State":"running"}]`, "a container without names"},
		{"an empty name list", `[{"Names":[],"State":"running"}]`, "a container without names"},
		{"names of the wrong type", `[{"Names":42,"State":"running"}]`, "reading `podman ps` output"},
		{"a state of the wrong type", `[{"Names":["a"],"State":3}]`, "reading `podman ps` output"},
		{"networks of the wrong type", `{"Names":"a","Networks":{"claude":{}}}`, "reading `podman ps` output"},
		{"a bare string", `"running"`, "reading `podman ps` output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parsePS("podman", []byte(tc.out))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parsePS(%q) = %+v, %v; want an error containing %q", tc.out, got, err, tc.wantErr)
			}
		})
	}
}

func TestStateMapsEveryRuntimeState(t *testing.T) {
	t.Parallel()
	tests := []struct {
		state, status string
		want          engine.State
		wantErr       string
	}{
		{"running", "Up 2 minutes", engine.Running, ""},
		{"Running", "", engine.Running, ""},
		{"created", "Created", engine.Stopped, ""},
		{"configured", "", engine.Stopped, ""},
		{"initialized", "", engine.Stopped, ""},
		{"exited", "Exited (0) 1 minute ago", engine.Stopped, ""},
		{"stopped", "", engine.Stopped, ""},
		{"", "Up 3 hours", engine.Running, ""},
		{"", "Exited (137) 2 days ago", engine.Stopped, ""},
		{"", "Created", engine.Stopped, ""},
		{"", "Up 3 hours (Paused)", "", "is paused: resume it with `podman unpause claude-alpine`"},
		{"paused", "", "", "is paused"},
		{"restarting", "", "", "is restarting: try again in a moment"},
		{"removing", "", "", "is removing"},
		{"stopping", "", "", "is stopping"},
		{"dead", "", "", "is dead: remove it with `podman rm claude-alpine`"},
		{"unknown", "", "", `state claudecontainer does not know (State "unknown"`},
		{"", "", "", "state claudecontainer does not know"},
	}
	for _, tc := range tests {
		got, err := psJSON{State: tc.state, Status: tc.status}.state("podman", "claude-alpine")
		switch {
		case tc.wantErr == "" && (err != nil || got != tc.want):
			t.Errorf("state(%q, %q) = %q, %v; want %q", tc.state, tc.status, got, err, tc.want)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("state(%q, %q) = %q, %v; want an error containing %q", tc.state, tc.status, got, err, tc.wantErr)
		}
	}
}

func TestRunArgsKeepTheContainerAliveAndMountEverything(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	spec := engine.RunSpec{
		Name:    "claude-alpine",
		Image:   "claudepine:latest",
		Network: "claude",
		DNS:     []netip.Addr{netip.MustParseAddr("192.168.218.1"), netip.MustParseAddr("::ffff:10.0.0.1"), netip.MustParseAddr("fd00::1")},
		Volumes: []engine.Volume{{Source: "alpine-home", Target: "/home/claude"}, {Source: ws, Target: "/workspace"}},
		Memory:  "8g",
		CPUs:    4,
	}
	common := []string{"run", "-d", "--name", "claude-alpine", "--network", "claude",
		"--dns", "192.168.218.1", "--dns", "10.0.0.1", "--dns", "fd00::1"}
	tail := append([]string{"-v", "alpine-home:/home/claude", "-v", ws + ":/workspace", "--memory", "8g", "--cpus", "4",
		"claudepine:latest"}, engine.KeepAlive...)
	for _, tc := range []struct {
		name     string
		rootless bool
		want     []string
	}{
		{"rootful", false, append(append([]string{}, common...), tail...)},
		{"rootless", true, append(append(append([]string{}, common...), "--userns=keep-id"), tail...)},
	} {
		got, err := runArgs(spec, tc.rootless)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: runArgs (-want +got):\n%s", tc.name, diff)
		}
	}

	minimal, err := runArgs(engine.RunSpec{Name: "c", Image: "img", Network: "n"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append([]string{"run", "-d", "--name", "c", "--network", "n", "img"}, engine.KeepAlive...), minimal); diff != "" {
		t.Errorf("runArgs without limits (-want +got):\n%s", diff)
	}
}

func TestRunArgsRefuseUnsafeSpecs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good := func() engine.RunSpec {
		return engine.RunSpec{Name: "claude-alpine", Image: "claudepine:latest", Network: "claude"}
	}
	tests := []struct {
		name    string
		edit    func(*engine.RunSpec)
		wantErr string
	}{
		{"a name that reads as an option", func(r *engine.RunSpec) { r.Name = "--privileged" }, `container name "--privileged"`},
		{"an empty name", func(r *engine.RunSpec) { r.Name = "" }, `container name ""`},
		{"a network that reads as an option", func(r *engine.RunSpec) { r.Network = "-host" }, `network name "-host"`},
		{"a network with a slash", func(r *engine.RunSpec) { r.Network = "container:other" }, `network name "container:other"`},
		{"an image that reads as an option", func(r *engine.RunSpec) { r.Image = "--rm" }, `image reference "--rm"`},
		{"an image with a space", func(r *engine.RunSpec) { r.Image = "a b" }, `image reference "a b"`},
		{"an invalid DNS address", func(r *engine.RunSpec) { r.DNS = []netip.Addr{{}} }, "DNS server invalid IP is not a plain IP address"},
		{"a DNS address with a zone", func(r *engine.RunSpec) { r.DNS = []netip.Addr{netip.MustParseAddr("fe80::1%eth0")} }, "not a plain IP address"},
		{"a relative host path", func(r *engine.RunSpec) { r.Volumes = []engine.Volume{{Source: "./work", Target: "/workspace"}} }, `host path "./work"`},
		{"a host path that is not clean", func(r *engine.RunSpec) { r.Volumes = []engine.Volume{{Source: dir + "/../x", Target: "/workspace"}} }, "want a clean absolute path"},
		{"a host path with a colon", func(r *engine.RunSpec) { r.Volumes = []engine.Volume{{Source: dir + "/a:b", Target: "/workspace"}} }, "without ':' or ','"},
		{"a missing host path", func(r *engine.RunSpec) { r.Volumes = []engine.Volume{{Source: dir + "/missing", Target: "/workspace"}} }, "no such file or directory"},
		{"a relative target", func(r *engine.RunSpec) { r.Volumes = []engine.Volume{{Source: dir, Target: "workspace"}} }, `volume target "workspace"`},
		{"a target with a comma", func(r *engine.RunSpec) { r.Volumes = []engine.Volume{{Source: dir, Target: "/a,b"}} }, `volume target "/a,b"`},
		{"a target with options", func(r *engine.RunSpec) { r.Volumes = []engine.Volume{{Source: dir, Target: "/w:ro"}} }, `volume target "/w:ro"`},
		{"a one-letter volume name", func(r *engine.RunSpec) { r.Volumes = []engine.Volume{{Source: "a", Target: "/a"}} }, `volume name "a"`},
		{"a volume name that reads as an option", func(r *engine.RunSpec) { r.Volumes = []engine.Volume{{Source: "-x", Target: "/a"}} }, `volume name "-x"`},
		{"a memory limit that is not a size", func(r *engine.RunSpec) { r.Memory = "lots" }, `memory limit "lots"`},
		{"a negative CPU limit", func(r *engine.RunSpec) { r.CPUs = -1 }, "CPU limit -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := good()
			tc.edit(&r)
			got, err := runArgs(r, false)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("runArgs = %q, %v; want an error containing %q", got, err, tc.wantErr)
			}
		})
	}
	r := good()
	r.Volumes = []engine.Volume{{Source: file, Target: "/etc/f"}}
	if _, err := runArgs(r, false); err != nil {
		t.Errorf("a host file as a bind mount was refused: %v", err)
	}
}

func TestBuildArgsPutTheContextLast(t *testing.T) {
	t.Parallel()
	got, err := buildArgs(engine.BuildSpec{Context: ".", Dockerfile: "Dockerfile", Tag: "claudepine:latest", Args: map[string]string{"TZ": "UTC", "USER_UID": "1000"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"build", "-t", "claudepine:latest", "-f", "Dockerfile", "--build-arg", "TZ=UTC", "--build-arg", "USER_UID=1000", "."}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("buildArgs (-want +got):\n%s", diff)
	}
	got, err = buildArgs(engine.BuildSpec{Context: "/src", Tag: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"build", "-t", "x", "/src"}, got); diff != "" {
		t.Errorf("buildArgs without a Dockerfile (-want +got):\n%s", diff)
	}
	for _, b := range []engine.BuildSpec{
		{Context: "", Tag: "x"},
		{Context: "--push", Tag: "x"},
		{Context: ".", Dockerfile: "-q", Tag: "x"},
		{Context: ".", Tag: "-q"},
		{Context: ".", Tag: "x", Args: map[string]string{"A B": "c"}},
	} {
		if got, err := buildArgs(b); err == nil {
			t.Errorf("buildArgs(%+v) = %q; want an error", b, got)
		}
	}
}

func TestNotFoundRecognisesBothProgramsMessages(t *testing.T) {
	t.Parallel()
	exit := func(code int, stderr string) error {
		return &proc.ExitError{Cmd: proc.Cmd{Name: "x"}, Code: code, Stderr: stderr}
	}
	tests := []struct {
		kind string
		err  error
		want bool
	}{
		{"network", exit(125, "Error: claude: unable to find network with name or ID claude: network not found"), true},
		{"network", exit(1, "Error response from daemon: network claude not found"), true},
		{"network", exit(1, "Error: No such network: claude"), true},
		{"network", exit(1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"), false},
		{"network", exit(125, "Error: container not found"), false},
		{"network", exit(0, "network not found"), false},
		{"container", exit(125, `Error: no container with name or ID "c" found: no such container`), true},
		{"container", exit(1, "Error response from daemon: No such container: c"), true},
		{"container", exit(1, "Error response from daemon: network claude not found"), false},
		{"image", exit(1, "Error response from daemon: No such image: claudepine:latest"), true},
		{"image", exit(125, "Error: claudepine:latest: image not known"), true},
		{"image", exit(1, "permission denied"), false},
	}
	for _, tc := range tests {
		if got := notFound(tc.err, tc.kind); got != tc.want {
			t.Errorf("notFound(%v, %s) = %t; want %t", tc.err, tc.kind, got, tc.want)
		}
	}
}
