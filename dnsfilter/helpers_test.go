package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/internal/dnstest"
)

// Public addresses the upstream test servers hand out. They are never
// connected to: the tests run on loopback only.
const (
	pub4a = "93.184.216.34"
	pub4b = "140.82.112.3"
	pub6  = "2606:50c0:8000::153"
)

// startUpstream serves zone on 127.0.0.1 until the test ends. Questions
// not in zone get NXDOMAIN, or missing's reply when missing is given.
func startUpstream(tb testing.TB, zone dnstest.Zone, missing ...func(dns.Question) dnstest.Reply) *dnstest.Server {
	tb.Helper()
	s := &dnstest.Server{Zone: zone, Missing: func(dns.Question) dnstest.Reply { return dnstest.Reply{Rcode: dns.RcodeNameError} }}
	if len(missing) > 0 {
		s.Missing = missing[0]
	}
	return s.Run(tb)
}

// rrs parses records written in the test tables.
func rrs(lines []string) []dns.RR {
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil || rr == nil {
			panic(fmt.Sprintf("bad record in test table %q: %v", l, err))
		}
		out = append(out, rr)
	}
	return out
}

// serve runs h on UDP and TCP on a free loopback port until the test ends.
func serve(tb testing.TB, h dns.Handler) netip.AddrPort {
	tb.Helper()
	s, err := Start(h, ServerConfig{Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:0")}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			tb.Errorf("shutting down the server on %s: %v", s.Addrs()[0], err)
		}
	})
	return s.Addrs()[0]
}

// deadUpstream is a loopback UDP port that reads queries and never answers;
// the returned counter says how many it read.
func deadUpstream(tb testing.TB) (string, *atomic.Int64) {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	var n atomic.Int64
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	return pc.LocalAddr().String(), &n
}

// events records, in order, what happened during a query, for tests that
// check that the firewall was opened before the answer was written.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, s)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// openCall is one call of fakeOpener.Open.
type openCall struct {
	Addrs []netip.Addr
	TTL   time.Duration
}

// fakeOpener stands in for the firewall backends: it records every Open
// call (and adds "open" to events, when set) and fails when fail is set.
type fakeOpener struct {
	mu     sync.Mutex
	calls  []openCall
	fail   error
	events *events
}

func (o *fakeOpener) Open(ctx context.Context, addrs []netip.Addr, ttl time.Duration) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, openCall{append([]netip.Addr(nil), addrs...), ttl})
	if o.events != nil {
		o.events.add("open " + fmt.Sprint(addrs))
	}
	return o.fail
}

func (o *fakeOpener) all() []openCall {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]openCall(nil), o.calls...)
}

func (o *fakeOpener) setFail(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fail = err
}

// opened is every address the opener was asked to open.
func (o *fakeOpener) opened() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, c := range o.all() {
		for _, a := range c.Addrs {
			out[a] = true
		}
	}
	return out
}

// testVet stands in for the allowlist's vetting rules (allowlist/vet.go),
// which the wiring passes as Config.Vet: it refuses what the standard
// library knows is not a public destination, and the documentation ranges.
func testVet(a netip.Addr) error {
	switch {
	case a.IsLoopback():
		return errors.New("loopback")
	case a.IsPrivate():
		return errors.New("private network")
	case a.IsLinkLocalUnicast():
		return errors.New("link-local")
	case a.IsUnspecified(), a.IsMulticast(), !a.IsGlobalUnicast():
		return errors.New("not unicast")
	}
	for _, p := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return errors.New("documentation")
		}
	}
	return nil
}

// clock is a settable time for the cache tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer is a log writer tests can read while the handler writes.
type syncBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, string(p))
	return len(p), nil
}

func (b *syncBuffer) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}

// filter is a Handler served on a loopback port, with its fakes.
type filter struct {
	h      *Handler
	addr   string
	opener *fakeOpener
	log    *syncBuffer
	events *events
}

// startFilter serves a Handler for cfg on 127.0.0.1. Zero fields of cfg
// get test values: clients 127.0.0.0/8, policy *.allowed.test, the fake
// opener, testVet, and a log buffer. Writes of answers are recorded in the
// filter's events after the opener's calls. Each of setup is applied to
// the Handler before it serves.
func startFilter(tb testing.TB, cfg Config, setup ...func(*Handler)) *filter {
	tb.Helper()
	f := &filter{events: &events{}, log: &syncBuffer{}}
	if cfg.Clients == nil {
		cfg.Clients = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	if cfg.Names == nil {
		cfg.Names = mustNames(tb, "*.allowed.test", "api.exact.test")
	}
	if cfg.Opener == nil {
		f.opener = &fakeOpener{events: f.events}
		cfg.Opener = f.opener
	}
	if cfg.Vet == nil {
		cfg.Vet = testVet
	}
	if cfg.Log == nil {
		cfg.Log = f.log
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	h, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	for _, fn := range setup {
		fn(h)
	}
	f.h = h
	f.addr = serve(tb, dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		h.ServeDNS(&recordingWriter{ResponseWriter: w, events: f.events}, req)
	})).String()
	return f
}

// recordingWriter adds "write" to events when an answer is written.
type recordingWriter struct {
	dns.ResponseWriter
	events *events
}

func (w *recordingWriter) WriteMsg(m *dns.Msg) error {
	w.events.add("write " + dns.RcodeToString[m.Rcode])
	return w.ResponseWriter.WriteMsg(m)
}

func mustNames(tb testing.TB, entries ...string) *Names {
	tb.Helper()
	n, err := ParseNames(entries)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// ask sends one query for name and qtype to addr over network ("udp" or
// "tcp"), with EDNS, and returns the answer.
func ask(tb testing.TB, network, addr, name string, qtype uint16) *dns.Msg {
	tb.Helper()
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	return exchange(tb, network, addr, m)
}

func exchange(tb testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	tb.Helper()
	c := &dns.Client{Net: network, Timeout: 10 * time.Second}
	resp, _, err := c.Exchange(m, addr)
	if err != nil {
		tb.Fatalf("asking %s %s over %s: %v", m.Question[0].Name, dns.Type(m.Question[0].Qtype), network, err)
	}
	return resp
}

// addrsOf returns the A and AAAA addresses of an answer section.
func addrsOf(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *dns.A:
			out = append(out, r.A.String())
		case *dns.AAAA:
			out = append(out, r.AAAA.String())
		}
	}
	return out
}

// ede returns the Extended DNS Error of m, if any.
func ede(m *dns.Msg) *dns.EDNS0_EDE {
	opt := m.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok {
			return e
		}
	}
	return nil
}

func rcode(m *dns.Msg) string { return dns.RcodeToString[m.Rcode] }

func joinLines(lines []string) string { return strings.Join(lines, "") }
