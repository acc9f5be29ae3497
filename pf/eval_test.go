package pf

// An evaluator of exactly the pf subset Render emits, with pf's semantics
// (pf.conf(5), "Translation" and "Packet filtering"): translation rules come
// before filter rules; for a packet coming in, the first matching
// translation rule decides, and "rdr pass" hands the packet to the
// redirect's target without the filter rules while "no rdr" leaves it to
// them. Filter rules are evaluated in order, the last matching rule decides,
// a matching "quick" rule ends evaluation, and a packet no rule matches
// passes. Anything outside the subset is a parse error, so a change to the
// renderer cannot be misread here without a test failing.

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/policy"
)

// addrSpec is one address of a rule: "any", a prefix, a table, an
// interface's own addresses ("(bridge100)"), or a list.
type addrSpec struct {
	any    bool
	prefix netip.Prefix
	table  string
	dynIf  string
	list   []addrSpec
}

type pfRule struct {
	line       int
	action     string // pass, block, rdr (always "rdr pass"), "no rdr" or scrub (always "fragment reassemble")
	ret        bool   // block return
	dir        string // in, out or "" (both)
	quick      bool
	ifname     string
	ifnot      bool
	af         string // inet, inet6 or ""
	protos     []string
	from, to   addrSpec
	ports      []uint16 // destination ports
	icmp6Types []string
	noState    bool
	fragOnly   bool // "fragment": matches only fragments not reassembled
	label      string
	// The redirect's target, for rdr.
	target     netip.Addr
	targetPort uint16
}

type pfRuleset struct {
	scrub  []pfRule // normalization rules, in order
	trans  []pfRule // translation rules, in order
	rules  []pfRule // filter rules, in order
	tables map[string]bool
}

var macroDef = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*)\s*=\s*"([^"]*)"$`)
var macroUse = regexp.MustCompile(`\$([A-Za-z][A-Za-z0-9_]*)`)

// parseRuleset parses anchor text in Render's subset.
func parseRuleset(text string) (*pfRuleset, error) {
	rs := &pfRuleset{tables: map[string]bool{}}
	macros := map[string]string{}
	for i, raw := range strings.Split(text, "\n") {
		lineNo := i + 1
		line := raw
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if m := macroDef.FindStringSubmatch(line); m != nil {
			macros[m[1]] = m[2]
			continue
		}
		var undefined []string
		line = macroUse.ReplaceAllStringFunc(line, func(s string) string {
			v, ok := macros[s[1:]]
			if !ok {
				undefined = append(undefined, s)
			}
			return v
		})
		if len(undefined) > 0 {
			return nil, fmt.Errorf("line %d: macro %s not defined", lineNo, undefined[0])
		}
		toks, err := tokenize(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		if toks[0] == "table" {
			if len(toks) != 3 || !strings.HasPrefix(toks[1], "<") || !strings.HasSuffix(toks[1], ">") || toks[2] != "persist" {
				return nil, fmt.Errorf("line %d: table declaration outside the subset: %q", lineNo, line)
			}
			name := strings.Trim(toks[1], "<>")
			if rs.tables[name] {
				return nil, fmt.Errorf("line %d: table <%s> declared twice", lineNo, name)
			}
			rs.tables[name] = true
			continue
		}
		r, err := parseRule(toks, rs.tables)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w: %q", lineNo, err, line)
		}
		r.line = lineNo
		if r.action == "scrub" {
			if len(rs.trans)+len(rs.rules) > 0 {
				return nil, fmt.Errorf("line %d: a normalization rule after a translation or filter rule", lineNo)
			}
			rs.scrub = append(rs.scrub, r)
			continue
		}
		if r.action == "rdr" || r.action == "no rdr" {
			if len(rs.rules) > 0 {
				// pfctl: "Rules must be in order: options, normalization,
				// queueing, translation, filtering".
				return nil, fmt.Errorf("line %d: a translation rule after a filter rule", lineNo)
			}
			rs.trans = append(rs.trans, r)
			continue
		}
		rs.rules = append(rs.rules, r)
	}
	return rs, nil
}

