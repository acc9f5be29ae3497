// Package policytest holds the example policies and the table of flows that
// every firewall backend is tested against: a backend's rules must give each
// flow the verdict policy.Decide gives it. The pf backend checks the table
// with an evaluator of its rendered anchor, the nftables backend in a real
// kernel; both use the same flows, so the two cannot drift apart silently.
package policytest

import (
	"net/netip"
	"slices"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/policy"
)

// The allowlist every case is decided against.
var allowlisted = []netip.Prefix{
	netip.MustParsePrefix("140.82.112.0/20"),   // GitHub
	netip.MustParsePrefix("160.79.104.0/23"),   // Anthropic
	netip.MustParsePrefix("2606:50c0::/32"),    // GitHub
	netip.MustParsePrefix("2607:6bc0::/48"),    // Anthropic
	netip.MustParsePrefix("34.120.214.181/32"), // a single host
}

// Allowlist returns the allowlist the cases are written for: GitHub and
// Anthropic ranges in IPv4 and IPv6 and one single address.
func Allowlist() *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, p := range allowlisted {
		b.AddPrefix(p)
	}
	s, err := b.IPSet()
	if err != nil {
		panic(err) // the prefixes above are constants
	}
	return s
}

// IPv4Only is a network with no IPv6 subnet whose bridge interface is known,
// as apple/container reports it before it gives the network IPv6.
func IPv4Only() policy.Policy {
	return mustPolicy(policy.Network{
		Name: "claude", IPv4: netip.MustParsePrefix("192.168.218.0/24"),
		Gateway4: netip.MustParseAddr("192.168.218.1"), Interface: "bridge100",
	})
}

// DualStack is a network on macOS 26: an IPv4 subnet, a ULA IPv6 /64 and a
// known bridge interface.
func DualStack() policy.Policy {
	return mustPolicy(policy.Network{
		Name: "claude", IPv4: netip.MustParsePrefix("192.168.64.0/24"),
		Gateway4:  netip.MustParseAddr("192.168.64.1"),
		IPv6:      netip.MustParsePrefix("fd5e:9a3b:1c2d:4e5f::/64"),
		Interface: "bridge100",
	})
}

// DualStackNoInterface is DualStack when the bridge interface could not be
// found: IPv6 can be matched by its subnet only.
func DualStackNoInterface() policy.Policy {
	p := DualStack()
	p.Network.Interface = ""
	return p
}

// MacOS15 is the default network of macOS 15, which reports its subnet as
// 192.168.64.1/24 (the engine masks it to 192.168.64.0/24), has no IPv6 and
// no network commands that would name the bridge.
func MacOS15() policy.Policy {
	return mustPolicy(policy.Network{
		Name: "default", IPv4: netip.MustParsePrefix("192.168.64.1/24").Masked(),
		Gateway4: netip.MustParseAddr("192.168.64.1"),
	})
}

// CustomDNS is IPv4Only with DNS sent to a forwarder on the network and to a
// public resolver instead of the gateway.
func CustomDNS() policy.Policy {
	p := IPv4Only()
	p.DNS = []netip.Addr{netip.MustParseAddr("192.168.218.2"), netip.MustParseAddr("9.9.9.9")}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	return p
}

// Policies returns every example policy by name, for table-driven tests.
func Policies() map[string]policy.Policy {
	return map[string]policy.Policy{
		"ipv4-only":               IPv4Only(),
		"dual-stack":              DualStack(),
		"dual-stack-no-interface": DualStackNoInterface(),
		"macos15":                 MacOS15(),
		"custom-dns":              CustomDNS(),
	}
}

func mustPolicy(n policy.Network) policy.Policy {
	p, err := policy.New(n, "allowed_destinations")
	if err != nil {
		panic(err)
	}
	return p
}

// Case is one flow with a name that says what it is.
type Case struct {
	Name string
	Flow policy.Flow
}

// Flows returns the flows of Cases.
func Flows(p policy.Policy) []policy.Flow {
	var fs []policy.Flow
	for _, c := range Cases(p) {
		fs = append(fs, c.Flow)
	}
	return fs
}

