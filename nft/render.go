package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/policy"
)

// DefaultTable is the name of our table when the configuration names none.
const DefaultTable = "claude_firewall"

// Family is the nftables family of our table: one table for IPv4 and IPv6.
const Family = "inet"

// chunk is how many set elements one `add element` statement carries. The
// whole script is still one transaction; chunking only keeps lines readable.
const chunk = 512

// SetNames returns the names of the IPv4 and IPv6 allowlist sets for the
// policy's table name.
func SetNames(table string) (v4, v6 string) { return table + "_v4", table + "_v6" }

// OpenedSetNames returns the names of the IPv4 and IPv6 sets that hold the
// addresses the DNS filter opened, each element with its own timeout.
func OpenedSetNames(table string) (v4, v6 string) { return table + "_dns4", table + "_dns6" }

// setCount is how many sets the table for p holds.
func setCount(p policy.Policy) int {
	if p.Filter != nil {
		return 4
	}
	return 2
}

// rule is one rule of a chain, with the comment rendered above it.
type rule struct {
	note string
	text string
}

// chain is one chain of our table; hook is empty for a regular chain.
type chain struct {
	name     string
	hook     string
	priority string // of a base chain; priority when empty
	kind     string // of a base chain; "filter" when empty
	device   string // of an ingress chain
	rules    []rule
}

// Names of our chains. The base chains are named after their hooks.
const (
	chainForward = "forward"
	chainInput   = "input"
	chainJudge   = "judge"
	chainRefuse  = "refuse"

	// LogGroup is the NFLOG group that the refuse chain logs to when the
	// DNS filter is on, with LogPrefix as the prefix.
	LogGroup     = 2708
	LogPrefix    = "claude-refused"
	chainIngress = "ingress"
	chainPre     = "prerouting"
	chainFilter  = "dnsfilter"
)

// Priorities of the chains that drop made-up sources. The ingress chain of
// the bridge device runs before the host's IP stack parses the packet; the
// prerouting chain runs before defragmentation (-400) and connection
// tracking (-200), also when br_netfilter hands it bridged frames.
const (
	ingressPriority    = "-500"
	preroutingPriority = "-450"
)

// priority of both base chains: just before the usual filter chains
// (iptables-nft, firewalld, netavark), so the client sees our fast reject
// rather than someone else's silent drop. Our verdict does not depend on it:
// an accept elsewhere never stops our chain.
const priority = "filter - 10"

