// Package pf is the firewall backend for macOS: it renders a policy as a pf
// anchor that is loaded below Apple's own com.apple anchor point, and drives
// pfctl to load it, hold a pf enable reference, fill the allowlist table,
// verify the result and take it all down again.
//
// Render is pure. Everything that runs pfctl is in pfctl.go.
package pf

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/VerilyPete/claudecontainer/policy"
)

// Parent is the anchor point the stock /etc/pf.conf evaluates ("anchor
// \"com.apple/*\""); our anchor is loaded as one of its direct children.
const Parent = "com.apple"

// LabelPrefix starts the label of every rule we render, so that our rules
// can be recognised in `pfctl -s rules` and counted with `pfctl -s labels`.
const LabelPrefix = "claude-"

// Options are the settings of Render that do not come from the policy.
type Options struct {
	// Anchor is the anchor's name below com.apple: the text is loaded with
	// `pfctl -a com.apple/<Anchor> -f -`.
	Anchor string
}

var (
	// vmnet's host-side interfaces are bridgeNNN. Insisting on that shape
	// keeps a wrong value (lo0, en0) from ever reaching an interface-scoped
	// block rule, where it would cut the host's own traffic.
	bridgeName = regexp.MustCompile(`^bridge[0-9]{1,5}$`)
	// The network name only appears in a comment, but a newline in it would
	// turn the rest of the name into rules.
	networkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
)

// AnchorPath returns the full anchor path pfctl is given with -a.
func AnchorPath(anchor string) string { return Parent + "/" + anchor }

