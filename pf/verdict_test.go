package pf

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
			agreeWithDecide(t, rs, p, policytest.Allowlist(), opened())
		})
	}
}

func TestRenderedAnchorsAgreeWithDecideForEveryExamplePolicy(t *testing.T) {
	for name, p := range policytest.Policies() {
		t.Run(name, func(t *testing.T) {
			agreeWithDecide(t, render(t, p), p, policytest.Allowlist(), nil)
		})
		t.Run(name+"-dns-filter", func(t *testing.T) {
			p := withFilter(p)
			agreeWithDecide(t, render(t, p), p, policytest.Allowlist(), opened())
		})
	}
}

func TestAnEmptyAllowlistRefusesWhatTheAllowlistWouldPass(t *testing.T) {
	p := policytest.DualStack()
	agreeWithDecide(t, render(t, p), p, &netipx.IPSet{}, nil)
	p = withFilter(p)
	agreeWithDecide(t, render(t, p), p, &netipx.IPSet{}, &netipx.IPSet{})
}

// TestTheDNSFilterOpensOnlyWhatItsTableHolds is the check that the opened
// table decides: the same flows, with and without the addresses opened.
func TestTheDNSFilterOpensOnlyWhatItsTableHolds(t *testing.T) {
	p := withFilter(policytest.DualStack())
	rs := render(t, p)
	for _, set := range []*netipx.IPSet{nil, {}, opened()} {
		agreeWithDecide(t, rs, p, policytest.Allowlist(), set)
	}
	w := worldOpened(p, &netipx.IPSet{}, opened())
	for _, f := range []policy.Flow{
		{Src: netip.MustParseAddr("192.168.64.5"), Dst: opened4, Proto: policy.TCP, Port: 443},
		{Src: netip.MustParseAddr("fd5e:9a3b:1c2d:4e5f::5"), Dst: opened6, Proto: policy.UDP, Port: 443},
	} {
		if got, r := pfVerdict(rs, p, f, w); got != policy.Pass || !strings.HasPrefix(r.label, LabelPrefix+"opened") {
			t.Errorf("%v -> %v: %s (%s), want a pass by the opened rules", f.Src, f.Dst, got, describe(r))
		}
	}
}

// agreeWithDecide checks that every flow of the shared table (and, for a
// policy with a DNS filter, of filterCases) gets from rs the verdict
// DecideOpened gives it under p with the allowlist allowed and the
// addresses opened, and that every redirect goes to the filter.
func agreeWithDecide(t *testing.T, rs *pfRuleset, p policy.Policy, allowed, opened *netipx.IPSet) {
	t.Helper()
	w := worldOpened(p, allowed, opened)
	cases := policytest.Cases(p)
	if p.Filter != nil {
		cases = append(cases, filterCases(p)...)
	}
	for _, c := range cases {
		if waitsForTheBridge(p, c.Flow) {
			continue
		}
		want := p.DecideOpened(c.Flow, allowed, opened)
		got, r := pfVerdict(rs, p, c.Flow, w)
		if got != want {
			t.Errorf("%s (%v -> %v %s/%d): pf says %s (%s), Decide says %s",
				c.Name, c.Flow.Src, c.Flow.Dst, c.Flow.Proto, c.Flow.Port, got, describe(r), want)
			continue
		}
		if got == policy.Redirect {
			target := netip.AddrFrom4([4]byte{127, 0, 0, 1})
			if c.Flow.Dst.Unmap().Is6() {
				target = netip.IPv6Loopback()
			}
			if r.target != target || r.targetPort != p.Filter.Port {
				t.Errorf("%s: redirected to %v port %d, want %v port %d (%s)", c.Name, r.target, r.targetPort, target, p.Filter.Port, describe(r))
			}
		}
	}
}

// The addresses the tests' DNS filter has opened: one of each family that
// the shared table never names, and the address the shared table uses for
// "not on the allowlist".
var (
	opened4 = netip.MustParseAddr("198.51.100.80")
	opened6 = netip.MustParseAddr("2001:db8:80::80")
)

func opened() *netipx.IPSet {
	var b netipx.IPSetBuilder
	b.Add(opened4)
	b.Add(opened6)
	b.Add(netip.MustParseAddr("93.184.216.34"))
	s, err := b.IPSet()
	if err != nil {
		panic(err)
	}
	return s
}

