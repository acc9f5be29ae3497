package apple

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/policy"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	defaultNet = policy.Network{
		Name:     "default",
		IPv4:     netip.MustParsePrefix("192.168.64.0/24"),
		Gateway4: netip.MustParseAddr("192.168.64.1"),
	}
	devnet = policy.Network{
		Name:     "devnet",
		IPv4:     netip.MustParsePrefix("10.77.0.0/24"),
		Gateway4: netip.MustParseAddr("10.77.0.1"),
	}
)

func with6(n policy.Network, p string) policy.Network {
	n.IPv6 = netip.MustParsePrefix(p)
	return n
}

// v122 and v141 are the releases the fixtures and documents here follow.
var (
	v122 = Version{1, 2, 2, "1.2.2"}
	v141 = Version{1, 4, 1, "1.4.1"}
)

var cmpAddr = cmp.Options{cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}

func TestFindNetworkReadsTheReferenceFixture(t *testing.T) {
	for name, want := range map[string]policy.Network{
		"default": with6(defaultNet, "fd5e:9a3b:1c2d:4e5f::/64"),
		"devnet":  with6(devnet, "fd12:3456:789a:1::/64"),
	} {
		got, err := FindNetwork(fixture(t, "networks-1.2.2.json"), name, v122)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
			t.Errorf("FindNetwork(%s) mismatch (-want +got):\n%s", name, diff)
		}
	}
}

func TestFindNetworkMasksASubnetReportedAsGiven(t *testing.T) {
	// macOS 15 reports the configured 192.168.64.1/24 verbatim.
	got, err := FindNetwork([]byte(`[{"id":"default","status":{"ipv4Subnet":"192.168.64.1\/24","ipv4Gateway":"192.168.64.1"}}]`), "default", v122)
	if err != nil || got != defaultNet {
		t.Errorf("FindNetwork = %+v, %v; want %+v", got, err, defaultNet)
	}
}

func TestFindNetworkRefusesBadInputWithAClearError(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"truncated output", `[{"id":"claude","configuration":{"name":"cl`, "reading `container network list` output"},
		{"an object instead of a list", `{"id":"claude"}`, "cannot unmarshal object"},
		{"an id of the wrong type", `[{"id":7}]`, "reading network 0"},
		{"a subnet of the wrong type", `[{"id":"claude","status":{"ipv4Subnet":24,"ipv4Gateway":"10.0.0.1"}}]`, "cannot unmarshal number"},
		{"an invalid CIDR", `[{"id":"claude","status":{"ipv4Subnet":"10.0.0.300/24","ipv4Gateway":"10.0.0.1"}}]`, `IPv4 subnet "10.0.0.300/24"`},
		{"an IPv6 subnet where IPv4 belongs", `[{"id":"claude","status":{"ipv4Subnet":"fd00::/64"}}]`, "not an IPv4 prefix"},
		{"a public subnet", `[{"id":"claude","status":{"ipv4Subnet":"8.8.8.0/24","ipv4Gateway":"8.8.8.1"}}]`, "not a private range"},
		{"a tiny subnet", `[{"id":"claude","status":{"ipv4Subnet":"10.0.0.0/31"}}]`, "between /8 and /30"},
		{"a gateway outside the subnet", `[{"id":"claude","status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.78.0.1"}}]`, "gateway 10.78.0.1 is not a host address inside 10.77.0.0/24"},
		{"the network address as gateway", `[{"id":"claude","status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.0"}}]`, "not a host address"},
		{"the broadcast address as gateway", `[{"id":"claude","status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.255"}}]`, "not a host address"},
		{"an unparsable gateway", `[{"id":"claude","status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"gw"}}]`, `gateway "gw"`},
		{"a global IPv6 subnet", `[{"id":"claude","status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.1","ipv6Subnet":"2001:db8::/64"}}]`, "not a unique local"},
		{"a huge IPv6 subnet", `[{"id":"claude","status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.1","ipv6Subnet":"fd00::/8"}}]`, "/48 to /64"},
		{"an IPv4 subnet as IPv6", `[{"id":"claude","status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.1","ipv6Subnet":"10.0.0.0/24"}}]`, "not an IPv6 prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FindNetwork([]byte(tt.json), "claude", v122)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FindNetwork error = %v, want one containing %q", err, tt.want)
			}
			if errors.Is(err, engine.ErrNotFound) {
				t.Errorf("FindNetwork error %v wraps ErrNotFound", err)
			}
		})
	}
}

