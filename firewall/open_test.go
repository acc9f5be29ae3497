package firewall

import (
	"net/netip"
	"testing"
	"time"
)

func TestCheckOpenRefusesWhatMustNeverBeOpened(t *testing.T) {
	a := netip.MustParseAddr
	for _, bad := range []struct {
		addrs []netip.Addr
		ttl   time.Duration
	}{
		{[]netip.Addr{a("10.1.2.3")}, time.Minute},
		{[]netip.Addr{a("127.0.0.1")}, time.Minute},
		{[]netip.Addr{a("fe80::1")}, time.Minute},
		{[]netip.Addr{a("fd00::1")}, time.Minute},
		{[]netip.Addr{a("ff02::1")}, time.Minute},
		{[]netip.Addr{a("::ffff:192.168.1.1")}, time.Minute},
		{[]netip.Addr{a("2606:50c0::1%eth0")}, time.Minute},
		{[]netip.Addr{{}}, time.Minute},
		{[]netip.Addr{a("140.82.113.4")}, 0},
		{[]netip.Addr{a("140.82.113.4")}, MaxOpen + time.Second},
	} {
		if got, err := CheckOpen(bad.addrs, bad.ttl); err == nil {
			t.Errorf("CheckOpen(%v, %v) = %v, want an error", bad.addrs, bad.ttl, got)
		}
	}
	got, err := CheckOpen([]netip.Addr{a("::ffff:140.82.113.4"), a("140.82.113.4"), a("2606:50c0::1")}, time.Minute)
	if err != nil || len(got) != 2 || got[0] != a("140.82.113.4") || got[1] != a("2606:50c0::1") {
		t.Errorf("CheckOpen: %v, %v; want the addresses unmapped, once each", got, err)
	}
}
