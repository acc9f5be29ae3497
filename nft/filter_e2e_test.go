//go:build linux

package nft

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/policy"
)

// filterAnswer is the address the stand-in DNS filter answers every query
// with, so that a client can tell who answered.
var filterAnswer = netip.MustParseAddr("192.0.2.99")

const filterPort = 5380

// serveFilter starts a stand-in for the DNS filter in the host namespace:
// UDP and TCP on every address, port filterPort.
func (tp *topology) serveFilter() {
	tp.t.Helper()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		if len(q.Question) == 1 {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: filterAnswer.AsSlice()})
		}
		w.WriteMsg(m)
	})
	addr := fmt.Sprintf("[::]:%d", filterPort)
	var servers []*dns.Server
	if err := inNS(tp.ns[roleHost], func() error {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		servers = []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}}
		return nil
	}); err != nil {
		tp.t.Fatalf("starting the stand-in DNS filter: %v", err)
	}
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		tp.t.Cleanup(func() { srv.Shutdown() })
	}
}

// ask sends a DNS query from the container over network ("udp" or "tcp")
// and returns the outcome and the address in the answer.
func (tp *topology) ask(network string, src netip.Addr, dst netip.AddrPort) (outcome, netip.Addr) {
	var got outcome
	var reply netip.Addr
	inNS(tp.ns[roleCtr], func() error {
		if network == "tcp" {
			got = queryTCP(src, dst, &reply)
		} else {
			got = queryUDP(src, dst, &reply)
		}
		return nil
	})
	return got, reply
}

// TestE2EDNSFilterRulesRedirectEveryQueryAndPassWhatItOpened loads the
// rules of a policy with a DNS filter: every DNS query from a container,
// to the network's resolver or to one on the internet, over UDP or TCP,
// IPv4 or IPv6, is answered by the filter and by nothing else; the filter's
// port cannot be reached directly; and an address the filter opens passes
// until its timeout ends, and is refused again after.
func TestE2EDNSFilterRulesRedirectEveryQueryAndPassWhatItOpened(t *testing.T) {
	p := propertyPolicy(t)
	p.Filter = &policy.Filter{Port: filterPort}
	tp := newTopology(t, p, propertyFlows())
	tp.serveFilter()
	b := tp.backend()
	if err := b.Up(context.Background(), p, prefixSet(t, "198.18.0.0/15", "2001:db8:a::/48")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Down(context.Background()) })

	for _, q := range []struct {
		name, network string
		src           netip.Addr
		dst           netip.AddrPort
	}{
		{"udp to the network's resolver", "udp", ctr4, netip.AddrPortFrom(gw4, 53)},
		{"tcp to the network's resolver", "tcp", ctr4, netip.AddrPortFrom(gw4, 53)},
		{"udp to a resolver on the internet", "udp", ctr4, netip.AddrPortFrom(resolver4, 53)},
		{"tcp to a resolver on the internet", "tcp", ctr4, netip.AddrPortFrom(resolver4, 53)},
		{"IPv6 udp to a resolver on the internet", "udp", ctr6, netip.AddrPortFrom(resolver6, 53)},
		{"IPv6 tcp to a resolver on the internet", "tcp", ctr6, netip.AddrPortFrom(resolver6, 53)},
		{"udp to an allowlisted address", "udp", ctr4, netip.AddrPortFrom(allowed4, 53)},
	} {
		got, reply := tp.ask(q.network, q.src, q.dst)
		if got != connected || reply != filterAnswer {
			t.Errorf("%s: %s, answered with %v; want the filter's answer %v", q.name, got, reply, filterAnswer)
		}
	}
	for _, q := range []struct {
		name, network string
		src           netip.Addr
		dst           netip.AddrPort
	}{
		{"udp straight to the filter's port", "udp", ctr4, netip.AddrPortFrom(gw4, filterPort)},
		{"tcp straight to the filter's port", "tcp", ctr4, netip.AddrPortFrom(gw4, filterPort)},
	} {
		if got, _ := tp.ask(q.network, q.src, q.dst); got == connected {
			t.Errorf("%s: %s, want it refused: only redirected queries may reach the filter", q.name, got)
		}
	}

	// What the filter opens passes for its timeout, then no longer.
	o4, o6 := OpenedSetNames(p.Table)
	tp.check(t, []probeCase{
		{"an address the filter has not opened", tcp(ctr4, denied4, 443), refused},
		{"an IPv6 address the filter has not opened", tcp(ctr6, denied6, 443), refused},
	})
	tp.nft("add", "element", Family, DefaultTable, o4, fmt.Sprintf("{ %s timeout 3s }", denied4))
	tp.nft("add", "element", Family, DefaultTable, o6, fmt.Sprintf("{ %s timeout 3s }", denied6))
	tp.check(t, []probeCase{
		{"an address the filter opened", tcp(ctr4, denied4, 443), connected},
		{"udp to it", udp(ctr4, denied4, 443), connected},
		{"an IPv6 address the filter opened", tcp(ctr6, denied6, 443), connected},
		{"DNS to an opened address still goes to the filter", udp(ctr4, denied4, 53), connected},
	})
	if _, reply := tp.ask("udp", ctr4, netip.AddrPortFrom(denied4, 53)); reply != filterAnswer {
		t.Errorf("DNS to an opened address was answered by %v, not the filter", reply)
	}
	time.Sleep(3500 * time.Millisecond) // the elements' timeout; the assertion is on what follows it
	tp.check(t, []probeCase{
		{"the address once its timeout has passed", tcp(ctr4, denied4, 443), refused},
		{"the IPv6 address once its timeout has passed", tcp(ctr6, denied6, 443), refused},
	})
}
