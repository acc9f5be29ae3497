package policy

import (
	"net/netip"
	"slices"

	"go4.org/netipx"
)

// Proto is a transport protocol of a flow.
type Proto string

// The protocols the policy distinguishes.
const (
	TCP  Proto = "tcp"
	UDP  Proto = "udp"
	ICMP Proto = "icmp"
)

// Flow is the first packet of a connection, as the firewall on the host sees
// it before any NAT: a container's own address as the source when it comes
// from the container network.
type Flow struct {
	Src, Dst netip.Addr
	Proto    Proto
	Port     uint16 // destination port; 0 for ICMP
	// FromHost marks a connection the host opens to a container (published
	// ports, exec, health probes); the container's replies belong to it. Src
	// is then the host's own address on the network: the gateway, or its
	// address in the IPv6 subnet. A packet the host only forwards to a
	// container is not such a connection, and its answers are judged as
	// flows from the container network.
	FromHost bool
	// ToHost marks a flow to one of the host's own addresses that Network
	// does not list: its IPv6 address on the network (which Apple's runtime
	// does not report; the backends tell it apart by where the packet goes,
	// not by its address) or its address on another interface.
	ToHost bool
	// FromBridge marks a packet that arrived on the network's bridge,
	// whatever its source address says. A container can write any source
	// address; a packet from the bridge whose source lies outside the
	// network's subnets is one it made up.
	FromBridge bool
}

// Verdict is what the firewall does with a flow.
type Verdict string

// The verdicts. Refuse means an immediate TCP reset or ICMP unreachable, so
// that clients fail fast instead of timing out.
const (
	Pass   Verdict = "pass"
	Refuse Verdict = "refuse"
	// Drop discards a packet without any answer: a reset or an ICMP error
	// would go to the packet's source address, which for a made-up source is
	// a way to carry the packet to any host.
	Drop Verdict = "drop"
	// Ignore is for flows that do not come from the container network: the
	// policy leaves them to the rest of the host's firewall.
	Ignore Verdict = "ignore"
)

// Decide states what every backend must do with f when allowed is the live
// allowlist. It is the specification the pf and nftables renderings are
// tested against; no backend calls it at run time.
//
// From the container network, in this order:
//   - DNS (UDP and TCP 53) to the policy's DNS servers passes;
//   - anything else to the host's own addresses (the gateway, the subnet's
//     broadcast addresses, Network.HostAddrs4, and any flow marked ToHost:
//     the host's own services) is refused;
//   - container to container inside the IPv4 or the IPv6 subnet passes;
//   - DNS to any other address is refused, allowlisted or not, so that DNS
//     goes only where the policy says;
//   - TCP and UDP to the allowlist pass on every other port;
//   - everything else is refused.
//
// A packet that arrives on the bridge with a source outside the subnets was
// made up by a container: it is dropped unanswered when the bridge is known
// (Network.Interface). IPv6 from a link-local source on the bridge is refused
// like any other flow that is not allowed. Connections the host opens to the
// containers pass, and so do their replies.
func (p Policy) Decide(f Flow, allowed *netipx.IPSet) Verdict {
	n := p.Network
	src, dst := f.Src.Unmap(), f.Dst.Unmap()
	if f.FromHost {
		if n.IPv4.Contains(dst) || (n.IPv6.IsValid() && n.IPv6.Contains(dst)) {
			return Pass
		}
		return Ignore
	}
	in6 := func(a netip.Addr) bool { return n.IPv6.IsValid() && n.IPv6.Contains(a) }
	fromNet := n.IPv4.Contains(src) || in6(src)
	if !fromNet {
		switch {
		case !f.FromBridge || n.Interface == "":
			// Without the bridge a backend can tell such a packet only by its
			// source address, which says it is not ours.
			return Ignore
		case src.Is6() && src.IsLinkLocalUnicast():
			return Refuse
		default:
			return Drop
		}
	}
	transport := f.Proto == TCP || f.Proto == UDP
	dns := transport && f.Port == 53
	isServer := func(d netip.Addr) bool { return d.Unmap() == dst }
	if dns && slices.ContainsFunc(p.DNS, isServer) {
		return Pass
	}
	if f.ToHost || slices.Contains(n.HostAddrs4(), dst) {
		return Refuse
	}
	if (src.Is4() && n.IPv4.Contains(dst)) || (src.Is6() && in6(dst)) {
		return Pass
	}
	if dns {
		return Refuse
	}
	if transport && allowed != nil && allowed.Contains(dst) {
		return Pass
	}
	return Refuse
}
