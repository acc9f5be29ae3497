package policy

import (
	"net/netip"
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
	// Redirect hands the packet to claudecontainer's DNS filter, which
	// answers it in place of the destination.
	Redirect Verdict = "redirect"
	// Drop discards a packet without any answer: a reset or an ICMP error
	// would go to the packet's source address, which for a made-up source is
	// a way to carry the packet to any host.
	Drop Verdict = "drop"
	// Ignore is for flows that do not come from the container network: the
	// policy leaves them to the rest of the host's firewall.
	Ignore Verdict = "ignore"
)