func TestAMissingKeyNamesTheReleaseTheCommandAndTheKey(t *testing.T) {
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"a network without id", func() error {
			_, err := FindNetwork([]byte(`[{"configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.0.0.0/24"}}]`), "claude", v141)
			return err
		}, "`container network list --format json` printed no \"id\""},
		{"our network without status", func() error {
			_, err := FindNetwork([]byte(`[{"id":"claude","configuration":{"name":"claude"}}]`), "claude", v141)
			return err
		}, `printed no "status.ipv4Subnet"`},
		{"a status without a subnet", func() error {
			_, err := FindNetwork([]byte(`[{"id":"claude","status":{"ipv4Gateway":"10.0.0.1"}}]`), "claude", v141)
			return err
		}, `printed no "status.ipv4Subnet"`},
		{"a container without id", func() error {
			_, err := ParseContainers([]byte(`[{"configuration":{"id":"web"},"status":{"state":"running","networks":[]}}]`), v141)
			return err
		}, "`container list --format json` printed no \"id\""},
		{"a container without status", func() error {
			_, err := ParseContainers([]byte(`[{"id":"web","configuration":{"id":"web"}}]`), v141)
			return err
		}, `printed no "status.state"`},
		{"a 0.x status string", func() error {
			_, err := ParseContainers([]byte(`[{"id":"web","status":"running"}]`), v141)
			return err
		}, "cannot unmarshal string"},
		{"an attachment without network", func() error {
			_, err := ParseContainers([]byte(`[{"id":"web","status":{"state":"running","networks":[{"ipv4Address":"192.168.64.3/24"}]}}]`), v141)
			return err
		}, `printed no "status.networks[].network"`},
		{"an attachment without address", func() error {
			_, err := ParseContainers([]byte(`[{"id":"web","status":{"state":"running","networks":[{"network":"default","address":"192.168.64.3/24"}]}}]`), v141)
			return err
		}, `printed no "status.networks[].ipv4Address"`},
		{"a configured network without name", func() error {
			_, err := ParseContainers([]byte(`[{"id":"web","configuration":{"networks":[{"options":{}}]},"status":{"state":"stopped","networks":[]}}]`), v141)
			return err
		}, `printed no "configuration.networks[].network"`},
		{"an image without name", func() error {
			_, err := ParseImages([]byte(`[{"reference":"docker.io/library/alpine:latest"}]`), v141)
			return err
		}, "`container image list --format json` printed no \"configuration.name\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(tt.want, "printed no") && (!strings.Contains(err.Error(), "container 1.4.1:") || !strings.Contains(err.Error(), "please report it")) {
				t.Errorf("error %q does not name the release and ask for a report", err)
			}
		})
	}
}

func TestFindNetworkSkipsOtherNetworksWhateverTheirNamesAndShapes(t *testing.T) {
	// A network named before names were checked, and one with no status:
	// neither is ours, so neither stops ours from being found.
	list := `[{"id":"Old Net;x","status":{"ipv4Subnet":"garbage"}},{"id":"half","configuration":{}},` +
		`{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.77.0.0\/24","ipv4Gateway":"10.77.0.1"}}]`
	got, err := FindNetwork([]byte(list), "claude", v122)
	want := policy.Network{Name: "claude", IPv4: netip.MustParsePrefix("10.77.0.0/24"), Gateway4: netip.MustParseAddr("10.77.0.1")}
	if err != nil || got != want {
		t.Errorf("FindNetwork = %+v, %v; want %+v", got, err, want)
	}
	if _, err := FindNetwork([]byte(list), "Old Net;x", v122); err == nil || !strings.Contains(err.Error(), "not a valid container network name") {
		t.Errorf("FindNetwork of a name apple/container refuses: %v", err)
	}
}

