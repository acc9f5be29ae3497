//go:build linux

package nft

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/dnsfilter"
	"github.com/VerilyPete/claudecontainer/internal/dnstest"
	"github.com/VerilyPete/claudecontainer/internal/netns"
	"github.com/VerilyPete/claudecontainer/policy"
)

// The real DNS filter (dnsfilter.Handler and Server, the netlink Opener,
// allowlist.VetAddr) in the host namespace of a topology, behind the rules
// Up loads, with its upstream resolver on the "internet". Each property is
// checked from the container's namespace, and what must not leave the host
// is checked on the upstream: it counts every question it sees.

// Addresses of the test's internet: the upstream resolver, and a
// /21 whose every address accepts TCP on port 8443 (a local route in the wan
// namespace), so that each fresh name can have an address of its own.
// They are public addresses, as VetAddr wants; the namespaces keep them
// here.
var (
	upstream4   = netip.MustParseAddr("23.192.8.53")
	fleet       = netip.MustParsePrefix("23.192.0.0/21")
	rotateOld   = netip.MustParseAddr("23.192.4.1")
	rotateNew   = netip.MustParseAddr("23.192.4.2")
	wildAddr    = netip.MustParseAddr("23.192.4.3")
	fleetListen = ":8443"
)

const realFilterPort = 5381

// upstreamZone answers the test's names and counts the questions.
type upstreamZone struct {
	mu      sync.Mutex
	asked   map[string]int // by lower-case name without the trailing dot
	rotated bool
}

func (z *upstreamZone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg).SetReply(q)
	name := strings.TrimSuffix(strings.ToLower(q.Question[0].Name), ".")
	z.mu.Lock()
	z.asked[name]++
	rotated := z.rotated
	z.mu.Unlock()
	var a netip.Addr
	ttl := uint32(60)
	var i int
	switch {
	case name == "rotate.example":
		a, ttl = rotateOld, 1
		if rotated {
			a = rotateNew
		}
	case strings.HasSuffix(name, ".wild.example"):
		a = wildAddr
	default:
		if _, err := fmt.Sscanf(name, "n%d.fresh.example", &i); err == nil {
			a = fleet.Addr().Next()
			for range i {
				a = a.Next()
			}
		}
	}
	if a.IsValid() && q.Question[0].Qtype == dns.TypeA {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.AsSlice()})
	}
	w.WriteMsg(m)
}

func (z *upstreamZone) total() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := 0
	for _, c := range z.asked {
		n += c
	}
	return n
}