// tokenize splits a rule into words; braces, "!" and commas are separate
// tokens and quoted strings are one token (without the quotes).
func tokenize(line string) ([]string, error) {
	var toks []string
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == ',':
			i++
		case c == '{' || c == '}' || c == '!':
			toks = append(toks, string(c))
			i++
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			toks = append(toks, `"`+line[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(line) && !strings.ContainsRune(" \t,{}!\"", rune(line[j])) {
				j++
			}
			toks = append(toks, line[i:j])
			i = j
		}
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("empty rule")
	}
	return toks, nil
}

func parseRule(toks []string, tables map[string]bool) (pfRule, error) {
	var r pfRule
	pos := 0
	peek := func() string {
		if pos < len(toks) {
			return toks[pos]
		}
		return ""
	}
	next := func() string { t := peek(); pos++; return t }
	list := func() ([]string, error) { // a word or { words }
		if peek() != "{" {
			return []string{next()}, nil
		}
		next()
		var out []string
		for peek() != "}" {
			if peek() == "" {
				return nil, fmt.Errorf("unbalanced {")
			}
			out = append(out, next())
		}
		next()
		return out, nil
	}

	switch a := next(); a {
	case "pass", "block":
		r.action = a
	case "rdr":
		if next() != "pass" {
			return r, fmt.Errorf("rdr without pass is outside the subset")
		}
		r.action, r.dir = "rdr", "in" // pf translates with rdr only packets that come in
	case "no":
		if next() != "rdr" {
			return r, fmt.Errorf("want no rdr")
		}
		r.action, r.dir = "no rdr", "in"
	case "scrub":
		r.action = a
		if len(toks) < 4 || toks[len(toks)-2] != "fragment" || toks[len(toks)-1] != "reassemble" {
			return r, fmt.Errorf("scrub without fragment reassemble at its end is outside the subset")
		}
		toks = toks[:len(toks)-2]
	default:
		return r, fmt.Errorf("unknown action %q", a)
	}
	translation := r.action == "rdr" || r.action == "no rdr"
	if r.action == "block" && (peek() == "return" || peek() == "drop") {
		r.ret = next() == "return"
	}
	if !translation && (peek() == "in" || peek() == "out") {
		r.dir = next()
	}
	if !translation && peek() == "log" {
		next() // logging changes no verdict
	}
	if !translation && peek() == "quick" {
		if r.action == "scrub" {
			return r, fmt.Errorf("scrub rules take no quick")
		}
		next()
		r.quick = true
	}
	if peek() == "on" {
		next()
		if peek() == "!" {
			next()
			r.ifnot = true
		}
		r.ifname = next()
		if r.ifname == "" || r.ifname == "{" {
			return r, fmt.Errorf("interface lists are outside the subset")
		}
	}
	if peek() == "inet" || peek() == "inet6" {
		r.af = next()
	}
	if peek() == "proto" {
		next()
		ps, err := list()
		if err != nil {
			return r, err
		}
		for _, p := range ps {
			switch p {
			case "tcp", "udp", "icmp", "ipv6-icmp":
			default:
				return r, fmt.Errorf("protocol %q outside the subset", p)
			}
		}
		r.protos = ps
	}
	switch peek() {
	case "all":
		next()
		r.from, r.to = addrSpec{any: true}, addrSpec{any: true}
	case "from":
		next()
		var err error
		if r.from, err = parseAddr(next, peek, tables); err != nil {
			return r, err
		}
		if peek() == "port" {
			return r, fmt.Errorf("source ports are outside the subset")
		}
		if next() != "to" {
			return r, fmt.Errorf("want to")
		}
		if r.to, err = parseAddr(next, peek, tables); err != nil {
			return r, err
		}
		if peek() == "port" {
			next()
			ps, err := list()
			if err != nil {
				return r, err
			}
			for _, p := range ps {
				n, err := strconv.ParseUint(p, 10, 16)
				if err != nil || n == 0 {
					return r, fmt.Errorf("port %q outside the subset (numbers only)", p)
				}
				r.ports = append(r.ports, uint16(n))
			}
			for _, p := range r.protos {
				if p != "tcp" && p != "udp" {
					return r, fmt.Errorf("port only applies to tcp/udp")
				}
			}
			if len(r.protos) == 0 {
				return r, fmt.Errorf("port only applies to tcp/udp")
			}
		}
	default:
		return r, fmt.Errorf("want all or from")
	}
	if r.action == "scrub" {
		if pos != len(toks) || len(r.ports) > 0 {
			return r, fmt.Errorf("a scrub rule outside the subset (no ports, nothing after the addresses but fragment reassemble)")
		}
		return r, nil
	}
	if translation {
		if r.action == "rdr" {
			if next() != "->" {
				return r, fmt.Errorf("rdr without a target")
			}
			a, err := netip.ParseAddr(next())
			if err != nil || a.Zone() != "" {
				return r, fmt.Errorf("rdr target outside the subset (one address)")
			}
			if next() != "port" {
				return r, fmt.Errorf("rdr target without a port")
			}
			n, err := strconv.ParseUint(next(), 10, 16)
			if err != nil || n == 0 {
				return r, fmt.Errorf("rdr target port outside the subset (a number)")
			}
			if (r.af == "inet") != a.Is4() || r.af == "" {
				return r, fmt.Errorf("rdr target of another address family")
			}
			r.target, r.targetPort = a, uint16(n)
		}
		if pos != len(toks) {
			return r, fmt.Errorf("unexpected %q in a translation rule (it takes no label, state or quick)", toks[pos])
		}
		return r, nil
	}
	if peek() == "fragment" {
		next()
		r.fragOnly = true
	}
	if peek() == "icmp6-type" {
		next()
		ts, err := list()
		if err != nil {
			return r, err
		}
		if r.af != "inet6" || !slices.Equal(r.protos, []string{"ipv6-icmp"}) {
			return r, fmt.Errorf("icmp6-type only for inet6 proto ipv6-icmp")
		}
		r.icmp6Types = ts
	}
	if peek() == "keep" || peek() == "no" {
		r.noState = next() == "no"
		if next() != "state" {
			return r, fmt.Errorf("want keep state or no state")
		}
		if r.action == "block" {
			return r, fmt.Errorf("state options on a block rule")
		}
	}
	if peek() == "label" {
		next()
		l := next()
		if !strings.HasPrefix(l, `"`) {
			return r, fmt.Errorf("label must be quoted")
		}
		r.label = l[1:]
	}
	if pos != len(toks) {
		return r, fmt.Errorf("unexpected %q", toks[pos])
	}
	return r, nil
}

