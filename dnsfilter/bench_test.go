package dnsfilter

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/internal/dnstest"
)

// nopOpener opens nothing, for benchmarks of the filter's own cost.
type nopOpener struct{}

func (nopOpener) Open(context.Context, []netip.Addr, time.Duration) error { return nil }

// benchUpstream answers every name with two A records.
func benchUpstream(b *testing.B) *dnstest.Server {
	return startUpstream(b, nil, func(q dns.Question) dnstest.Reply {
		return dnstest.Reply{Answer: []string{q.Name + " 300 IN A " + pub4a, q.Name + " 300 IN A " + pub4b}}
	})
}

// benchClient is one UDP connection to addr, so that every query measures
// the server and not the dialling.
func benchClient(b *testing.B, addr string) (*dns.Client, *dns.Conn) {
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second}
	conn, err := c.Dial(addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return c, conn
}

func benchAsk(b *testing.B, c *dns.Client, conn *dns.Conn, name string) {
	m := new(dns.Msg).SetQuestion(name, dns.TypeA)
	m.SetEdns0(1232, false)
	resp, _, err := c.ExchangeWithConn(m, conn)
	if err != nil {
		b.Fatal(err)
	}
	if len(resp.Answer) != 2 {
		b.Fatalf("answer %v", resp.Answer)
	}
}

// BenchmarkQuery compares one A query asked of the upstream directly
// (direct), through the filter when the name is not cached (miss: the
// filter asks the upstream, vets, opens and caches), and through the filter
// when it is (hit). miss minus direct is the latency the filter adds.
func BenchmarkQuery(b *testing.B) {
	up := benchUpstream(b)
	f := startFilter(b, Config{Upstreams: []string{up.Addr}, Opener: nopOpener{}, Log: nopWriter{}})

	b.Run("direct", func(b *testing.B) {
		c, conn := benchClient(b, up.Addr)
		var q quantiles
		for i := 0; b.Loop(); i++ {
			q.time(func() { benchAsk(b, c, conn, fmt.Sprintf("d%d.allowed.test.", i)) })
		}
		q.report(b)
	})
	var misses atomic.Int64 // names never asked before, across -count runs
	b.Run("miss", func(b *testing.B) {
		c, conn := benchClient(b, f.addr)
		var q quantiles
		for b.Loop() {
			q.time(func() { benchAsk(b, c, conn, fmt.Sprintf("m%d.allowed.test.", misses.Add(1))) })
		}
		q.report(b)
	})
	b.Run("hit", func(b *testing.B) {
		c, conn := benchClient(b, f.addr)
		benchAsk(b, c, conn, "hit.allowed.test.")
		var q quantiles
		for b.Loop() {
			q.time(func() { benchAsk(b, c, conn, "hit.allowed.test.") })
		}
		q.report(b)
	})
}

// BenchmarkThroughput sends cached queries from parallel clients, each on
// its own UDP connection, over 1,000 names; the figure to read is queries/s.
func BenchmarkThroughput(b *testing.B) {
	up := benchUpstream(b)
	f := startFilter(b, Config{Upstreams: []string{up.Addr}, Opener: nopOpener{}, Log: nopWriter{}})
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("t%d.allowed.test.", i)
	}
	var next atomic.Int64
	b.SetParallelism(16) // 16 clients per CPU, each waiting on its answer
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		c, conn := benchClient(b, f.addr)
		for pb.Next() {
			benchAsk(b, c, conn, names[next.Add(1)%int64(len(names))])
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "queries/s")
}

// BenchmarkCacheMemory fills a cache with 100,000 answers of the common
// shape (a CNAME to a CDN name and two A records, as unpacked from the
// wire) and reports the heap they take.
func BenchmarkCacheMemory(b *testing.B) {
	for b.Loop() {
		per := cacheBytesPerName(b, 100_000)
		b.ReportMetric(per, "B/name")
		b.ReportMetric(per*100_000/1e6, "MB/100k")
	}
}

// TestTheCacheHolds100000NamesInUnder100MB measures 10,000 names and
// scales up, which keeps the test quick under -race; BenchmarkCacheMemory
// measures the 100,000 themselves (about 500 bytes a name either way).
func TestTheCacheHolds100000NamesInUnder100MB(t *testing.T) {
	per := cacheBytesPerName(t, 10_000)
	if total := per * 100_000; total > 100e6 {
		t.Errorf("100,000 names would take %.0f MB, over 100 MB", total/1e6)
	}
	t.Logf("%.0f bytes per cached name", per)
}

// cacheBytesPerName fills a cache as the handler does and returns the heap
// growth divided by n.
func cacheBytesPerName(tb testing.TB, n int) float64 {
	h, err := New(Config{
		Clients:   []netip.Prefix{netip.MustParsePrefix("10.88.0.0/16")},
		Upstreams: []string{"127.0.0.1:53"},
		Opener:    nopOpener{},
		Vet:       testVet,
		CacheSize: n,
	})
	if err != nil {
		tb.Fatal(err)
	}
	a4, b4 := netip.MustParseAddr(pub4a), netip.MustParseAddr(pub4b)
	wire := make([][]byte, n)
	for i := range wire {
		name := fmt.Sprintf("host-%d.service.allowed.test.", i)
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.Response = true
		target := fmt.Sprintf("e%d.a.cdn-provider.example.", i)
		hdr := dns.RR_Header{Name: target, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}
		m.Answer = []dns.RR{
			&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: target},
			&dns.A{Hdr: hdr, A: net.IP(a4.AsSlice())},
			&dns.A{Hdr: hdr, A: net.IP(b4.AsSlice())},
		}
		if wire[i], err = m.Pack(); err != nil {
			tb.Fatal(err)
		}
	}
	now := time.Now()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i, w := range wire {
		resp := new(dns.Msg)
		if err := resp.Unpack(w); err != nil {
			tb.Fatal(err)
		}
		name := fmt.Sprintf("host-%d.service.allowed.test.", i)
		v, err := h.vetAnswer(resp, name, dns.TypeA)
		if err != nil {
			tb.Fatal(err)
		}
		h.cache.put(key{name, dns.TypeA}, newEntry(v, now, h.minTTL, h.maxTTL), 0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := h.cache.lru.Len(); got != n {
		tb.Fatalf("cache holds %d answers, want %d", got, n)
	}
	runtime.KeepAlive(h)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// quantiles collects the time of each query, for the p50 and p99 that the
// issue's targets name (ns/op is the mean).
type quantiles []time.Duration

func (q *quantiles) time(f func()) {
	start := time.Now()
	f()
	*q = append(*q, time.Since(start))
}

func (q quantiles) report(b *testing.B) {
	if len(q) == 0 {
		return
	}
	slices.Sort(q)
	b.ReportMetric(float64(q[len(q)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(q[len(q)*99/100].Microseconds()), "p99-µs")
}
