package resolve_test

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// reply is what a test server sends for one question.
type reply struct {
	rcode    int      // NOERROR unless set
	answer   []string // answer section, zone file syntax
	extra    []string // additional section, zone file syntax
	truncUDP bool     // over UDP send only the header with the TC bit
	question string   // when set, echo this name instead of the one asked
}

// zone maps "name. TYPE" to a reply; other questions get an empty NOERROR.
type zone map[string]reply

// server is an in-process DNS server on 127.0.0.1, UDP and TCP on one port,
// answering from its own zone through its own handler.
type server struct {
	addr  string
	zone  zone
	delay time.Duration // before every answer
	udp   atomic.Int64  // questions seen over UDP
	tcp   atomic.Int64  // questions seen over TCP
}

func (s *server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if w.RemoteAddr().Network() == "tcp" {
		s.tcp.Add(1)
	} else {
		s.udp.Add(1)
	}
	time.Sleep(s.delay)
	q := req.Question[0]
	rep := s.zone[dns.CanonicalName(q.Name)+" "+dns.TypeToString[q.Qtype]]
	m := new(dns.Msg).SetRcode(req, rep.rcode)
	if rep.question != "" {
		m.Question[0].Name = rep.question
	}
	if rep.truncUDP && w.RemoteAddr().Network() != "tcp" {
		m.Truncated = true
	} else {
		m.Answer = rrs(rep.answer)
		m.Extra = rrs(rep.extra)
	}
	w.WriteMsg(m)
}

// rrs parses records written in the test tables.
func rrs(lines []string) []dns.RR {
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil || rr == nil {
			panic("bad record in test table: " + l)
		}
		out = append(out, rr)
	}
	return out
}

// startServer serves z (after delay) until the test ends and returns the
// server, whose addr is "127.0.0.1:port".
func startServer(tb testing.TB, z zone, delay time.Duration) *server {
	tb.Helper()
	s := &server{zone: z, delay: delay}
	s.addr = listen(tb, s)
	return s
}

// handlerFunc turns a function into a handler for startHandler.
type handlerFunc func(w dns.ResponseWriter, req *dns.Msg)

func (f handlerFunc) ServeDNS(w dns.ResponseWriter, req *dns.Msg) { f(w, req) }

// answerRcode is a server that answers every question with rcode.
func answerRcode(rcode int) handlerFunc {
	return func(w dns.ResponseWriter, req *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(req, rcode))
	}
}

// listen starts a UDP and a TCP dns.Server on the same loopback port with
// handler h and waits until both have started.
func listen(tb testing.TB, h dns.Handler) string {
	tb.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close() // the TCP port is taken; try another
			continue
		}
		for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
			started := make(chan struct{})
			srv.NotifyStartedFunc = func() { close(started) }
			failed := make(chan error, 1)
			go func() { failed <- srv.ActivateAndServe() }()
			select {
			case <-started:
			case err := <-failed:
				tb.Fatalf("starting DNS server: %v", err)
			}
			tb.Cleanup(func() { srv.Shutdown() })
		}
		return pc.LocalAddr().String()
	}
	tb.Fatal("found no port free for both UDP and TCP")
	return ""
}

// blackhole is a UDP socket that reads queries and never answers. Each
// query read is signalled on the returned channel (when it has room).
func blackhole(tb testing.TB) (string, <-chan struct{}) {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	got := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 65535)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			select {
			case got <- struct{}{}:
			default:
			}
		}
	}()
	return pc.LocalAddr().String(), got
}
