package pf

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	"ipv4-only":                          policytest.IPv4Only,
	"dual-stack":                         policytest.DualStack,
	"dual-stack-no-interface":            policytest.DualStackNoInterface,
	"macos15":                            policytest.MacOS15,
	"custom-dns":                         policytest.CustomDNS,
	"dns-filter-dual-stack":              func() policy.Policy { return withFilter(policytest.DualStack()) },
	"dns-filter-dual-stack-no-interface": func() policy.Policy { return withFilter(policytest.DualStackNoInterface()) },
	"dns-filter-macos15":                 func() policy.Policy { return withFilter(policytest.MacOS15()) },
}

// filterPort is where the tests' DNS filter listens on loopback.
const filterPort = 5380

// withFilter returns p with its DNS sent to a DNS filter on filterPort.
func withFilter(p policy.Policy) policy.Policy {
	p.Filter = &policy.Filter{Port: filterPort}
	return p
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
				if !strings.Contains(r.Note, "made-up") && !strings.Contains(r.Note, "sending as the host") && !r.Fragments {
					t.Errorf("%s: rule %s drops, but is not about made-up sources: %q", name, r.Label, r.Note)
				}
				dropLabels[LabelPrefix+r.Label] = true
			}
		}
		for _, line := range ruleLines(text) {
			words := strings.Fields(line)
			switch words[0] {
			case "pass", "block":
			case "scrub":
				// Normalization rules take neither quick nor a label.
				if !scrubLine.MatchString(line) {
					t.Errorf("%s: unexpected normalization rule %q", name, line)
				}
				continue
			case "rdr", "no":
				// Translation rules take neither quick nor a label.
				if pol().Filter == nil || !translationLine.MatchString(line) {
					t.Errorf("%s: unexpected translation rule %q", name, line)
				}
				continue
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

// translationLine is the only shape of translation rule Render writes: DNS
// from the containers, redirected to loopback or left to the filter rules.
var translationLine = regexp.MustCompile(`^(rdr pass on (\$ctr_if|! lo0) (inet proto \{ tcp udp \} from \$ctr_net4 to any port 53 -> 127\.0\.0\.1|` +
	`inet6 proto \{ tcp udp \} from \$ctr_net6 to any port 53 -> ::1) port [0-9]+|` +
	`no rdr on \$ctr_if inet proto \{ tcp udp \} from \$ctr_host4 to any port 53)$`)

// scrubLine is the only shape of normalization rule Render writes:
// reassembly of the containers' IPv4 fragments.
var scrubLine = regexp.MustCompile(`^scrub in on (\$ctr_if inet all|! lo0 inet from \$ctr_net4 to any) fragment reassemble$`)

func TestRenderNeverWritesOptionsOrMainRulesetStatements(t *testing.T) {
	forbidden := []string{"set ", "scrub", "nat", "binat", "rdr", "no ", "anchor ", "load ", "antispoof", "flush", "dummynet"}
	for name, pol := range goldens {
		text, err := Render(pol(), Options{Anchor: testAnchor})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range ruleLines(text) {
			if pol().Filter != nil && translationLine.MatchString(line) || scrubLine.MatchString(line) {
				continue
			}
			for _, f := range forbidden {
				if strings.HasPrefix(line, f) {
					t.Errorf("%s: %q", name, line)
				}
			}
		}
	}
}

// TestTheDNSFilterIsReachedOnlyThroughTheRedirect pins what keeps the
// filter's port to the queries pf redirects: it listens on loopback, the
// redirects are the only translation rules, they match only DNS from the
// subnets, and the host's own addresses, on the filter's port as on any
// other, are refused.
func TestTheDNSFilterIsReachedOnlyThroughTheRedirect(t *testing.T) {
	for name, pol := range goldens {
		p := pol()
		if p.Filter == nil {
			continue
		}
		text, err := Render(p, Options{Anchor: testAnchor})
		if err != nil {
			t.Fatal(err)
		}
		var rdrs []string
		for _, line := range ruleLines(text) {
			if strings.HasPrefix(line, "rdr") {
				rdrs = append(rdrs, line)
			}
		}
		want := 1
		if p.Network.IPv6.IsValid() {
			want = 2
		}
		if len(rdrs) != want {
			t.Errorf("%s: %d redirects, want %d: %q", name, len(rdrs), want, rdrs)
		}
		for _, l := range rdrs {
			if !strings.HasSuffix(l, fmt.Sprintf(" port %d", filterPort)) || !strings.Contains(l, " to any port 53 -> ") {
				t.Errorf("%s: %q", name, l)
			}
			if on := "on $ctr_if "; (p.Network.Interface != "") != strings.Contains(l, on) {
				t.Errorf("%s: the redirect is not on the bridge exactly when the bridge is known: %q", name, l)
			}
		}
		if !strings.Contains(text, fmt.Sprintf("table <%s> persist\n", OpenedTable(p.Table))) {
			t.Errorf("%s: the opened table is not declared", name)
		}
	}
}

func TestRenderRefusesADNSFilterItCannotName(t *testing.T) {
	p := withFilter(policytest.DualStack())
	p.Table = "a23456789012345678901234567890" // 30 characters; with "_dns", 34
	if text, err := Render(p, Options{Anchor: testAnchor}); err == nil || !strings.Contains(err.Error(), "_dns") {
		t.Errorf("rendered a table name pf truncates (%v):\n%s", err, text)
	}
	p.Table = "a23456789012345678901234567" // 27 + 4 = 31
	if _, err := Render(p, Options{Anchor: testAnchor}); err != nil {
		t.Error(err)
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

// TestRenderRefusesARedirectItCannotPrint makes sure a redirect pf has no
// form for stops the rendering instead of being left out or printed as
// something else.
func TestRenderRefusesARedirectItCannotPrint(t *testing.T) {
	p := withFilter(policytest.DualStack())
	for _, mutate := range []func(*policy.Rule){
		func(r *policy.Rule) { r.Port = 853 },
		func(r *policy.Rule) { r.Protos = []policy.Proto{policy.UDP} },
		func(r *policy.Rule) { r.Src = policy.MadeUp },
		func(r *policy.Rule) { r.Dst = policy.DNS },
		func(r *policy.Rule) { r.Family = policy.Both },
	} {
		rules := p.Rules()
		i := slices.IndexFunc(rules, func(r policy.Rule) bool { return r.Verdict == policy.Redirect })
		mutate(&rules[i])
		if lines, err := translation(p, rules); err == nil {
			t.Errorf("printed %+v:\n%s", rules[i], strings.Join(lines, "\n"))
		}
	}
	// An earlier rule that would decide a redirected query, but has no
	// "no rdr" form, stops the rendering too.
	rules := p.Rules()
	rules = append([]policy.Rule{{Label: "x", Family: policy.IPv4, Src: policy.MadeUp, Dst: policy.Any, Verdict: policy.Drop}}, rules...)
	if lines, err := translation(p, rules); err == nil {
		t.Errorf("printed:\n%s", strings.Join(lines, "\n"))
	}
}