// chains returns the chains that implement p, in the order they are
// rendered: every rule of p.Rules, each in the chain where its packets pass.
// Regular chains come after the base chains that jump to them. Without
// ingress the chain on the bridge device's ingress hook is left out.
//
// Rules for packets from the bridge with made-up sources go to the ingress
// and prerouting chains, which see them before the host's IP stack can
// answer them (see spoofChains); neighbour discovery to the input chain,
// with the hop limit it requires; the host's own connections to the
// containers are followed by connection tracking, so one rule passes their
// replies; every other rule goes, in order, to the judge chain, which the
// forward and input chains jump to for the network's packets.
func chains(p policy.Policy, ingress bool) ([]chain, error) {
	n := p.Network
	for _, a := range p.DNS {
		if a.Is4In6() {
			return nil, fmt.Errorf("DNS server %v is an IPv4-mapped IPv6 address; write it as %v", a, a.Unmap())
		}
	}
	var nd, judge, drops, nat []rule
	established := false
	for _, r := range p.Rules() {
		switch {
		case r.Fragments:
			// The kernel puts fragments together (nf_defrag) before
			// connection tracking and before these chains judge them, so
			// no rule here ever sees one. The made-up source chains run
			// before that, but match on addresses alone.
		case r.Verdict == policy.Redirect:
			redirect, accept, err := redirectRules(p, r)
			if err != nil {
				return nil, err
			}
			nat = append(nat, redirect)
			judge = append(judge, accept)
		case r.FromHost:
			// The host's output is not ours to filter: its connections
			// to the containers pass, and connection tracking lets their
			// replies (and nothing else) back through.
			if !established {
				judge = append(judge, rule{"replies to connections the host opened, and the rest of connections already allowed", "ct state established,related accept"})
				established = true
			}
		case r.Verdict == policy.Drop:
			rs, err := nftRule(p, r)
			if err != nil {
				return nil, err
			}
			drops = append(drops, rs...)
		case len(r.ICMP6) > 0:
			rs, err := nftRule(p, r)
			if err != nil {
				return nil, err
			}
			nd = append(nd, rs...)
		default:
			rs, err := nftRule(p, r)
			if err != nil {
				return nil, err
			}
			judge = append(judge, rs...)
		}
	}
	judge = append(judge, rule{"nothing else reaches this chain; should anything, it is refused", "goto " + chainRefuse})

	// Which packets are ours to judge: from the bridge, or from one of the
	// network's subnets.
	var match []rule
	if n.Interface != "" {
		match = append(match, rule{"everything that arrives on the network's bridge", fmt.Sprintf("iifname %q jump %s", n.Interface, chainJudge)})
	}
	match = append(match, rule{"everything from the network's IPv4 subnet", fmt.Sprintf("ip saddr %s jump %s", n.IPv4, chainJudge)})
	if n.IPv6.IsValid() {
		match = append(match, rule{"everything from the network's IPv6 subnet", fmt.Sprintf("ip6 saddr %s jump %s", n.IPv6, chainJudge)})
	}
	var fwd []rule
	if n.Interface != "" {
		// Only br_netfilter hands bridged frames to this hook; the
		// neighbour discovery between containers must not be refused then.
		fwd = append(fwd, rule{"link-scoped IPv6 between containers (neighbour discovery), which never leaves the bridge",
			fmt.Sprintf("iifname %q oifname %q ip6 daddr { fe80::/10, ff02::/16 } accept", n.Interface, n.Interface)})
	}
	forward := chain{name: chainForward, hook: "forward", rules: append(fwd, match...)}
	input := chain{name: chainInput, hook: "input", rules: append(append([]rule{
		{"the host talking to itself is not ours to judge", `iifname "lo" accept`},
	}, nd...), match...)}
	var logged []rule
	if p.Filter != nil {
		// The DNS filter's daemon reads this group (NFLOG) for `mage
		// blocked`: it sees the connections refused, at most 20 a second.
		logged = append(logged, rule{"tell the DNS filter what is refused (mage blocked), at most 20 packets a second",
			fmt.Sprintf("limit rate 20/second burst 40 packets log prefix %q group %d", LogPrefix, LogGroup)})
	}
	refuse := chain{name: chainRefuse, rules: append(logged, []rule{
		{"fail fast. TCP with a link-local address gets an ICMPv6 error: a reset is routed by its address alone and can leave by another interface",
			"meta l4proto tcp ip6 saddr fe80::/10 reject with icmpv6 type admin-prohibited"},
		{"", "meta l4proto tcp ip6 daddr fe80::/10 reject with icmpv6 type admin-prohibited"},
		{"a reset for other TCP, administratively prohibited for the rest", "meta l4proto tcp reject with tcp reset"},
		{"", "reject with icmpx type admin-prohibited"},
	}...)}
	cs := spoofChains(n, drops, ingress)
	if len(nat) > 0 {
		// Before the runtime's own DNAT (dstnat), so that ours is the
		// binding the connection gets.
		cs = append(cs, chain{name: chainFilter, hook: "prerouting", kind: "nat", priority: "dstnat - 10", rules: nat})
	}
	return append(cs, forward, input, chain{name: chainJudge, rules: judge}, refuse), nil
}

// redirectRules returns, for a Redirect rule, the nat rule that sends the
// containers' DNS to the filter's port on the host (the first address of
// the interface it arrived on: the gateway), and the judge rule that lets
// exactly those redirected queries reach it.
func redirectRules(p policy.Policy, r policy.Rule) (redirect, accept rule, err error) {
	n := p.Network
	if r.Port != 53 || p.Filter == nil || !slices.Equal(r.Protos, []policy.Proto{policy.TCP, policy.UDP}) || r.Src != policy.Net || r.Dst != policy.Any {
		return rule{}, rule{}, fmt.Errorf("rule %s: no nftables form for this redirect", r.Label)
	}
	src := "ip saddr " + n.IPv4.String()
	if r.Family == policy.IPv6 {
		src = "ip6 saddr " + n.IPv6.String()
	}
	redirect = rule{r.Note, fmt.Sprintf("%s meta l4proto { tcp, udp } th dport 53 redirect to :%d", src, p.Filter.Port)}
	accept = rule{"the DNS filter, for queries redirected to it (and no others)",
		fmt.Sprintf("%s meta l4proto { tcp, udp } th dport %d ct status dnat ct original proto-dst 53 accept", src, p.Filter.Port)}
	return redirect, accept, nil
}

