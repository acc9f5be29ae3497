// Package pf is the firewall backend for macOS: it renders a policy as a pf
// anchor that is loaded below Apple's own com.apple anchor point, and drives
// pfctl to load it, hold a pf enable reference, fill the allowlist table,
// verify the result and take it all down again. With a DNS filter, the
// anchor redirects the containers' DNS to it, and the Opener (opened.go)
// opens and closes the addresses of its answers.
//
// Render is pure. Everything that runs pfctl goes through runPfctl in
// pfctl.go.
package pf

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
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

// Render returns the anchor text for p: the macros, the allowlist table,
// the scrub rules, the translation rules of the DNS filter and one pf rule
// for each rule of p.Rules, in order, all "quick" (the first match
// decides). It validates p first and refuses any value that could not be
// rendered safely; every address is printed from its netip value, never
// copied from outside text.
func Render(p policy.Policy, o Options) (string, error) {
	dns4, dns6, err := check(p, o)
	if err != nil {
		return "", err
	}
	var b text
	header(&b, p, AnchorPath(o.Anchor))
	macros(&b, p.Network, dns4, dns6)
	tables(&b, p, AnchorPath(o.Anchor))
	b.lines(normalization(p.Network))
	rules := p.Rules()
	if p.Filter != nil {
		lines, err := translation(p, rules)
		if err != nil {
			return "", err
		}
		b.lines(lines)
	}
	if err := filterRules(&b, p, rules); err != nil {
		return "", err
	}
	footer(&b, p.Network, dns6)
	return b.String(), nil
}

// text is the anchor as it is written.
type text struct{ strings.Builder }

// w writes one line.
func (b *text) w(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }

// lines writes lines and then an empty one.
func (b *text) lines(ls []string) {
	for _, l := range ls {
		b.w("%s", l)
	}
	b.w("")
}

// check refuses a policy or options that cannot be rendered safely, and
// returns the policy's DNS servers by family.
func check(p policy.Policy, o Options) (dns4, dns6 []netip.Addr, err error) {
	if err := p.Validate(); err != nil {
		return nil, nil, fmt.Errorf("pf: refusing to render the policy: %w", err)
	}
	if p.Filter != nil && len(OpenedTable(p.Table)) > maxTableName {
		return nil, nil, fmt.Errorf("pf: table name %q: with the DNS filter it must leave room for %q (at most %d characters)", p.Table, "_dns", maxTableName-len("_dns"))
	}
	if !policy.ValidIdentifier(o.Anchor) {
		return nil, nil, fmt.Errorf("pf: anchor name %q: want letters, digits and '_', starting with a letter, at most 31 characters", o.Anchor)
	}
	n := p.Network
	if n.Name != "" && !networkName.MatchString(n.Name) {
		return nil, nil, fmt.Errorf("pf: network name %q: want letters, digits, '.', '_' or '-'", n.Name)
	}
	if n.Interface != "" && !bridgeName.MatchString(n.Interface) {
		return nil, nil, fmt.Errorf("pf: interface %q is not a vmnet bridge (bridgeNNN); refusing to scope block rules to it. Leave the interface unknown if the bridge cannot be found: the IPv4 rules do not need it", n.Interface)
	}
	for _, d := range p.DNS {
		if d.Is4() || d.Is4In6() {
			dns4 = append(dns4, d.Unmap())
		} else {
			dns6 = append(dns6, d)
		}
	}
	if len(dns4) == 0 && (len(dns6) == 0 || !n.IPv6.IsValid()) {
		return nil, nil, errors.New("pf: the policy names no DNS server the containers can reach: an IPv6 DNS server needs a network with an IPv6 subnet")
	}
	return dns4, dns6, nil
}

