// Package nft is the Linux firewall backend: it renders a policy.Policy as
// one nftables table of our own (family inet) and loads, refreshes and
// removes it with the nft program.
//
// The rules are loaded as `nft -f` text rather than through netlink
// (github.com/google/nftables). The text is what a person reviews (`mage
// subnet` prints it, as the pf backend prints its anchor); a whole `nft -f`
// script is one kernel transaction, so the rules are reloaded, and a set is
// flushed and refilled, with no instant in which packets see a partial
// state; and it needs no new dependency. The cost is one nft process per
// change, which reads our table back when it adds to an interval set: about
// 25 ms for an Add to a set of 2,000 prefixes and 180 ms at 20,000 (see the
// benchmarks). A DNS forwarder that allows each answer should hand Add all
// the addresses of an answer at once.
//
// Up reloads the table in place (flush its chains, add the rules again,
// flush and refill the sets) rather than deleting and recreating it: on
// Linux 6.18 packets that cross a delete-and-recreate transaction can miss
// the allowlist and be refused for a moment, which the end-to-end tests
// showed and the reload in place does not do.
//
// What the table does (policy.Policy.Decide states it exactly):
//
//   - Two base chains, on the forward hook (container to the world) and the
//     input hook (container to the host's own services), both at priority
//     filter - 10 with policy accept. They judge only packets from the
//     container network, recognised by the bridge interface (when known) and
//     by source address (the IPv4 subnet and the IPv6 subnet, when there is
//     one); every other packet of the host is left alone.
//   - Established and related packets pass: replies to connections the host
//     opened to a container, and the rest of connections already allowed.
//   - DNS (UDP and TCP 53) passes only to the policy's DNS servers; any other
//     traffic to the gateway, or to the subnet's broadcast addresses (which
//     reach every host service listening on all addresses), is refused;
//     IPv4 traffic inside the subnet
//     (container to container) passes; TCP and UDP to the allowlist sets
//     `<Table>_v4` and `<Table>_v6` pass on every port; everything else is
//     refused with a TCP reset or an ICMP administratively-prohibited error,
//     so that clients fail at once instead of timing out.
//
// Netfilter evaluates every base chain registered at a hook. An accept in
// another table (docker's or podman's forward rules, firewalld) ends only
// that chain, while our reject ends the packet, so nothing those tables
// accept can bypass our verdict. The forward hook sees packets after DNAT
// and before SNAT (masquerade), so the container's own address is the
// source our rules match.
//
// Two exceptions are not in Decide, because Decide has no notion of them:
// IPv6 neighbour discovery to the host passes (without it the host cannot
// reach its containers over IPv6), and a packet arriving on the bridge is
// judged even when its source address lies outside the subnets (a spoofed
// or link-local source is still the container network). A link-local source
// is refused like any other; any other source outside the subnets is dropped
// without an answer, since a reset or an ICMP error would carry the packet
// to that address, on the internet as well.
package nft
