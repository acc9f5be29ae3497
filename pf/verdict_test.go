package pf

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/policy/policytest"
)

// TestTheGoldenAnchorsGiveEveryFlowTheVerdictOfDecide is the check that the
// rules implement the policy: every flow of the shared table, evaluated
// against the golden anchor text with pf's semantics, gets the verdict
// policy.Decide gives it.
func TestTheGoldenAnchorsGiveEveryFlowTheVerdictOfDecide(t *testing.T) {
	set := policytest.Allowlist()
	for name, pol := range goldens {
		t.Run(name, func(t *testing.T) {
			p := pol()
			text, err := os.ReadFile(filepath.Join("testdata", name+".golden"))
			if err != nil {
				t.Fatal(err)
			}
			rs, err := parseRuleset(string(text))
			if err != nil {
				t.Fatalf("the golden anchor is outside the evaluated subset: %v", err)
			}
			tables := map[string]*netipx.IPSet{p.Table: set}
			for _, c := range policytest.Cases(p) {
				want := p.Decide(c.Flow, set)
				got, r := rs.eval(packetFor(p, c.Flow), tables)
				if got != want {
					t.Errorf("%s (%v -> %v %s/%d): pf says %s (%s), Decide says %s",
						c.Name, c.Flow.Src, c.Flow.Dst, c.Flow.Proto, c.Flow.Port, got, describe(r), want)
				}
			}
		})
	}
}