// header writes the comment that opens the anchor.
func header(b *text, p policy.Policy, path string) {
	name := ""
	if p.Network.Name != "" {
		name = fmt.Sprintf(" %q", p.Network.Name)
	}
	b.w("# %s: claudecontainer's pf anchor for the container network%s.", path, name)
	b.w("#")
	b.w("# Load it ONLY into its own anchor:   pfctl -a %s -f -", path)
	b.w("# The stock main ruleset evaluates every direct child of com.apple (anchor")
	b.w("# \"com.apple/*\"), so /etc/pf.conf is never edited; never load this text as")
	b.w("# the main ruleset.")
	b.w("#")
	if p.Filter == nil {
		b.w("# Every rule is \"quick\": the FIRST rule that matches a packet decides, and no")
		b.w("# later rule here, in another anchor or in the main ruleset can override it.")
	} else {
		b.w("# Every filter rule is \"quick\": the FIRST rule that matches a packet decides,")
		b.w("# and no later rule here, in another anchor or in the main ruleset can override")
		b.w("# it. The translation rules come first: pf reads them before any filter rule.")
	}
	b.w("# Packets that no rule matches are left to the rest of the host's pf.")
	b.w("# The containers' packets reach pf \"in\" from the bridge, before vmnet's NAT,")
	b.w("# with their own source address. \"on ! lo0\" keeps the rules away from the")
	b.w("# host's own loopback traffic (the host reaches its address $ctr_gw4 over lo0).")
	b.w("# Generated by claudecontainer from the network's parsed addresses; edits are lost.")
	b.w("")
}

// macros writes the network's addresses as macros, each with its comment,
// the comments aligned.
func macros(b *text, n policy.Network, dns4, dns6 []netip.Addr) {
	var ms [][3]string // name, value, comment
	macro := func(name, value, comment string) {
		ms = append(ms, [3]string{name, fmt.Sprintf("%q", value), comment})
	}
	macro("ctr_net4", n.IPv4.String(), "the containers' IPv4 subnet")
	macro("ctr_gw4", n.Gateway4.String(), "the host's address on it (vmnet gateway)")
	macro("ctr_host4", list(n.HostAddrs4()), "the host's addresses on it: the gateway and the broadcasts")
	if len(dns4) > 0 {
		macro("ctr_dns4", list(dns4), "the only DNS servers the containers may use")
	}
	if n.IPv6.IsValid() {
		macro("ctr_net6", n.IPv6.String(), "the containers' IPv6 subnet")
		if len(dns6) > 0 {
			macro("ctr_dns6", list(dns6), "the only IPv6 DNS servers")
		}
	}
	if n.Interface != "" {
		macro("ctr_if", n.Interface, "the network's bridge interface on the host")
	}
	width := 0
	for _, m := range ms {
		width = max(width, len(m[0])+3+len(m[1]))
	}
	for _, m := range ms {
		b.w("%-*s  # %s", width, m[0]+" = "+m[1], m[2])
	}
	b.w("")
}

// tables writes the allowlist table and, with the DNS filter, the table of
// what it opened.
func tables(b *text, p policy.Policy, path string) {
	b.w("# The allowlist: IPv4 and IPv6 entries in one table. Each rule below names its")
	b.w("# address family, so an entry only ever matches packets of its own family.")
	b.w("# The contents are loaded separately, atomically, and survive reloads of this text:")
	b.w("#   pfctl -a %s -t %s -T replace -f <file>", path, p.Table)
	b.w("table <%s> persist", p.Table)
	if p.Filter != nil {
		b.w("")
		b.w("# What the DNS filter opened: the addresses in its answers, each for the TTL of")
		b.w("# the answer that named it. pf tables keep no timeout: claudecontainer's DNS")
		b.w("# filter adds each answer's addresses and deletes them once their time is up.")
		b.w("# The contents, too, survive reloads of this text:")
		b.w("#   pfctl -a %s -t %s -T add <address>...", path, OpenedTable(p.Table))
		b.w("table <%s> persist", OpenedTable(p.Table))
	}
	b.w("")
}

// filterRules writes one filter rule for each rule of rules that pf
// prints, each after its note, and says why pf leaves out the others.
func filterRules(b *text, p policy.Policy, rules []policy.Rule) error {
	for i, r := range rules {
		if i == 0 || rules[i-1].Note != r.Note {
			b.w("# %s", r.Note)
		}
		if r.Verdict == policy.Redirect {
			b.w("#   (above, a translation rule: pf redirects before it filters)")
			continue
		}
		text, why := printRule(p, r, i == len(rules)-1)
		if strings.HasPrefix(why, "no pf form") {
			// A rule the printer does not know must stop the rendering,
			// never vanish from it.
			return fmt.Errorf("pf: rule %s: %s", r.Label, why)
		}
		if why != "" {
			b.w("#   (not here: %s)", why)
			continue
		}
		b.w("%s label %q", text, LabelPrefix+r.Label)
	}
	b.w("")
	return nil
}