// filterCases are the flows that exercise the DNS filter's rules: TCP, UDP
// and ICMP to what it opened, DNS to it, and every other way to reach its
// port on the host, which only a redirect may take.
func filterCases(p policy.Policy) []policytest.Case {
	n := p.Network
	a := netip.MustParseAddr
	ctr := n.IPv4.Addr().Next().Next().Next().Next().Next()
	port := p.Filter.Port
	flow := func(src, dst netip.Addr, proto policy.Proto, port uint16) policy.Flow {
		return policy.Flow{Src: src, Dst: dst, Proto: proto, Port: port}
	}
	bridge := func(f policy.Flow) policy.Flow { f.FromBridge = true; return f }
	cs := []policytest.Case{
		{Name: "https to an opened address", Flow: flow(ctr, opened4, policy.TCP, 443)},
		{Name: "ssh to an opened address", Flow: flow(ctr, opened4, policy.TCP, 22)},
		{Name: "udp to an opened address", Flow: flow(ctr, opened4, policy.UDP, 443)},
		{Name: "icmp to an opened address", Flow: flow(ctr, opened4, policy.ICMP, 0)},
		{Name: "dns over udp to an opened address", Flow: flow(ctr, opened4, policy.UDP, 53)},
		{Name: "dns over tcp to an opened address", Flow: flow(ctr, opened4, policy.TCP, 53)},
		{Name: "the filter's port on the gateway over udp", Flow: flow(ctr, n.Gateway4, policy.UDP, port)},
		{Name: "the filter's port on the gateway over tcp", Flow: flow(ctr, n.Gateway4, policy.TCP, port)},
		{Name: "the filter's port on loopback", Flow: flow(ctr, a("127.0.0.1"), policy.UDP, port)},
		{Name: "dns to loopback", Flow: flow(ctr, a("127.0.0.1"), policy.UDP, 53)},
		{Name: "the filter's port on an opened address", Flow: flow(ctr, opened4, policy.UDP, port)},
		{Name: "the filter's port on the subnet's broadcast address", Flow: flow(ctr, lastAddr(n.IPv4), policy.UDP, port)},
		{Name: "a query sent as the gateway", Flow: bridge(flow(n.Gateway4, a("8.8.8.8"), policy.UDP, 53))},
		{Name: "a query sent as the gateway, to the gateway", Flow: bridge(flow(n.Gateway4, n.Gateway4, policy.UDP, 53))},
		{Name: "a query sent as the broadcast address", Flow: bridge(flow(lastAddr(n.IPv4), a("8.8.8.8"), policy.TCP, 53))},
		{Name: "a query from a made-up source", Flow: bridge(flow(a("203.0.113.99"), a("8.8.8.8"), policy.UDP, 53))},
		{Name: "the host asks a container's DNS server", Flow: policy.Flow{Src: n.Gateway4, Dst: ctr, Proto: policy.UDP, Port: 53, FromHost: true}},
		{Name: "a LAN host asks a public resolver", Flow: flow(a("192.168.1.20"), a("8.8.8.8"), policy.UDP, 53)},
	}
	if n.IPv6.IsValid() {
		ctr6 := n.IPv6.Addr().Next().Next().Next().Next().Next()
		cs = append(cs,
			policytest.Case{Name: "IPv6 https to an opened address", Flow: flow(ctr6, opened6, policy.TCP, 443)},
			policytest.Case{Name: "IPv6 udp to an opened address", Flow: flow(ctr6, opened6, policy.UDP, 443)},
			policytest.Case{Name: "IPv6 icmp to an opened address", Flow: flow(ctr6, opened6, policy.ICMP, 0)},
			policytest.Case{Name: "IPv6 dns over tcp to a public resolver", Flow: flow(ctr6, a("2001:4860:4860::8888"), policy.TCP, 53)},
			policytest.Case{Name: "IPv6 dns to an opened address", Flow: flow(ctr6, opened6, policy.UDP, 53)},
			policytest.Case{Name: "IPv6 to the filter's port on loopback", Flow: flow(ctr6, netip.IPv6Loopback(), policy.UDP, port)},
			policytest.Case{Name: "IPv6 to the filter's port on the host", Flow: policy.Flow{Src: ctr6, Dst: hostAddr6(p), Proto: policy.TCP, Port: port, ToHost: true}},
			policytest.Case{Name: "an IPv6 query from a made-up source", Flow: bridge(flow(a("2001:db8:b::99"), a("2001:4860:4860::8888"), policy.UDP, 53))},
		)
	}
	return cs
}

