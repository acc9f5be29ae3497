//go:build linux

package nft

import (
	"context"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestE2EAFragmentedDNSQueryIsJudgedAsAWholeOne sends DNS queries too large
// for one packet, so that the container's kernel fragments them, to port 53
// of an allowlisted address. A fragment carries no port after the first;
// nftables judges the query by its port all the same, because connection
// tracking puts the fragments together (nf_defrag) before our chains see
// them. The same query to another port of the address arrives, which shows
// the fragments pass where the whole query may; and with the rules down the
// query to port 53 arrives too, which shows the listener would see it.
func TestE2EAFragmentedDNSQueryIsJudgedAsAWholeOne(t *testing.T) {
	tp, b, _ := upProperty(t)
	type target struct {
		name string
		src  netip.Addr
		dst  netip.Addr
	}
	targets := []target{{"IPv4", ctr4, allowed4}, {"IPv6", ctr6, allowed6}}
	count := func(dst netip.Addr, port uint16) *atomic.Int64 {
		var n atomic.Int64
		tp.countPackets(roleWAN, func() (net.PacketConn, error) {
			return net.ListenPacket("udp", netip.AddrPortFrom(dst, port).String())
		}, func(net.Addr) bool { return true }, false, &n)
		return &n
	}
	const other = 5354
	dns, plain := map[string]*atomic.Int64{}, map[string]*atomic.Int64{}
	for _, tg := range targets {
		dns[tg.name], plain[tg.name] = count(tg.dst, 53), count(tg.dst, other)
	}
	send := func(tg target, port uint16) {
		t.Helper()
		if err := inNS(tp.ns[roleCtr], func() error { return sendFragmented(tg.src, netip.AddrPortFrom(tg.dst, port)) }); err != nil {
			t.Fatalf("%s: sending %v -> %v port %d: %v", tg.name, tg.src, tg.dst, port, err)
		}
	}
	// wait gives the datagrams time to arrive: until every counter of
	// want is above zero, or two seconds.
	wait := func(want ...*atomic.Int64) {
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			done := true
			for _, n := range want {
				done = done && n.Load() > 0
			}
			if done && len(want) > 0 {
				return
			}
		}
	}

	before4, before6 := tp.fragmentsMade(t)
	for _, tg := range targets {
		send(tg, 53)
		send(tg, other)
	}
	wait(plain["IPv4"], plain["IPv6"])
	after4, after6 := tp.fragmentsMade(t)
	t.Logf("fragments made: IPv4 %d, IPv6 %d", after4-before4, after6-before6)
	if after4-before4 < 4 || after6-before6 < 4 {
		t.Fatalf("the container's kernel made %d IPv4 and %d IPv6 fragments, want at least 4 each: the queries were not fragmented", after4-before4, after6-before6)
	}
	for _, tg := range targets {
		if n := plain[tg.name].Load(); n == 0 {
			t.Errorf("%s: the fragmented datagram to port %d of an allowlisted address did not arrive: the test cannot tell a refusal from a fragment lost", tg.name, other)
		}
		if n := dns[tg.name].Load(); n != 0 {
			t.Errorf("%s: %d fragmented DNS queries reached port 53 of an allowlisted address", tg.name, n)
		}
	}

	if err := b.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		send(tg, 53)
	}
	wait(dns["IPv4"], dns["IPv6"])
	for _, tg := range targets {
		if dns[tg.name].Load() == 0 {
			t.Errorf("%s: without the rules the fragmented query did not arrive either: the check above proves nothing", tg.name)
		}
	}
}

// fragmentsMade returns how many IPv4 and IPv6 fragments the container's
// kernel has made (FragCreates in /proc/net/snmp and snmp6), read from
// the namespace of the reading thread.
func (tp *topology) fragmentsMade(t *testing.T) (v4, v6 int64) {
	t.Helper()
	read := func(file, key string) int64 {
		b, err := os.ReadFile("/proc/thread-self/net/" + file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, l := range lines {
			f := strings.Fields(l)
			if file == "snmp6" && len(f) == 2 && f[0] == key {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				return n
			}
			// snmp: a line of names, then a line of values, both
			// starting "Ip:".
			if file == "snmp" && strings.HasPrefix(l, "Ip: ") && i+1 < len(lines) {
				if j := slices.Index(f, key); j > 0 {
					n, _ := strconv.ParseInt(strings.Fields(lines[i+1])[j], 10, 64)
					return n
				}
			}
		}
		t.Fatalf("no %s in %s", key, file)
		return 0
	}
	inNS(tp.ns[roleCtr], func() error {
		v4, v6 = read("snmp", "FragCreates"), read("snmp6", "Ip6FragCreates")
		return nil
	})
	return v4, v6
}

// sendFragmented sends a 3,000-byte UDP datagram from src to dst without
// the don't-fragment bit, so that the kernel sends it in fragments: at
// most 1,280 bytes each for IPv6, whose routers never fragment (the
// topology's uplink has that MTU), and at the bridge's MTU for IPv4, which
// the router fragments again as it needs to.
func sendFragmented(src netip.Addr, dst netip.AddrPort) error {
	c, err := dialer(src, "udp").Dial("udp", dst.String())
	if err != nil {
		return err
	}
	defer c.Close()
	raw, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		if src.Is4() {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DONT)
		} else {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_MTU, uplinkMTU)
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	payload := make([]byte, 3000)
	copy(payload, "a DNS query too large for one packet")
	_, err = c.Write(payload)
	return err
}