// spoofChains returns the chains that drop packets with made-up source
// addresses from the bridge, holding drops: none when the bridge is not
// known. Without ingress the chain on the ingress hook is left out.
//
// A container can send with any source address, and the host's own kernel
// answers some packets before the forward and input hooks see them: a TTL
// or hop limit of 1 (time exceeded, from the forwarding code), a bad IPv4
// option or an unknown IPv6 hop-by-hop option (parameter problem, while the
// header is parsed), a packet larger than the uplink's MTU (fragmentation
// needed, packet too big), a first fragment alone (time exceeded when
// reassembly gives up). Each answer goes to the made-up source, anywhere on
// the internet, and quotes the packet. Two hooks close this, each needed:
//   - ingress on the bridge device runs before IPv6's hop-by-hop options are
//     parsed, which happens before prerouting; but with br_netfilter a
//     fragment is queued for reassembly before it gets there;
//   - prerouting before defragmentation, which br_netfilter also runs for
//     frames on the bridge, before it reassembles them.
func spoofChains(n policy.Network, drops []rule, ingress bool) []chain {
	if n.Interface == "" || len(drops) == 0 {
		return nil
	}
	var cs []chain
	if ingress {
		cs = append(cs, chain{name: chainIngress, hook: "ingress", device: n.Interface, priority: ingressPriority, rules: drops})
	}
	pre := make([]rule, len(drops))
	for i, r := range drops {
		pre[i] = rule{r.note, fmt.Sprintf("iifname %q %s", n.Interface, r.text)}
	}
	return append(cs, chain{name: chainPre, hook: "prerouting", priority: preroutingPriority, rules: pre})
}

// nftRule returns the nftables rules for r, a rule for packets from the
// container network, in the judge, input or made-up source chains.
func nftRule(p policy.Policy, r policy.Rule) ([]rule, error) {
	n := p.Network
	addr := func(s policy.Set, dir string) (string, error) {
		if e, ok := setExpr(p, s, r.Family, dir); ok {
			return e, nil
		}
		return "", fmt.Errorf("rule %s: no nftables form for %s %s", r.Label, dir, s)
	}
	var words []string
	if r.OnBridge {
		words = append(words, fmt.Sprintf("iifname %q", n.Interface))
	}
	if r.Src == policy.MadeUp {
		// Outside the subnets, not link-local; the unspecified address
		// only for ICMPv6 (neighbour discovery's duplicate address check).
		src6 := "{ fe80::/10, ::/128 }"
		if n.IPv6.IsValid() {
			src6 = fmt.Sprintf("{ %s, fe80::/10, ::/128 }", n.IPv6)
		}
		return []rule{
			{r.Note, fmt.Sprintf("ip saddr != %s drop", n.IPv4)},
			{"", fmt.Sprintf("ip6 saddr != %s drop", src6)},
			{"", "ip6 saddr ::/128 meta l4proto != ipv6-icmp drop"},
		}, nil
	}
	if r.OnBridge && r.Verdict == policy.Drop {
		words = words[:0] // the made-up source chains are on the bridge already
	}
	src, err := addr(r.Src, "saddr")
	if err != nil {
		return nil, err
	}
	dst, err := addr(r.Dst, "daddr")
	if err != nil {
		return nil, err
	}
	for _, w := range []string{src, dst} {
		if w != "" {
			words = append(words, w)
		}
	}
	switch {
	case len(r.ICMP6) > 0:
		var types []string
		for _, t := range r.ICMP6 {
			types = append(types, icmp6Names[t])
		}
		words = append(words, "icmpv6 type "+addrList(types), "ip6 hoplimit 255")
	case slices.Equal(r.Protos, []policy.Proto{policy.TCP, policy.UDP}):
		words = append(words, "meta l4proto { tcp, udp }")
	case len(r.Protos) > 0:
		return nil, fmt.Errorf("rule %s: no nftables form for protocols %v", r.Label, r.Protos)
	}
	if r.Port != 0 {
		words = append(words, fmt.Sprintf("th dport %d", r.Port))
	}
	switch r.Verdict {
	case policy.Pass:
		words = append(words, "accept")
	case policy.Refuse:
		words = append(words, "goto "+chainRefuse)
	default:
		words = append(words, "drop")
	}
	return []rule{{r.Note, strings.Join(words, " ")}}, nil
}

