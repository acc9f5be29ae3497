package allowlist

import (
	"errors"
	"fmt"
	"net/netip"

	"go4.org/netipx"
)

// Vetting rules. Every prefix and every DNS answer passes through vet before
// it can reach the allowlist:
//
//   - A prefix shorter than /8 (IPv4) or /19 (IPv6), the default routes
//     0.0.0.0/0 and ::/0 included, is refused whole as too broad. IANA hands
//     out IPv4 space in /8 blocks and the largest IPv6 blocks the registries
//     give a single network are about /19 (2003::/19), so a shorter prefix
//     always spans unrelated networks; and cutting the special ranges out of
//     a default route would quietly open the whole internet.
//   - Ranges that are not public destinations are cut out: an entry inside
//     one is refused, an entry that contains one keeps only the rest (set
//     arithmetic), each with a warning that names the range.
//   - Private ranges (RFC 1918, shared address space 100.64.0.0/10, IPv6
//     unique local fc00::/7) are kept when the user wrote them by hand (a
//     source whose Result is Literal), with a note; never from a feed or a
//     DNS answer.
//
// IPv4-mapped IPv6 prefixes are unmapped first, so ::ffff:1.2.3.4 is vetted
// (and matched by the firewall) as 1.2.3.4.

// minBits is the shortest prefix accepted, per address family.
const (
	minBits4 = 8
	minBits6 = 19
)

// minBits returns the shortest prefix length accepted for a's family.
func minBits(a netip.Addr) int {
	if a.Is6() {
		return minBits6
	}
	return minBits4
}

// special is one range that is never a public destination.
type special struct {
	prefix  netip.Prefix
	what    string
	private bool // kept when the user wrote it by hand
}

// specials is ordered most specific first where ranges nest: a range is
// named by the first entry that covers it.
var specials = []special{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network", RFC 791`, false},
	{netip.MustParsePrefix("10.0.0.0/8"), "private network, RFC 1918", true},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared address space for CGNAT, RFC 6598", true},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", false},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local", false},
	{netip.MustParsePrefix("172.16.0.0/12"), "private network, RFC 1918", true},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments, RFC 6890", false},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation, TEST-NET-1", false},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast, RFC 7526", false},
	{netip.MustParsePrefix("192.168.0.0/16"), "private network, RFC 1918", true},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking, RFC 2544", false},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation, TEST-NET-2", false},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation, TEST-NET-3", false},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast", false},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast", false},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved, RFC 1112", false},

	{netip.MustParsePrefix("::/128"), "unspecified address", false},
	{netip.MustParsePrefix("::1/128"), "loopback", false},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped", false},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64, RFC 6052: reaches any IPv4 address", false},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64, RFC 8215", false},
	{netip.MustParsePrefix("100::/64"), "discard-only, RFC 6666", false},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments and Teredo, RFC 2928", false},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation, RFC 3849", false},
	{netip.MustParsePrefix("2002::/16"), "6to4, RFC 3056: reaches any IPv4 address", false},
	{netip.MustParsePrefix("3fff::/20"), "documentation, RFC 9637", false},
	{netip.MustParsePrefix("fc00::/7"), "unique local address, RFC 4193", true},
	{netip.MustParsePrefix("fe80::/10"), "link-local", false},
	{netip.MustParsePrefix("fec0::/10"), "site-local, RFC 3879", false},
	{netip.MustParsePrefix("ff00::/8"), "multicast", false},
	// Everything else outside 2000::/3 is not global unicast.
	{netip.MustParsePrefix("::/3"), "not global unicast: outside 2000::/3", false},
	{netip.MustParsePrefix("4000::/2"), "not global unicast: outside 2000::/3", false},
	{netip.MustParsePrefix("8000::/1"), "not global unicast: outside 2000::/3", false},
}

// specialSet is the union of specials, for the common case of an entry that
// touches none of them.
var specialSet = func() *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, s := range specials {
		b.AddPrefix(s.prefix)
	}
	set, err := b.IPSet()
	if err != nil {
		panic("allowlist: special ranges: " + err.Error())
	}
	return set
}()