func parseAddr(next func() string, peek func() string, tables map[string]bool) (addrSpec, error) {
	t := next()
	switch {
	case t == "any":
		return addrSpec{any: true}, nil
	case t == "!":
		return addrSpec{}, fmt.Errorf("negated addresses are outside the subset")
	case t == "{":
		var s addrSpec
		for peek() != "}" {
			if peek() == "" {
				return s, fmt.Errorf("unbalanced {")
			}
			a, err := parseAddr(next, peek, tables)
			if err != nil {
				return s, err
			}
			if a.any || len(a.list) > 0 {
				return s, fmt.Errorf("any or nested lists inside a list")
			}
			s.list = append(s.list, a)
		}
		next()
		return s, nil
	case strings.HasPrefix(t, "<") && strings.HasSuffix(t, ">"):
		name := strings.Trim(t, "<>")
		if !tables[name] {
			return addrSpec{}, fmt.Errorf("table <%s> not declared in this anchor", name)
		}
		return addrSpec{table: name}, nil
	case strings.HasPrefix(t, "(") && strings.HasSuffix(t, ")"):
		// pf's dynamic address: the interface's own addresses, kept
		// current by the kernel. Modifiers (":network", ":0") are outside
		// the subset.
		name := strings.Trim(t, "()")
		if !policy.ValidInterface(name) {
			return addrSpec{}, fmt.Errorf("interface address %q outside the subset", t)
		}
		return addrSpec{dynIf: name}, nil
	}
	if p, err := netip.ParsePrefix(t); err == nil {
		if p != p.Masked() {
			return addrSpec{}, fmt.Errorf("unmasked prefix %s", t)
		}
		return addrSpec{prefix: p}, nil
	}
	a, err := netip.ParseAddr(t)
	if err != nil {
		return addrSpec{}, fmt.Errorf("address %q outside the subset", t)
	}
	return addrSpec{prefix: netip.PrefixFrom(a, a.BitLen())}, nil
}