// footer writes what the anchor does not filter, and why.
func footer(b *text, n policy.Network, dns6 []netip.Addr) {
	has6, hasIf := n.IPv6.IsValid(), n.Interface != ""
	if len(dns6) > 0 && !has6 {
		b.w("# The IPv6 DNS servers %s are unreachable: the network has no IPv6 subnet.", list(dns6))
	}
	switch {
	case !hasIf && !has6:
		b.w("# IPv6 is NOT filtered here, nor are made-up source addresses: the network")
		b.w("# reports no IPv6 subnet and its bridge interface is unknown (macOS 15, whose")
		b.w("# containers have no IPv6). A \"block in inet6\" without an interface would")
		b.w("# cut the host's own IPv6.")
	case !hasIf:
		b.w("# Made-up source addresses and IPv6 from link-local addresses are not filtered")
		b.w("# here: that needs the bridge interface (a source-only fe80::/10 block would")
		b.w("# hit the uplink too). The rules are reloaded once the bridge exists.")
	}
}

// printRule returns the pf text of r, or why pf leaves it out. last says
// whether r is the last rule of the list.
//
// pf sees the containers' packets "in" on the bridge, before vmnet's NAT,
// with their own source address, and the host's own connections to them
// "out". "on ! lo0" keeps the rules off the host's loopback traffic, which
// pf filters too on macOS.
func printRule(p policy.Policy, r policy.Rule, last bool) (text, why string) {
	var words []string
	add := func(w ...string) { words = append(words, w...) }
	switch r.Verdict {
	case policy.Pass:
		add("pass")
	case policy.Refuse:
		add("block return")
	case policy.Drop:
		add("block drop")
	default:
		return "", fmt.Sprintf("no pf form for verdict %q", r.Verdict)
	}
	if r.FromHost {
		add("out")
	} else {
		add("in")
	}
	if r.Verdict == policy.Refuse && p.Filter != nil && !r.FromHost {
		// The DNS filter reads pflog0 for `mage blocked`: what the
		// containers are refused, logged by the rule that refused it.
		add("log")
	}
	add("quick", iface(r.OnBridge), family(r.Family))
	switch {
	case len(r.ICMP6) > 0:
		add("proto ipv6-icmp")
	case slices.Equal(r.Protos, []policy.Proto{policy.TCP, policy.UDP}):
		add("proto { tcp udp }")
	case len(r.Protos) > 0:
		return "", fmt.Sprintf("no pf form for protocols %v", r.Protos)
	}
	src, why := setText(p, r, r.Src, last)
	if why != "" {
		return "", why
	}
	dst, why := setText(p, r, r.Dst, last)
	if why != "" {
		return "", why
	}
	if r.Family == policy.IPv6 && r.Src == policy.Net && r.Dst == policy.Net && !r.FromHost {
		// vmnet's bridge does no member filtering (XNU if_bridge.c,
		// bridge_pf), so traffic between containers never reaches pf.
		return "", "it stays on the bridge; no pf rule passes the IPv6 subnet, so the host's own IPv6 address on it stays refused"
	}
	if src == "all" {
		add("all")
	} else {
		add("from", src, "to", dst)
	}
	if r.Port != 0 {
		add(fmt.Sprintf("port %d", r.Port))
	}
	if r.Fragments {
		add("fragment")
	}
	if len(r.ICMP6) > 0 {
		var types []string
		for _, t := range r.ICMP6 {
			types = append(types, icmp6Names[t])
		}
		if len(types) == 1 {
			add("icmp6-type " + types[0])
		} else {
			add("icmp6-type { " + strings.Join(types, " ") + " }")
		}
		add("no state") // neighbour discovery is one packet each way
	} else if r.Verdict == policy.Pass {
		add("keep state")
	}
	return strings.Join(strings.Fields(strings.Join(words, " ")), " "), ""
}