// realFilter starts the upstream, the fleet's listener and the filter.
func (tp *topology) realFilter(names ...string) *upstreamZone {
	tp.t.Helper()
	t := tp.t
	wan := tp.ns[roleWAN]
	tp.ip("-n", wan, "route", "add", "local", fleet.String(), "dev", "lo")
	tp.addAddr(wan, "lo", netip.PrefixFrom(upstream4, 32))
	z := &upstreamZone{asked: map[string]int{}}
	if err := inNS(wan, func() error {
		if err := dnstest.ServeOn(t, netip.AddrPortFrom(upstream4, 53).String(), z); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", fleetListen)
		if err != nil {
			return err
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return nil
	}); err != nil {
		t.Fatalf("starting the internet's servers: %v", err)
	}

	nsf, err := os.Open("/run/netns/" + tp.ns[roleHost])
	if err != nil {
		t.Fatal(err)
	}
	defer nsf.Close()
	o, err := NewOpener(DefaultTable, tp.p.Table, int(nsf.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	pol, err := dnsfilter.ParseNames(names)
	if err != nil {
		t.Fatal(err)
	}
	h, err := dnsfilter.New(dnsfilter.Config{
		Names:     pol,
		Clients:   []netip.Prefix{tp.p.Network.IPv4, tp.p.Network.IPv6},
		Upstreams: []string{netip.AddrPortFrom(upstream4, 53).String()},
		Opener:    o,
		Vet:       allowlist.VetAddr,
		MinTTL:    2 * time.Second, // short, so that the test sees an address expire
		Log:       testLog{t},
		// The filter's own goroutines run in the test process's namespace;
		// its upstream is reached from the host's, as the daemon would.
		Dial: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
			inNS(tp.ns[roleHost], func() error {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return nil
			})
			return c, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var srv *dnsfilter.Server
	if err := inNS(tp.ns[roleHost], func() error {
		var err error
		srv, err = dnsfilter.Start(h, dnsfilter.ServerConfig{Addrs: []netip.AddrPort{
			netip.AddrPortFrom(gw4, realFilterPort), netip.AddrPortFrom(hostAddr6(tp.p.Network), realFilterPort)}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return z
}

// resolveAndConnect asks for name (qtype A) from the container over
// network, at server, and, when an address comes back, connects to it on
// port 8443 at once. It runs inside the container's namespace.
func resolveAndConnect(network, name string, qtype uint16, server netip.AddrPort) (rcode int, addr netip.Addr, conn outcome) {
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.SetEdns0(1232, false)
	r, _, err := c.Exchange(q, server.String())
	if err != nil {
		return -1, netip.Addr{}, classify(err)
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			addr, _ = netip.AddrFromSlice(a.A.To4())
		}
	}
	if !addr.IsValid() {
		return r.Rcode, addr, ""
	}
	return r.Rcode, addr, dialTCP(netip.Addr{}, netip.AddrPortFrom(addr, 8443))
}

func TestE2EDNSFilterAnswersOnlyAllowedNamesAndOpensEachAnswerBeforeItIsSent(t *testing.T) {
	p := propertyPolicy(t)
	p.Filter = &policy.Filter{Port: realFilterPort}
	tp := newTopology(t, p, []policy.Flow{tcp(ctr4, allowed4, 443), tcp(ctr6, allowed6, 443)})
	b := tp.backend()
	if err := b.Up(context.Background(), p, prefixSet(t, "198.18.0.0/15")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Down(context.Background()) })
	z := tp.realFilter("*.fresh.example", "rotate.example", "*.wild.example", "!no.wild.example")
	resolver := netip.AddrPortFrom(gw4, 53) // what the container was given

	// Before any answer, the fleet is closed.
	if got := tp.probe(tcp(ctr4, fleet.Addr().Next(), 8443)); got != refused {
		t.Fatalf("an address no answer held: %s, want refused", got)
	}

	// (a) 1,000 fresh names, each with an address of its own, each
	// connected to as soon as its answer arrives: none refused.
	var failed []string
	inNS(tp.ns[roleCtr], func() error {
		for i := range 1000 {
			name := fmt.Sprintf("n%d.fresh.example", i)
			rcode, addr, got := resolveAndConnect("udp", name, dns.TypeA, resolver)
			if rcode != dns.RcodeSuccess || got != connected {
				failed = append(failed, fmt.Sprintf("%s: rcode %d, %v, %s", name, rcode, addr, got))
			}
		}
		return nil
	})
	if len(failed) > 0 {
		t.Errorf("%d of 1000 fresh names failed, first: %s", len(failed), failed[0])
	}

	// (b), (c) and (g): blocked names, of any type, over UDP and TCP, to
	// the network's resolver or straight to the upstream itself: NXDOMAIN
	// from the filter, and the upstream sees none of them.
	before := z.total()
	for _, q := range []struct {
		network string
		name    string
		qtype   uint16
		server  netip.AddrPort
	}{
		{"udp", "secret.blocked.example", dns.TypeA, resolver},
		{"tcp", "secret.blocked.example", dns.TypeA, resolver},
		{"udp", "mfrggzdfmztwq2lk.blocked.example", dns.TypeTXT, resolver},
		{"tcp", "mfrggzdfmztwq2lk.blocked.example", dns.TypeTXT, resolver},
		{"udp", "mfrggzdfmztwq2lk.blocked.example", dns.TypeTXT, netip.AddrPortFrom(upstream4, 53)},
		{"tcp", "mfrggzdfmztwq2lk.blocked.example", dns.TypeTXT, netip.AddrPortFrom(upstream4, 53)},
		{"udp", "no.wild.example", dns.TypeA, resolver},
		{"udp", "wild.example", dns.TypeA, resolver},
		{"udp", "a.fresh.example.attacker.example", dns.TypeA, resolver},
	} {
		var rcode int
		inNS(tp.ns[roleCtr], func() error {
			rcode, _, _ = resolveAndConnect(q.network, q.name, q.qtype, q.server)
			return nil
		})
		if rcode != dns.RcodeNameError {
			t.Errorf("%s %s %s to %s: rcode %d, want NXDOMAIN", q.network, dns.TypeToString[q.qtype], q.name, q.server, rcode)
		}
	}
	if n := z.total() - before; n != 0 {
		t.Errorf("the upstream saw %d questions for blocked names", n)
	}
	// (g) DNS on another port to a server on the internet is not DNS to
	// the filter: the firewall refuses it.
	if got := tp.probe(udp(ctr4, upstream4, 5353)); got == connected {
		t.Errorf("UDP 5353 to the upstream: %s, want it refused", got)
	}

	// (e) wildcards: any depth under the domain, and deny wins.
	inNS(tp.ns[roleCtr], func() error {
		if rcode, addr, got := resolveAndConnect("tcp", "a.b.wild.example", dns.TypeA, resolver); rcode != dns.RcodeSuccess || addr != wildAddr || got != connected {
			t.Errorf("a.b.wild.example: rcode %d, %v, %s", rcode, addr, got)
		}
		return nil
	})

	// (d) rotation: the name moves; the next query after its TTL gets the
	// new address, which works, and the old one closes once its time
	// (MinTTL here) is up.
	inNS(tp.ns[roleCtr], func() error {
		if rcode, addr, got := resolveAndConnect("udp", "rotate.example", dns.TypeA, resolver); addr != rotateOld || got != connected {
			t.Errorf("rotate.example before: rcode %d, %v, %s", rcode, addr, got)
		}
		return nil
	})
	z.mu.Lock()
	z.rotated = true
	z.mu.Unlock()
	time.Sleep(1100 * time.Millisecond) // the answer's TTL of 1 s
	inNS(tp.ns[roleCtr], func() error {
		if rcode, addr, got := resolveAndConnect("udp", "rotate.example", dns.TypeA, resolver); addr != rotateNew || got != connected {
			t.Errorf("rotate.example after it moved: rcode %d, %v, %s", rcode, addr, got)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // the rest of MinTTL for the old address
	if got := tp.probe(tcp(ctr4, rotateOld, 8443)); got != refused {
		t.Errorf("the old address of rotate.example after its time: %s, want refused", got)
	}
	if out, err := exec.Command("ip", "netns", "exec", tp.ns[roleHost], "nft", "list", "table", Family, DefaultTable).CombinedOutput(); err == nil && t.Failed() {
		t.Logf("ruleset:\n%s", out)
	}
}

// testLog writes the filter's refusals to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("filter refused: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestE2EEndFlowsCutsAConnectionToAnAddressTheFilterClosed: a connection
// the filter's set let through survives the address leaving the set
// (`ct state established`), until EndFlows deletes its conntrack entry;
// then its next packet is judged anew, and refused.
func TestE2EEndFlowsCutsAConnectionToAnAddressTheFilterClosed(t *testing.T) {
	if _, err := exec.LookPath("conntrack"); err != nil {
		t.Skip("conntrack not installed (apt-get install -y conntrack)")
	}
	p := propertyPolicy(t)
	p.Filter = &policy.Filter{Port: realFilterPort}
	tp := newTopology(t, p, []policy.Flow{tcp(ctr4, denied4, 443)})
	b := tp.backend()
	if err := b.Up(context.Background(), p, prefixSet(t, "198.18.0.0/15")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Down(context.Background()) })
	// An echo server on the internet.
	far := netip.AddrPortFrom(denied4, 8444)
	var ln net.Listener
	if err := inNS(tp.ns[roleWAN], func() (err error) { ln, err = net.Listen("tcp", far.String()); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c)
		}
	}()
	o4, _ := OpenedSetNames(p.Table)
	tp.nft("add", "element", Family, DefaultTable, o4, fmt.Sprintf("{ %s timeout 60s }", denied4))
	var c net.Conn
	if err := inNS(tp.ns[roleCtr], func() (err error) { c, err = net.DialTimeout("tcp", far.String(), 3*time.Second); return err }); err != nil {
		t.Fatalf("connecting to an opened address: %v", err)
	}
	defer c.Close()
	echo := func(s string) error {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(c, s); err != nil {
			return err
		}
		buf := make([]byte, len(s))
		_, err := io.ReadFull(c, buf)
		return err
	}
	if err := echo("first\n"); err != nil {
		t.Fatalf("echo over the opened connection: %v", err)
	}
	// The filter closes the address (Revoke): the set loses it, the
	// connection does not.
	tp.nft("delete", "element", Family, DefaultTable, o4, fmt.Sprintf("{ %s }", denied4))
	if err := echo("second\n"); err != nil {
		t.Fatalf("the connection broke without EndFlows (%v): the test proves nothing", err)
	}
	if err := EndFlows(context.Background(), netns.Runner{NS: tp.ns[roleHost]}, p.Network, []netip.Addr{denied4}); err != nil {
		t.Fatal(err)
	}
	if err := echo("third\n"); err == nil {
		t.Error("the connection to the closed address still works after EndFlows")
	}
}
