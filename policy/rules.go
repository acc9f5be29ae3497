package policy

import (
	"net/netip"
	"slices"

	"go4.org/netipx"
)

// Family is a rule's address family.
type Family int

// The address families. A rule with family Both matches either.
const (
	Both Family = 0
	IPv4 Family = 4
	IPv6 Family = 6
)

// Set names the addresses a rule matches on one side. The members come from
// the policy, or from the live allowlist for Allowlist.
type Set string

// The sets a rule can name.
const (
	Any Set = "any"
	// Net is the network's subnet of the rule's family.
	Net Set = "net"
	// Host is the host's own addresses on the network: as a source, the
	// address it opens connections from (the IPv4 gateway; on IPv6 the
	// bridge's own addresses, which the runtime does not report); as a
	// destination, the gateway, the subnet's broadcast addresses
	// (Network.HostAddrs4) and any address of the host a flow is marked
	// ToHost for.
	Host Set = "host"
	// DNS is the policy's DNS servers of the rule's family.
	DNS Set = "dns"
	// Allowlist is the live allowlist.
	Allowlist Set = "allowlist"
	// Opened is the addresses the DNS filter opened, each for the TTL of
	// the answer that named it.
	Opened Set = "opened"
	// OnLink is what never leaves the link: fe80::/10, ff02::/16 and the
	// IPv6 subnet.
	OnLink Set = "on-link"
	// Routers is ff02::2, where router solicitations go.
	Routers Set = "routers"
	// LinkLocal is fe80::/10.
	LinkLocal Set = "link-local"
	// NDSource is where neighbour discovery may come from: IPv6 link-local
	// addresses, the unspecified address (duplicate address detection) and
	// the IPv6 subnet. A made-up source must not get an ND packet past the
	// firewall: the host would answer its options or hop limit with an
	// ICMPv6 error to that source.
	NDSource Set = "nd-source"
	// MadeUp is a source no container has: outside the subnets and not
	// IPv6 link-local. (Neighbour discovery from the unspecified address is
	// passed by an earlier rule.)
	MadeUp Set = "made-up"
)

// ICMP6Type is an ICMPv6 message type a rule matches.
type ICMP6Type string

// The ICMPv6 types of neighbour discovery that the rules name.
const (
	NeighbourSolicit ICMP6Type = "neighbour-solicit"
	NeighbourAdvert  ICMP6Type = "neighbour-advert"
	RouterSolicit    ICMP6Type = "router-solicit"
)

// Rule is one rule of the ordered list that both firewalls print and
// Decide evaluates: the first rule that matches a packet decides.
type Rule struct {
	// Label names the rule in both firewalls (pf's label, nft's comment).
	Label string
	// Note says why the rule is there, in one line.
	Note string
	// FromHost rules match the host's own connections to the containers;
	// every other rule matches packets from the container network.
	FromHost bool
	// OnBridge rules match only packets that arrive on the network's
	// bridge; there are none when the bridge is not known.
	OnBridge bool
	Family   Family
	// Protos is empty for any protocol.
	Protos []Proto
	// ICMP6 lists the ICMPv6 types the rule matches; empty for any.
	ICMP6    []ICMP6Type
	Src, Dst Set
	// Port is the destination port (TCP and UDP); 0 for any.
	Port uint16
	// Fragments rules match only a piece of a fragmented packet that the
	// firewall judges before it is put together. A Flow is a whole packet,
	// so Decide never matches such a rule; a backend that reassembles
	// every fragment first leaves it out.
	Fragments bool
	Verdict   Verdict
}

