package resolve_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/internal/dnstest"
	"github.com/VerilyPete/claudecontainer/resolve"
)

func FuzzFromResolvConf(f *testing.F) {
	for _, s := range []string{
		"# written by a network manager\nsearch corp.example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n",
		"nameserver fe80::1%eth0\n",
		"nameserver 127.0.0.53\noptions edns0 timeout:3 attempts:4 ndots:2\n",
		"nameserver 127.0.0.53\noptions timeout:99\noptions attempts:9\n",
		"nameserver 127.0.0.53\noptions timeout:0 attempts:0\n",
		"nameserver dns.example\n",
		"search example\n",
		"nameserver ::ffff:192.0.2.1\n",
	} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), "resolv.conf")
	f.Fuzz(func(t *testing.T, conf string) {
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := resolve.FromResolvConf(path)
		if err != nil {
			if r != nil {
				t.Fatalf("error %v came with %+v", err, r)
			}
			return
		}
		if len(r.Servers) == 0 {
			t.Fatal("no error and no servers")
		}
		for _, s := range r.Servers {
			ap, err := netip.ParseAddrPort(s)
			if err != nil || !ap.Addr().IsValid() || ap.Port() == 0 {
				t.Fatalf("server %q is not ip:port", s)
			}
		}
		// resolv.conf(5) caps timeout at 30 s and attempts at 5. A timeout
		// option other than 5 (the parser's default) is taken, capped.
		if r.Timeout <= 0 || r.Timeout > 30*time.Second {
			t.Fatalf("timeout %v from %q", r.Timeout, conf)
		}
		if cc, err := dns.ClientConfigFromReader(strings.NewReader(conf)); err == nil && cc.Timeout != 5 {
			if want := time.Duration(min(cc.Timeout, 30)) * time.Second; r.Timeout != want {
				t.Fatalf("timeout %v from %q, want %v", r.Timeout, conf, want)
			}
		}
		if r.Attempts < 1 || r.Attempts > 5 {
			t.Fatalf("attempts %d from %q", r.Attempts, conf)
		}
	})
}

// answers is a DNS server on loopback that replies to every query with the
// message the fuzz target sets, fixed up to answer that query.
type answers struct {
	mu   sync.Mutex
	msg  *dns.Msg // nil: reply with raw
	raw  []byte
	addr string
}

func (a *answers) set(msg *dns.Msg, raw []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.msg, a.raw = msg, raw
}

func (a *answers) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	a.mu.Lock()
	msg, raw := a.msg, a.raw
	a.mu.Unlock()
	if msg == nil {
		b := slices.Clone(raw)
		if len(b) >= 2 {
			b[0], b[1] = byte(req.Id>>8), byte(req.Id)
		}
		w.Write(b)
		return
	}
	m := msg.Copy()
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.Question = req.Question
	w.WriteMsg(m)
}

// FuzzLookupAnswers runs Lookup against a server whose answers are the fuzz
// input: taken as they are, or with the ID and question fixed up so that the
// records in them are read (CNAME chains included). Whatever the answers,
// Lookup gives sorted, unique, unmapped addresses, or an error and none.
func FuzzLookupAnswers(f *testing.F) {
	seed := func(fix bool, rrs ...string) {
		m := new(dns.Msg).SetQuestion("example.com.", dns.TypeA)
		m.Response = true
		for _, s := range rrs {
			rr, err := dns.NewRR(s)
			if err != nil {
				f.Fatal(err)
			}
			m.Answer = append(m.Answer, rr)
		}
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(fix, b)
	}
	seed(true, "example.com. 300 IN A 192.0.2.1", "example.com. 60 IN AAAA 2001:db8::1")
	seed(true, "example.com. 300 IN CNAME edge.example.net.", "edge.example.net. 30 IN A 192.0.2.7", "edge.example.net. 30 IN AAAA ::ffff:192.0.2.8")
	seed(true, "example.com. 300 IN CNAME a.example.net.", "a.example.net. 300 IN CNAME example.com.")
	seed(true, "example.com. 300 IN CNAME a.example.net.", "example.com. 300 IN CNAME b.example.net.")
	seed(true, "other.example. 300 IN A 192.0.2.9")
	seed(false, "example.com. 300 IN A 192.0.2.1")
	seed(true)

	srv := &answers{}
	srv.addr = dnstest.Serve(f, srv)
	r := &resolve.Resolver{Servers: []string{srv.addr}, Timeout: 250 * time.Millisecond, Attempts: 1}
	f.Fuzz(func(t *testing.T, fix bool, raw []byte) {
		var msg *dns.Msg
		if fix {
			msg = new(dns.Msg)
			if err := msg.Unpack(raw); err != nil {
				return
			}
		}
		srv.set(msg, raw)
		a := r.Lookup(context.Background(), "example.com")
		if a.Host != "example.com" {
			t.Fatalf("answer for %q", a.Host)
		}
		if a.Err != nil {
			if len(a.Addrs) != 0 {
				t.Fatalf("error %v came with %v", a.Err, a.Addrs)
			}
			return
		}
		if len(a.Addrs) == 0 {
			t.Fatal("no error and no addresses")
		}
		for i, ad := range a.Addrs {
			if !ad.IsValid() || ad.Is4In6() || ad.Zone() != "" {
				t.Fatalf("address %v", ad)
			}
			if i > 0 && a.Addrs[i-1].Compare(ad) >= 0 {
				t.Fatalf("addresses not sorted and unique: %v", a.Addrs)
			}
		}
	})
}
