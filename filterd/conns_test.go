package filterd

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePacketReadsWhatWasRefused(t *testing.T) {
	for _, tt := range []struct {
		name, hex string
		src, dst  string
		proto     string
		port      uint16
		ok        bool
	}{
		{"IPv4 TCP SYN to 443", "45000028 0001 4000 4006 0000 c0a8da0a cb00710a 1f4a01bb 00000000 00000000 50020000 00000000",
			"192.168.218.10", "203.0.113.10", "tcp", 443, true},
		{"IPv4 UDP to 53", "4500001c 0001 0000 4011 0000 c0a8da0a 08080808 d4310035 00080000",
			"192.168.218.10", "8.8.8.8", "udp", 53, true},
		{"IPv4 later fragment: no port", "4500001c 0001 0010 4011 0000 c0a8da0a 08080808 d4310035 00080000",
			"192.168.218.10", "8.8.8.8", "udp", 0, true},
		{"IPv6 TCP behind a hop-by-hop header", "60000000 001c 00 40 fd00c1a0 00de0000 00000000 00000010 20010db8 00000000 00000000 00000034" +
			" 06 00 0000 00000000 1f4a01bb 00000000 00000000 50020000 00000000",
			"fd00:c1a0:de::10", "2001:db8::34", "tcp", 443, true},
		{"IPv6 ICMPv6", "60000000 0008 3a 40 fd00c1a0 00de0000 00000000 00000010 20010db8 00000000 00000000 00000034 80000000 00000000",
			"fd00:c1a0:de::10", "2001:db8::34", "ipv6-icmp", 0, true},
		{"too short", "4500", "", "", "", 0, false},
		{"not IP", "0000000000000000000000000000000000000000", "", "", "", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, dst, proto, port, ok := parsePacket(mustHex(t, tt.hex))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if src != netip.MustParseAddr(tt.src) || dst != netip.MustParseAddr(tt.dst) || proto != tt.proto || port != tt.port {
				t.Errorf("= %v %v %s %d, want %s %s %s %d", src, dst, proto, port, tt.src, tt.dst, tt.proto, tt.port)
			}
		})
	}
}

func FuzzParsePacket(f *testing.F) {
	f.Add(mustHex(f, "45000028 0001 4000 4006 0000 c0a8da0a cb00710a 1f4a01bb 00000000 00000000 50020000 00000000"))
	f.Add(mustHex(f, "60000000 001c 00 40 fd00c1a0 00de0000 00000000 00000010 20010db8 00000000 00000000 00000034 06 00 0000 00000000 1f4a01bb"))
	f.Fuzz(func(t *testing.T, b []byte) {
		src, dst, _, _, ok := parsePacket(b)
		if ok && (!src.IsValid() || !dst.IsValid()) {
			t.Errorf("ok with invalid addresses %v %v", src, dst)
		}
	})
}

