// Package dnstest runs DNS servers on loopback for tests: a zone of fixed
// replies, or any handler, on UDP and TCP at one port of 127.0.0.1; and a
// socket that reads queries and never answers.
package dnstest

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Reply is what a Server sends for one question.
type Reply struct {
	Rcode    int      // NOERROR unless set
	Answer   []string // answer section, zone file syntax
	Ns       []string // authority section, zone file syntax
	Extra    []string // additional section, zone file syntax
	TruncUDP bool     // over UDP send only the header with the TC bit
	Question string   // when set, echo this name instead of the one asked
}

// Zone maps "name. TYPE" to a reply; other questions get the server's
// Missing reply, or an empty NOERROR.
type Zone map[string]Reply

// Server answers from its zone as a recursive resolver would, and counts
// the questions it saw. A UDP answer is truncated to the asker's buffer
// (512 bytes without EDNS).
type Server struct {
	Addr     string       // "127.0.0.1:port", UDP and TCP
	UDP, TCP atomic.Int64 // questions seen over each
	Zone     Zone
	Delay    time.Duration // before every answer
	// Missing, when set, gives the reply to a question not in Zone.
	Missing func(q dns.Question) Reply

	mu    sync.Mutex
	asked []string // "name TYPE", in order
}

// Start serves z until the test ends, waiting delay before every answer.
func Start(tb testing.TB, z Zone, delay time.Duration) *Server {
	tb.Helper()
	return (&Server{Zone: z, Delay: delay}).Run(tb)
}

// Run serves s until the test ends, and returns it with Addr set.
func (s *Server) Run(tb testing.TB) *Server {
	tb.Helper()
	s.Addr = Serve(tb, s)
	return s
}

// Queries is how many questions the server has received, over UDP and TCP.
func (s *Server) Queries() int64 { return s.UDP.Load() + s.TCP.Load() }

// Asked returns the questions received, "name TYPE", in order.
func (s *Server) Asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asked...)
}

func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	tcp := w.RemoteAddr().Network() == "tcp"
	if tcp {
		s.TCP.Add(1)
	} else {
		s.UDP.Add(1)
	}
	time.Sleep(s.Delay)
	if len(req.Question) != 1 {
		w.WriteMsg(new(dns.Msg).SetRcode(req, dns.RcodeFormatError))
		return
	}
	q := req.Question[0]
	s.mu.Lock()
	s.asked = append(s.asked, q.Name+" "+dns.Type(q.Qtype).String())
	s.mu.Unlock()
	rep, ok := s.Zone[dns.CanonicalName(q.Name)+" "+dns.Type(q.Qtype).String()]
	if !ok && s.Missing != nil {
		rep = s.Missing(q)
	}
	m := new(dns.Msg).SetRcode(req, rep.Rcode)
	m.RecursionAvailable = true
	if rep.Question != "" {
		m.Question[0].Name = rep.Question
	}
	if rep.TruncUDP && !tcp {
		m.Truncated = true
	} else {
		m.Answer, m.Ns, m.Extra = rrs(rep.Answer), rrs(rep.Ns), rrs(rep.Extra)
	}
	if !tcp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// rrs parses records written in zone file syntax in a test's tables; it
// panics on a bad one.
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

// Rcode is a handler that answers every question with rcode.
func Rcode(rcode int) dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(req, rcode))
	})
}

// ServeOn runs h on UDP and TCP at addr ("ip:port") until the test ends,
// and returns once both are serving. The sockets are made by the calling
// goroutine, so that inside netns.Do they belong to that namespace; for
// the same reason it returns its error rather than failing the test.
func ServeOn(tb testing.TB, addr string, h dns.Handler) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("serving DNS on %s: %w", addr, err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("serving DNS on %s: %w", addr, err)
	}
	return start(tb, h, pc, l)
}

// start serves h on pc and l until the test ends.
func start(tb testing.TB, h dns.Handler, pc net.PacketConn, l net.Listener) error {
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		failed := make(chan error, 1)
		go func() { failed <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-failed:
			pc.Close()
			l.Close()
			return fmt.Errorf("starting DNS server: %w", err)
		}
		tb.Cleanup(func() { srv.Shutdown() })
	}
	return nil
}

// Serve runs h on UDP and TCP at one free port of 127.0.0.1 until the test
// ends, and returns "127.0.0.1:port" once both are serving.
func Serve(tb testing.TB, h dns.Handler) string {
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
		if err := start(tb, h, pc, l); err != nil {
			tb.Fatal(err)
		}
		return pc.LocalAddr().String()
	}
	tb.Fatal("found no port free for both UDP and TCP")
	return ""
}

// Blackhole is a UDP socket on 127.0.0.1 that reads queries and never
// answers, until the test ends. Each query read is signalled on the returned
// channel when it has room.
func Blackhole(tb testing.TB) (string, <-chan struct{}) {
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