// packet is what pf sees of the first packet of a connection.
type packet struct {
	dir       string // in or out
	ifname    string
	src, dst  netip.Addr
	proto     string // tcp, udp, icmp, ipv6-icmp
	port      uint16 // destination port for tcp and udp
	icmp6Type string // for ipv6-icmp
	// fragment marks a piece of a fragmented packet (the first one
	// included): until a scrub rule reassembles it, pf judges it by
	// pf_test_fragment, without translation and without the rules that
	// name ports or ICMP types (xnu bsd/net/pf.c).
	fragment bool
}

// world is what rules look up when a packet is evaluated: the contents of
// the tables and the host's own addresses on each interface.
type world struct {
	tables  map[string]*netipx.IPSet
	ifAddrs map[string][]netip.Addr
}

func (s addrSpec) match(a netip.Addr, w world) bool {
	switch {
	case s.any:
		return true
	case s.table != "":
		set := w.tables[s.table]
		return set != nil && set.Contains(a)
	case s.dynIf != "":
		return slices.Contains(w.ifAddrs[s.dynIf], a)
	case len(s.list) > 0:
		for _, e := range s.list {
			if e.match(a, w) {
				return true
			}
		}
		return false
	}
	return s.prefix.Addr().Is4() == a.Is4() && s.prefix.Contains(a)
}

func (r pfRule) match(p packet, w world) bool {
	if r.dir != "" && r.dir != p.dir {
		return false
	}
	if r.ifname != "" && (p.ifname == r.ifname) == r.ifnot {
		return false
	}
	af := "inet6"
	if p.src.Is4() {
		af = "inet"
	}
	if r.af != "" && r.af != af {
		return false
	}
	if len(r.protos) > 0 && !slices.Contains(r.protos, p.proto) {
		return false
	}
	if !r.from.match(p.src, w) || !r.to.match(p.dst, w) {
		return false
	}
	if len(r.ports) > 0 && ((p.proto != "tcp" && p.proto != "udp") || !slices.Contains(r.ports, p.port)) {
		return false
	}
	if len(r.icmp6Types) > 0 && (p.proto != "ipv6-icmp" || !slices.Contains(r.icmp6Types, p.icmp6Type)) {
		return false
	}
	return true
}

// skipsFragments reports whether pf_test_fragment passes over r for the
// fragment p: a rule that names a port or an ICMP type, and for a TCP
// fragment a rule with TCP flags, which pfctl gives every pass rule that
// keeps state and can match TCP ("flags S/SA").
func (r pfRule) skipsFragments(p packet) bool {
	flags := r.action == "pass" && !r.noState && (len(r.protos) == 0 || slices.Contains(r.protos, "tcp"))
	return len(r.ports) > 0 || len(r.icmp6Types) > 0 || p.proto == "tcp" && flags
}

// passNoState is the verdict of a "pass ... no state" rule, which the
// evaluator gives besides policy's verdicts: it is right for no flow of the
// policy's model (the flow's replies would be refused), only for neighbour
// discovery.
const passNoState policy.Verdict = "pass without state (replies would be refused)"

