package nft

import (
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/policy"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current rendering")

func mustPolicy(t testing.TB, n policy.Network, table string, dns ...netip.Addr) policy.Policy {
	t.Helper()
	p, err := policy.New(n, table)
	if err != nil {
		t.Fatal(err)
	}
	if len(dns) > 0 {
		p.DNS = dns
	}
	return p
}

func goldenPolicies(t testing.TB) map[string]policy.Policy {
	a, pf := netip.MustParseAddr, netip.MustParsePrefix
	return map[string]policy.Policy{
		"ipv4-only": mustPolicy(t, policy.Network{
			Name: "claude", IPv4: pf("192.168.218.0/24"), Gateway4: a("192.168.218.1"),
		}, "allowed_destinations"),
		"dual-stack": mustPolicy(t, policy.Network{
			Name: "claude", IPv4: pf("192.168.218.0/24"), Gateway4: a("192.168.218.1"),
			IPv6: pf("fd00:c1a0:de::/64"), Interface: "podman1",
		}, "allowed_destinations"),
		"custom-dns": mustPolicy(t, policy.Network{
			Name: "claude", IPv4: pf("10.89.0.0/24"), Gateway4: a("10.89.0.1"),
			IPv6: pf("fd00:c1a0:de::/64"), Interface: "br-claude",
		}, "claude_allow", a("10.89.0.53"), a("fd00:c1a0:de::53")),
		"dns-filter": withFilter(mustPolicy(t, policy.Network{
			Name: "claude", IPv4: pf("192.168.218.0/24"), Gateway4: a("192.168.218.1"),
			IPv6: pf("fd00:c1a0:de::/64"), Interface: "podman1",
		}, "allowed_destinations"), 5380),
	}
}

// withFilter returns p with its DNS sent to a DNS filter on port.
func withFilter(p policy.Policy, port uint16) policy.Policy {
	p.Filter = &policy.Filter{Port: port}
	return p
}

func TestRenderMatchesTheGoldenFiles(t *testing.T) {
	for name, p := range goldenPolicies(t) {
		t.Run(name, func(t *testing.T) {
			got, err := Render(p, "")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./nft -run TestRender -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("rendering differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

// TestGoldenFilesPassNftCheck hands every golden file, and a script that
// fills the sets with many elements, to the real nft parser in check mode
// (-c), which evaluates the whole transaction against the kernel without
// committing it.
func TestGoldenFilesPassNftCheck(t *testing.T) {
	nft := needNft(t)
	files, err := filepath.Glob("testdata/*.golden")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := exec.Command(nft, "-c", "-f", f).CombinedOutput()
			if err != nil {
				t.Errorf("nft -c -f %s: %v\n%s", f, err, out)
			}
		})
	}
	t.Run("with twenty thousand elements", func(t *testing.T) {
		script, err := Render(goldenPolicies(t)["dual-stack"], "")
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		b.WriteString(script)
		fill(&b, DefaultTable, "allowed_destinations", manyPrefixes(t, 15000, 5000), false)
		cmd := exec.Command(nft, "-c", "-f", "-")
		cmd.Stdin = strings.NewReader(b.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("nft -c: %v\n%s", err, out)
		}
	})
}

func needNft(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nft")
	if err != nil {
		t.Skip("nft is not installed (apt-get install -y nftables): skipping the real parser check")
	}
	if os.Geteuid() != 0 {
		t.Skip("nft needs root even in check mode: skipping the real parser check")
	}
	if out, err := exec.Command(path, "-c", "add", "table", "inet", "claude_check").CombinedOutput(); err != nil {
		t.Skipf("nft cannot talk to the kernel here (%v: %s): skipping the real parser check", err, out)
	}
	return path
}

// manyPrefixes returns a set of n4 IPv4 and n6 IPv6 prefixes spread over the
// address space, generated deterministically.
func manyPrefixes(t testing.TB, n4, n6 int) *netipx.IPSet {
	t.Helper()
	var b netipx.IPSetBuilder
	x := uint32(2463534242)
	next := func() uint32 { x ^= x << 13; x ^= x >> 17; x ^= x << 5; return x }
	for range n4 {
		v := next()
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		b.AddPrefix(netip.PrefixFrom(a, 20+int(v%13)).Masked())
	}
	for range n6 {
		var a16 [16]byte
		a16[0] = 0x20
		for i := 1; i < 8; i += 4 {
			v := next()
			a16[i], a16[i+1], a16[i+2], a16[i+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		}
		b.AddPrefix(netip.PrefixFrom(netip.AddrFrom16(a16), 48+int(next()%17)).Masked())
	}
	s, err := b.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRenderRefusesWhatItCannotRenderSafely(t *testing.T) {
	good := goldenPolicies(t)["dual-stack"]
	cases := []struct {
		name   string
		table  string
		mutate func(*policy.Policy)
		want   string
	}{
		{"a table name with a space", "claude firewall", func(*policy.Policy) {}, "nftables table name"},
		{"a table name with a quote", `claude"`, func(*policy.Policy) {}, "nftables table name"},
		{"an invalid policy", "", func(p *policy.Policy) { p.Network.Interface = `br0" accept` }, "not a valid interface name"},
		{"a set prefix with a semicolon", "", func(p *policy.Policy) { p.Table = "a;flush ruleset" }, "table name"},
		{"an IPv4-mapped DNS server", "", func(p *policy.Policy) {
			p.DNS = []netip.Addr{netip.MustParseAddr("::ffff:192.168.218.1")}
		}, "IPv4-mapped"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := good
			p.DNS = append([]netip.Addr(nil), good.DNS...)
			c.mutate(&p)
			_, err := Render(p, c.table)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Render: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestFillChunksElementsAndSkipsMappedPrefixes(t *testing.T) {
	var b netipx.IPSetBuilder
	for i := range 1030 {
		b.Add(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}))
	}
	b.AddPrefix(netip.MustParsePrefix("2001:db8::/32"))
	b.AddPrefix(netip.MustParsePrefix("::ffff:198.18.0.0/112"))
	set, err := b.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	fill(&sb, "t", "allow", set, true)
	lines := strings.Split(strings.TrimSpace(sb.String()), "\n")
	var got []string
	for _, l := range lines {
		got = append(got, l[:min(len(l), 40)]+"…"+countElems(l))
	}
	want := []string{
		"flush set inet t allow_v4…",
		"flush set inet t allow_v6…",
		"add element inet t allow_v4 { 10.0.0.1/3…512",
		"add element inet t allow_v4 { 10.2.0.1/3…512",
		"add element inet t allow_v4 { 10.4.0.1/3…6",
		"add element inet t allow_v6 { 2001:db8::…1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statements (-want +got):\n%s", diff)
	}
}

func countElems(line string) string {
	_, list, ok := strings.Cut(line, "{")
	if !ok {
		return ""
	}
	return strconv.Itoa(strings.Count(list, ",") + 1)
}