func TestRenderedAnchorsAgreeWithDecideForEveryExamplePolicy(t *testing.T) {
	set := policytest.Allowlist()
	for name, p := range policytest.Policies() {
		text, err := Render(p, Options{Anchor: testAnchor})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		rs, err := parseRuleset(text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		tables := map[string]*netipx.IPSet{p.Table: set}
		for _, c := range policytest.Cases(p) {
			if got, want := verdictOf(rs, p, c.Flow, tables), p.Decide(c.Flow, set); got != want {
				t.Errorf("%s: %s: pf says %s, Decide says %s", name, c.Name, got, want)
			}
		}
	}
}

func TestAnEmptyAllowlistRefusesWhatTheAllowlistWouldPass(t *testing.T) {
	p := policytest.DualStack()
	text, err := Render(p, Options{Anchor: testAnchor})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := parseRuleset(text)
	if err != nil {
		t.Fatal(err)
	}
	empty := &netipx.IPSet{}
	for _, c := range policytest.Cases(p) {
		got := verdictOf(rs, p, c.Flow, map[string]*netipx.IPSet{p.Table: empty})
		if want := p.Decide(c.Flow, empty); got != want {
			t.Errorf("%s: pf says %s with an empty table, Decide says %s", c.Name, got, want)
		}
	}
}

// The flows below are outside policy.Flow's model (interfaces, ICMP types,
// loopback), so Decide has nothing to say about them; they pin down choices
// the anchor makes on its own.
func TestPacketsOutsideThePolicyModel(t *testing.T) {
	a := netip.MustParseAddr
	dual, v4only, mac15 := policytest.DualStack(), policytest.IPv4Only(), policytest.MacOS15()
	cases := []struct {
		name string
		p    policy.Policy
		pk   packet
		want policy.Verdict
	}{
		{"the host's own connection to its gateway address over lo0 is left alone", dual,
			packet{dir: "in", ifname: "lo0", src: a("192.168.64.1"), dst: a("192.168.64.1"), proto: "tcp", port: 22}, policy.Ignore},
		{"the host's loopback connection out to its gateway address is left alone", dual,
			packet{dir: "out", ifname: "lo0", src: a("192.168.64.1"), dst: a("192.168.64.1"), proto: "tcp", port: 22}, policy.Ignore},
		{"IPv6 from a link-local container address on the bridge is refused", dual,
			packet{dir: "in", ifname: "bridge100", src: a("fe80::f061:5eff:fef2:f47e"), dst: a("fe80::1"), proto: "tcp", port: 22}, policy.Refuse},
		{"IPv6 from an unknown ULA on the bridge of an IPv4-only network is dropped unanswered", v4only,
			packet{dir: "in", ifname: "bridge100", src: a("fd00::5"), dst: a("2606:50c0::1"), proto: "tcp", port: 443}, drop},
		{"IPv4 from a made-up source on the bridge is dropped unanswered", dual,
			packet{dir: "in", ifname: "bridge100", src: a("203.0.113.99"), dst: a("93.184.216.34"), proto: "udp", port: 443}, drop},
		{"IPv4 from a made-up source on the bridge does not reach the allowlist", dual,
			packet{dir: "in", ifname: "bridge100", src: a("203.0.113.99"), dst: a("140.82.113.4"), proto: "tcp", port: 443}, drop},
		{"IPv4 from a made-up source on the bridge does not reach the host", v4only,
			packet{dir: "in", ifname: "bridge100", src: a("0.0.0.0"), dst: a("255.255.255.255"), proto: "udp", port: 67}, drop},
		{"IPv6 from a made-up global source on the bridge is dropped unanswered", dual,
			packet{dir: "in", ifname: "bridge100", src: a("2001:db8:b::99"), dst: a("2001:db8::1"), proto: "udp", port: 443}, drop},
		{"neighbour solicitations from a container pass without state", dual,
			packet{dir: "in", ifname: "bridge100", src: a("fe80::f061:5eff:fef2:f47e"), dst: a("ff02::1:ff00:1"), proto: "ipv6-icmp", icmp6Type: "neighbrsol"}, passNoState},
		{"neighbour advertisements from a container pass without state", dual,
			packet{dir: "in", ifname: "bridge100", src: a("fd5e:9a3b:1c2d:4e5f::5"), dst: a("fe80::1"), proto: "ipv6-icmp", icmp6Type: "neighbradv"}, passNoState},
		{"a neighbour solicitation addressed past the host is refused", dual,
			packet{dir: "in", ifname: "bridge100", src: a("fd5e:9a3b:1c2d:4e5f::5"), dst: a("2606:50c0::1"), proto: "ipv6-icmp", icmp6Type: "neighbrsol"}, policy.Refuse},
		{"a neighbour advertisement to the host's address on the subnet passes", dual,
			packet{dir: "in", ifname: "bridge100", src: a("fd5e:9a3b:1c2d:4e5f::5"), dst: a("fd5e:9a3b:1c2d:4e5f::1"), proto: "ipv6-icmp", icmp6Type: "neighbradv"}, passNoState},
		{"neighbour discovery on an IPv4-only network passes on-link", v4only,
			packet{dir: "in", ifname: "bridge100", src: a("fe80::5"), dst: a("ff02::1:ff00:1"), proto: "ipv6-icmp", icmp6Type: "neighbrsol"}, passNoState},
		{"other ICMPv6 from a container is refused", dual,
			packet{dir: "in", ifname: "bridge100", src: a("fe80::5"), dst: a("fe80::1"), proto: "ipv6-icmp", icmp6Type: "echoreq"}, policy.Refuse},
		{"router advertisements on the uplink are left alone", dual,
			packet{dir: "in", ifname: "en0", src: a("fe80::1"), dst: a("ff02::1"), proto: "ipv6-icmp", icmp6Type: "routeradv"}, policy.Ignore},
		{"IPv6 on the uplink is left alone when only the subnet is known", policytest.DualStackNoInterface(),
			packet{dir: "in", ifname: "en0", src: a("fe80::1"), dst: a("fe80::2"), proto: "tcp", port: 22}, policy.Ignore},
		{"a packet forwarded to a container from the internet creates no state its answers could use", dual,
			packet{dir: "out", ifname: "bridge100", src: a("93.184.216.34"), dst: a("192.168.64.5"), proto: "udp", port: 5000}, policy.Ignore},
		{"an IPv6 packet forwarded to a container from the internet creates no state", dual,
			packet{dir: "out", ifname: "bridge100", src: a("2001:db8::1"), dst: a("fd5e:9a3b:1c2d:4e5f::5"), proto: "udp", port: 5000}, policy.Ignore},
		{"the host's own traffic to the internet is left alone", dual,
			packet{dir: "out", ifname: "en0", src: a("192.168.1.20"), dst: a("93.184.216.34"), proto: "tcp", port: 443}, policy.Ignore},
		{"a container's connection after NAT on the uplink is left alone", dual,
			packet{dir: "out", ifname: "en0", src: a("192.168.1.20"), dst: a("140.82.113.4"), proto: "tcp", port: 443}, policy.Ignore},
		{"on macOS 15 IPv6 is not filtered (containers have none)", mac15,
			packet{dir: "in", ifname: "bridge100", src: a("fd00::5"), dst: a("2001:db8::1"), proto: "tcp", port: 443}, policy.Ignore},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text, err := Render(c.p, Options{Anchor: testAnchor})
			if err != nil {
				t.Fatal(err)
			}
			rs, err := parseRuleset(text)
			if err != nil {
				t.Fatal(err)
			}
			got, r := rs.eval(c.pk, map[string]*netipx.IPSet{c.p.Table: policytest.Allowlist()})
			if got != c.want {
				t.Errorf("got %s (%s), want %s", got, describe(r), c.want)
			}
		})
	}
}

