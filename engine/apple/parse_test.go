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

func TestFindNetworkReadsEveryReleasesFixture(t *testing.T) {
	tests := []struct {
		file, name string
		want       policy.Network
	}{
		{"networks-0.7.1.json", "default", defaultNet},
		{"networks-0.7.1.json", "devnet", devnet},
		{"networks-0.12.3.json", "default", with6(defaultNet, "fd5e:9a3b:1c2d:4e5f::/64")},
		{"networks-0.12.3.json", "devnet", with6(devnet, "fd12:3456:789a:1::/64")},
		{"networks-1.2.2.json", "default", with6(defaultNet, "fd5e:9a3b:1c2d:4e5f::/64")},
		{"networks-1.2.2.json", "devnet", with6(devnet, "fd12:3456:789a:1::/64")},
		{"networks-0.5.0-unmasked.json", "default", defaultNet},
		{"networks-0.7.1-created.json", "default", defaultNet},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.name, func(t *testing.T) {
			got, err := FindNetwork(fixture(t, tt.file), tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("FindNetwork mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseNetworksReportsModeAndState(t *testing.T) {
	got, err := ParseNetworks(fixture(t, "networks-0.7.1-created.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := []NetworkInfo{
		{Name: "default", Mode: "nat", Running: true, State: "running", subnet4: "192.168.64.0/24", gateway4: "192.168.64.1"},
		{Name: "claude", Mode: "nat", State: "created"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(NetworkInfo{})); diff != "" {
		t.Errorf("ParseNetworks mismatch (-want +got):\n%s", diff)
	}
}

func TestFindNetworkRefusesBadInputWithAClearError(t *testing.T) {
	tests := []struct {
		name, json, network, want string
	}{
		{"truncated output", `[{"id":"claude","state":"running","config":{"id":"cl`, "claude", "reading `container network list` output"},
		{"an object instead of a list", `{"id":"claude"}`, "claude", "cannot unmarshal object"},
		{"a subnet of the wrong type", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":24,"ipv4Gateway":"10.0.0.1"}}]`, "claude", "cannot unmarshal number"},
		{"no id", `[{"configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.0.0.0/24"}}]`, "claude", `no "id" key`},
		{"no configuration", `[{"id":"claude","status":{"ipv4Subnet":"10.0.0.0/24"}}]`, "claude", `no "config" or "configuration" key`},
		{"an id that disagrees with the configuration", `[{"id":"claude","configuration":{"name":"other"},"status":{"ipv4Subnet":"10.0.0.0/24"}}]`, "claude", `its configuration names it "other"`},
		{"an invalid name", `[{"id":"Claude;rm","config":{"id":"Claude;rm"},"status":{"address":"10.0.0.0/24"}}]`, "claude", "not a valid container network name"},
		{"a status without a subnet", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Gateway":"10.0.0.1"}}]`, "claude", "no IPv4 subnet"},
		{"an invalid CIDR", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.0.0.300/24","ipv4Gateway":"10.0.0.1"}}]`, "claude", `IPv4 subnet "10.0.0.300/24"`},
		{"an IPv6 subnet where IPv4 belongs", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"fd00::/64"}}]`, "claude", "not an IPv4 prefix"},
		{"a public subnet", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"8.8.8.0/24","ipv4Gateway":"8.8.8.1"}}]`, "claude", "not a private range"},
		{"a tiny subnet", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.0.0.0/31"}}]`, "claude", "between /8 and /30"},
		{"a gateway outside the subnet", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.78.0.1"}}]`, "claude", "gateway 10.78.0.1 is not a host address inside 10.77.0.0/24"},
		{"the network address as gateway", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.0"}}]`, "claude", "not a host address"},
		{"the broadcast address as gateway", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.255"}}]`, "claude", "not a host address"},
		{"an unparsable gateway", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"gw"}}]`, "claude", `gateway "gw"`},
		{"a global IPv6 subnet", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.1","ipv6Subnet":"2001:db8::/64"}}]`, "claude", "not a unique local"},
		{"a huge IPv6 subnet", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.1","ipv6Subnet":"fd00::/8"}}]`, "claude", "/48 to /64"},
		{"an IPv4 subnet as IPv6", `[{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.1","ipv6Subnet":"10.0.0.0/24"}}]`, "claude", "not an IPv6 prefix"},
		{"a network that was created but never started", string(fixture(t, "networks-0.7.1-created.json")), "claude", `network "claude" exists but is not running (created)`},
		{"a 1.x network without status", `[{"id":"claude","configuration":{"name":"claude"}}]`, "claude", "not running (without status)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FindNetwork([]byte(tt.json), tt.network)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FindNetwork error = %v, want one containing %q", err, tt.want)
			}
			if errors.Is(err, engine.ErrNotFound) {
				t.Errorf("FindNetwork error %v wraps ErrNotFound", err)
			}
		})
	}
}

func TestFindNetworkWrapsErrNotFoundForAMissingNetwork(t *testing.T) {
	for _, file := range []string{"networks-0.7.1.json", "networks-0.12.3.json", "networks-1.2.2.json"} {
		_, err := FindNetwork(fixture(t, file), "claude")
		if !errors.Is(err, engine.ErrNotFound) {
			t.Errorf("%s: FindNetwork(claude) error = %v, want ErrNotFound", file, err)
		}
	}
	if _, err := FindNetwork([]byte("[]"), "claude"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("FindNetwork on an empty list: error = %v, want ErrNotFound", err)
	}
}

func TestFindNetworkDecodesEscapedSlashes(t *testing.T) {
	raw := fixture(t, "networks-1.2.2.json")
	if !strings.Contains(string(raw), `10.77.0.0\/24`) {
		t.Fatal("fixture lost its escaped slashes")
	}
	got, err := FindNetwork(raw, "devnet")
	if err != nil {
		t.Fatal(err)
	}
	if got.IPv4.String() != "10.77.0.0/24" {
		t.Errorf("subnet = %s, want 10.77.0.0/24", got.IPv4)
	}
}

func TestParseContainersReadsEveryReleasesFixture(t *testing.T) {
	web := ContainerInfo{
		Name: "web", State: "running", Image: "docker.io/library/nginx:latest", Networks: []string{"default"},
		Attachments: []Attachment{{
			Network: "default", IPv4: netip.MustParsePrefix("192.168.64.3/24"), Gateway4: netip.MustParseAddr("192.168.64.1"),
		}},
	}
	web6 := web
	web6.Attachments = []Attachment{{
		Network: "default", IPv4: netip.MustParsePrefix("192.168.64.3/24"), Gateway4: netip.MustParseAddr("192.168.64.1"),
		IPv6: netip.MustParsePrefix("fd5e:9a3b:1c2d:4e5f:f061:5eff:fef2:f47e/64"),
	}}
	old := ContainerInfo{Name: "old", State: "stopped", Image: "docker.io/library/alpine:latest", Networks: []string{"default"}}
	tests := []struct {
		file string
		want []ContainerInfo
	}{
		{"containers-0.3.0.json", []ContainerInfo{{
			Name: "claude-alpine", State: "running", Image: "docker.io/library/claudepine:latest", Networks: []string{"claude"},
			Attachments: []Attachment{{Network: "claude", IPv4: netip.MustParsePrefix("192.168.218.2/24"), Gateway4: netip.MustParseAddr("192.168.218.1")}},
		}}},
		{"containers-0.7.1.json", []ContainerInfo{web, old}},
		{"containers-0.12.3.json", []ContainerInfo{web6}},
		{"containers-1.2.2.json", []ContainerInfo{web6, old}},
	}
	cmpAddr := cmp.Options{cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseContainers(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpAddr); diff != "" {
				t.Errorf("ParseContainers mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseContainersRefusesBadInputWithAClearError(t *testing.T) {
	tests := []struct{ name, json, want string }{
		{"truncated output", `[{"status":"running","configuration":{"id":"web"`, "reading `container ls` output"},
		{"no configuration", `[{"status":"running","id":"web"}]`, `no "configuration" key`},
		{"no id anywhere", `[{"status":"running","configuration":{}}]`, `no "id" key`},
		{"an id that disagrees", `[{"id":"web","configuration":{"id":"other"},"status":{"state":"running","networks":[]}}]`, `its configuration names it "other"`},
		{"an invalid name", `[{"status":"running","configuration":{"id":"-rf"},"networks":[]}]`, "not a valid container name"},
		{"no status", `[{"configuration":{"id":"web"},"networks":[]}]`, "neither a state nor an object"},
		{"a status object without state", `[{"id":"web","configuration":{"id":"web"},"status":{"networks":[]}}]`, "neither a state nor an object"},
		{"an unknown state", `[{"status":"paused","configuration":{"id":"web"},"networks":[]}]`, `unknown state "paused"`},
		{"a network of the wrong type", `[{"status":"running","configuration":{"id":"web","networks":[5]},"networks":[]}]`, "neither a name nor an object"},
		{"a bad attachment address", `[{"status":"running","configuration":{"id":"web"},"networks":[{"network":"default","address":"192.168.64.3"}]}]`, `IPv4 address "192.168.64.3" is not an IPv4 address with prefix length`},
		{"an attachment gateway outside", `[{"status":"running","configuration":{"id":"web"},"networks":[{"network":"default","ipv4Address":"192.168.64.3/24","ipv4Gateway":"10.0.0.1"}]}]`, "gateway \"10.0.0.1\" is not an IPv4 address inside 192.168.64.0/24"},
		{"a bad IPv6 attachment", `[{"id":"web","configuration":{"id":"web"},"status":{"state":"running","networks":[{"network":"default","ipv4Address":"192.168.64.3/24","ipv6Address":"1.2.3.4/24"}]}}]`, "IPv6 address"},
		{"an attachment without network", `[{"status":"running","configuration":{"id":"web"},"networks":[{"address":"192.168.64.3/24"}]}]`, "no valid network name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseContainers([]byte(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseContainers error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestParseImagesReadsEveryReleasesFixture(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"images-0.8.0.json", []string{"docker.io/library/alpine:latest", "docker.io/library/claudepine:latest"}},
		{"images-0.12.3.json", []string{"docker.io/library/alpine:latest", "ghcr.io/apple/container-builder-shim/builder:0.6.1"}},
		{"images-1.2.2.json", []string{"docker.io/library/alpine:latest"}},
	}
	for _, tt := range tests {
		got, err := ParseImages(fixture(t, tt.file))
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: ParseImages mismatch (-want +got):\n%s", tt.file, diff)
		}
	}
}

func TestParseImagesRefusesBadInput(t *testing.T) {
	for _, in := range []string{`[{"reference":`, `[{"descriptor":{}}]`, `[{"reference":7}]`, `{"reference":"a"}`} {
		if _, err := ParseImages([]byte(in)); err == nil {
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
		{"status-0.12.3-unregistered.json", ServiceUnregistered},
	}
	for _, tt := range tests {
		got, err := ParseStatus(fixture(t, tt.file))
		if err != nil || got != tt.want {
			t.Errorf("%s: ParseStatus = %q, %v; want %q", tt.file, got, err, tt.want)
		}
	}
	for _, bad := range []string{`{"status":"sleeping"}`, `{}`, `apiserver is running`, `{"status":1}`} {
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
	v := Version{0, 9, 0, "0.9.0"}
	for _, tt := range []struct {
		maj, min, patch int
		want            bool
	}{{0, 9, 0, true}, {0, 8, 9, true}, {0, 9, 1, false}, {0, 10, 0, false}, {1, 0, 0, false}, {0, 1, 0, true}} {
		if got := v.AtLeast(tt.maj, tt.min, tt.patch); got != tt.want {
			t.Errorf("0.9.0 AtLeast(%d.%d.%d) = %v, want %v", tt.maj, tt.min, tt.patch, got, tt.want)
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
