package dnsfilter

import (
	"net/netip"
	"strconv"
	"strings"
)

// localReverse reports whether name (canonical) is a reverse name, under
// in-addr.arpa or ip6.arpa, that lies inside one of the client networks:
// 5.0.88.10.in-addr.arpa and 88.10.in-addr.arpa for 10.88.0.0/16, not
// 10.in-addr.arpa.
//
// Such names are answered NXDOMAIN on the host, for any query type. RFC 6303
// asks this of private address space, which no public server can answer;
// NXDOMAIN rather than REFUSED, because a stub resolver takes NXDOMAIN as
// final, while REFUSED makes it ask the next server and makes programs that
// look up their peers (sshd, loggers) wait. Other reverse names are names
// like any other: refused unless the policy allows them.
func (h *Handler) localReverse(name string) bool {
	p, ok := reversePrefix(name)
	if !ok {
		return false
	}
	for _, c := range h.clients {
		if c.Addr().Is4() == p.Addr().Is4() && c.Bits() <= p.Bits() && c.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// reversePrefix returns the prefix a reverse name stands for: one octet per
// label under in-addr.arpa, one nibble per label under ip6.arpa.
func reversePrefix(name string) (netip.Prefix, bool) {
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		labels := strings.Split(rest, ".")
		if len(labels) > 4 {
			return netip.Prefix{}, false
		}
		var b [4]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 10, 8)
			if err != nil || strconv.FormatUint(n, 10) != l {
				return netip.Prefix{}, false // not an octet, or leading zeros
			}
			b[len(labels)-1-i] = byte(n)
		}
		return netip.PrefixFrom(netip.AddrFrom4(b), 8*len(labels)), true
	}
	if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		labels := strings.Split(rest, ".")
		if len(labels) > 32 {
			return netip.Prefix{}, false
		}
		var b [16]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 16, 8)
			if err != nil || len(l) != 1 {
				return netip.Prefix{}, false
			}
			pos := len(labels) - 1 - i // nibble index from the left
			b[pos/2] |= byte(n) << (4 * (1 - pos%2))
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), 4*len(labels)), true
	}
	return netip.Prefix{}, false
}