// lastAddr returns the last address of an IPv4 prefix (its broadcast address).
func lastAddr(p netip.Prefix) netip.Addr { return netipx.PrefixLastIP(p) }

// pfVerdict is what pf does with flow f of policy p: the evaluator's verdict
// on the packet pf sees, for every flow that reaches pf.
//
// IPv6 between two containers never does: the bridge forwards it at layer 2
// between its members, and pf sees a member's frames only when the bridge's
// member filtering is on, which it is not (XNU bsd/net/if_bridge.c,
// bridge_pf; sc_filter_flags is 0). The bridge passes it, as Decide wants,
// so the anchor needs no rule for it, and has none: a rule passing the
// IPv6 subnet would pass the host's own address in it too, which the
// runtime does not report and which must stay refused. IPv4 between
// containers is evaluated all the same, against the rule that passes it
// should member filtering ever be switched on.
func pfVerdict(rs *pfRuleset, p policy.Policy, f policy.Flow, w world) (policy.Verdict, *pfRule) {
	n := p.Network
	src, dst := f.Src.Unmap(), f.Dst.Unmap()
	if n.IPv6.IsValid() && n.IPv6.Contains(src) && n.IPv6.Contains(dst) && !f.FromHost && !f.ToHost {
		return policy.Pass, nil
	}
	return rs.eval(packetFor(p, f), w)
}

// waitsForTheBridge reports whether f is a connection the host opens to a
// container over IPv6 while the bridge is unknown. The anchor has no rule
// for it then: the host's IPv6 address is known only through the bridge,
// which exists once a container is attached, and the rules are reloaded
// then. TestPacketsOutsideThePolicyModel pins what pf does meanwhile.
func waitsForTheBridge(p policy.Policy, f policy.Flow) bool {
	return f.FromHost && f.Dst.Unmap().Is6() && p.Network.Interface == ""
}

func render(t *testing.T, p policy.Policy) *pfRuleset {
	t.Helper()
	text, err := Render(p, Options{Anchor: testAnchor})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := parseRuleset(text)
	if err != nil {
		t.Fatalf("the rendered anchor is outside the evaluated subset: %v", err)
	}
	return rs
}

