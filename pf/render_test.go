package pf

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/policy/policytest"
)

var update = flag.Bool("update", false, "rewrite pf/testdata/*.golden from the current renderer")

const testAnchor = "claude_firewall"

// goldens names the policies whose rendering is kept in testdata.
var goldens = map[string]func() policy.Policy{
	"ipv4-only":               policytest.IPv4Only,
	"dual-stack":              policytest.DualStack,
	"dual-stack-no-interface": policytest.DualStackNoInterface,
	"macos15":                 policytest.MacOS15,
	"custom-dns":              policytest.CustomDNS,
}

func TestRenderMatchesTheGoldenFiles(t *testing.T) {
	for name, pol := range goldens {
		t.Run(name, func(t *testing.T) {
			got, err := Render(pol(), Options{Anchor: testAnchor})
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
				t.Fatalf("%v (run go test ./pf -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s differs from the golden file (-want +got):\n%s", name, diff)
			}
		})
	}
}

func TestTheMacOS15GoldenIsTheMaskedSubnet(t *testing.T) {
	reported := policytest.MacOS15()
	reported.Network.IPv4 = netip.MustParsePrefix("192.168.64.1/24") // as macOS 15 reports it
	if text, err := Render(reported, Options{Anchor: testAnchor}); err == nil {
		t.Errorf("rendered the subnet as reported, unmasked:\n%s", text)
	}
	got, err := Render(policytest.MacOS15(), Options{Anchor: testAnchor})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `ctr_net4 = "192.168.64.0/24"`) || strings.Contains(got, "192.168.64.1/24") {
		t.Errorf("the macOS 15 anchor does not use the masked subnet:\n%s", got)
	}
}

func TestEveryRuleIsQuickAndLabelled(t *testing.T) {
	for name, pol := range goldens {
		text, err := Render(pol(), Options{Anchor: testAnchor})
		if err != nil {
			t.Fatal(err)
		}
		seen, dropLabels := map[string]bool{}, map[string]bool{}
		for _, r := range pol().Rules() {
			if r.Verdict == policy.Drop {
				if !strings.Contains(r.Note, "made-up") && !strings.Contains(r.Note, "sending as the host") {
					t.Errorf("%s: rule %s drops, but is not about made-up sources: %q", name, r.Label, r.Note)
				}
				dropLabels[LabelPrefix+r.Label] = true
			}
		}
		for _, line := range ruleLines(text) {
			words := strings.Fields(line)
			switch words[0] {
			case "pass", "block":
			default:
				t.Errorf("%s: unexpected statement %q", name, line)
				continue
			}
			if !strings.Contains(line, " quick ") {
				t.Errorf("%s: rule without quick: %q", name, line)
			}
			ls := labels(line)
			if len(ls) != 1 || !strings.HasPrefix(ls[0], LabelPrefix) || seen[ls[0]] {
				t.Errorf("%s: rule without a unique %s label: %q", name, LabelPrefix, line)
			}
			if len(ls) == 1 {
				seen[ls[0]] = true
			}
			// Only made-up sources are dropped unanswered (the rules whose
			// verdict is Drop); everything else must fail fast.
			if words[0] == "block" && words[1] != "return" && (len(ls) != 1 || !dropLabels[ls[0]]) {
				t.Errorf("%s: block rule that does not return: %q", name, line)
			}
		}
	}
}

func TestRenderNeverWritesOptionsOrMainRulesetStatements(t *testing.T) {
	forbidden := []string{"set ", "scrub", "nat ", "rdr ", "anchor ", "load ", "antispoof", "flush"}
	for name, pol := range goldens {
		text, err := Render(pol(), Options{Anchor: testAnchor})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range ruleLines(text) {
			for _, f := range forbidden {
				if strings.HasPrefix(line, f) {
					t.Errorf("%s: %q", name, line)
				}
			}
		}
	}
}

func TestRenderRefusesWhatCannotBeRenderedSafely(t *testing.T) {
	good := policytest.DualStack()
	cases := []struct {
		name   string
		mutate func(*policy.Policy, *Options)
	}{
		{"an invalid policy", func(p *policy.Policy, _ *Options) { p.Network.IPv4 = netip.Prefix{} }},
		{"a table name with a space", func(p *policy.Policy, _ *Options) { p.Table = "a b" }},
		{"an anchor name with a slash", func(_ *policy.Policy, o *Options) { o.Anchor = "claude/sub" }},
		{"an anchor name with a newline", func(_ *policy.Policy, o *Options) { o.Anchor = "claude\npass" }},
		{"an empty anchor name", func(_ *policy.Policy, o *Options) { o.Anchor = "" }},
		{"the loopback interface", func(p *policy.Policy, _ *Options) { p.Network.Interface = "lo0" }},
		{"the uplink", func(p *policy.Policy, _ *Options) { p.Network.Interface = "en0" }},
		{"a network name with a newline", func(p *policy.Policy, _ *Options) { p.Network.Name = "claude\npass all" }},
		{"only an IPv6 DNS server on an IPv4-only network", func(p *policy.Policy, _ *Options) {
			p.Network.IPv6 = netip.Prefix{}
			p.DNS = []netip.Addr{netip.MustParseAddr("fd00::53")}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, o := good, Options{Anchor: testAnchor}
			p.DNS = append([]netip.Addr(nil), good.DNS...)
			c.mutate(&p, &o)
			if text, err := Render(p, o); err == nil {
				t.Errorf("Render succeeded:\n%s", text)
			}
		})
	}
}

func TestRenderWritesAnIPv4MappedDNSServerAsIPv4(t *testing.T) {
	p := policytest.IPv4Only()
	p.DNS = []netip.Addr{netip.MustParseAddr("::ffff:192.168.218.1")}
	text, err := Render(p, Options{Anchor: testAnchor})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, `ctr_dns4 = "{ 192.168.218.1 }"`) {
		t.Errorf("DNS macro not in IPv4 form:\n%s", text)
	}
}

// ruleLines returns the statements of an anchor text other than macro
// definitions and table declarations, with comments removed.
func ruleLines(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "table ") || strings.Contains(line, " = ") {
			continue
		}
		out = append(out, line)
	}
	return out
}

// TestRenderRefusesAPolicyItCannotPrintWhole makes sure a rule pf has no
// form for (the DNS filter's redirect) stops the rendering instead of
// being left out or printed as something else.
func TestRenderRefusesAPolicyItCannotPrintWhole(t *testing.T) {
	p := goldens["dual-stack"]()
	p.Filter = &policy.Filter{Port: 5380}
	if text, err := Render(p, Options{Anchor: testAnchor}); err == nil {
		t.Errorf("rendered a policy with a DNS filter:\n%s", text)
	}
}