// Rules returns the policy as the ordered list of rules every backend
// prints. Each backend may leave out a rule that no packet can reach on its
// platform, and says so where it does.
func (p Policy) Rules() []Rule {
	n := p.Network
	has6, hasIf := n.IPv6.IsValid(), n.Interface != ""
	var dns4, dns6 bool
	for _, d := range p.DNS {
		if d.Unmap().Is4() {
			dns4 = true
		} else {
			dns6 = true
		}
	}
	tcpUDP := []Proto{TCP, UDP}
	var rs []Rule
	add := func(r Rule) { rs = append(rs, r) }

	add(Rule{Label: "host-to-ctr", Note: "the host's own connections to the containers (published ports, exec, probes), and their replies",
		FromHost: true, Family: IPv4, Src: Host, Dst: Net, Verdict: Pass})
	if has6 && hasIf {
		add(Rule{Label: "host-to-ctr6", Note: "the same over IPv6, from the bridge's own addresses",
			FromHost: true, OnBridge: true, Family: IPv6, Src: Host, Dst: Net, Verdict: Pass})
	}
	if hasIf {
		add(Rule{Label: "spoofed-host", Note: "a container sending as the host itself (the gateway, the broadcasts)",
			OnBridge: true, Family: IPv4, Src: Host, Dst: Any, Verdict: Drop})
	}
	if hasIf || has6 {
		// pf reassembles only IPv4 (xnu's IPv6 reassembly in pf is not
		// safe to expose to a container), and judges a fragment it has not
		// reassembled without its ports: a DNS query in fragments would
		// pass the allowlist's rule.
		src := Any
		if !hasIf {
			src = Net
		}
		add(Rule{Label: "fragment6", Note: "IPv6 fragments from the containers: dropped unanswered, since their ports cannot be judged",
			OnBridge: hasIf, Family: IPv6, Src: src, Dst: Any, Fragments: true, Verdict: Drop})
	}
	// Neighbour discovery: on the bridge from the sources it uses (link-local
	// and the unspecified address included); without it only from the subnet.
	ndSrc, ndBridge := NDSource, true
	if !hasIf {
		ndSrc, ndBridge = Net, false
	}
	if hasIf || has6 {
		add(Rule{Label: "nd6", Note: "IPv6 neighbour discovery, only to on-link addresses",
			OnBridge: ndBridge, Family: IPv6, Protos: []Proto{ICMP}, ICMP6: []ICMP6Type{NeighbourSolicit, NeighbourAdvert},
			Src: ndSrc, Dst: OnLink, Verdict: Pass})
	}
	if has6 {
		add(Rule{Label: "rs6", Note: "router solicitation: the IPv6 default route at once, not at the next advertisement",
			OnBridge: ndBridge, Family: IPv6, Protos: []Proto{ICMP}, ICMP6: []ICMP6Type{RouterSolicit},
			Src: ndSrc, Dst: Routers, Verdict: Pass})
	}
	if p.Filter != nil {
		add(Rule{Label: "dns-filter", Note: "every DNS query, whatever its destination, goes to claudecontainer's DNS filter",
			Family: IPv4, Protos: tcpUDP, Src: Net, Dst: Any, Port: 53, Verdict: Redirect})
		if has6 {
			add(Rule{Label: "dns-filter6", Note: "every DNS query, whatever its destination, goes to claudecontainer's DNS filter",
				Family: IPv6, Protos: tcpUDP, Src: Net, Dst: Any, Port: 53, Verdict: Redirect})
		}
	}
	if dns4 {
		add(Rule{Label: "dns", Note: "DNS only to the policy's servers", Family: IPv4, Protos: tcpUDP, Src: Net, Dst: DNS, Port: 53, Verdict: Pass})
	}
	if dns6 && has6 {
		add(Rule{Label: "dns6", Note: "DNS only to the policy's servers", Family: IPv6, Protos: tcpUDP, Src: Net, Dst: DNS, Port: 53, Verdict: Pass})
	}
	add(Rule{Label: "host", Note: "the host's own services: on its addresses, or through the subnet's broadcast addresses",
		Family: IPv4, Src: Net, Dst: Host, Verdict: Refuse})
	if has6 {
		add(Rule{Label: "host6", Note: "the host's own services over IPv6", Family: IPv6, Src: Net, Dst: Host, Verdict: Refuse})
	}
	add(Rule{Label: "ctr-to-ctr", Note: "container to container", Family: IPv4, Src: Net, Dst: Net, Verdict: Pass})
	if has6 {
		add(Rule{Label: "ctr-to-ctr6", Note: "container to container", Family: IPv6, Src: Net, Dst: Net, Verdict: Pass})
	}
	add(Rule{Label: "dns-other", Note: "DNS to any other address, allowlisted or not", Family: IPv4, Protos: tcpUDP, Src: Net, Dst: Any, Port: 53, Verdict: Refuse})
	if has6 {
		add(Rule{Label: "dns-other6", Note: "DNS to any other address, allowlisted or not", Family: IPv6, Protos: tcpUDP, Src: Net, Dst: Any, Port: 53, Verdict: Refuse})
	}
	add(Rule{Label: "allow", Note: "the allowlist, every other TCP and UDP port", Family: IPv4, Protos: tcpUDP, Src: Net, Dst: Allowlist, Verdict: Pass})
	if has6 {
		add(Rule{Label: "allow6", Note: "the allowlist, every other TCP and UDP port", Family: IPv6, Protos: tcpUDP, Src: Net, Dst: Allowlist, Verdict: Pass})
	}
	if p.Filter != nil {
		add(Rule{Label: "opened", Note: "what the DNS filter answered, every other TCP and UDP port, for the answer's TTL", Family: IPv4, Protos: tcpUDP, Src: Net, Dst: Opened, Verdict: Pass})
		if has6 {
			add(Rule{Label: "opened6", Note: "what the DNS filter answered, every other TCP and UDP port, for the answer's TTL", Family: IPv6, Protos: tcpUDP, Src: Net, Dst: Opened, Verdict: Pass})
		}
	}
	add(Rule{Label: "deny", Note: "everything else, refused at once", Family: IPv4, Src: Net, Dst: Any, Verdict: Refuse})
	if has6 {
		add(Rule{Label: "deny6", Note: "everything else, refused at once", Family: IPv6, Src: Net, Dst: Any, Verdict: Refuse})
	}
	if hasIf {
		add(Rule{Label: "deny6-link-local", Note: "IPv6 from link-local addresses: refused, the answer stays on the link",
			OnBridge: true, Family: IPv6, Src: LinkLocal, Dst: Any, Verdict: Refuse})
		add(Rule{Label: "deny-spoofed", Note: "a made-up source: dropped unanswered, since an answer would carry the packet to that address",
			OnBridge: true, Family: Both, Src: MadeUp, Dst: Any, Verdict: Drop})
	}
	return rs
}