// normalization returns the scrub rule that reassembles the containers'
// fragmented IPv4 packets before pf translates or filters them, with its
// comment. pf judges a fragment it has not reassembled by pf_test_fragment
// (xnu's pf.c): neither rdr nor any rule that names a port, an ICMP type or
// TCP flags applies to it, so a DNS query sent in fragments would be
// neither redirected to the DNS filter nor refused by the rule for port 53,
// and the allowlist's rule (UDP, no port) would pass it. The stock main
// ruleset reads our scrub rules through `scrub-anchor "com.apple/*"`.
//
// IPv6 is not scrubbed: xnu's pf_normalize_ip6 mishandles fragments a
// container can craft (a fragment followed by destination options reads a
// buffer it has just taken apart; a full fragment pool leaks the packet).
// The containers' IPv6 fragments are dropped by a filter rule instead.
func normalization(n policy.Network) []string {
	out := []string{
		"# Normalization: pf reassembles the containers' fragmented IPv4 packets before",
		"# any rule below sees them: a fragment carries no ports, so the rules that name",
		"# a port (DNS, the redirect to the DNS filter) would not apply to one. Their",
		"# IPv6 fragments are dropped by a filter rule instead.",
	}
	if n.Interface != "" {
		return append(out, "scrub in on $ctr_if inet all fragment reassemble")
	}
	return append(out, "scrub in on ! lo0 inet from $ctr_net4 to any fragment reassemble")
}

// translation returns the translation rules of p, with their comments: an
// "rdr pass" for each Redirect rule, in order, each after a "no rdr" for
// every earlier rule that a redirected packet could match too, so that the
// first rule of the list decides, as it does for the filter rules. pf reads
// every translation rule before any filter rule, and the first that matches
// decides; "rdr pass" then passes the packet without the filter rules, and
// "no rdr" leaves it to them.
//
// The filter listens on loopback. A packet from the bridge cannot reach
// loopback by itself (XNU drops 127/8 arriving on another interface before
// pf sees it, and the filter rules refuse both families' loopback as any
// other destination), so the filter gets the queries pf redirects and
// nothing else; the gateway's address on the filter's port is refused with
// the rest of the host's.
func translation(p policy.Policy, rules []policy.Rule) ([]string, error) {
	out := []string{
		"# Translation rules: pf reads them before any filter rule below, and the first",
		"# that matches a packet decides. \"rdr pass\" hands a query to claudecontainer's",
		fmt.Sprintf("# DNS filter on loopback, port %d, and passes it without the filter rules;", p.Filter.Port),
		"# pf's state turns the answer back into one from the address the query went to.",
		"# \"no rdr\" leaves a packet to the filter rules. Translation rules have no label",
		"# in pf's grammar, and no \"quick\": they are all first-match.",
	}
	done := map[string]bool{}
	for i, r := range rules {
		if r.Verdict != policy.Redirect {
			continue
		}
		for _, e := range rules[:i] {
			if done[e.Label] || !overlaps(e, r) {
				continue
			}
			text, err := noRdr(p, e, r)
			if err != nil {
				return nil, err
			}
			out = append(out, "# "+e.Note+": decided by the filter rules", text)
			done[e.Label] = true
		}
		text, err := rdr(p, r)
		if err != nil {
			return nil, err
		}
		if note := "# " + r.Note; note != out[len(out)-2] {
			out = append(out, note)
		}
		out = append(out, text)
	}
	return out, nil
}

// overlaps reports whether a packet that the Redirect rule r matches could
// also match e, an earlier rule that is not a redirect: then e decides.
// Sets are not compared, so a rule that names other addresses counts too.
func overlaps(e, r policy.Rule) bool {
	switch {
	case e.Verdict == policy.Redirect, e.FromHost, len(e.ICMP6) > 0, e.Fragments:
		// pf translates no fragment it has not reassembled, and a rule
		// for fragments matches no whole packet.
		return false
	case e.Family != policy.Both && r.Family != policy.Both && e.Family != r.Family:
		return false
	case len(e.Protos) > 0 && !slices.ContainsFunc(r.Protos, func(p policy.Proto) bool { return slices.Contains(e.Protos, p) }):
		return false
	case e.Port != 0 && e.Port != r.Port:
		return false
	}
	return true
}

// redirectable reports whether r is a Redirect rule pf can print: TCP and
// UDP to port 53 from the network's subnet to any address.
func redirectable(r policy.Rule) bool {
	return r.Verdict == policy.Redirect && r.Port == 53 && slices.Equal(r.Protos, []policy.Proto{policy.TCP, policy.UDP}) &&
		r.Src == policy.Net && r.Dst == policy.Any && r.Family != policy.Both
}

