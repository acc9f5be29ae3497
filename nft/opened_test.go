//go:build linux

package nft

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/policy"
)

// nsFd opens the network namespace ns for netlink, until the test ends.
func nsFd(tb testing.TB, ns string) int {
	tb.Helper()
	f, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		tb.Fatalf("opening network namespace %s: %v", ns, err)
	}
	tb.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// TestE2EOpenerOpensForTheTTLAndRenews drives the opened sets over netlink
// as the DNS filter does: an address opened for a time connects until the
// time has passed and is refused after it; opening it again before then
// extends it; and nothing that is not a public unicast address is opened.
func TestE2EOpenerOpensForTheTTLAndRenews(t *testing.T) {
	p := propertyPolicy(t)
	p.Filter = &policy.Filter{Port: filterPort}
	tp := newTopology(t, p, propertyFlows())
	ctx := context.Background()

	o, err := NewOpener(DefaultTable, p.Table, nsFd(t, tp.ns[roleHost]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	if err := o.Open(ctx, []netip.Addr{denied4}, time.Minute); err == nil {
		t.Error("Open succeeded with the firewall down")
	}

	b := tp.backend()
	if err := b.Up(ctx, p, prefixSet(t, "198.18.0.0/15", "2001:db8:a::/48")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Down(ctx) })
	for _, bad := range []struct {
		addrs []netip.Addr
		ttl   time.Duration
	}{
		{[]netip.Addr{netip.MustParseAddr("10.1.2.3")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("127.0.0.1")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("fe80::1")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("ff02::1")}, time.Minute},
		{[]netip.Addr{{}}, time.Minute},
		{[]netip.Addr{denied4}, 0},
		{[]netip.Addr{denied4}, firewall.MaxOpen + time.Second},
	} {
		if err := o.Open(ctx, bad.addrs, bad.ttl); err == nil {
			t.Errorf("Open(%v, %v) succeeded", bad.addrs, bad.ttl)
		}
	}
	tp.check(t, []probeCase{
		{"before it is opened", tcp(ctr4, denied4, 443), refused},
		{"IPv6, before it is opened", tcp(ctr6, denied6, 443), refused},
	})

	start := time.Now()
	if err := o.Open(ctx, []netip.Addr{denied4, denied6}, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	tp.check(t, []probeCase{
		{"once opened", tcp(ctr4, denied4, 443), connected},
		{"IPv6, once opened", tcp(ctr6, denied6, 443), connected},
	})
	// Renew the IPv4 address to 5 s from now; leave the IPv6 one.
	time.Sleep(time.Second)
	if err := o.Open(ctx, []netip.Addr{denied4}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if out := tp.listSet(OpenedSetNames(p.Table)); !strings.Contains(out, "timeout 5s") {
		t.Errorf("the renewed element does not carry its new timeout:\n%s", out)
	}
	time.Sleep(time.Until(start.Add(3500 * time.Millisecond))) // past the first timeout; the assertion is on what follows
	tp.check(t, []probeCase{
		{"renewed, past its first timeout", tcp(ctr4, denied4, 443), connected},
		{"IPv6, not renewed, past its timeout", tcp(ctr6, denied6, 443), refused},
	})
	time.Sleep(time.Until(start.Add(6500 * time.Millisecond)))
	tp.check(t, []probeCase{
		{"renewed, past its second timeout", tcp(ctr4, denied4, 443), refused},
	})
}

// listSet returns `nft list set` of the IPv4 opened set.
func (tp *topology) listSet(v4, _ string) string {
	out, err := exec.Command("ip", "netns", "exec", tp.ns[roleHost], "nft", "list", "set", Family, DefaultTable, v4).CombinedOutput()
	if err != nil {
		tp.t.Fatalf("nft list set: %v: %s", err, out)
	}
	return string(out)
}

// BenchmarkOpen measures one Open of a fresh address, as the DNS filter
// makes for a cache miss: one netlink batch into the live table.
func BenchmarkOpen(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		b.Skip("nft not installed")
	}
	ns := "ccbench-" + randomID()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		b.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	p := mustPolicy(b, policy.Network{
		Name: "claude", IPv4: netip.MustParsePrefix("192.168.218.0/24"), Gateway4: netip.MustParseAddr("192.168.218.1"),
		IPv6: netip.MustParsePrefix("fd00:c1a0:de::/64"), Interface: "br-bench",
	}, "allowed_destinations")
	p.Filter = &policy.Filter{Port: filterPort}
	script, err := Render(p, "")
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("loading the table: %v: %s", err, out)
	}
	o, err := NewOpener(DefaultTable, p.Table, nsFd(b, ns))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { o.Close() })
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		a := netip.AddrFrom4([4]byte{23, byte(i >> 16), byte(i >> 8), byte(i)}) // a fresh address each time
		if err := o.Open(ctx, []netip.Addr{a}, time.Hour); err != nil {
			b.Fatal(fmt.Errorf("open %v: %w", a, err))
		}
	}
}