// eval returns the verdict for p and the matching rule (nil when none
// matched, which means pf's default: pass, leaving the packet to the rest of
// the host's rules). A packet an "rdr pass" redirects gets Redirect, with
// that rule.
func (rs *pfRuleset) eval(p packet, w world) (policy.Verdict, *pfRule) {
	if p.fragment && slices.ContainsFunc(rs.scrub, func(r pfRule) bool { return r.match(p, w) }) {
		p.fragment = false // reassembled: judged as the whole packet
	}
	for i := range rs.trans {
		if p.fragment {
			break
		}
		r := &rs.trans[i]
		if !r.match(p, w) {
			continue
		}
		if r.action == "rdr" {
			return policy.Redirect, r
		}
		break // no rdr: the filter rules decide
	}
	var last *pfRule
	for i := range rs.rules {
		r := &rs.rules[i]
		if !r.match(p, w) || r.fragOnly && !p.fragment || p.fragment && r.skipsFragments(p) {
			continue
		}
		last = r
		if r.quick {
			break
		}
	}
	switch {
	case last == nil:
		return policy.Ignore, nil
	case last.action == "pass" && last.noState:
		return passNoState, last
	case last.action == "pass":
		return policy.Pass, last
	case last.ret:
		return policy.Refuse, last
	}
	return policy.Drop, last
}

// The interface names the flows are mapped to.
const (
	uplink        = "en0"
	defaultBridge = "bridge100"
)

// bridgeOf returns the name of p's bridge interface, or the name the
// evaluator gives it when p does not know it.
func bridgeOf(p policy.Policy) string {
	if p.Network.Interface != "" {
		return p.Network.Interface
	}
	return defaultBridge
}

// hostAddr6 is the host's own address in p's IPv6 subnet as the flow table
// writes it (the runtime does not report it): the subnet's first address.
func hostAddr6(p policy.Policy) netip.Addr { return p.Network.IPv6.Addr().Next() }

// worldFor returns what the rules look up for p: the allowlist in p's table
// and, on the bridge, the host's own addresses there (the gateway and, with
// an IPv6 subnet, hostAddr6), which "($ctr_if)" stands for.
func worldFor(p policy.Policy, allowed *netipx.IPSet) world {
	return worldOpened(p, allowed, nil)
}

// worldOpened is worldFor with the addresses the DNS filter opened in their
// table.
func worldOpened(p policy.Policy, allowed, opened *netipx.IPSet) world {
	addrs := []netip.Addr{p.Network.Gateway4}
	if p.Network.IPv6.IsValid() {
		addrs = append(addrs, hostAddr6(p))
	}
	return world{
		tables:  map[string]*netipx.IPSet{p.Table: allowed, OpenedTable(p.Table): opened},
		ifAddrs: map[string][]netip.Addr{bridgeOf(p): addrs},
	}
}

// packetFor maps a policy flow to the packet pf sees: a flow from the
// container network, or marked as arriving on the bridge, arrives "in" on
// the network's bridge with the source address the container wrote; a
// connection the host opens leaves "out" on the bridge when it goes to the
// network; anything else travels on the uplink.
func packetFor(p policy.Policy, f policy.Flow) packet {
	n := p.Network
	bridge := bridgeOf(p)
	inNet := func(a netip.Addr) bool {
		return n.IPv4.Contains(a) || (n.IPv6.IsValid() && n.IPv6.Contains(a))
	}
	pk := packet{src: f.Src.Unmap(), dst: f.Dst.Unmap(), port: f.Port, proto: string(f.Proto), dir: "in", ifname: uplink}
	if f.Proto == policy.ICMP {
		pk.port = 0
		if pk.src.Is6() {
			pk.proto, pk.icmp6Type = "ipv6-icmp", "echoreq"
		}
	}
	if f.FromHost {
		pk.dir = "out"
		if inNet(pk.dst) {
			pk.ifname = bridge
		}
	} else if f.FromBridge || inNet(pk.src) {
		pk.ifname = bridge
	}
	return pk
}