// Cases returns flows that exercise every clause of policy.Decide for p,
// decided against Allowlist: allowlisted and other destinations in IPv4 and
// (when p has an IPv6 subnet) IPv6, DNS to each DNS server, to the gateway and
// to a public resolver, SSH to the host and to the allowlist, container to
// container, connections the host opens, ICMP, packets with made-up sources
// from the bridge, and traffic that does not come from the network at all.
// Every flow has one address family.
func Cases(p policy.Policy) []Case {
	n := p.Network
	a := netip.MustParseAddr
	ctr := pick(n.IPv4, n.Gateway4, p.DNS, 5)
	peer := pick(n.IPv4, n.Gateway4, p.DNS, 9)
	bcast := lastAddr(n.IPv4)
	gh, ant, single := a("140.82.113.4"), a("160.79.104.10"), a("34.120.214.181")
	other := a("93.184.216.34")

	tcp := func(src, dst netip.Addr, port uint16) policy.Flow {
		return policy.Flow{Src: src, Dst: dst, Proto: policy.TCP, Port: port}
	}
	udp := func(src, dst netip.Addr, port uint16) policy.Flow {
		return policy.Flow{Src: src, Dst: dst, Proto: policy.UDP, Port: port}
	}
	icmp := func(src, dst netip.Addr) policy.Flow {
		return policy.Flow{Src: src, Dst: dst, Proto: policy.ICMP}
	}
	host := func(src, dst netip.Addr, port uint16) policy.Flow {
		return policy.Flow{Src: src, Dst: dst, Proto: policy.TCP, Port: port, FromHost: true}
	}
	toHost := func(f policy.Flow) policy.Flow { f.ToHost = true; return f }
	bridge := func(f policy.Flow) policy.Flow { f.FromBridge = true; return f }

	cs := []Case{
		{"https to an allowlisted address", tcp(ctr, gh, 443)},
		{"https to another allowlisted range", tcp(ctr, ant, 443)},
		{"https to an allowlisted single address", tcp(ctr, single, 443)},
		{"ssh to an allowlisted address", tcp(ctr, gh, 22)},
		{"an unusual tcp port on an allowlisted address", tcp(ctr, gh, 8443)},
		{"udp to an allowlisted address", udp(ctr, gh, 443)},
		{"dns to an allowlisted address", udp(ctr, gh, 53)},
		{"dns over tcp to an allowlisted address", tcp(ctr, gh, 53)},
		{"icmp to an allowlisted address", icmp(ctr, gh)},
		{"https to an address not on the allowlist", tcp(ctr, other, 443)},
		{"http to an address not on the allowlist", tcp(ctr, other, 80)},
		{"ssh to an address not on the allowlist", tcp(ctr, other, 22)},
		{"udp to an address not on the allowlist", udp(ctr, other, 443)},
		{"icmp to an address not on the allowlist", icmp(ctr, other)},
		{"the address just below an allowlisted range", tcp(ctr, a("140.82.111.255"), 443)},
		{"the address just above an allowlisted range", tcp(ctr, a("140.82.128.0"), 443)},
		{"an IPv4-mapped allowlisted destination", tcp(ctr, a("::ffff:140.82.113.4"), 443)},
		{"dns over udp to a public resolver", udp(ctr, a("8.8.8.8"), 53)},
		{"dns over tcp to a public resolver", tcp(ctr, a("1.1.1.1"), 53)},
		{"dns over udp to the gateway", udp(ctr, n.Gateway4, 53)},
		{"dns over tcp to the gateway", tcp(ctr, n.Gateway4, 53)},
		{"ssh to the host", tcp(ctr, n.Gateway4, 22)},
		{"screen sharing on the host", tcp(ctr, n.Gateway4, 5900)},
		{"a web server on the host", tcp(ctr, n.Gateway4, 8080)},
		{"ntp to the host", udp(ctr, n.Gateway4, 123)},
		{"dns on a non-standard port of the host", udp(ctr, n.Gateway4, 5353)},
		{"icmp to the host", icmp(ctr, n.Gateway4)},
		{"tcp to another container", tcp(ctr, peer, 8080)},
		{"udp to another container", udp(ctr, peer, 9000)},
		{"dns to another container", udp(ctr, peer, 53)},
		{"icmp to another container", icmp(ctr, peer)},
		{"udp to the network's broadcast address", udp(ctr, bcast, 137)},
		{"udp to the network's own address", udp(ctr, n.IPv4.Addr(), 137)},
		{"the LAN", tcp(ctr, a("192.168.1.10"), 80)},
		{"another private range", tcp(ctr, a("10.0.0.1"), 443)},
		{"a link-local address", tcp(ctr, a("169.254.169.254"), 80)},
		{"the host opens a connection to a container", host(n.Gateway4, ctr, 8080)},
		{"the host connects to a container's ssh", host(n.Gateway4, ctr, 22)},
		{"the host opens a connection elsewhere", host(a("192.168.1.20"), other, 443)},
		{"traffic between two other hosts", udp(a("10.1.1.1"), a("8.8.8.8"), 53)},
		{"a LAN host connects to the host", tcp(a("192.168.1.20"), n.Gateway4, 22)},
		{"IPv6 traffic from elsewhere", tcp(a("2001:db8::5"), a("2606:50c0::1"), 443)},
		{"a made-up source on the bridge, to the allowlist", bridge(udp(a("203.0.113.99"), gh, 443))},
		{"a made-up source on the bridge, to elsewhere", bridge(tcp(a("203.0.113.99"), other, 443))},
		{"a made-up source on the bridge, to the host", bridge(udp(a("203.0.113.99"), n.Gateway4, 123))},
		{"a made-up LAN source on the bridge", bridge(tcp(a("192.168.1.20"), gh, 443))},
	}
	for _, d := range p.DNS {
		if d.Is4() {
			cs = append(cs,
				Case{"dns over udp to the DNS server " + d.String(), udp(ctr, d, 53)},
				Case{"dns over tcp to the DNS server " + d.String(), tcp(ctr, d, 53)},
				Case{"another udp port on the DNS server " + d.String(), udp(ctr, d, 54)},
				Case{"icmp to the DNS server " + d.String(), icmp(ctr, d)},
			)
		}
	}
	if n.IPv6.IsValid() {
		ctr6 := pick(n.IPv6, netip.Addr{}, p.DNS, 5)
		peer6 := pick(n.IPv6, netip.Addr{}, p.DNS, 9)
		gh6, ant6 := a("2606:50c0::1"), a("2607:6bc0::10")
		other6 := a("2001:db8::1")
		cs = append(cs,
			Case{"IPv6 https to an allowlisted address", tcp(ctr6, gh6, 443)},
			Case{"IPv6 https to another allowlisted range", tcp(ctr6, ant6, 443)},
			Case{"IPv6 ssh to an allowlisted address", tcp(ctr6, gh6, 22)},
			Case{"IPv6 udp to an allowlisted address", udp(ctr6, gh6, 443)},
			Case{"IPv6 icmp to an allowlisted address", icmp(ctr6, gh6)},
			Case{"IPv6 https to an address not on the allowlist", tcp(ctr6, other6, 443)},
			Case{"IPv6 ssh to an address not on the allowlist", tcp(ctr6, other6, 22)},
			Case{"IPv6 dns to a public resolver", udp(ctr6, a("2001:4860:4860::8888"), 53)},
			Case{"IPv6 to the first address of the subnet (the host)", toHost(tcp(ctr6, n.IPv6.Addr().Next(), 22))},
			Case{"IPv6 dns to the host", toHost(udp(ctr6, n.IPv6.Addr().Next(), 53))},
			Case{"IPv6 to another container", tcp(ctr6, peer6, 22)},
			Case{"IPv6 udp to another container", udp(ctr6, peer6, 9000)},
			Case{"IPv6 dns over tcp to an allowlisted address", tcp(ctr6, gh6, 53)},
			Case{"a made-up IPv6 source on the bridge, to the allowlist", bridge(udp(a("2001:db8:b::99"), gh6, 443))},
			Case{"the host opens an IPv6 connection to a container", host(n.IPv6.Addr().Next(), ctr6, 8080)},
		)
		for _, d := range p.DNS {
			if d.Is6() {
				cs = append(cs,
					Case{"IPv6 dns over udp to the DNS server " + d.String(), udp(ctr6, d, 53)},
					Case{"IPv6 dns over tcp to the DNS server " + d.String(), tcp(ctr6, d, 53)},
				)
			}
		}
	}
	return cs
}

// pick returns the i-th address of prefix that is neither the gateway nor a
// DNS server (counting from the network address), for a container address
// that no rule names on purpose.
func pick(prefix netip.Prefix, gateway netip.Addr, dns []netip.Addr, i int) netip.Addr {
	addr := prefix.Addr()
	for range i {
		addr = addr.Next()
	}
	for addr == gateway || slices.Contains(dns, addr) {
		addr = addr.Next()
	}
	if !prefix.Contains(addr) {
		panic("policytest: subnet " + prefix.String() + " is too small")
	}
	return addr
}

// lastAddr returns the last address of an IPv4 prefix (its broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	return netipx.PrefixLastIP(p)
}