// rdr returns the translation rule for the Redirect rule r: on the bridge
// when it is known, else on any interface but loopback, as the filter rules
// are. A packet the host sends itself is never redirected: pf translates
// with rdr only packets that come in.
func rdr(p policy.Policy, r policy.Rule) (string, error) {
	if !redirectable(r) {
		return "", fmt.Errorf("pf: rule %s: no pf form for this redirect", r.Label)
	}
	src, _ := setText(p, r, r.Src, false)
	target := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	if r.Family == policy.IPv6 {
		target = netip.IPv6Loopback()
	}
	return fmt.Sprintf("rdr pass %s %s proto { tcp udp } from %s to any port %d -> %s port %d",
		iface(p.Network.Interface != ""), family(r.Family), src, r.Port, target, p.Filter.Port), nil
}

// noRdr returns the "no rdr" rule that keeps the Redirect rule r from
// translating what the earlier rule e decides.
func noRdr(p policy.Policy, e, r policy.Rule) (string, error) {
	e.Family = r.Family
	src, why := setText(p, e, e.Src, false)
	if why == "" && src == "all" {
		why = "no translation form"
	}
	dst, why2 := setText(p, e, e.Dst, false)
	if why == "" {
		why = why2
	}
	if why != "" || !redirectable(r) {
		return "", fmt.Errorf("pf: rule %s decides before the redirect %s, but pf cannot keep it from being redirected: %s", e.Label, r.Label, why)
	}
	return fmt.Sprintf("no rdr %s %s proto { tcp udp } from %s to %s port %d",
		iface(e.OnBridge), family(r.Family), src, dst, r.Port), nil
}

// OpenedTable returns the name of the table that holds the addresses the
// DNS filter opened, in the anchor beside the allowlist table.
func OpenedTable(table string) string { return table + "_dns" }

// maxTableName is the longest table name pf takes (PF_TABLE_NAME_SIZE - 1).
const maxTableName = 31

// iface returns the interface clause of a rule: the bridge, or any interface
// but loopback.
func iface(onBridge bool) string {
	if onBridge {
		return "on $ctr_if"
	}
	return "on ! lo0"
}

// family returns the address family clause of a rule; "" for either.
func family(f policy.Family) string {
	switch f {
	case policy.IPv4:
		return "inet"
	case policy.IPv6:
		return "inet6"
	}
	return ""
}

// setText returns how rule r names the set s in pf, or why pf has no form
// for it. last says whether r is the last rule of the list.
func setText(p policy.Policy, r policy.Rule, s policy.Set, last bool) (string, string) {
	n := p.Network
	v6 := r.Family == policy.IPv6
	switch s {
	case policy.Any:
		return "any", ""
	case policy.Net:
		if v6 {
			return "$ctr_net6", ""
		}
		return "$ctr_net4", ""
	case policy.Host:
		switch {
		case !v6 && r.FromHost:
			return "$ctr_gw4", ""
		case !v6:
			return "$ctr_host4", ""
		case n.Interface != "":
			return "($ctr_if)", "" // the bridge's own addresses, kept current by pf
		}
		return "", "the host's IPv6 address is known only through the bridge; the last rule refuses it"
	case policy.DNS:
		if v6 {
			return "$ctr_dns6", ""
		}
		return "$ctr_dns4", ""
	case policy.Allowlist:
		return "<" + p.Table + ">", ""
	case policy.Opened:
		if p.Filter == nil {
			return "", "the policy has no DNS filter"
		}
		return "<" + OpenedTable(p.Table) + ">", ""
	case policy.OnLink:
		if n.IPv6.IsValid() {
			return "{ fe80::/10 ff02::/16 $ctr_net6 }", ""
		}
		return "{ fe80::/10 ff02::/16 }", ""
	case policy.Routers:
		return "ff02::2", ""
	case policy.LinkLocal:
		return "fe80::/10", ""
	case policy.NDSource:
		if n.IPv6.IsValid() {
			return "{ fe80::/10 :: $ctr_net6 }", ""
		}
		return "{ fe80::/10 :: }", ""
	case policy.MadeUp:
		// pf cannot negate a list safely ("! { a b }" matches
		// everything), so this rule comes last, where only made-up
		// sources are left.
		if !last || !r.OnBridge {
			return "", "made-up sources are matched only by the last rule on the bridge"
		}
		return "all", ""
	}
	return "", fmt.Sprintf("no pf form for set %q", s)
}

// icmp6Names are pf's names of the ICMPv6 types the rules use.
var icmp6Names = map[policy.ICMP6Type]string{
	policy.NeighbourSolicit: "neighbrsol",
	policy.NeighbourAdvert:  "neighbradv",
	policy.RouterSolicit:    "routersol",
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