// bpfRecord lays out one BPF record as XNU's bpf_hdr does (timeval32,
// caplen, datalen, hdrlen, then the packet at hdrlen, the next record at a
// 4-byte boundary), in this machine's byte order.
func bpfRecord(pkt []byte) []byte {
	const hdrlen = 20 // 18, padded as XNU pads it
	b := make([]byte, hdrlen+len(pkt))
	binary.NativeEndian.PutUint32(b[8:], uint32(len(pkt)))
	binary.NativeEndian.PutUint32(b[12:], uint32(len(pkt)))
	binary.NativeEndian.PutUint16(b[16:], hdrlen)
	copy(b[hdrlen:], pkt)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// pflogRecord is a pfloghdr (61 bytes and 3 of padding) and ip.
func pflogRecord(action byte, ruleset string, ip []byte) []byte {
	h := make([]byte, 64)
	h[0], h[1], h[2] = 61, 2, action
	copy(h[4:], "bridge100")
	copy(h[20:36], ruleset)
	return append(h, ip...)
}

func TestRefusedByPfReadsWhatOurAnchorDropped(t *testing.T) {
	syn := mustHex(t, "45000028 0001 4000 4006 0000 c0a84005 5db8d822 1f4a01bb 00000000 00000000 50020000 00000000")
	var buf []byte
	buf = append(buf, bpfRecord(pflogRecord(1, "claude_firewall", syn))...)
	buf = append(buf, bpfRecord(pflogRecord(0, "claude_firewall", syn))...) // a pass
	buf = append(buf, bpfRecord(pflogRecord(1, "other_anchor", syn))...)    // not ours
	buf = append(buf, bpfRecord(pflogRecord(1, "claude_firewall", syn[:10]))...)
	buf = append(buf, 1, 2, 3) // a torn record at the end
	got := refusedByPf(buf, "claude_firewall")
	if len(got) != 1 {
		t.Fatalf("got %+v, want one record", got)
	}
	r := got[0]
	if r.Client != netip.MustParseAddr("192.168.64.5") || r.Addr != netip.MustParseAddr("93.184.216.34") || r.Proto != "tcp" || r.Port != 443 {
		t.Errorf("record = %+v", r)
	}
}

func FuzzRefusedByPf(f *testing.F) {
	f.Add(bpfRecord(pflogRecord(1, "claude_firewall", mustHex(f, "45000028 0001 4000 4006 0000 c0a84005 5db8d822 1f4a01bb"))))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, r := range refusedByPf(b, "claude_firewall") {
			if !r.Addr.IsValid() || !r.Client.IsValid() {
				t.Errorf("invalid addresses in %+v", r)
			}
		}
	})
}

func TestRecentClosesOnlyWhatNoAllowedNameNeedsAndForgetsWhatExpired(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := &recent{now: func() time.Time { return now }, forgetAt: time.Hour}
	a, b, c := netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("93.184.216.35"), netip.MustParseAddr("104.16.2.34")
	d := netip.MustParseAddr("151.101.1.1")
	r.add([]string{"gone.example"}, []netip.Addr{a, b})
	r.add([]string{"kept.example"}, []netip.Addr{b})
	for i := range maxNames + 5 { // an address of a CDN, answering for many names
		r.add([]string{fmt.Sprintf("n%d.cdn.example", i)}, []netip.Addr{c})
	}
	// An allowed alias of a name now denied: its address goes too.
	r.add([]string{"www.kept.example", "edge.denied.example"}, []netip.Addr{d})
	allowed := func(n string) bool { return strings.HasSuffix(n, "kept.example") }
	got := r.drop(allowed)
	slices.SortFunc(got, netip.Addr.Compare)
	if want := []netip.Addr{a, d}; !slices.Equal(got, want) {
		t.Errorf("drop = %v, want %v (%v is kept.example's too, %v answered for too many names, %v came through a denied CNAME target)", got, want, b, c, d)
	}
	if names := r.of(b); !slices.Equal(names, []string{"gone.example", "kept.example"}) {
		t.Errorf("names of %v = %q", b, names)
	}
	if len(r.of(c)) != maxNames {
		t.Errorf("names of %v = %d, want %d", c, len(r.of(c)), maxNames)
	}
	// An hour and more later, what was answered then has expired from the
	// firewall: it is forgotten as answers come.
	now = now.Add(2 * time.Hour)
	for i := range 1024 {
		r.add([]string{fmt.Sprintf("x%d.example", i)}, nil)
	}
	if r.of(b) != nil {
		t.Errorf("%v still remembered two hours on", b)
	}
}

func TestRefusedByPfMatchesALongAnchorByWhatPfKeepsOfIt(t *testing.T) {
	syn := mustHex(t, "45000028 0001 4000 4006 0000 c0a84005 5db8d822 1f4a01bb 00000000 00000000 50020000 00000000")
	// pf keeps 15 bytes of an anchor's name, and a NUL.
	buf := bpfRecord(pflogRecord(1, "claudecontainer", syn))
	if got := refusedByPf(buf, "claudecontainer_firewall"); len(got) != 1 {
		t.Errorf("a 24-character anchor: %d records, want 1", len(got))
	}
}