func TestTheEvaluatorFollowsPfSemantics(t *testing.T) {
	a := netip.MustParseAddr
	pk := packet{dir: "in", ifname: "bridge100", src: a("10.0.0.5"), dst: a("1.2.3.4"), proto: "tcp", port: 80}
	cases := []struct {
		name, text string
		want       policy.Verdict
	}{
		{"the last matching rule wins without quick",
			"pass in from 10.0.0.0/8 to any\nblock return in from 10.0.0.0/8 to any", policy.Refuse},
		{"quick ends evaluation at the first match",
			"pass in quick from 10.0.0.0/8 to any\nblock return in quick from 10.0.0.0/8 to any", policy.Pass},
		{"a packet nothing matches passes by default",
			"block return in quick from 192.168.0.0/16 to any", policy.Ignore},
		{"direction matters", "block return out quick from 10.0.0.0/8 to any", policy.Ignore},
		{"a negated interface skips that interface", "block return in quick on ! bridge100 all", policy.Ignore},
		{"the interface must match", "block return in quick on bridge101 all", policy.Ignore},
		{"the address family must match", "block return in quick inet6 all", policy.Ignore},
		{"ports only match their protocol", "block return in quick proto udp from any to any port 80", policy.Ignore},
		{"a macro is expanded", "n = \"10.0.0.0/8\"\nblock return in quick from $n to any", policy.Refuse},
		{"a list matches any member", "block return in quick from { 192.168.0.0/16 10.0.0.5 } to any", policy.Refuse},
		{"block without return drops", "block in quick all", drop},
		{"block drop drops", "block drop in quick all", drop},
		{"an undeclared table holds nothing", "table <t> persist\nblock return in quick from any to <t>", policy.Ignore},
	}
	for _, c := range cases {
		rs, err := parseRuleset(c.text)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, r := rs.eval(pk, nil); got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, describe(r), c.want)
		}
	}
}

func TestTheEvaluatorRejectsSyntaxOutsideItsSubset(t *testing.T) {
	for _, text := range []string{
		"pass in quick from any to any port 53",            // port without proto
		"pass in quick proto icmp from any to any port 53", // port on icmp
		"pass in quick from ! 10.0.0.0/8 to any",           // negation
		"pass in quick from any to <nosuch>",               // undeclared table
		"pass in quick from $undefined to any",             // undefined macro
		"pass in quick from any to any flags S/SA",         // options outside the subset
		"block return in quick all keep state",             // state on a block rule
		"pass in quick proto { tcp udp from any to any",    // unbalanced brace
		"match in all",                         // not in Apple's dialect
		"table <t> persist\ntable <t> persist", // a table declared twice fails the whole load
		"pass in quick from 10.0.0.1/8 to any", // unmasked prefix
	} {
		if _, err := parseRuleset(text); err == nil {
			t.Errorf("parsed %q", text)
		}
	}
}

func verdictOf(rs *pfRuleset, p policy.Policy, f policy.Flow, tables map[string]*netipx.IPSet) policy.Verdict {
	v, _ := rs.eval(packetFor(p, f), tables)
	return v
}

func describe(r *pfRule) string {
	if r == nil {
		return "no rule matched"
	}
	return fmt.Sprintf("rule at line %d, label %q", r.line, r.label)
}