// Render returns the anchor text for p. It validates p first and refuses
// any value that could not be rendered safely; every address is printed from
// its netip value, never copied from outside text.
//
// The rules, in order, all "quick" (the first match decides):
//  1. the host's connections to the containers, from its own address on the
//     network, pass and keep state, so the containers' replies pass too (for
//     IPv6 only when the bridge is known: its address is the host's);
//  2. IPv6 neighbour discovery and router solicitation to on-link addresses
//     pass (on the bridge when known, else from the IPv6 subnet);
//  3. DNS, UDP and TCP port 53, passes to the policy's DNS servers only;
//  4. anything else to the host's own addresses on the subnet (the gateway
//     and the broadcast addresses: the host's own services) is refused;
//  5. container to container inside the IPv4 subnet passes;
//  6. DNS to any other address is refused, allowlisted or not;
//  7. TCP and UDP to the allowlist table pass on every port;
//  8. everything else from the network, IPv4 and IPv6, is refused with a TCP
//     reset or ICMP unreachable; on the bridge (when known), a packet whose
//     source lies outside the subnets is dropped unanswered instead.
func Render(p policy.Policy, o Options) (string, error) {
	if err := p.Validate(); err != nil {
		return "", fmt.Errorf("pf: refusing to render the policy: %w", err)
	}
	if !policy.ValidIdentifier(o.Anchor) {
		return "", fmt.Errorf("pf: anchor name %q: want letters, digits and '_', starting with a letter, at most 31 characters", o.Anchor)
	}
	n := p.Network
	if n.Name != "" && !networkName.MatchString(n.Name) {
		return "", fmt.Errorf("pf: network name %q: want letters, digits, '.', '_' or '-'", n.Name)
	}
	if n.Interface != "" && !bridgeName.MatchString(n.Interface) {
		return "", fmt.Errorf("pf: interface %q is not a vmnet bridge (bridgeNNN); refusing to scope block rules to it. Leave the interface unknown if the bridge cannot be found: the IPv4 rules do not need it", n.Interface)
	}
	var dns4, dns6 []netip.Addr
	for _, d := range p.DNS {
		if d.Is4() || d.Is4In6() {
			dns4 = append(dns4, d.Unmap())
		} else {
			dns6 = append(dns6, d)
		}
	}
	has6, hasIf := n.IPv6.IsValid(), n.Interface != ""
	if len(dns4) == 0 && (len(dns6) == 0 || !has6) {
		return "", errors.New("pf: the policy names no DNS server the containers can reach: an IPv6 DNS server needs a network with an IPv6 subnet")
	}

	path := AnchorPath(o.Anchor)
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	rule := func(text, label string) { w("%s label %q", text, LabelPrefix+label) }

	name := ""
	if n.Name != "" {
		name = fmt.Sprintf(" %q", n.Name)
	}
	w("# %s: claudecontainer's pf anchor for the container network%s.", path, name)
	w("#")
	w("# Load it ONLY into its own anchor:   pfctl -a %s -f -", path)
	w("# The stock main ruleset evaluates every direct child of com.apple (anchor")
	w("# \"com.apple/*\"), so /etc/pf.conf is never edited; never load this text as")
	w("# the main ruleset.")
	w("#")
	w("# Every rule is \"quick\": the FIRST rule that matches a packet decides, and no")
	w("# later rule here, in another anchor or in the main ruleset can override it.")
	w("# Packets that no rule matches are left to the rest of the host's pf.")
	w("# The containers' packets reach pf \"in\" from the bridge, before vmnet's NAT,")
	w("# with their own source address. \"on ! lo0\" keeps the rules away from the")
	w("# host's own loopback traffic (the host reaches its address $ctr_gw4 over lo0).")
	w("# Generated by claudecontainer from the network's parsed addresses; edits are lost.")
	w("")
	var macros [][3]string // name, value, comment
	macro := func(name, value, comment string) {
		macros = append(macros, [3]string{name, fmt.Sprintf("%q", value), comment})
	}
	macro("ctr_net4", n.IPv4.String(), "the containers' IPv4 subnet")
	macro("ctr_gw4", n.Gateway4.String(), "the host's address on it (vmnet gateway)")
	macro("ctr_host4", list(n.HostAddrs4()), "the host's addresses on it: the gateway and the broadcasts")
	if len(dns4) > 0 {
		macro("ctr_dns4", list(dns4), "the only DNS servers the containers may use")
	}
	if has6 {
		macro("ctr_net6", n.IPv6.String(), "the containers' IPv6 subnet")
		if len(dns6) > 0 {
			macro("ctr_dns6", list(dns6), "the only IPv6 DNS servers")
		}
	}
	if hasIf {
		macro("ctr_if", n.Interface, "the network's bridge interface on the host")
	}
	width := 0
	for _, m := range macros {
		width = max(width, len(m[0])+3+len(m[1]))
	}
	for _, m := range macros {
		w("%-*s  # %s", width, m[0]+" = "+m[1], m[2])
	}
	w("")
	w("# The allowlist: IPv4 and IPv6 entries in one table. Each rule below names its")
	w("# address family, so an entry only ever matches packets of its own family.")
	w("# The contents are loaded separately, atomically, and survive reloads of this text:")
	w("#   pfctl -a %s -t %s -T replace -f <file>", path, p.Table)
	w("table <%s> persist", p.Table)
	w("")

	w("# 1. The host opens connections to the containers (published ports, exec,")
	w("#    probes). \"keep state\" lets the containers' replies back in past rule 8.")
	w("#    Only from the host's own address on the network: a packet forwarded to a")
	w("#    container from elsewhere (through vmnet's endpoint-independent NAT, say)")
	w("#    must not open a way back out for the container's answers.")
	rule("pass out quick on ! lo0 inet from $ctr_gw4 to $ctr_net4 keep state", "host-to-ctr")
	switch {
	case has6 && hasIf:
		w("#    The runtime does not report the host's IPv6 address: ($ctr_if) stands for")
		w("#    the bridge's own addresses, kept current by pf.")
		rule("pass out quick on ! lo0 inet6 from ($ctr_if) to $ctr_net6 keep state", "host-to-ctr6")
	case has6:
		w("#    No IPv6 rule: the host's IPv6 address is known only through the bridge,")
		w("#    which exists once a container is attached; the rules are reloaded then.")
	}
	w("")

	renderNeighbourDiscovery(w, rule, has6, hasIf)

	w("# 3. DNS, UDP and TCP port 53, only to the DNS servers above (not to any host:")
	w("#    an open resolver elsewhere is an exfiltration channel).")
	if len(dns4) > 0 {
		rule("pass in quick on ! lo0 inet proto { udp tcp } from $ctr_net4 to $ctr_dns4 port 53 keep state", "dns")
	}
	if len(dns6) > 0 {
		if has6 {
			rule("pass in quick on ! lo0 inet6 proto { udp tcp } from $ctr_net6 to $ctr_dns6 port 53 keep state", "dns6")
		} else {
			w("#    IPv6 DNS servers (%s) are unreachable: the network has no IPv6 subnet.", list(dns6))
		}
	}
	w("")

	w("# 4. Anything else to the host itself (sshd, Screen Sharing, other services on")
	w("#    the gateway address, or reached through a broadcast address) is refused.")
	rule("block return in quick on ! lo0 inet from $ctr_net4 to $ctr_host4", "host")
	w("")

	w("# 5. Container to container. It stays on the bridge and does not reach pf;")
	w("#    IPv4 is passed should it ever do.")
	rule("pass in quick on ! lo0 inet from $ctr_net4 to $ctr_net4 keep state", "ctr-to-ctr")
	if has6 {
		w("#    No IPv6 rule: the host's own address lies inside the IPv6 subnet and")
		w("#    stays refused.")
	}
	w("")

	w("# 6. DNS to any other address is refused, even to an allowlisted one.")
	rule("block return in quick on ! lo0 inet proto { tcp udp } from $ctr_net4 to any port 53", "dns-other")
	if has6 {
		rule("block return in quick on ! lo0 inet6 proto { tcp udp } from $ctr_net6 to any port 53", "dns-other6")
	}
	w("")

	w("# 7. TCP and UDP to the allowlist, on every port (SSH to GitHub included).")
	rule(fmt.Sprintf("pass in quick on ! lo0 inet proto { tcp udp } from $ctr_net4 to <%s> keep state", p.Table), "allow")
	if has6 {
		rule(fmt.Sprintf("pass in quick on ! lo0 inet6 proto { tcp udp } from $ctr_net6 to <%s> keep state", p.Table), "allow6")
	}
	w("")

	w("# 8. Everything else from the containers is refused at once: a TCP reset or an")
	w("#    ICMP unreachable, so that clients fail fast instead of timing out. pf sends")
	w("#    no error in answer to ICMP, so a ping to a refused address times out.")
	rule("block return in quick on ! lo0 inet from $ctr_net4 to any", "deny")
	if has6 {
		rule("block return in quick on ! lo0 inet6 from $ctr_net6 to any", "deny6")
	}
	if hasIf {
		w("#    Everything else arriving on the bridge, scoped to it so that the uplink's")
		w("#    router advertisements are untouched: IPv6 from link-local sources is")
		w("#    refused (the answer stays on the link); any other source outside the")
		w("#    subnets, IPv4 or IPv6, is one a container made up, and is dropped without")
		w("#    an answer, since a reset or an ICMP error would carry the packet to that")
		w("#    address, and vmnet's NAT would not rewrite it on the way out.")
		rule("block return in quick on $ctr_if inet6 from fe80::/10 to any", "deny6-link-local")
		rule("block drop in quick on $ctr_if all", "deny-spoofed")
	}
	if !hasIf {
		w("#    Made-up source addresses are not caught here: that needs the bridge interface.")
	}
	switch {
	case !has6 && !hasIf:
		w("#    IPv6 is NOT filtered here: the network reports no IPv6 subnet and its")
		w("#    bridge interface is unknown. That is the case on macOS 15, where")
		w("#    containers have no IPv6 at all. A \"block in inet6\" without an")
		w("#    interface would cut the host's own IPv6, so none is rendered.")
	case has6 && !hasIf:
		w("#    IPv6 from link-local addresses is not filtered here: the bridge interface")
		w("#    is unknown, and a source-only fe80::/10 block would hit the uplink too.")
	}
	return b.String(), nil
}