// The packets below are outside policy.Flow's model (interfaces, ICMP types,
// loopback, the replies to a connection), so Decide has nothing to say about
// them; they pin down choices the anchor makes on its own.
func TestPacketsOutsideThePolicyModel(t *testing.T) {
	a := netip.MustParseAddr
	dual, v4only, mac15 := policytest.DualStack(), policytest.IPv4Only(), policytest.MacOS15()
	noIf := policytest.DualStackNoInterface()
	const (
		ctr6    = "fd5e:9a3b:1c2d:4e5f::5"
		peer6   = "fd5e:9a3b:1c2d:4e5f::7"
		host6   = "fd5e:9a3b:1c2d:4e5f::1" // hostAddr6
		ll      = "fe80::f061:5eff:fef2:f47e"
		solNode = "ff02::1:ff00:1"
	)
	icmp6 := func(ifname, src, dst, typ string) packet {
		return packet{dir: "in", ifname: ifname, src: a(src), dst: a(dst), proto: "ipv6-icmp", icmp6Type: typ}
	}
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
			packet{dir: "in", ifname: "bridge100", src: a(ll), dst: a("fe80::1"), proto: "tcp", port: 22}, policy.Refuse},
		{"IPv6 from an unknown ULA on the bridge of an IPv4-only network is dropped unanswered", v4only,
			packet{dir: "in", ifname: "bridge100", src: a("fd00::5"), dst: a("2606:50c0::1"), proto: "tcp", port: 443}, policy.Drop},
		{"IPv4 from a made-up source on the bridge is dropped unanswered", dual,
			packet{dir: "in", ifname: "bridge100", src: a("203.0.113.99"), dst: a("93.184.216.34"), proto: "udp", port: 443}, policy.Drop},
		{"IPv4 from a made-up source on the bridge does not reach the host", v4only,
			packet{dir: "in", ifname: "bridge100", src: a("0.0.0.0"), dst: a("255.255.255.255"), proto: "udp", port: 67}, policy.Drop},
		{"IPv6 from a made-up global source on the bridge is dropped unanswered", dual,
			packet{dir: "in", ifname: "bridge100", src: a("2001:db8:b::99"), dst: a("2001:db8::1"), proto: "udp", port: 443}, policy.Drop},
		{"ICMPv6 from a made-up source on the bridge is dropped unanswered", dual,
			icmp6("bridge100", "2001:db8:b::99", "2606:50c0::1", "echoreq"), policy.Drop},
		// Without the bridge, the rules can tell a container's packet only
		// by its source address: a made-up one matches no rule and is left
		// to the rest of pf, until the rules are reloaded with the bridge.
		{"without the bridge, a made-up IPv4 source matches no rule", noIf,
			packet{dir: "in", ifname: "bridge100", src: a("203.0.113.99"), dst: a("140.82.113.4"), proto: "tcp", port: 443}, policy.Ignore},
		{"without the bridge, a made-up IPv6 source matches no rule", noIf,
			packet{dir: "in", ifname: "bridge100", src: a("2001:db8:b::99"), dst: a("2606:50c0::1"), proto: "udp", port: 443}, policy.Ignore},
		{"without the bridge, a made-up source is not caught on macOS 15 either", mac15,
			packet{dir: "in", ifname: "bridge100", src: a("203.0.113.99"), dst: a("93.184.216.34"), proto: "udp", port: 443}, policy.Ignore},

		// Neighbour discovery and router solicitation, on the link only.
		{"neighbour solicitations from a container pass without state", dual,
			icmp6("bridge100", ll, solNode, "neighbrsol"), passNoState},
		{"neighbour solicitations for duplicate address detection pass without state", dual,
			icmp6("bridge100", "::", solNode, "neighbrsol"), passNoState},
		{"neighbour advertisements from a container pass without state", dual,
			icmp6("bridge100", ctr6, "fe80::1", "neighbradv"), passNoState},
		{"a neighbour solicitation addressed past the host is refused", dual,
			icmp6("bridge100", ctr6, "2606:50c0::1", "neighbrsol"), policy.Refuse},
		{"a neighbour advertisement to the host's address on the subnet passes", dual,
			icmp6("bridge100", ctr6, host6, "neighbradv"), passNoState},
		{"neighbour discovery on an IPv4-only network passes on-link", v4only,
			icmp6("bridge100", "fe80::5", solNode, "neighbrsol"), passNoState},
		{"without the bridge, a neighbour solicitation from the subnet passes", noIf,
			icmp6("bridge100", ctr6, solNode, "neighbrsol"), passNoState},
		{"without the bridge, a neighbour advertisement from the subnet to the host passes", noIf,
			icmp6("bridge100", ctr6, host6, "neighbradv"), passNoState},
		{"without the bridge, a neighbour solicitation from the subnet addressed past the host is refused", noIf,
			icmp6("bridge100", ctr6, "2606:50c0::1", "neighbrsol"), policy.Refuse},
		{"without the bridge, neighbour discovery from a link-local address matches no rule", noIf,
			icmp6("bridge100", ll, solNode, "neighbrsol"), policy.Ignore},
		{"a neighbour solicitation from a made-up source is dropped: the host would answer its options or hop limit to that source", dual,
			icmp6("bridge100", "2001:db8:bad::1", "ff02::1:ff00:1", "neighbrsol"), policy.Drop},
		{"a router solicitation from a made-up source is dropped", dual,
			icmp6("bridge100", "2001:db8:bad::1", "ff02::2", "routersol"), policy.Drop},
		{"router solicitations from a container pass without state", dual,
			icmp6("bridge100", ll, "ff02::2", "routersol"), passNoState},
		{"without the bridge, router solicitations from the subnet pass without state", noIf,
			icmp6("bridge100", ctr6, "ff02::2", "routersol"), passNoState},
		{"a router solicitation to another address is refused", dual,
			icmp6("bridge100", ll, "fe80::1", "routersol"), policy.Refuse},
		{"a network without an IPv6 subnet has no router to solicit", v4only,
			icmp6("bridge100", ll, "ff02::2", "routersol"), policy.Refuse},
		{"MLD reports are refused (without an answer: they go to a multicast address)", dual,
			icmp6("bridge100", ll, "ff02::16", "143"), policy.Refuse},
		{"other ICMPv6 from a container is refused", dual,
			icmp6("bridge100", "fe80::5", "fe80::1", "echoreq"), policy.Refuse},
		{"router advertisements on the uplink are left alone", dual,
			icmp6("en0", "fe80::1", "ff02::1", "routeradv"), policy.Ignore},
		{"IPv6 on the uplink is left alone when only the subnet is known", noIf,
			packet{dir: "in", ifname: "en0", src: a("fe80::1"), dst: a("fe80::2"), proto: "tcp", port: 22}, policy.Ignore},

		// Connections to the containers keep state only when the host opens
		// them from its own address on the bridge.
		{"a packet forwarded to a container from the internet creates no state its answers could use", dual,
			packet{dir: "out", ifname: "bridge100", src: a("93.184.216.34"), dst: a("192.168.64.5"), proto: "udp", port: 5000}, policy.Ignore},
		{"an IPv6 packet forwarded to a container from the internet creates no state", dual,
			packet{dir: "out", ifname: "bridge100", src: a("2001:db8::1"), dst: a(ctr6), proto: "udp", port: 5000}, policy.Ignore},
		{"an IPv6 packet to a container from another address of the subnet creates no state", dual,
			packet{dir: "out", ifname: "bridge100", src: a(peer6), dst: a(ctr6), proto: "tcp", port: 8080}, policy.Ignore},
		{"the host's IPv6 connection to a container keeps state", dual,
			packet{dir: "out", ifname: "bridge100", src: a(host6), dst: a(ctr6), proto: "tcp", port: 8080}, policy.Pass},
		{"without the bridge, the host's IPv6 connection to a container creates no state", noIf,
			packet{dir: "out", ifname: "bridge100", src: a(host6), dst: a(ctr6), proto: "tcp", port: 8080}, policy.Ignore},
		{"without the bridge, the container's answer to the host over IPv6 is refused until the rules are reloaded", noIf,
			packet{dir: "in", ifname: "bridge100", src: a(ctr6), dst: a(host6), proto: "tcp", port: 40000}, policy.Refuse},
		{"the host's own traffic to the internet is left alone", dual,
			packet{dir: "out", ifname: "en0", src: a("192.168.1.20"), dst: a("93.184.216.34"), proto: "tcp", port: 443}, policy.Ignore},
		{"a container's connection after NAT on the uplink is left alone", dual,
			packet{dir: "out", ifname: "en0", src: a("192.168.1.20"), dst: a("140.82.113.4"), proto: "tcp", port: 443}, policy.Ignore},
		{"on macOS 15 IPv6 is not filtered (containers have none)", mac15,
			packet{dir: "in", ifname: "bridge100", src: a("fd00::5"), dst: a("2001:db8::1"), proto: "tcp", port: 443}, policy.Ignore},

		// The DNS filter's redirect: DNS that comes in from the containers,
		// and nothing the host sends or receives on loopback.
		{"the host's own query to its gateway address over lo0 is not redirected", withFilter(dual),
			packet{dir: "in", ifname: "lo0", src: a("192.168.64.1"), dst: a("192.168.64.1"), proto: "udp", port: 53}, policy.Ignore},
		{"without the bridge, the host's own query over lo0 is not redirected either", withFilter(mac15),
			packet{dir: "in", ifname: "lo0", src: a("192.168.64.1"), dst: a("192.168.64.1"), proto: "udp", port: 53}, policy.Ignore},
		{"the host's query to a container's DNS server goes out unredirected", withFilter(dual),
			packet{dir: "out", ifname: "bridge100", src: a("192.168.64.1"), dst: a("192.168.64.5"), proto: "udp", port: 53}, policy.Pass},
		{"the host's own query to a public resolver is left alone", withFilter(mac15),
			packet{dir: "out", ifname: "en0", src: a("192.168.1.20"), dst: a("8.8.8.8"), proto: "udp", port: 53}, policy.Ignore},
		{"a query from the subnet's addresses arriving on the uplink is refused, not redirected", withFilter(dual),
			packet{dir: "in", ifname: "en0", src: a("192.168.64.5"), dst: a("8.8.8.8"), proto: "udp", port: 53}, policy.Refuse},
		{"without the bridge, a query from the subnet's addresses is redirected on any interface but loopback", withFilter(mac15),
			packet{dir: "in", ifname: "en0", src: a("192.168.64.5"), dst: a("8.8.8.8"), proto: "udp", port: 53}, policy.Redirect},
		{"an IPv6 query from a link-local address is refused, not redirected", withFilter(dual),
			packet{dir: "in", ifname: "bridge100", src: a(ll), dst: a("2001:4860:4860::8888"), proto: "udp", port: 53}, policy.Refuse},
		{"the filter's IPv6 port on loopback is refused", withFilter(dual),
			packet{dir: "in", ifname: "bridge100", src: a(ctr6), dst: a("::1"), proto: "udp", port: filterPort}, policy.Refuse},
		{"the filter's IPv6 port on loopback from a link-local address is refused", withFilter(dual),
			packet{dir: "in", ifname: "bridge100", src: a(ll), dst: a("::1"), proto: "udp", port: filterPort}, policy.Refuse},
		// Without the bridge, link-local IPv6 is not filtered at all (the
		// anchor says so); loopback is no exception. XNU's ip6_input drops
		// only a ::1 source from another interface, before pf.
		{"without the bridge, link-local IPv6 to loopback matches no rule", withFilter(noIf),
			packet{dir: "in", ifname: "bridge100", src: a(ll), dst: a("::1"), proto: "udp", port: filterPort}, policy.Ignore},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, r := render(t, c.p).eval(c.pk, worldFor(c.p, policytest.Allowlist()))
			if got != c.want {
				t.Errorf("got %s (%s), want %s", got, describe(r), c.want)
			}
		})
	}
}