func TestParsersIgnoreKeysTheyDoNotRead(t *testing.T) {
	// Keys a later release might add, and 1.4.1's unescaped slashes.
	nets := `[{"id":"claude","future":{"x":[1,2]},"status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.1","ipv4Nat":true}}]`
	if _, err := FindNetwork([]byte(nets), "claude", v141); err != nil {
		t.Errorf("FindNetwork: %v", err)
	}
	ls := `[{"id":"web","labels":{},"status":{"state":"stopped","exitCode":0,"exitedAt":"2026-09-10T10:00:00Z","networks":[]}}]`
	if got, err := ParseContainers([]byte(ls), v141); err != nil || len(got) != 1 || got[0].State != "stopped" {
		t.Errorf("ParseContainers = %+v, %v", got, err)
	}
	imgs := `[{"id":"ab","configuration":{"name":"docker.io/library/alpine:latest","annotations":{}},"variants":[],"size":1}]`
	if got, err := ParseImages([]byte(imgs), v141); err != nil || len(got) != 1 {
		t.Errorf("ParseImages = %q, %v", got, err)
	}
}

func TestFindNetworkWrapsErrNotFoundForAMissingNetwork(t *testing.T) {
	if _, err := FindNetwork(fixture(t, "networks-1.2.2.json"), "claude", v122); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("FindNetwork(claude) error = %v, want ErrNotFound", err)
	}
	if _, err := FindNetwork([]byte("[]"), "claude", v122); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("FindNetwork on an empty list: error = %v, want ErrNotFound", err)
	}
}

func TestFindNetworkDecodesEscapedSlashes(t *testing.T) {
	raw := fixture(t, "networks-1.2.2.json")
	if !strings.Contains(string(raw), `10.77.0.0\/24`) {
		t.Fatal("fixture lost its escaped slashes")
	}
	got, err := FindNetwork(raw, "devnet", v122)
	if err != nil {
		t.Fatal(err)
	}
	if got.IPv4.String() != "10.77.0.0/24" {
		t.Errorf("subnet = %s, want 10.77.0.0/24", got.IPv4)
	}
}

func TestParseContainersReadsTheReferenceFixture(t *testing.T) {
	web := ContainerInfo{
		Name: "web", State: "running", Networks: []string{"default"},
		Attachments: []Attachment{{
			Network: "default", IPv4: netip.MustParsePrefix("192.168.64.3/24"), Gateway4: netip.MustParseAddr("192.168.64.1"),
			IPv6: netip.MustParsePrefix("fd5e:9a3b:1c2d:4e5f:f061:5eff:fef2:f47e/64"),
		}},
	}
	old := ContainerInfo{Name: "old", State: "stopped", Networks: []string{"default"}}
	got, err := ParseContainers(fixture(t, "containers-1.2.2.json"), v122)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]ContainerInfo{web, old}, got, cmpAddr); diff != "" {
		t.Errorf("ParseContainers mismatch (-want +got):\n%s", diff)
	}
}

func TestParseContainersLeavesOutNetworksApplesRulesRefuse(t *testing.T) {
	ls := `[{"id":"web","configuration":{"networks":[{"network":"Old Net"},{"network":"claude"}]},"status":{"state":"running","networks":[` +
		`{"network":"Old Net","ipv4Address":"10.1.0.2/24","ipv4Gateway":"10.1.0.1"},{"network":"claude","ipv4Address":"10.77.0.2/24","ipv4Gateway":"10.77.0.1"}]}}]`
	got, err := ParseContainers([]byte(ls), v122)
	if err != nil {
		t.Fatal(err)
	}
	want := []ContainerInfo{{Name: "web", State: "running", Networks: []string{"claude"}, Attachments: []Attachment{
		{Network: "claude", IPv4: netip.MustParsePrefix("10.77.0.2/24"), Gateway4: netip.MustParseAddr("10.77.0.1")},
	}}}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("ParseContainers mismatch (-want +got):\n%s", diff)
	}
}