// setExpr returns the match of set s for a rule of family f on the side dir
// ("saddr" or "daddr"): "" for any address; false when nftables has no
// form for it.
func setExpr(p policy.Policy, s policy.Set, f policy.Family, dir string) (string, bool) {
	n := p.Network
	fam := map[policy.Family]string{policy.IPv4: "ip", policy.IPv6: "ip6"}
	set4, set6 := SetNames(p.Table)
	kw := fam[f] + " " + dir + " "
	v6 := f == policy.IPv6
	switch s {
	case policy.Any:
		return "", true
	case policy.Net:
		if v6 {
			return kw + n.IPv6.String(), true
		}
		return kw + n.IPv4.String(), true
	case policy.Host:
		if !v6 {
			return kw + addrList(strs(n.HostAddrs4())), true
		}
		if dir == "daddr" {
			// The runtime does not always report the host's IPv6
			// address: the routing table knows it, and the subnet-router
			// anycast address a forwarding host joins.
			return "fib daddr type { local, anycast }", true
		}
	case policy.DNS:
		var as []string
		for _, d := range p.DNS {
			if d.Is4() != v6 {
				as = append(as, d.String())
			}
		}
		return kw + addrList(as), true
	case policy.Allowlist:
		if v6 {
			return kw + "@" + set6, true
		}
		return kw + "@" + set4, true
	case policy.Opened:
		o4, o6 := OpenedSetNames(p.Table)
		if v6 {
			return kw + "@" + o6, true
		}
		return kw + "@" + o4, true
	case policy.OnLink:
		if n.IPv6.IsValid() {
			return kw + fmt.Sprintf("{ fe80::/10, ff02::/16, %s }", n.IPv6), true
		}
		return kw + "{ fe80::/10, ff02::/16 }", true
	case policy.Routers:
		return kw + "ff02::2", true
	case policy.LinkLocal:
		return kw + "fe80::/10", true
	case policy.NDSource:
		if n.IPv6.IsValid() {
			return kw + fmt.Sprintf("{ fe80::/10, ::/128, %s }", n.IPv6), true
		}
		return kw + "{ fe80::/10, ::/128 }", true
	}
	return "", false
}

// icmp6Names are nftables' names of the ICMPv6 types the rules use.
var icmp6Names = map[policy.ICMP6Type]string{
	policy.NeighbourSolicit: "nd-neighbor-solicit",
	policy.NeighbourAdvert:  "nd-neighbor-advert",
	policy.RouterSolicit:    "nd-router-solicit",
}

func strs(as []netip.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

func addrList(as []string) string {
	slices.Sort(as)
	as = slices.Compact(as)
	if len(as) == 1 {
		return as[0]
	}
	return "{ " + strings.Join(as, ", ") + " }"
}

// Render returns the `nft -f` script that loads our table (table;
// DefaultTable when empty) with the rules for p and the allowlist sets,
// without their elements. It is one transaction: `add table` makes sure the
// table exists, `flush table` empties every chain of it, and the definition
// that follows declares the sets and chains (a no-op for those that exist)
// and adds the rules, all committed at once. The sets, and the elements in
// them, stay; Up refills them in the same transaction.
func Render(p policy.Policy, table string) (string, error) {
	return render(p, table, "flush", true)
}

// render renders the script; how says what happens to an existing table:
// "flush" empties its chains, "delete" removes it with everything in it.
// Without ingress the chain on the bridge device's ingress hook is left out.
func render(p policy.Policy, table, how string, ingress bool) (string, error) {
	if table == "" {
		table = DefaultTable
	}
	if !policy.ValidIdentifier(table) {
		return "", fmt.Errorf("nftables table name %q: want letters, digits and '_', starting with a letter, at most 31 characters", table)
	}
	if err := p.Validate(); err != nil {
		return "", fmt.Errorf("rendering nftables rules: %w", err)
	}
	cs, err := chains(p, ingress)
	if err != nil {
		return "", fmt.Errorf("rendering nftables rules: %w", err)
	}
	n := p.Network
	var b strings.Builder
	fmt.Fprintf(&b, "# claudecontainer firewall for container network %q\n", n.Name)
	fmt.Fprintf(&b, "#   IPv4 %s, gateway %s", n.IPv4, n.Gateway4)
	if n.IPv6.IsValid() {
		fmt.Fprintf(&b, ", IPv6 %s", n.IPv6)
	}
	if n.Interface != "" {
		fmt.Fprintf(&b, ", bridge %s", n.Interface)
	}
	b.WriteString("\n")
	if n.Interface == "" {
		b.WriteString("#   The bridge is not known: only packets with a source address in the subnets\n")
		b.WriteString("#   are judged; made-up sources and IPv6 link-local traffic are not.\n")
	}
	fmt.Fprintf(&b, "# Load with `nft -f`: one transaction that changes table %s %s and nothing else.\n", Family, table)
	fmt.Fprintf(&b, "add table %s %s\n", Family, table)
	fmt.Fprintf(&b, "%s table %s %s\n", how, Family, table)
	fmt.Fprintf(&b, "table %s %s {\n", Family, table)
	set4, set6 := SetNames(p.Table)
	for _, s := range []struct{ name, typ string }{{set4, "ipv4_addr"}, {set6, "ipv6_addr"}} {
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\tauto-merge\n\t}\n\n", s.name, s.typ)
	}
	if p.Filter != nil {
		// Single addresses, each with the timeout the DNS filter gives it;
		// a reload keeps them (flush table empties chains, not sets).
		o4, o6 := OpenedSetNames(p.Table)
		for _, s := range []struct{ name, typ string }{{o4, "ipv4_addr"}, {o6, "ipv6_addr"}} {
			fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n\t\tflags timeout\n\t}\n\n", s.name, s.typ)
		}
	}
	writeChains(&b, cs)
	b.WriteString("}\n")
	return b.String(), nil
}