var (
	linkLocal = netip.MustParsePrefix("fe80::/10")
	linkScope = netip.MustParsePrefix("ff02::/16")
	routers   = netip.MustParseAddr("ff02::2")
)

// Decide states what every backend must do with f when allowed is the live
// allowlist: the verdict of the first rule of Rules that matches it, or
// Ignore when none does (the policy leaves the packet to the rest of the
// host's firewall). It is the specification the pf and nftables renderings
// are tested against; no backend calls it at run time. Flows carry no ICMPv6
// type, so the neighbour discovery rules never match one.
func (p Policy) Decide(f Flow, allowed *netipx.IPSet) Verdict {
	return p.DecideOpened(f, allowed, nil)
}

// DecideOpened is Decide when the DNS filter has opened the addresses in
// opened.
func (p Policy) DecideOpened(f Flow, allowed, opened *netipx.IPSet) Verdict {
	src, dst := f.Src.Unmap(), f.Dst.Unmap()
	sets := map[Set]*netipx.IPSet{Allowlist: allowed, Opened: opened}
	for _, r := range p.Rules() {
		if p.matches(r, f, src, dst, sets) {
			return r.Verdict
		}
	}
	return Ignore
}

func (p Policy) matches(r Rule, f Flow, src, dst netip.Addr, sets map[Set]*netipx.IPSet) bool {
	n := p.Network
	in6 := func(a netip.Addr) bool { return n.IPv6.IsValid() && n.IPv6.Contains(a) }
	fromNet := n.IPv4.Contains(src) || in6(src)
	switch {
	case r.FromHost != f.FromHost,
		r.Fragments, // a Flow is a whole packet
		r.Family == IPv4 && !(src.Is4() && dst.Is4()),
		r.Family == IPv6 && !(src.Is6() && dst.Is6()),
		len(r.ICMP6) > 0,
		len(r.Protos) > 0 && !slices.Contains(r.Protos, f.Proto),
		r.Port != 0 && f.Port != r.Port,
		// Every packet from a container arrives on the bridge.
		r.OnBridge && (n.Interface == "" || !(f.FromBridge || fromNet || f.FromHost)):
		return false
	}
	return p.in(r.Src, f, src, true, sets) && p.in(r.Dst, f, dst, false, sets)
}

// in reports whether a, the flow's source (isSrc) or destination, is in s.
func (p Policy) in(s Set, f Flow, a netip.Addr, isSrc bool, sets map[Set]*netipx.IPSet) bool {
	n := p.Network
	in6 := n.IPv6.IsValid() && n.IPv6.Contains(a)
	switch s {
	case Any:
		return true
	case Net:
		return n.IPv4.Contains(a) || in6
	case Host:
		switch {
		case isSrc && f.FromHost:
			return true // a FromHost flow comes from the host's own address
		case isSrc:
			return slices.Contains(n.HostAddrs4(), a)
		}
		return f.ToHost || slices.Contains(n.HostAddrs4(), a)
	case DNS:
		return slices.ContainsFunc(p.DNS, func(d netip.Addr) bool { return d.Unmap() == a })
	case Allowlist, Opened:
		return sets[s] != nil && sets[s].Contains(a)
	case OnLink:
		return linkLocal.Contains(a) || linkScope.Contains(a) || in6
	case Routers:
		return a == routers
	case LinkLocal:
		return a.Is6() && linkLocal.Contains(a)
	case NDSource:
		return a.Is6() && (linkLocal.Contains(a) || a.IsUnspecified() || in6)
	case MadeUp:
		return !n.IPv4.Contains(a) && !in6 && !(a.Is6() && linkLocal.Contains(a))
	}
	return false
}