func TestParseContainersRefusesBadInputWithAClearError(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"truncated output", `[{"id":"web","configuration":{"id":"web"`, "reading `container list` output"},
		{"an invalid name", `[{"id":"-rf","status":{"state":"running","networks":[]}}]`, "not a valid container name"},
		{"an unknown state", `[{"id":"web","status":{"state":"paused","networks":[]}}]`, `unknown state "paused"`},
		{"a network of the wrong type", `[{"id":"web","configuration":{"networks":[5]},"status":{"state":"running","networks":[]}}]`, "cannot unmarshal number"},
		{"an address without prefix length", `[{"id":"web","status":{"state":"running","networks":[{"network":"default","ipv4Address":"192.168.64.3"}]}}]`, `IPv4 address "192.168.64.3" is not an IPv4 address with prefix length`},
		{"a gateway outside", `[{"id":"web","status":{"state":"running","networks":[{"network":"default","ipv4Address":"192.168.64.3/24","ipv4Gateway":"10.0.0.1"}]}}]`, "gateway \"10.0.0.1\" is not an IPv4 address inside 192.168.64.0/24"},
		{"a bad IPv6 address", `[{"id":"web","status":{"state":"running","networks":[{"network":"default","ipv4Address":"192.168.64.3/24","ipv6Address":"1.2.3.4/24"}]}}]`, "IPv6 address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseContainers([]byte(tt.json), v122)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseContainers error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseImagesReadsTheReferenceFixture(t *testing.T) {
	got, err := ParseImages(fixture(t, "images-1.2.2.json"), v122)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"docker.io/library/alpine:latest"}, got); diff != "" {
		t.Errorf("ParseImages mismatch (-want +got):\n%s", diff)
	}
}

func TestParseImagesRefusesBadInput(t *testing.T) {
	for _, in := range []string{`[{"configuration":`, `[{"configuration":{"name":7}}]`, `{"configuration":{"name":"a"}}`} {
		if _, err := ParseImages([]byte(in), v122); err == nil {
			t.Errorf("ParseImages(%s) succeeded", in)
		}
	}
}

