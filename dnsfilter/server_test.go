package dnsfilter

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// answerA answers every question with one A record.
var answerA = dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg).SetReply(req)
	m.Answer = rrs([]string{req.Question[0].Name + " 60 IN A " + pub4a})
	w.WriteMsg(m)
})

func TestStartServesUDPAndTCPOnTheGivenAddressesOnly(t *testing.T) {
	addrs := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}
	if pc, err := net.ListenPacket("udp", "[::1]:0"); err == nil {
		pc.Close()
		addrs = append(addrs, netip.MustParseAddrPort("[::1]:0"))
	} else {
		t.Logf("no IPv6 loopback here (%v): serving on IPv4 only", err)
	}
	s, err := Start(answerA, ServerConfig{Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())

	got := s.Addrs()
	if len(got) != len(addrs) {
		t.Fatalf("Addrs() = %v, want %d", got, len(addrs))
	}
	for i, ap := range got {
		if ap.Addr() != addrs[i].Addr() || ap.Port() == 0 {
			t.Errorf("Addrs()[%d] = %v, want %v with a port", i, ap, addrs[i].Addr())
		}
		for _, network := range []string{"udp", "tcp"} {
			// Start has returned, so the listeners are ready: no retry.
			if resp := ask(t, network, ap.String(), "a.example", dns.TypeA); len(resp.Answer) != 1 {
				t.Errorf("%s over %s: %v", ap, network, resp)
			}
		}
	}

	// 127.0.0.2 is loopback too, but it was not given: nothing answers there.
	other := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), got[0].Port()).String()
	if conn, err := net.DialTimeout("tcp", other, time.Second); err == nil {
		conn.Close()
		t.Errorf("TCP %s accepted a connection", other)
	}
	c := &dns.Client{Net: "udp", Timeout: time.Second}
	if resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("a.example.", dns.TypeA), other); err == nil {
		t.Errorf("UDP %s answered: %v", other, resp)
	}
}

func TestStartFailsWholeAndLeavesNothingBound(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free := freePort(t)
	_, err = Start(answerA, ServerConfig{Addrs: []netip.AddrPort{
		free,
		netip.MustParseAddrPort(taken.LocalAddr().String()),
	}})
	if err == nil || !strings.Contains(err.Error(), taken.LocalAddr().String()) {
		t.Fatalf("error %v, want one naming %s", err, taken.LocalAddr())
	}
	// The first address was bound, then released.
	for _, network := range []string{"udp", "tcp"} {
		var l interface{ Close() error }
		var err error
		if network == "udp" {
			l, err = net.ListenPacket("udp", free.String())
		} else {
			l, err = net.Listen("tcp", free.String())
		}
		if err != nil {
			t.Errorf("%s %s is still bound: %v", network, free, err)
			continue
		}
		l.Close()
	}

	for _, cfg := range []ServerConfig{{}, {Addrs: []netip.AddrPort{{}}}} {
		if _, err := Start(answerA, cfg); err == nil {
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

// freePort returns a loopback address whose port was free for UDP and TCP.
func freePort(t *testing.T) netip.AddrPort {
	t.Helper()
	pc, ln, err := bind(netip.MustParseAddrPort("127.0.0.1:0"), false)
	if err != nil {
		t.Fatal(err)
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()
	ln.Close()
	return ap
}

func TestTCPConnectionsBeyondTheLimitAreClosed(t *testing.T) {
	s, err := Start(answerA, ServerConfig{
		Addrs:       []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0"), netip.MustParseAddrPort("127.0.0.1:0")},
		MaxTCPConns: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	a, b := s.Addrs()[0].String(), s.Addrs()[1].String()

	// Two connections that stay open, one on each listener: the limit is
	// shared.
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	var held []*dns.Conn
	for _, addr := range []string{a, b} {
		conn, err := c.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, _, err := c.ExchangeWithConn(new(dns.Msg).SetQuestion("held.example.", dns.TypeA), conn); err != nil {
			t.Fatalf("a connection within the limit: %v", err)
		}
		held = append(held, conn)
	}
	for _, addr := range []string{a, b} {
		if resp, _, err := c.Exchange(new(dns.Msg).SetQuestion("third.example.", dns.TypeA), addr); err == nil {
			t.Errorf("a third connection to %s was answered: %v", addr, resp)
		}
	}
	// Closing one makes room for another.
	held[0].Close()
	var err2 error
	for range 250 { // the server notices the close when its read returns
		if _, _, err2 = c.Exchange(new(dns.Msg).SetQuestion("again.example.", dns.TypeA), b); err2 == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err2 != nil {
		t.Errorf("after a connection closed, a new one is still refused: %v", err2)
	}
}

func TestShutdownLetsQueriesUnderWayFinish(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	slow := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		close(entered)
		<-release
		answerA.ServeDNS(w, req)
	})
	s, err := Start(slow, ServerConfig{Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}})
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
		_, _, err := c.Exchange(new(dns.Msg).SetQuestion("slow.example.", dns.TypeA), s.Addrs()[0].String())
		answered <- err
	}()
	<-entered
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	close(release)
	if err := <-answered; err != nil {
		t.Errorf("the query under way at shutdown: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := s.Wait(); err != nil {
		t.Errorf("Wait after Shutdown: %v", err)
	}
}

func TestShutdownGivesUpWhenItsContextEnds(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	stuck := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		close(entered)
		<-release
	})
	s, err := Start(stuck, ServerConfig{Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
		c.Exchange(new(dns.Msg).SetQuestion("stuck.example.", dns.TypeA), s.Addrs()[0].String())
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with a cancelled context while a query hangs: %v", err)
	}
}

func TestFreeBindServesOnAnAddressTheHostDoesNotHaveYet(t *testing.T) {
	if freeBindControl == nil {
		t.Skip("IP_FREEBIND is Linux only")
	}
	// 192.0.2.1 (TEST-NET-1) is on no interface here: a plain bind fails,
	// which is what FreeBind is for.
	ap := netip.MustParseAddrPort("192.0.2.1:15353")
	if _, _, err := bind(ap, false); err == nil {
		t.Skip("this host has 192.0.2.1")
	}
	s, err := Start(dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {}), ServerConfig{Addrs: []netip.AddrPort{ap}, FreeBind: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