const rsComment = "#    Router solicitation: the IPv6 default route at once, not at the next advertisement."

// renderNeighbourDiscovery writes rule 2: what IPv6 needs on the link.
// Containers need neighbour solicitations and advertisements (IPv6's ARP) to
// reach the host, and a router solicitation to get vmnet's router
// advertisement, and with it their IPv6 default route, at once rather than at
// the next unsolicited one (RFC 4861 lets a router wait up to 600 seconds
// between those by default). MLD is not passed: listener state matters only
// to multicast routers and snooping switches, and the bridge (XNU's
// if_bridge, which does no snooping) floods multicast to every member before
// pf sees it, while the host routes none.
//
// Every destination is on the link (fe80::/10, ff02::/16, the subnet), so
// nothing passed here can leave it. ND's hop limit of 255 cannot be required
// here: pf's filter rules have no hop-limit match (scrub's min-ttl only
// raises it, and Render writes no scrub rules); the receivers drop ND
// packets with any other hop limit themselves (RFC 4861).
func renderNeighbourDiscovery(w func(string, ...any), rule func(text, label string), has6, hasIf bool) {
	w("# 2. IPv6 neighbour discovery (IPv6's ARP), only to on-link addresses: nothing")
	w("#    here can leave the link. MLD is not needed: the bridge floods multicast.")
	switch {
	case hasIf:
		onLink := "{ fe80::/10 ff02::/16 }"
		if has6 {
			onLink = "{ fe80::/10 ff02::/16 $ctr_net6 }"
		}
		rule("pass in quick on $ctr_if inet6 proto ipv6-icmp from any to "+onLink+" icmp6-type { neighbrsol neighbradv } no state", "nd6")
		if has6 {
			w(rsComment)
			rule("pass in quick on $ctr_if inet6 proto ipv6-icmp from any to ff02::2 icmp6-type routersol no state", "rs6")
		}
	case has6:
		w("#    The bridge is unknown: only from the subnet, which rule 8 would refuse")
		w("#    (link-local sources match no rule here).")
		rule("pass in quick on ! lo0 inet6 proto ipv6-icmp from $ctr_net6 to { fe80::/10 ff02::/16 $ctr_net6 } icmp6-type { neighbrsol neighbradv } no state", "nd6")
		w(rsComment)
		rule("pass in quick on ! lo0 inet6 proto ipv6-icmp from $ctr_net6 to ff02::2 icmp6-type routersol no state", "rs6")
	default:
		w("#    (not rendered: no IPv6 subnet, and the bridge interface is unknown)")
	}
	w("")
}

// list renders addresses as a pf list, "{ a b }".
func list(addrs []netip.Addr) string {
	words := make([]string, len(addrs))
	for i, a := range addrs {
		words[i] = a.String()
	}
	return "{ " + strings.Join(words, " ") + " }"
}

var labelRE = regexp.MustCompile(`label "([^"]*)"`)

// labels returns the rule labels in rendered text, in order.
func labels(text string) []string {
	var out []string
	for _, m := range labelRE.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}