// cut is one special range met while vetting an entry.
type cut struct {
	part netip.Prefix // the overlap with the entry
	what string
}

func (c cut) String() string { return fmt.Sprintf("%s (%s)", c.part, c.what) }

// verdict is what vetting made of one entry.
type verdict struct {
	entry   netip.Prefix   // the entry as vetted (unmapped, masked)
	allowed []netip.Prefix // what may go into the allowlist; empty when refused
	refused string         // why the whole entry was refused, or ""
	removed []cut          // special ranges cut out of the entry
	kept    []cut          // private ranges kept because the user wrote them
}

// unmap turns an IPv4-mapped IPv6 prefix (::ffff:0:0/96 or longer) into the
// IPv4 prefix it stands for, and returns any other prefix as it is.
func unmap(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// vet applies the vetting rules to p. literal says the user wrote p by hand.
func vet(p netip.Prefix, literal bool) verdict {
	if !p.IsValid() {
		return verdict{entry: p, refused: "not a valid prefix"}
	}
	p = unmap(p).Masked()
	switch min := minBits(p.Addr()); {
	case p.Bits() == 0:
		return verdict{entry: p, refused: "default route"}
	case p.Bits() < min:
		return verdict{entry: p, refused: fmt.Sprintf("too broad (shorter than /%d)", min)}
	case !specialSet.OverlapsPrefix(p):
		return verdict{entry: p, allowed: []netip.Prefix{p}}
	}
	return cutSpecials(p, literal)
}

// cutSpecials cuts the special ranges out of p, which overlaps some: each
// part is named by the first range that covers it, and kept rather than cut
// when literal and the range is private.
func cutSpecials(p netip.Prefix, literal bool) verdict {
	v := verdict{entry: p}
	// pending is the part of p not yet named by any range; result is what
	// survives.
	var pending, result netipx.IPSetBuilder
	pending.AddPrefix(p)
	result.AddPrefix(p)
	for _, s := range specials {
		// Prefixes either nest or are disjoint, so the overlap is the
		// smaller of the two.
		if !s.prefix.Overlaps(p) {
			continue
		}
		part := s.prefix
		if p.Bits() > s.prefix.Bits() {
			part = p
		}
		left, err := pending.IPSet()
		if err != nil { // unreachable: p and every special are valid
			return verdict{entry: p, refused: err.Error()}
		}
		if !left.OverlapsPrefix(part) {
			continue // already named by an earlier, more specific range
		}
		pending.RemovePrefix(part)
		c := cut{part: part, what: s.what}
		if literal && s.private {
			v.kept = append(v.kept, c)
			continue
		}
		result.RemovePrefix(part)
		if part == p {
			return verdict{entry: p, refused: s.what}
		}
		v.removed = append(v.removed, c)
	}
	set, err := result.IPSet()
	if err != nil { // unreachable, as above
		return verdict{entry: p, refused: err.Error()}
	}
	v.allowed = set.Prefixes()
	if len(v.allowed) == 0 {
		v.refused = "nothing left after removing special ranges"
	}
	return v
}

// VetAddr says why a into the live firewall must not be opened (a private,
// loopback, link-local or other special address: an allowed name that
// resolves there would become a way into the host's networks), or returns
// nil. The DNS filter vets every address of every answer with it.
func VetAddr(a netip.Addr) error {
	if !a.IsValid() {
		return errors.New("not a valid address")
	}
	a = a.Unmap()
	if v := vet(netip.PrefixFrom(a, a.BitLen()), false); v.refused != "" {
		return errors.New(v.refused)
	}
	return nil
}

// VetLiteral says why the allowlist would refuse p, written by hand in the
// local file, as a whole, or returns nil. Private ranges pass, as the user
// asked for them; loopback, link-local and the like do not.
func VetLiteral(p netip.Prefix) error {
	v := vet(p, true)
	if v.refused != "" {
		return errors.New(v.refused)
	}
	if len(v.allowed) == 0 {
		return fmt.Errorf("it lies wholly in special ranges (%v)", v.removed)
	}
	return nil
}