// TestFragmentsAreJudgedAsTheWholePacket pins the anchor's scrub rule and
// its rule for IPv6 fragments. pf judges a fragment it has not reassembled
// without rdr and without the rules that name a port, so a DNS query sent
// in fragments to an allowlisted address would pass the allowlist's rule:
// neither refused by the rules for port 53 nor redirected to the DNS
// filter. IPv4 fragments are reassembled first and judged as the whole
// query; IPv6 fragments are dropped. Each case is checked against the anchor
// without the rule that handles it too, to show that the case can fail.
func TestFragmentsAreJudgedAsTheWholePacket(t *testing.T) {
	a := netip.MustParseAddr
	dual, v4only, mac15 := policytest.DualStack(), policytest.IPv4Only(), policytest.MacOS15()
	noIf := policytest.DualStackNoInterface()
	query := func(src, dst string) packet {
		return packet{dir: "in", ifname: "bridge100", src: a(src), dst: a(dst), proto: "udp", port: 53, fragment: true}
	}
	const ctr4, ctr6, github4, github6 = "192.168.64.5", "fd5e:9a3b:1c2d:4e5f::5", "140.82.112.3", "2606:50c0::1"
	cases := []struct {
		name string
		p    policy.Policy
		pk   packet
		// without is the verdict without the rule that handles the
		// fragment: a pass where the fragment would escape.
		without policy.Verdict
	}{
		{"a query to an allowlisted address", dual, query(ctr4, github4), policy.Pass},
		{"a query to an allowlisted address, IPv4-only network", v4only, query("192.168.218.5", github4), policy.Pass},
		{"a query to an allowlisted address, macOS 15", mac15, query(ctr4, github4), policy.Pass},
		{"a query to an allowlisted address without the bridge", noIf, query(ctr4, github4), policy.Pass},
		{"a query to an allowlisted address, with the DNS filter", withFilter(dual), query(ctr4, github4), policy.Pass},
		{"a query, with the DNS filter on macOS 15", withFilter(mac15), query(ctr4, github4), policy.Pass},
		{"an IPv6 query to an allowlisted address", dual, query(ctr6, github6), policy.Pass},
		{"an IPv6 query to an allowlisted address without the bridge", noIf, query(ctr6, github6), policy.Pass},
		{"an IPv6 query, with the DNS filter", withFilter(dual), query(ctr6, github6), policy.Pass},
		{"an IPv6 query from a link-local address", dual, query("fe80::5", github6), policy.Refuse},
		{"an IPv6 TCP segment to an allowlisted address (refused without it: allow6 keeps state, so has flags)", dual,
			packet{dir: "in", ifname: "bridge100", src: a(ctr6), dst: a(github6), proto: "tcp", port: 443, fragment: true}, policy.Refuse},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := worldFor(c.p, policytest.Allowlist())
			rs := render(t, c.p)
			whole := c.pk
			whole.fragment = false
			want, _ := rs.eval(whole, w)
			if c.pk.src.Is6() {
				want = policy.Drop
			}
			if got, r := rs.eval(c.pk, w); got != want {
				t.Errorf("in fragments: %s (%s), want %s", got, describe(r), want)
			}
			if c.pk.src.Is4() {
				rs.scrub = nil
			} else {
				rs.rules = slices.DeleteFunc(rs.rules, func(r pfRule) bool { return r.fragOnly })
			}
			if got, r := rs.eval(c.pk, w); got != c.without {
				t.Errorf("without the rule for fragments: %s (%s), want %s", got, describe(r), c.without)
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
		{"block without return drops", "block in quick all", policy.Drop},
		{"block drop drops", "block drop in quick all", policy.Drop},
		{"an interface's address matches its own addresses only",
			"block return in quick from (bridge100) to any", policy.Refuse},
		{"another interface's address does not match",
			"block return in quick from (bridge101) to any", policy.Ignore},
		{"an undeclared table holds nothing", "table <t> persist\nblock return in quick from any to <t>", policy.Ignore},
	}
	frag := pk
	frag.fragment = true
	for _, c := range []struct {
		name, text string
		want       policy.Verdict
	}{
		{"a fragment skips the rules that name a port",
			"block return in quick proto tcp from any to any port 80\npass in quick all no state", passNoState},
		{"a TCP fragment skips a pass rule that keeps state (pfctl adds flags S/SA)",
			"pass in quick all", policy.Ignore},
		{"a rule for fragments matches a fragment",
			"block drop in quick inet all fragment\npass in quick all no state", policy.Drop},
		{"a fragment skips rdr",
			"rdr pass on bridge100 inet proto tcp from any to any port 80 -> 127.0.0.1 port 8080", policy.Ignore},
		{"a scrub rule that matches reassembles the fragment first",
			"scrub in on bridge100 all fragment reassemble\nblock return in quick proto tcp from any to any port 80\npass in quick all no state", policy.Refuse},
		{"a reassembled packet no longer matches a rule for fragments",
			"scrub in on bridge100 all fragment reassemble\nblock drop in quick all fragment\npass in quick all no state", passNoState},
		{"a scrub rule for another interface does not",
			"scrub in on bridge101 all fragment reassemble\nblock return in quick proto tcp from any to any port 80\npass in quick all no state", passNoState},
		{"a scrub rule for other sources does not",
			"scrub in on ! lo0 inet from 192.168.0.0/16 to any fragment reassemble\nblock return in quick proto tcp from any to any port 80\npass in quick all no state", passNoState},
	} {
		rs, err := parseRuleset(c.text)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got, r := rs.eval(frag, world{}); got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, describe(r), c.want)
		}
	}
	for _, c := range cases {
		rs, err := parseRuleset(c.text)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		w := world{ifAddrs: map[string][]netip.Addr{"bridge100": {a("10.0.0.5")}, "bridge101": {a("10.0.1.1")}}}
		if got, r := rs.eval(pk, w); got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, describe(r), c.want)
		}
	}
}