// writeChains renders chains inside a table block.
func writeChains(b *strings.Builder, cs []chain) {
	for i, c := range cs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(b, "\tchain %s {\n", c.name)
		if c.hook != "" {
			prio := c.priority
			if prio == "" {
				prio = priority
			}
			dev := ""
			if c.device != "" {
				dev = fmt.Sprintf(" device %q", c.device)
			}
			kind := c.kind
			if kind == "" {
				kind = "filter"
			}
			fmt.Fprintf(b, "\t\ttype %s hook %s%s priority %s; policy accept;\n", kind, c.hook, dev, prio)
		}
		for _, r := range c.rules {
			if r.note != "" {
				fmt.Fprintf(b, "\t\t# %s\n", r.note)
			}
			fmt.Fprintf(b, "\t\t%s\n", r.text)
		}
		b.WriteString("\t}\n")
	}
}

// split returns the prefixes of set that go into the IPv4 and the IPv6 set.
// IPv4-mapped IPv6 prefixes are left out: policy.Decide unmaps destinations,
// so they never match, and no packet on the wire carries such an address.
func split(set *netipx.IPSet) (v4, v6 []netip.Prefix) {
	if set == nil {
		return nil, nil
	}
	for _, p := range set.Prefixes() {
		switch {
		case p.Addr().Is4():
			v4 = append(v4, p)
		case p.Addr().Is4In6() && p.Bits() >= 96:
			// inside ::ffff:0:0/96
		default:
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

// checkAllowlist refuses an allowlist that holds every IPv4 or every IPv6
// address: with it the firewall would let everything through.
func checkAllowlist(set *netipx.IPSet) error {
	if set == nil {
		return nil
	}
	for _, p := range set.Prefixes() {
		if p.Bits() == 0 {
			return fmt.Errorf("refusing to allowlist every address (%s)", p)
		}
	}
	return nil
}

// elements renders `add element` statements that put prefixes into set.
func elements(b *strings.Builder, table, set string, prefixes []netip.Prefix) {
	for len(prefixes) > 0 {
		n := min(chunk, len(prefixes))
		fmt.Fprintf(b, "add element %s %s %s { ", Family, table, set)
		for i, p := range prefixes[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(p.String())
		}
		b.WriteString(" }\n")
		prefixes = prefixes[n:]
	}
}

// fill renders the statements that set both allowlist sets to exactly set:
// a flush of each set and the elements, meant for the same transaction.
func fill(b *strings.Builder, table, setTable string, set *netipx.IPSet, flush bool) {
	set4, set6 := SetNames(setTable)
	v4, v6 := split(set)
	if flush {
		fmt.Fprintf(b, "flush set %s %s %s\n", Family, table, set4)
		fmt.Fprintf(b, "flush set %s %s %s\n", Family, table, set6)
	}
	elements(b, table, set4, v4)
	elements(b, table, set6, v6)
}