func TestNormalizeReferenceWritesReferencesAsTheRuntimeLists(t *testing.T) {
	tests := []struct{ in, want string }{
		{"claudepine", "docker.io/library/claudepine:latest"},
		{"claudepine:latest", "docker.io/library/claudepine:latest"},
		{"claudepine:v2", "docker.io/library/claudepine:v2"},
		{"me/tool", "docker.io/me/tool:latest"},
		{"docker.io/library/alpine:3.20", "docker.io/library/alpine:3.20"},
		{"index.docker.io/library/alpine", "docker.io/library/alpine:latest"},
		{"ghcr.io/apple/container-builder-shim/builder:0.6.1", "ghcr.io/apple/container-builder-shim/builder:0.6.1"},
		{"localhost:5000/x", "localhost:5000/x:latest"},
		{"localhost/x:1", "localhost/x:1"},
		{"alpine@sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1", "docker.io/library/alpine@sha256:4bcff63911fcb4448bd4fdacec207030997caf25e9bea4045fa6c8c44de311d1"},
	}
	for _, tt := range tests {
		got, err := NormalizeReference(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("NormalizeReference(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "Claudepine", "a b", "x:", "x@sha256:zz", "-x", "a//b", "x:$(id)"} {
		if got, err := NormalizeReference(bad); err == nil {
			t.Errorf("NormalizeReference(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseStatusReadsEveryState(t *testing.T) {
	tests := []struct{ file, want string }{
		{"status-1.2.2-running.json", ServiceRunning},
		{"status-1.2.2-down.json", ServiceNotRunning},
		{"status-1.4.1-running.json", ServiceRunning},
		{"status-1.4.1-down.json", ServiceNotRunning},
		{"status-1.4.1-unregistered.json", ServiceUnregistered},
	}
	for _, tt := range tests {
		got, err := ParseStatus(fixture(t, tt.file))
		if err != nil || got != tt.want {
			t.Errorf("%s: ParseStatus = %q, %v; want %q", tt.file, got, err, tt.want)
		}
	}
	for _, bad := range []string{`{"status":"sleeping"}`, `{}`, `apiserver is running`, `{"status":1}`, `{"server":{"status":"running"}}`} {
		if got, err := ParseStatus([]byte(bad)); err == nil {
			t.Errorf("ParseStatus(%s) = %q, want an error", bad, got)
		}
	}
}

func TestParseVersionReadsReleaseDevAndHomebrewBuilds(t *testing.T) {
	tests := []struct {
		out  string
		want Version
	}{
		{"container CLI version 1.2.2 (build: release, commit: 3c4c59c)\n", Version{1, 2, 2, "1.2.2"}},
		{"container CLI version 0.1.0 (build: release, commit: 1a2b3c4)\n", Version{0, 1, 0, "0.1.0"}},
		{"container CLI version 0.9.0-35-g899081d (build: debug, commit: 899081d)\n", Version{0, 9, 0, "0.9.0-35-g899081d"}},
		{"container CLI version 0.12.3 (build: release, commit: unspeci)\n", Version{0, 12, 3, "0.12.3"}},
		{"container CLI version 1.4.1 (build: release, commit: unspeci)\n", Version{1, 4, 1, "1.4.1"}},
	}
	for _, tt := range tests {
		got, err := ParseVersion([]byte(tt.out))
		if err != nil || got != tt.want {
			t.Errorf("ParseVersion(%q) = %+v, %v; want %+v", tt.out, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "container CLI 1.2.2", "container CLI version banana (build: x)", "version 1.2 (x)"} {
		if got, err := ParseVersion([]byte(bad)); err == nil {
			t.Errorf("ParseVersion(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestVersionAtLeastComparesEachPart(t *testing.T) {
	v := Version{1, 2, 0, "1.2.0"}
	for _, tt := range []struct {
		maj, min, patch int
		want            bool
	}{{1, 2, 0, true}, {1, 1, 9, true}, {1, 2, 1, false}, {1, 3, 0, false}, {2, 0, 0, false}, {0, 12, 3, true}} {
		if got := v.AtLeast(tt.maj, tt.min, tt.patch); got != tt.want {
			t.Errorf("1.2.0 AtLeast(%d.%d.%d) = %v, want %v", tt.maj, tt.min, tt.patch, got, tt.want)
		}
	}
}

func TestReleasesBefore1_0AreRefusedWithWhatToDo(t *testing.T) {
	for _, raw := range []string{"0.1.0", "0.12.3", "0.12.3-4-gabcdef0"} {
		v, err := ParseVersion([]byte("container CLI version " + raw + " (build: release, commit: unspeci)"))
		if err != nil {
			t.Fatal(err)
		}
		err = v.supported()
		if err == nil || !strings.Contains(err.Error(), "container "+raw+" is installed; claudecontainer needs 1.0 or later") ||
			!strings.Contains(err.Error(), "https://github.com/apple/container/releases") {
			t.Errorf("%s: supported() = %v", raw, err)
		}
	}
	for _, raw := range []string{"1.0.0", "1.2.2", "1.4.1", "2.0.0"} {
		v, _ := ParseVersion([]byte("container CLI version " + raw + " (build: release, commit: 0190097)"))
		if err := v.supported(); err != nil {
			t.Errorf("%s: supported() = %v", raw, err)
		}
	}
}

const ifconfigUTM = "lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384\n" +
	"\toptions=1203<RXCSUM,TXCSUM,TXSTATUS,SW_TIMESTAMP>\n" +
	"\tinet 127.0.0.1 netmask 0xff000000\n" +
	"\tinet6 ::1 prefixlen 128 \n" +
	"\tinet6 fe80::1%lo0 prefixlen 64 scopeid 0x1 \n" +
	"en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n" +
	"\tether 1c:f6:4c:6c:cc:87\n" +
	"\tinet 192.168.1.23 netmask 0xffffff00 broadcast 192.168.1.255\n" +
	"utun4: flags=8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1380\n" +
	"\tinet 100.72.4.9 --> 100.72.4.9 netmask 0xffffffff\n" +
	"bridge100: flags=8a63<UP,BROADCAST,SMART,RUNNING,ALLMULTI,SIMPLEX,MULTICAST> mtu 1500\n" +
	"\toptions=3<RXCSUM,TXCSUM>\n" +
	"\tether 6e:7e:67:eb:5b:64\n" +
	"\tinet 192.168.64.1 netmask 0xffffff00 broadcast 192.168.64.255\n" +
	"\tinet6 fe80::6c7e:67ff:feeb:5b64%bridge100 prefixlen 64 scopeid 0x16\n" +
	"\tinet6 fdc4:f46c:bb17:931b:1099:c71:e430:9090 prefixlen 64 autoconf secured\n" +
	"\tConfiguration:\n" +
	"\t\tid 0:0:0:0:0:0 priority 0 hellotime 0 fwddelay 0\n" +
	"\t\tmaxage 0 holdcnt 0 proto stp maxaddr 100 timeout 1200\n" +
	"\t\troot id 0:0:0:0:0:0 priority 0 ifcost 0 port 0\n" +
	"\t\tipfilter disabled flags 0x0\n" +
	"\tmember: vmenet0 flags=3<LEARNING,DISCOVER>\n" +
	"\t        ifmaxaddr 0 port 21 priority 0 path cost 0\n" +
	"\tnd6 options=201<PERFORMNUD,DAD>\n" +
	"\tmedia: autoselect\n" +
	"\tstatus: active\n" +
	"bridge101: flags=8a63<UP,BROADCAST,SMART,RUNNING,ALLMULTI,SIMPLEX,MULTICAST> mtu 1500\n" +
	"\tinet 192.168.218.1 netmask 0xffffff00 broadcast 192.168.218.255\n" +
	"\tmember: vmenet1 flags=3<LEARNING,DISCOVER>\n"

func TestParseIfconfigReadsMacOSOutput(t *testing.T) {
	got, err := ParseIfconfig([]byte(ifconfigUTM))
	if err != nil {
		t.Fatal(err)
	}
	want := []Interface{
		{Name: "lo0", IPv4: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
		{Name: "en0", IPv4: []netip.Prefix{netip.MustParsePrefix("192.168.1.23/24")}},
		{Name: "utun4", IPv4: []netip.Prefix{netip.MustParsePrefix("100.72.4.9/32")}},
		{Name: "bridge100", IPv4: []netip.Prefix{netip.MustParsePrefix("192.168.64.1/24")}},
		{Name: "bridge101", IPv4: []netip.Prefix{netip.MustParsePrefix("192.168.218.1/24")}},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("ParseIfconfig mismatch (-want +got):\n%s", diff)
	}
}

func TestParseIfconfigRefusesMalformedAddresses(t *testing.T) {
	for _, in := range []string{
		"\tinet 10.0.0.1 netmask 0xffffff00\n",
		"bridge100: flags=8863<UP> mtu 1500\n\tinet 10.0.0.300 netmask 0xffffff00\n",
		"bridge100: flags=8863<UP> mtu 1500\n\tinet 10.0.0.1 netmask 0xff00ff00\n",
	} {
		if _, err := ParseIfconfig([]byte(in)); err == nil {
			t.Errorf("ParseIfconfig(%q) succeeded", in)
		}
	}
}

func TestBridgeForFindsTheInterfaceHoldingTheGateway(t *testing.T) {
	ifs, err := ParseIfconfig([]byte(ifconfigUTM))
	if err != nil {
		t.Fatal(err)
	}
	claude := policy.Network{Name: "claude", IPv4: netip.MustParsePrefix("192.168.218.0/24"), Gateway4: netip.MustParseAddr("192.168.218.1")}
	tests := []struct {
		name    string
		ifs     []Interface
		network policy.Network
		want    string
		wantErr string
	}{
		{"a network with a running container", ifs, claude, "bridge101", ""},
		{"the default network", ifs, defaultNet, "bridge100", ""},
		{"a network with no container yet", ifs, devnet, "", ""},
		{"a subnet that collides with the LAN", ifs, policy.Network{Name: "x", IPv4: netip.MustParsePrefix("192.168.1.0/24"), Gateway4: netip.MustParseAddr("192.168.1.23")}, "", `on interface "en0", not on a vmnet bridge`},
		{"a gateway on two interfaces", append(append([]Interface{}, ifs...), Interface{Name: "bridge102", IPv4: []netip.Prefix{netip.MustParsePrefix("192.168.218.1/24")}}), claude, "", "on several interfaces (bridge101, bridge102)"},
		{"a bridge whose netmask disagrees", []Interface{{Name: "bridge101", IPv4: []netip.Prefix{netip.MustParsePrefix("192.168.218.1/16")}}}, claude, "", "disagree on the subnet"},
		{"an interface name too long for a rule", []Interface{{Name: "bridge1234567890123", IPv4: []netip.Prefix{netip.MustParsePrefix("192.168.218.1/24")}}}, claude, "", "not on a vmnet bridge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := BridgeFor(tt.ifs, tt.network)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("BridgeFor = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("BridgeFor = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
