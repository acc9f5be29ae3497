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
}

// Verdict is what the firewall does with a flow.
type Verdict string

// The verdicts. Refuse means an immediate TCP reset or ICMP unreachable, so
// that clients fail fast instead of timing out.
const (
	Pass   Verdict = "pass"
	Refuse Verdict = "refuse"
	// Ignore is for flows that do not come from the container network: the
	// policy leaves them to the rest of the host's firewall.
	Ignore Verdict = "ignore"
)

// Decide states what every backend must do with f when allowed is the live
// allowlist. It is the specification the pf and nftables renderings are
// tested against; no backend calls it at run time.
//
// From the container network: DNS (UDP and TCP 53) to the policy's DNS
// servers passes; any other traffic to the host's own addresses on the
// subnet (the gateway and the broadcast addresses, Network.HostAddrs4: the
// host's own services) is refused; traffic to other addresses of the IPv4
// subnet passes
// (container to container); TCP and UDP to the allowlist pass on every port;
// everything else, IPv6 included, is refused. Connections the host opens to
// the containers pass, and so do their replies.
func (p Policy) Decide(f Flow, allowed *netipx.IPSet) Verdict {
	n := p.Network
	src, dst := f.Src.Unmap(), f.Dst.Unmap()
	if f.FromHost {
		if n.IPv4.Contains(dst) || (n.IPv6.IsValid() && n.IPv6.Contains(dst)) {
			return Pass
		}
		return Ignore
	}
	fromNet := n.IPv4.Contains(src) || (n.IPv6.IsValid() && n.IPv6.Contains(src))
	if !fromNet {
		return Ignore
	}
	transport := f.Proto == TCP || f.Proto == UDP
	isDNS := func(d netip.Addr) bool { return d.Unmap() == dst }
	if transport && f.Port == 53 && slices.ContainsFunc(p.DNS, isDNS) {
		return Pass
	}
	if slices.Contains(n.HostAddrs4(), dst) {
		return Refuse
	}
	if src.Is4() && n.IPv4.Contains(dst) {
		return Pass
	}
	if transport && allowed != nil && allowed.Contains(dst) {
		return Pass
	}
	return Refuse
}
