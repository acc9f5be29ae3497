package apple

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/policy"
)

// The fuzz targets below feed the readers of `container`'s output (the
// fixtures follow release 1.2.2 and 1.4.1) and of macOS ifconfig arbitrary
// input, and check that whatever they return is what the firewall may use:
// a network that policy.Validate accepts, checked names and addresses, a
// bridge name that passes policy.ValidInterface; and that an error comes
// with nothing else.

// seedFiles adds the named files of testdata to the corpus.
func seedFiles(f *testing.F, names ...string) {
	f.Helper()
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzFindNetwork(f *testing.F) {
	seedFiles(f, "networks-1.2.2.json")
	f.Add([]byte(`[{"id":"default","status":{"ipv4Subnet":"192.168.64.1\/24","ipv4Gateway":"192.168.64.1"}}]`))
	f.Add([]byte(`[{"id":"Old Net;x","status":{"ipv4Subnet":"garbage"}},{"id":"half","configuration":{}},` +
		`{"id":"claude","configuration":{"name":"claude"},"status":{"ipv4Subnet":"10.77.0.0\/24","ipv4Gateway":"10.77.0.1"}}]`))
	f.Add([]byte(`[{"id":"claude","future":{"x":[1,2]},"status":{"ipv4Subnet":"10.77.0.0/24","ipv4Gateway":"10.77.0.1","ipv4Nat":true}}]`))
	f.Add([]byte(`[{"id":"claude","status":{"ipv4Subnet":"10.77.0.0/24","ipv6Subnet":"fd12:3456:789a:1::/64"}}]`))
	f.Add([]byte(`[{"id":"claude","status":{"ipv4Subnet":"10.77.0.0/30","ipv4Gateway":"10.77.0.3"}}]`))
	f.Add([]byte(`[{"id":"claude","status":{"ipv4Subnet":"8.8.8.0/24"}}]`))
	f.Add([]byte(`[{"id":"claude","status":{"ipv4Subnet":"10.0.0.0/24","ipv6Subnet":"::ffff:10.0.0.0/120"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, name := range []string{"claude", "default", "devnet"} {
			n, err := FindNetwork(data, name, v141)
			if err != nil {
				if n != (policy.Network{}) {
					t.Fatalf("error %v came with network %+v", err, n)
				}
				continue
			}
			if n.Name != name || n.Interface != "" {
				t.Fatalf("FindNetwork(%q) = %+v", name, n)
			}
			if _, err := policy.New(n, "claude_firewall"); err != nil {
				t.Fatalf("FindNetwork(%q) = %+v, which cannot be rendered: %v", name, n, err)
			}
			if n.Gateway4 == n.IPv4.Addr() || n.Gateway4 == lastAddr(n.IPv4) {
				t.Fatalf("FindNetwork(%q): gateway %s is not a host address of %s", name, n.Gateway4, n.IPv4)
			}
			if n.IPv6.IsValid() && (!n.IPv6.Addr().IsPrivate() || n.IPv6.Bits() > 64) {
				t.Fatalf("FindNetwork(%q): IPv6 subnet %s", name, n.IPv6)
			}
		}
	})
}

func FuzzParseContainers(f *testing.F) {
	seedFiles(f, "containers-1.2.2.json")
	f.Add([]byte(`[{"id":"web","configuration":{"networks":[{"network":"Old Net"},{"network":"claude"}]},"status":{"state":"running","networks":[` +
		`{"network":"Old Net","ipv4Address":"10.1.0.2/24","ipv4Gateway":"10.1.0.1"},{"network":"claude","ipv4Address":"10.77.0.2/24","ipv4Gateway":"10.77.0.1"}]}}]`))
	f.Add([]byte(`[{"id":"web","labels":{},"status":{"state":"stopped","exitCode":0,"exitedAt":"2026-09-10T10:00:00Z","networks":[]}}]`))
	f.Add([]byte(`[{"id":"web","status":{"state":"running","networks":[{"network":"default","ipv4Address":"192.168.64.3/24","ipv6Address":"fd00::3/64"}]}}]`))
	f.Add([]byte(`[{"id":"-rf","status":{"state":"running","networks":[]}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cs, err := ParseContainers(data, v141)
		if err != nil {
			if cs != nil {
				t.Fatalf("error %v came with %+v", err, cs)
			}
			return
		}
		for _, c := range cs {
			if !containerName.MatchString(c.Name) {
				t.Fatalf("container name %q", c.Name)
			}
			switch c.State {
			case "running", "stopped", "stopping", "unknown":
			default:
				t.Fatalf("container %q: state %q", c.Name, c.State)
			}
			for _, n := range c.Networks {
				if !networkName.MatchString(n) {
					t.Fatalf("container %q: network name %q", c.Name, n)
				}
			}
			for _, a := range c.Attachments {
				if !networkName.MatchString(a.Network) {
					t.Fatalf("container %q: attachment to network %q", c.Name, a.Network)
				}
				if !a.IPv4.IsValid() || !a.IPv4.Addr().Is4() {
					t.Fatalf("container %q: IPv4 %v", c.Name, a.IPv4)
				}
				if a.Gateway4.IsValid() && (!a.Gateway4.Is4() || !a.IPv4.Masked().Contains(a.Gateway4)) {
					t.Fatalf("container %q: gateway %v outside %v", c.Name, a.Gateway4, a.IPv4)
				}
				if a.IPv6.IsValid() && (!a.IPv6.Addr().Is6() || a.IPv6.Addr().Is4In6() || a.IPv6.Addr().Zone() != "") {
					t.Fatalf("container %q: IPv6 %v", c.Name, a.IPv6)
				}
			}
		}
	})
}

func FuzzParseImages(f *testing.F) {
	seedFiles(f, "images-1.2.2.json")
	f.Add([]byte(`[{"id":"ab","configuration":{"name":"docker.io/library/alpine:latest","annotations":{}},"variants":[],"size":1}]`))
	f.Add([]byte(`[{"reference":"docker.io/library/alpine:latest"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := ParseImages(data, v141)
		if err != nil && refs != nil {
			t.Fatalf("error %v came with %q", err, refs)
		}
		// An image is found by comparing its reference with the one
		// NormalizeReference writes, so that one must be a fixed point.
		for _, ref := range refs {
			n, err := NormalizeReference(ref)
			if err != nil {
				continue
			}
			if again, err := NormalizeReference(n); err != nil || again != n {
				t.Fatalf("NormalizeReference(%q) = %q, but NormalizeReference(%q) = %q, %v", ref, n, n, again, err)
			}
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	seedFiles(f, "status-1.2.2-running.json", "status-1.2.2-down.json",
		"status-1.4.1-running.json", "status-1.4.1-down.json", "status-1.4.1-unregistered.json")
	f.Add([]byte(`{"server":{"status":"running"}}`))
	f.Add([]byte(`apiserver is running`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStatus(data)
		if err != nil {
			if s != "" {
				t.Fatalf("error %v came with status %q", err, s)
			}
			return
		}
		switch s {
		case ServiceRunning, ServiceNotRunning, ServiceUnregistered:
		default:
			t.Fatalf("status %q", s)
		}
	})
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{
		"container CLI version 1.2.2 (build: release, commit: 3c4c59c)\n",
		"container CLI version 1.4.1 (build: release, commit: unspeci)\n",
		"container CLI version 0.9.0-35-g899081d (build: debug, commit: 899081d)\n",
		"container CLI version 1.0.0+homebrew (build: release, commit: 0190097)\n",
		"container CLI version banana (build: x)",
		"version 1.2 (x)",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		v, err := ParseVersion(out)
		if err != nil {
			if v != (Version{}) {
				t.Fatalf("error %v came with %+v", err, v)
			}
			return
		}
		if !versionNum.MatchString(v.Raw) || v.String() != v.Raw || v.Major > 9999 || v.Minor > 9999 || v.Patch > 9999 {
			t.Fatalf("ParseVersion(%q) = %+v", out, v)
		}
		if !v.AtLeast(v.Major, v.Minor, v.Patch) || v.AtLeast(v.Major, v.Minor, v.Patch+1) {
			t.Fatalf("%+v does not compare with its own release", v)
		}
		if (v.supported() == nil) != (v.Major >= 1) {
			t.Fatalf("%+v: supported() = %v", v, v.supported())
		}
	})
}

func FuzzParseIfconfig(f *testing.F) {
	f.Add([]byte(ifconfigUTM))
	f.Add([]byte("\tinet 10.0.0.1 netmask 0xffffff00\n"))
	f.Add([]byte("bridge100: flags=8863<UP> mtu 1500\n\tinet 10.0.0.300 netmask 0xffffff00\n"))
	f.Add([]byte("bridge100: flags=8863<UP> mtu 1500\n\tinet 10.0.0.1 netmask 0xff00ff00\n"))
	f.Add([]byte("bridge1234567890123: flags=8863<UP> mtu 1500\n\tinet 192.168.218.1 netmask 0xffffff00\n"))
	f.Add([]byte("bridge101: flags=8863<UP> mtu 1500\n\tinet 192.168.218.1 netmask 0xffff0000\nbridge102: flags=0<> mtu 1500\n\tinet 192.168.218.1 netmask 0xffffff00\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		ifs, err := ParseIfconfig(out)
		if err != nil {
			if ifs != nil {
				t.Fatalf("error %v came with %+v", err, ifs)
			}
			return
		}
		nets := []policy.Network{defaultNet, devnet}
		for _, it := range ifs {
			if m := ifHeader.FindStringSubmatch(it.Name + ": flags="); m == nil || m[1] != it.Name {
				t.Fatalf("interface name %q", it.Name)
			}
			for _, p := range it.IPv4 {
				if !p.IsValid() || !p.Addr().Is4() {
					t.Fatalf("interface %q: address %v", it.Name, p)
				}
				// Every network whose gateway an interface holds.
				if q := p.Masked(); q.Addr().IsPrivate() && q.Bits() >= 8 && q.Bits() <= 30 && q.Contains(p.Addr()) {
					nets = append(nets, policy.Network{Name: "claude", IPv4: q, Gateway4: p.Addr()})
				}
			}
		}
		for _, n := range nets {
			name, err := BridgeFor(ifs, n)
			if err != nil {
				if name != "" {
					t.Fatalf("BridgeFor(%v): error %v came with %q", n.IPv4, err, name)
				}
				continue
			}
			if name == "" {
				continue
			}
			if !policy.ValidInterface(name) || !strings.HasPrefix(name, "bridge") {
				t.Fatalf("BridgeFor(%v) = %q", n.IPv4, name)
			}
			n.Interface = name
			if _, err := policy.New(n, "claude_firewall"); err != nil {
				t.Fatalf("BridgeFor(%v) = %q, which cannot be rendered: %v", n.IPv4, name, err)
			}
		}
	})
}
