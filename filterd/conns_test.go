package filterd

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
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
