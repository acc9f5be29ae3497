package dnsfilter

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/internal/dnstest"
)

// captureWriter is a dns.ResponseWriter that keeps the packed reply.
type captureWriter struct {
	remote net.Addr
	reply  *dns.Msg
	packed []byte
	err    error
}

func (w *captureWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *captureWriter) RemoteAddr() net.Addr { return w.remote }
func (w *captureWriter) WriteMsg(m *dns.Msg) error {
	w.reply = m
	w.packed, w.err = m.Pack()
	return w.err
}
func (w *captureWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *captureWriter) Close() error                { return nil }
func (w *captureWriter) TsigStatus() error           { return nil }
func (w *captureWriter) TsigTimersOnly(bool)         {}
func (w *captureWriter) Hijack()                     {}

// query packs a query for name and qtype, for the seed corpus.
func packQuery(name string, qtype uint16, edns bool) []byte {
	m := new(dns.Msg).SetQuestion(name, qtype)
	if edns {
		m.SetEdns0(4096, true)
	}
	b, err := m.Pack()
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzHandler feeds raw packets to the handler, as the server would after
// unpacking them. Whatever the packet, the handler must not panic, its
// reply must pack and fit the transport, no name the policy refuses may
// reach the upstream or cause an Open call, and no address may reach the
// client without having been opened.
func FuzzHandler(f *testing.F) {
	names := mustNames(f, "*.allowed.test", "api.exact.test", "!deny.allowed.test")
	up := startUpstream(f, nil, func(q dns.Question) dnstest.Reply {
		n := q.Name
		return dnstest.Reply{Answer: []string{
			n + " 300 IN CNAME target.elsewhere.example.",
			"target.elsewhere.example. 300 IN A " + pub4a,
			"target.elsewhere.example. 300 IN A 10.0.0.1",
			"target.elsewhere.example. 300 IN AAAA " + pub6,
			"target.elsewhere.example. 300 IN HTTPS 1 . ipv4hint=198.18.0.1",
			n + " 300 IN A " + pub4b,
			"other.example. 300 IN A 203.0.113.9",
		}, Extra: []string{"glue.example. 300 IN A 198.18.0.2"}}
	})
	opener := &fakeOpener{}
	h, err := New(Config{
		Names:     names,
		Clients:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.88.0.0/16")},
		Upstreams: []string{up.Addr},
		Opener:    opener,
		Vet:       testVet,
		Log:       nopWriter{},
	})
	if err != nil {
		f.Fatal(err)
	}

	f.Add(packQuery("api.allowed.test.", dns.TypeA, true), false)
	f.Add(packQuery("api.exact.test.", dns.TypeAAAA, false), true)
	f.Add(packQuery("deny.allowed.test.", dns.TypeA, true), false)
	f.Add(packQuery("evil.example.", dns.TypeTXT, false), false)
	f.Add(packQuery("x.allowed.test.evil.example.", dns.TypeA, true), false)
	f.Add(packQuery("svc.allowed.test.", dns.TypeHTTPS, true), false)
	f.Add(packQuery("allowed.test.", dns.TypeANY, false), false)
	f.Add(packQuery("allowed.test.", dns.TypeAXFR, false), true)
	f.Add(packQuery("5.0.88.10.in-addr.arpa.", dns.TypePTR, false), false)
	f.Add(packQuery(strings.Repeat("a.", 126)+"test.", dns.TypeA, true), false)                                    // a huge name
	f.Add(packQuery(strings.Repeat("x", 63)+"."+strings.Repeat("y", 63)+".allowed.test.", dns.TypeA, true), false) // long labels
	// A name that is a compression pointer to itself.
	loop := []byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}
	f.Add(loop, false)
	// A pointer forward, past the end, and a label longer than the packet.
	f.Add([]byte{0, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0, 1, 0, 1}, false)
	f.Add([]byte{0, 3, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63, 'a', 0, 1, 0, 1}, true)
	// Two questions, and a response.
	two := packQuery("a.allowed.test.", dns.TypeA, false)
	binary.BigEndian.PutUint16(two[4:], 2)
	f.Add(append(two, packQuery("b.allowed.test.", dns.TypeA, false)[12:]...), false)
	resp := packQuery("a.allowed.test.", dns.TypeA, false)
	resp[2] |= 0x80
	f.Add(resp, false)
	f.Add([]byte{}, false)

	f.Fuzz(func(t *testing.T, packet []byte, tcp bool) {
		req := new(dns.Msg)
		if err := req.Unpack(packet); err != nil {
			return // the server drops what does not unpack
		}
		allowed := len(req.Question) == 1 && names.Allowed(dns.CanonicalName(req.Question[0].Name))
		opensBefore, askedBefore := len(opener.all()), len(up.Asked())

		w := &captureWriter{remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}
		if tcp {
			w.remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
		}
		h.ServeDNS(w, req)

		for _, asked := range up.Asked()[askedBefore:] {
			name := asked[:strings.LastIndexByte(asked, ' ')] // "name TYPE"
			if !names.Allowed(name) {
				t.Fatalf("the upstream was asked for %q, which the policy refuses", name)
			}
		}
		if !allowed {
			if n := len(opener.all()); n != opensBefore {
				t.Fatalf("Open called for a query the policy refuses: %v", req.Question)
			}
			if len(up.Asked()) != askedBefore {
				t.Fatalf("the upstream was asked for a query the policy refuses: %v", req.Question)
			}
		}
		if w.reply == nil {
			if !req.Response {
				t.Fatalf("no reply to %v", req)
			}
			return
		}
		if w.err != nil {
			t.Fatalf("the reply does not pack: %v\n%v", w.err, w.reply)
		}
		if !tcp && len(w.packed) > ednsSize {
			t.Fatalf("a UDP reply of %d bytes", len(w.packed))
		}
		if !allowed && len(w.reply.Answer) > 0 {
			t.Fatalf("a refused query got answers: %v", w.reply)
		}
		opened := opener.opened()
		for _, a := range addrsOf(w.reply.Answer) {
			if !opened[netip.MustParseAddr(a).Unmap()] {
				t.Fatalf("the client was told %s, which was never opened", a)
			}
		}
		for _, rr := range append(append([]dns.RR{}, w.reply.Ns...), w.reply.Extra...) {
			switch rr.(type) {
			case *dns.A, *dns.AAAA:
				t.Fatalf("an address outside the answer section: %v", rr)
			}
		}
		for _, rr := range w.reply.Answer {
			if strings.Contains(rr.String(), "hint") {
				t.Fatalf("an address hint reached the client: %v", rr)
			}
		}
	})
}
