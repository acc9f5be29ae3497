package allowlist

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestVetAppliesTheRules(t *testing.T) {
	pp := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	c := func(p, what string) cut { return cut{netip.MustParsePrefix(p), what} }
	const (
		rfc1918 = "private network, RFC 1918"
		cgnat   = "shared address space for CGNAT, RFC 6598"
		ula     = "unique local address, RFC 4193"
	)
	tests := []struct {
		name    string
		in      netip.Prefix
		literal bool
		want    verdict
	}{
		{name: "a public prefix passes", in: netip.MustParsePrefix("140.82.112.0/20"),
			want: verdict{allowed: pp("140.82.112.0/20")}},
		{name: "a public IPv6 prefix passes", in: netip.MustParsePrefix("2606:50c0::/32"),
			want: verdict{allowed: pp("2606:50c0::/32")}},
		{name: "host bits are masked", in: netip.MustParsePrefix("140.82.112.9/20"),
			want: verdict{entry: netip.MustParsePrefix("140.82.112.0/20"), allowed: pp("140.82.112.0/20")}},
		{name: "the IPv4 default route is refused", in: netip.MustParsePrefix("0.0.0.0/0"),
			want: verdict{refused: "default route"}},
		{name: "the IPv4 default route is refused even when written by hand", in: netip.MustParsePrefix("0.0.0.0/0"), literal: true,
			want: verdict{refused: "default route"}},
		{name: "the IPv6 default route is refused", in: netip.MustParsePrefix("::/0"), literal: true,
			want: verdict{refused: "default route"}},
		{name: "half the IPv4 internet is too broad", in: netip.MustParsePrefix("128.0.0.0/1"),
			want: verdict{refused: "too broad (shorter than /8)"}},
		{name: "an IPv4 /8 is not too broad", in: netip.MustParsePrefix("17.0.0.0/8"),
			want: verdict{allowed: pp("17.0.0.0/8")}},
		{name: "all global unicast IPv6 is too broad", in: netip.MustParsePrefix("2000::/3"),
			want: verdict{refused: "too broad (shorter than /19)"}},
		{name: "an IPv6 /19 is not too broad", in: netip.MustParsePrefix("2003::/19"),
			want: verdict{allowed: pp("2003::/19")}},
		{name: "a private range from a feed is refused", in: netip.MustParsePrefix("10.0.0.0/8"),
			want: verdict{refused: rfc1918}},
		{name: "a private range written by hand is kept with a note", in: netip.MustParsePrefix("10.0.0.0/8"), literal: true,
			want: verdict{allowed: pp("10.0.0.0/8"), kept: []cut{c("10.0.0.0/8", rfc1918)}}},
		{name: "a private host written by hand is kept", in: netip.MustParsePrefix("192.168.1.20/32"), literal: true,
			want: verdict{allowed: pp("192.168.1.20/32"), kept: []cut{c("192.168.1.20/32", rfc1918)}}},
		{name: "CGNAT space written by hand is kept", in: netip.MustParsePrefix("100.100.0.0/16"), literal: true,
			want: verdict{allowed: pp("100.100.0.0/16"), kept: []cut{c("100.100.0.0/16", cgnat)}}},
		{name: "a ULA prefix from a feed is refused", in: netip.MustParsePrefix("fd12:3456::/32"),
			want: verdict{refused: ula}},
		{name: "a ULA prefix written by hand is kept", in: netip.MustParsePrefix("fd12:3456::/32"), literal: true,
			want: verdict{allowed: pp("fd12:3456::/32"), kept: []cut{c("fd12:3456::/32", ula)}}},
		{name: "loopback is refused even when written by hand", in: netip.MustParsePrefix("127.0.0.1/32"), literal: true,
			want: verdict{refused: "loopback"}},
		{name: "IPv6 loopback is refused even when written by hand", in: netip.MustParsePrefix("::1/128"), literal: true,
			want: verdict{refused: "loopback"}},
		{name: "link-local is refused even when written by hand", in: netip.MustParsePrefix("169.254.169.254/32"), literal: true,
			want: verdict{refused: "link-local"}},
		{name: "IPv6 link-local is refused", in: netip.MustParsePrefix("fe80::1/128"), literal: true,
			want: verdict{refused: "link-local"}},
		{name: "multicast is refused even when written by hand", in: netip.MustParsePrefix("224.0.0.0/8"), literal: true,
			want: verdict{refused: "multicast"}},
		{name: "IPv6 multicast is refused", in: netip.MustParsePrefix("ff02::1/128"),
			want: verdict{refused: "multicast"}},
		{name: "the unspecified address is refused", in: netip.MustParsePrefix("::/128"),
			want: verdict{refused: "unspecified address"}},
		{name: `"this network" is refused`, in: netip.MustParsePrefix("0.0.0.0/8"),
			want: verdict{refused: `"this network", RFC 791`}},
		{name: "the broadcast address is refused", in: netip.MustParsePrefix("255.255.255.255/32"),
			want: verdict{refused: "broadcast"}},
		{name: "reserved space is refused", in: netip.MustParsePrefix("240.1.0.0/16"),
			want: verdict{refused: "reserved, RFC 1112"}},
		{name: "documentation space is refused", in: netip.MustParsePrefix("203.0.113.7/32"),
			want: verdict{refused: "documentation, TEST-NET-3"}},
		{name: "IPv6 documentation space is refused", in: netip.MustParsePrefix("2001:db8::/32"),
			want: verdict{refused: "documentation, RFC 3849"}},
		{name: "benchmarking space is refused", in: netip.MustParsePrefix("198.18.0.0/15"),
			want: verdict{refused: "benchmarking, RFC 2544"}},
		{name: "6to4 addresses, which embed any IPv4 address, are refused", in: netip.MustParsePrefix("2002:a00:1::/48"),
			want: verdict{refused: "6to4, RFC 3056: reaches any IPv4 address"}},
		{name: "NAT64 addresses are refused", in: netip.MustParsePrefix("64:ff9b::a00:1/128"),
			want: verdict{refused: "NAT64, RFC 6052: reaches any IPv4 address"}},
		{name: "Teredo is refused", in: netip.MustParsePrefix("2001::/32"),
			want: verdict{refused: "IETF protocol assignments and Teredo, RFC 2928"}},
		{name: "IPv6 outside global unicast is refused", in: netip.MustParsePrefix("4000::/19"),
			want: verdict{refused: "not global unicast: outside 2000::/3"}},
		{name: "an IPv4-mapped prefix is unmapped", in: netip.MustParsePrefix("::ffff:140.82.112.0/116"),
			want: verdict{entry: netip.MustParsePrefix("140.82.112.0/20"), allowed: pp("140.82.112.0/20")}},
		{name: "an IPv4-mapped private address is unmapped and refused", in: netip.MustParsePrefix("::ffff:10.0.0.1/128"),
			want: verdict{entry: netip.MustParsePrefix("10.0.0.1/32"), refused: rfc1918}},
		{name: "a prefix around shared space loses that part", in: netip.MustParsePrefix("100.0.0.0/8"),
			want: verdict{allowed: pp("100.0.0.0/10", "100.128.0.0/9"), removed: []cut{c("100.64.0.0/10", cgnat)}}},
		{name: "a prefix around shared space written by hand keeps it", in: netip.MustParsePrefix("100.0.0.0/8"), literal: true,
			want: verdict{allowed: pp("100.0.0.0/8"), kept: []cut{c("100.64.0.0/10", cgnat)}}},
		{name: "a prefix around several special ranges loses each", in: netip.MustParsePrefix("192.0.0.0/8"),
			want: verdict{
				allowed: pp("192.0.1.0/24", "192.0.3.0/24", "192.0.4.0/22", "192.0.8.0/21", "192.0.16.0/20",
					"192.0.32.0/19", "192.0.64.0/18", "192.0.128.0/17", "192.1.0.0/16", "192.2.0.0/15",
					"192.4.0.0/14", "192.8.0.0/13", "192.16.0.0/12", "192.32.0.0/11", "192.64.0.0/12",
					"192.80.0.0/13", "192.88.0.0/18", "192.88.64.0/19", "192.88.96.0/23", "192.88.98.0/24",
					"192.88.100.0/22", "192.88.104.0/21", "192.88.112.0/20", "192.88.128.0/17", "192.89.0.0/16",
					"192.90.0.0/15", "192.92.0.0/14", "192.96.0.0/11", "192.128.0.0/11", "192.160.0.0/13",
					"192.169.0.0/16", "192.170.0.0/15", "192.172.0.0/14", "192.176.0.0/12", "192.192.0.0/10"),
				removed: []cut{
					c("192.0.0.0/24", "IETF protocol assignments, RFC 6890"),
					c("192.0.2.0/24", "documentation, TEST-NET-1"),
					c("192.88.99.0/24", "6to4 relay anycast, RFC 7526"),
					c("192.168.0.0/16", rfc1918),
				}}},
		{name: "all of ULA space is too broad even when written by hand", in: netip.MustParsePrefix("fc00::/7"), literal: true,
			want: verdict{refused: "too broad (shorter than /19)"}},
		{name: "an invalid prefix is refused", in: netip.Prefix{},
			want: verdict{refused: "not a valid prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.want.entry.IsValid() && tt.in.IsValid() {
				tt.want.entry = tt.in
			}
			got := vet(tt.in, tt.literal)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(verdict{}, cut{}), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("vet(%s, literal=%v) (-want +got):\n%s", tt.in, tt.literal, diff)
			}
		})
	}
}

func TestSpecialRangesAreListedMostSpecificFirst(t *testing.T) {
	// A range listed after one that contains it would never be named.
	for i, a := range specials {
		for _, b := range specials[i+1:] {
			if a.prefix.Bits() < b.prefix.Bits() && a.prefix.Contains(b.prefix.Addr()) {
				t.Errorf("%s (%s) is listed before %s (%s), which it contains", a.prefix, a.what, b.prefix, b.what)
			}
		}
	}
}

func TestVetAddrRefusesWhatTheFileWouldRefuse(t *testing.T) {
	for a, ok := range map[string]bool{
		"140.82.112.3": true, "2606:50c0:8000::153": true, "::ffff:140.82.112.3": true,
		"10.0.0.1": false, "127.0.0.1": false, "169.254.169.254": false, "::1": false,
		"fe80::1": false, "192.168.1.1": false, "0.0.0.0": false, "::ffff:10.0.0.1": false, "fd00::1": false,
	} {
		err := VetAddr(netip.MustParseAddr(a))
		if (err == nil) != ok {
			t.Errorf("VetAddr(%s) = %v, want allowed %v", a, err, ok)
		}
	}
}