func TestTheEvaluatorRejectsSyntaxOutsideItsSubset(t *testing.T) {
	for _, text := range []string{
		"pass in quick from any to any port 53",                          // port without proto
		"pass in quick proto icmp from any to any port 53",               // port on icmp
		"pass in quick from ! 10.0.0.0/8 to any",                         // negation
		"pass in quick from any to <nosuch>",                             // undeclared table
		"pass in quick from $undefined to any",                           // undefined macro
		"pass in quick from any to any flags S/SA",                       // options outside the subset
		"block return in quick all keep state",                           // state on a block rule
		"scrub in quick all fragment reassemble",                         // quick on a scrub rule
		"scrub in all no-df",                                             // scrub options outside the subset
		"scrub in proto tcp from any to any port 80 fragment reassemble", // ports on a scrub rule
		"pass in quick proto { tcp udp from any to any",                  // unbalanced brace
		"match in all",                                   // not in Apple's dialect
		"table <t> persist\ntable <t> persist",           // a table declared twice fails the whole load
		"pass in quick from 10.0.0.1/8 to any",           // unmasked prefix
		"pass out quick from (bridge100:network) to any", // interface address modifiers
		"pass out quick from (lo0 to any",                // unbalanced parenthesis
	} {
		if _, err := parseRuleset(text); err == nil {
			t.Errorf("parsed %q", text)
		}
	}
}

func describe(r *pfRule) string {
	if r == nil {
		return "no rule matched"
	}
	return fmt.Sprintf("rule at line %d, label %q", r.line, r.label)
}
