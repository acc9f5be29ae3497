package dnsfilter

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/internal/dnstest"
)

func TestAnAllowedNameResolvesAndIsOpenedBeforeTheAnswerIsWritten(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{
		"api.allowed.test. A":    {Answer: []string{"api.allowed.test. 600 IN A " + pub4a, "api.allowed.test. 600 IN A " + pub4b}},
		"api.allowed.test. AAAA": {Answer: []string{"api.allowed.test. 30 IN AAAA " + pub6}},
	})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})

	resp := ask(t, "udp", f.addr, "API.Allowed.Test", dns.TypeA)
	if rcode(resp) != "NOERROR" {
		t.Fatalf("rcode %s, want NOERROR", rcode(resp))
	}
	if diff := cmp.Diff([]string{pub4a, pub4b}, addrsOf(resp.Answer)); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if got := resp.Question[0].Name; got != "API.Allowed.Test." {
		t.Errorf("question echoed as %q, want the client's spelling", got)
	}
	want := []string{"open [" + pub4a + " " + pub4b + "]", "write NOERROR"}
	if diff := cmp.Diff(want, f.events.all()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if calls := f.opener.all(); len(calls) == 0 || calls[0].TTL != 10*time.Minute {
		t.Errorf("Open calls %v, want the answer's TTL of 10m", calls)
	}

	// A short TTL is opened for the floor.
	ask(t, "udp", f.addr, "api.allowed.test", dns.TypeAAAA)
	calls := f.opener.all()
	if got := calls[len(calls)-1]; got.TTL != DefaultMinTTL || got.Addrs[0] != netip.MustParseAddr(pub6) {
		t.Errorf("AAAA opened as %+v, want %s for %s", got, pub6, DefaultMinTTL)
	}
	if len(f.log.all()) != 0 {
		t.Errorf("allowed names were logged as refusals: %q", f.log.all())
	}
}

func TestABlockedNameGetsNXDOMAINWithAnExtendedErrorAndNeverLeavesTheHost(t *testing.T) {
	up := startUpstream(t, nil)
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})

	resp := ask(t, "udp", f.addr, "evil.example", dns.TypeA)
	if rcode(resp) != "NXDOMAIN" || len(resp.Answer) != 0 {
		t.Fatalf("got %s with %d answers, want NXDOMAIN and none", rcode(resp), len(resp.Answer))
	}
	e := ede(resp)
	if e == nil || e.InfoCode != dns.ExtendedErrorCodeBlocked {
		t.Fatalf("extended error %v, want Blocked (15)", e)
	}
	const text = "claudecontainer: evil.example is not on the allowlist; on the host: mage allow evil.example"
	if e.ExtraText != text {
		t.Errorf("extended error text %q, want %q", e.ExtraText, text)
	}
	if n := up.Queries(); n != 0 {
		t.Errorf("upstream received %d queries for a blocked name: %q", n, up.Asked())
	}
	if n := len(f.opener.all()); n != 0 {
		t.Errorf("Open called %d times for a blocked name", n)
	}

	lines := f.log.all()
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1: %q", len(lines), lines)
	}
	var rec Record
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("log line %q: %v", lines[0], err)
	}
	want := Record{Time: rec.Time, Client: netip.MustParseAddr("127.0.0.1"), Name: "evil.example", Type: "A", Reason: "not on the allowlist"}
	if diff := cmp.Diff(want, rec, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("log record (-want +got):\n%s", diff)
	}
	if time.Since(rec.Time) > time.Minute || !strings.Contains(lines[0], `"time":"`) {
		t.Errorf("log time %v in %q", rec.Time, lines[0])
	}
}

func TestATXTQueryForARandomLabelUnderABlockedDomainNeverReachesUpstream(t *testing.T) {
	up := startUpstream(t, nil)
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})

	// The shape of a DNS tunnel: data in the labels, answer in TXT.
	for _, name := range []string{
		"c2VjcmV0LWtleS0xMjM0NTY3ODkw.attacker.example",
		"x.allowed.test.attacker.example",
		"allowed.test",               // the wildcard's own domain is not under it
		"a\\.b.allowed.test.example", // an escaped dot is inside a label
		"exfil.allowed\\.test",       // one label "allowed.test" under the root
		strings.Repeat("a", 63) + ".evil.example",
	} {
		resp := ask(t, "udp", f.addr, name, dns.TypeTXT)
		if rcode(resp) != "NXDOMAIN" || len(resp.Answer) != 0 {
			t.Errorf("%s: got %s with %d answers, want NXDOMAIN", name, rcode(resp), len(resp.Answer))
		}
	}
	if n := up.Queries(); n != 0 {
		t.Errorf("upstream received %d queries: %q", n, up.Asked())
	}
}

func TestCNAMEChainsAreFollowedInsideTheAnswer(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{
		"www.allowed.test. A": {Answer: []string{
			"www.allowed.test. 300 IN CNAME edge.cdn.example.",
			"edge.cdn.example. 300 IN CNAME e1.cdn.example.",
			"e1.cdn.example. 60 IN A " + pub4a,
			"unrelated.example. 300 IN A " + pub4b, // not on the chain
		}},
		"loop.allowed.test. A": {Answer: []string{
			"loop.allowed.test. 300 IN CNAME a.example.",
			"a.example. 300 IN CNAME loop.allowed.test.",
		}},
		"two.allowed.test. A": {Answer: []string{
			"two.allowed.test. 300 IN CNAME a.example.",
			"two.allowed.test. 300 IN CNAME b.example.",
			"a.example. 300 IN A " + pub4a,
		}},
	})
	var mu sync.Mutex
	var chains [][]string
	f := startFilter(t, Config{Upstreams: []string{up.Addr}, Answered: func(chain []string, _ []netip.Addr) {
		mu.Lock()
		defer mu.Unlock()
		chains = append(chains, chain)
	}})

	resp := ask(t, "udp", f.addr, "www.allowed.test", dns.TypeA)
	mu.Lock()
	if diff := cmp.Diff([][]string{{"www.allowed.test", "edge.cdn.example", "e1.cdn.example"}}, chains); diff != "" {
		t.Errorf("Answered was told (-want +got):\n%s", diff)
	}
	mu.Unlock()
	var got []string
	for _, rr := range resp.Answer {
		got = append(got, rr.Header().Name+" "+dns.Type(rr.Header().Rrtype).String())
	}
	want := []string{"www.allowed.test. CNAME", "edge.cdn.example. CNAME", "e1.cdn.example. A"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]openCall{{[]netip.Addr{netip.MustParseAddr(pub4a)}, DefaultMinTTL}}, f.opener.all(),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Open calls (-want +got):\n%s", diff)
	}

	// The target itself is not allowed: asked directly, it is refused.
	if resp := ask(t, "udp", f.addr, "e1.cdn.example", dns.TypeA); rcode(resp) != "NXDOMAIN" {
		t.Errorf("the CNAME target asked directly: %s, want NXDOMAIN", rcode(resp))
	}

	for _, name := range []string{"loop.allowed.test", "two.allowed.test"} {
		if resp := ask(t, "udp", f.addr, name, dns.TypeA); rcode(resp) != "SERVFAIL" || len(resp.Answer) != 0 {
			t.Errorf("%s: %s with %d answers, want SERVFAIL", name, rcode(resp), len(resp.Answer))
		}
	}
	if n := len(f.opener.all()); n != 1 {
		t.Errorf("%d Open calls, want only the one for www", n)
	}
}

func TestACNAMEToADeniedNameIsRefusedAndNotOpened(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{
		"www.allowed.test. A": {Answer: []string{
			"www.allowed.test. 300 IN CNAME x.tunnel.example.",
			"x.tunnel.example. 300 IN A " + pub4a,
		}},
		"cdn.allowed.test. A": {Answer: []string{
			"cdn.allowed.test. 300 IN CNAME edge.cdn.example.",
			"edge.cdn.example. 300 IN A " + pub4b,
		}},
	})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}, Names: mustNames(t, "*.allowed.test", "!*.tunnel.example")})

	resp := ask(t, "udp", f.addr, "www.allowed.test", dns.TypeA)
	if rcode(resp) != "NXDOMAIN" || len(resp.Answer) != 0 {
		t.Errorf("%s with %v, want NXDOMAIN", rcode(resp), resp.Answer)
	}
	const text = "claudecontainer: www.allowed.test is an alias of x.tunnel.example, which is denied by !*.tunnel.example on the allowlist"
	if e := ede(resp); e == nil || e.InfoCode != dns.ExtendedErrorCodeBlocked || e.ExtraText != text {
		t.Errorf("extended error %v, want Blocked: %q", e, text)
	}
	if n := len(f.opener.all()); n != 0 {
		t.Errorf("Open called %d times for a denied target", n)
	}

	// A cached answer whose target a new deny entry names is refused too.
	if resp := ask(t, "udp", f.addr, "cdn.allowed.test", dns.TypeA); len(resp.Answer) != 2 {
		t.Fatalf("answer %v", resp.Answer)
	}
	f.h.SetNames(mustNames(t, "*.allowed.test", "!edge.cdn.example"))
	if resp := ask(t, "udp", f.addr, "cdn.allowed.test", dns.TypeA); rcode(resp) != "NXDOMAIN" || len(resp.Answer) != 0 {
		t.Errorf("after the deny: %s %v, want NXDOMAIN", rcode(resp), resp.Answer)
	}
	if log := joinLines(f.log.all()); !strings.Contains(log, "CNAME target x.tunnel.example denied by !*.tunnel.example") ||
		!strings.Contains(log, "CNAME target edge.cdn.example denied by !edge.cdn.example") {
		t.Errorf("log:\n%s", log)
	}
}

func TestPrivateAndLoopbackAddressesAreDroppedFromAnswers(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{
		"mixed.allowed.test. A": {Answer: []string{
			"mixed.allowed.test. 300 IN A 10.0.0.5",
			"mixed.allowed.test. 300 IN A 127.0.0.1",
			"mixed.allowed.test. 300 IN A 169.254.169.254",
			"mixed.allowed.test. 300 IN A " + pub4a,
		}},
		"rebind.allowed.test. A": {Answer: []string{"rebind.allowed.test. 300 IN A 192.168.1.1"}},
		"mapped.allowed.test. AAAA": {Answer: []string{
			"mapped.allowed.test. 300 IN AAAA ::ffff:127.0.0.1",
			"mapped.allowed.test. 300 IN AAAA ::1",
			"mapped.allowed.test. 300 IN AAAA fd00::1",
		}},
		"glue.allowed.test. TXT": {
			Answer: []string{`glue.allowed.test. 300 IN TXT "v=1"`},
			Ns:     []string{"allowed.test. 300 IN NS ns.allowed.test."},
			Extra:  []string{"ns.allowed.test. 300 IN A 10.1.2.3"},
		},
	})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})

	resp := ask(t, "udp", f.addr, "mixed.allowed.test", dns.TypeA)
	if diff := cmp.Diff([]string{pub4a}, addrsOf(resp.Answer)); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	for _, name := range []string{"rebind.allowed.test", "mapped.allowed.test"} {
		qtype := dns.TypeA
		if strings.HasPrefix(name, "mapped") {
			qtype = dns.TypeAAAA
		}
		resp := ask(t, "udp", f.addr, name, qtype)
		if rcode(resp) != "NOERROR" || len(resp.Answer) != 0 {
			t.Errorf("%s: %s with %v, want an empty NOERROR", name, rcode(resp), addrsOf(resp.Answer))
		}
	}
	resp = ask(t, "udp", f.addr, "glue.allowed.test", dns.TypeTXT)
	if len(resp.Ns) != 0 || len(resp.Extra) != 1 { // the OPT record only
		t.Errorf("authority %v and additional %v reached the client", resp.Ns, resp.Extra)
	}

	if diff := cmp.Diff(map[netip.Addr]bool{netip.MustParseAddr(pub4a): true}, f.opener.opened(),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("opened (-want +got):\n%s", diff)
	}
	log := joinLines(f.log.all())
	for _, want := range []string{
		"answer address dropped: 10.0.0.5 (private network)",
		"answer address dropped: 127.0.0.1 (loopback)",
		"answer address dropped: 169.254.169.254 (link-local)",
		"answer address dropped: 192.168.1.1 (private network)",
		"answer address dropped: ::ffff:127.0.0.1 (IPv4-mapped address in an AAAA record)",
		"answer address dropped: ::1 (loopback)",
		"answer address dropped: fd00::1 (private network)",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not say %q:\n%s", want, log)
		}
	}
}

func TestHTTPSAndSVCBAddressHintsAreStripped(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{
		"svc.allowed.test. HTTPS": {Answer: []string{
			`svc.allowed.test. 300 IN HTTPS 1 . alpn="h2,h3" ipv4hint="10.0.0.1,` + pub4a + `" ipv6hint="::1"`,
			`svc.allowed.test. 300 IN HTTPS 2 alt.example. mandatory=ipv4hint,alpn alpn="h2" ipv4hint="` + pub4b + `"`,
		}},
		"_dns.allowed.test. SVCB": {Answer: []string{
			`_dns.allowed.test. 300 IN SVCB 1 dns.example. alpn="dot" ipv4hint="` + pub4a + `"`,
		}},
	})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})

	resp := ask(t, "udp", f.addr, "svc.allowed.test", dns.TypeHTTPS)
	if len(resp.Answer) != 2 {
		t.Fatalf("answer %v, want the two HTTPS records", resp.Answer)
	}
	var got []string
	for _, rr := range resp.Answer {
		got = append(got, rr.String())
	}
	want := []string{
		"svc.allowed.test.\t300\tIN\tHTTPS\t1 . alpn=\"h2,h3\"",
		"svc.allowed.test.\t300\tIN\tHTTPS\t2 alt.example. mandatory=\"alpn\" alpn=\"h2\"",
	}
	for i := range got { // the TTL counts down; compare without it
		got[i] = strings.Replace(got[i], "\t299\t", "\t300\t", 1)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	resp = ask(t, "udp", f.addr, "_dns.allowed.test", dns.TypeSVCB)
	if len(resp.Answer) != 1 || strings.Contains(resp.Answer[0].String(), "hint") {
		t.Errorf("SVCB answer %v still holds hints", resp.Answer)
	}
	if n := len(f.opener.all()); n != 0 {
		t.Errorf("Open called %d times; hints are stripped, not opened", n)
	}
}

func TestATruncatedUpstreamAnswerIsAskedAgainOverTCP(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{
		"big.allowed.test. A": {TruncUDP: true, Answer: []string{"big.allowed.test. 300 IN A " + pub4a}},
	})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})

	resp := ask(t, "udp", f.addr, "big.allowed.test", dns.TypeA)
	if diff := cmp.Diff([]string{pub4a}, addrsOf(resp.Answer)); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
	if u, tc := up.UDP.Load(), up.TCP.Load(); u != 1 || tc != 1 {
		t.Errorf("upstream saw %d UDP and %d TCP queries, want 1 and 1", u, tc)
	}
}

func TestALargeAnswerIsTruncatedForTheClientAndWholeOverTCP(t *testing.T) {
	var answer []string
	for i := range 100 {
		answer = append(answer, "many.allowed.test. 300 IN A 93.184.216."+strconv.Itoa(i+1))
	}
	up := startUpstream(t, dnstest.Zone{"many.allowed.test. A": {Answer: answer}})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})

	m := new(dns.Msg).SetQuestion("many.allowed.test.", dns.TypeA) // no EDNS: 512 bytes
	c := &dns.Client{Net: "udp", Timeout: 10 * time.Second}
	resp, _, err := c.Exchange(m, f.addr)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Truncated || len(resp.Answer) >= 100 {
		t.Errorf("UDP answer without EDNS: TC=%v with %d records, want TC and fewer than 100", resp.Truncated, len(resp.Answer))
	}
	if resp := ask(t, "tcp", f.addr, "many.allowed.test", dns.TypeA); len(resp.Answer) != 100 || resp.Truncated {
		t.Errorf("TCP answer: %d records, TC=%v; want all 100", len(resp.Answer), resp.Truncated)
	}
	if calls := f.opener.all(); len(calls) != 1 || len(calls[0].Addrs) != 100 {
		t.Errorf("Open calls %v, want one with all 100 addresses", calls)
	}
	if n := up.TCP.Load(); n != 1 {
		t.Errorf("the upstream was asked %d times over TCP, want once (its UDP answer did not fit)", n)
	}
}

func TestAnUpstreamThatFailsIsSERVFAILAndTheNextUpstreamIsAsked(t *testing.T) {
	good := startUpstream(t, dnstest.Zone{"api.allowed.test. A": {Answer: []string{"api.allowed.test. 300 IN A " + pub4a}}})
	failing := startUpstream(t, nil, func(dns.Question) dnstest.Reply { return dnstest.Reply{Rcode: dns.RcodeServerFailure} })
	wrongQuestion := startUpstream(t, dnstest.Zone{
		"api.allowed.test. A": {Question: "other.example.", Answer: []string{"other.example. 300 IN A " + pub4b}},
	})
	dead, deadReads := deadUpstream(t)

	t.Run("all fail", func(t *testing.T) {
		f := startFilter(t, Config{Upstreams: []string{failing.Addr, wrongQuestion.Addr}})
		resp := ask(t, "udp", f.addr, "api.allowed.test", dns.TypeA)
		if rcode(resp) != "SERVFAIL" || len(resp.Answer) != 0 {
			t.Errorf("%s with %v, want SERVFAIL", rcode(resp), resp.Answer)
		}
		if n := len(f.opener.all()); n != 0 {
			t.Errorf("Open called %d times", n)
		}
		if log := joinLines(f.log.all()); !strings.Contains(log, "SERVFAIL") || !strings.Contains(log, "answer is for other.example.") {
			t.Errorf("log does not say why:\n%s", log)
		}
	})
	t.Run("failover", func(t *testing.T) {
		f := startFilter(t, Config{Upstreams: []string{dead, failing.Addr, good.Addr}, Timeout: time.Second})
		resp := ask(t, "udp", f.addr, "api.allowed.test", dns.TypeA)
		if diff := cmp.Diff([]string{pub4a}, addrsOf(resp.Answer)); diff != "" {
			t.Fatalf("answer (-want +got):\n%s", diff)
		}
		if deadReads.Load() != 1 {
			t.Errorf("the dead upstream read %d queries, want 1", deadReads.Load())
		}
		// The upstream that answered is asked first from now on.
		f.h.Flush()
		before := good.Queries()
		ask(t, "udp", f.addr, "api.allowed.test", dns.TypeA)
		if deadReads.Load() != 1 || good.Queries() != before+1 {
			t.Errorf("after a failover the dead upstream was asked again (%d reads)", deadReads.Load())
		}
	})
}

func TestAFailedOpenIsSERVFAILAndNoAddressLeaks(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{"api.allowed.test. A": {Answer: []string{"api.allowed.test. 300 IN A " + pub4a}}})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})
	f.opener.setFail(errors.New("nft: netlink: operation not permitted"))

	for _, network := range []string{"udp", "tcp", "udp"} {
		resp := ask(t, network, f.addr, "api.allowed.test", dns.TypeA)
		if rcode(resp) != "SERVFAIL" || len(resp.Answer)+len(resp.Ns) != 0 || strings.Contains(resp.String(), pub4a) {
			t.Fatalf("over %s: %s\n%s\nwant SERVFAIL without the address", network, rcode(resp), resp)
		}
		if e := ede(resp); e == nil || e.ExtraText != "claudecontainer: opening the firewall failed" {
			t.Errorf("extended error %v, want one that names the step and not the firewall's message", e)
		}
	}
	// Nothing was cached: every query asked again and tried to open again.
	if n, calls := up.Queries(), len(f.opener.all()); n != 3 || calls != 3 {
		t.Errorf("upstream asked %d times and Open called %d times, want 3 and 3", n, calls)
	}
	if log := joinLines(f.log.all()); !strings.Contains(log, "opening the firewall failed: nft: netlink: operation not permitted") {
		t.Errorf("log does not say the firewall failed:\n%s", log)
	}

	f.opener.setFail(nil)
	if resp := ask(t, "udp", f.addr, "api.allowed.test", dns.TypeA); rcode(resp) != "NOERROR" || len(resp.Answer) != 1 {
		t.Errorf("once Open works: %s %v", rcode(resp), resp.Answer)
	}
}

func TestClientsOutsideTheContainerNetworksAreRefused(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{"api.allowed.test. A": {Answer: []string{"api.allowed.test. 300 IN A " + pub4a}}})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}, Clients: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}})

	for _, network := range []string{"udp", "tcp"} {
		resp := ask(t, network, f.addr, "api.allowed.test", dns.TypeA)
		if rcode(resp) != "REFUSED" || len(resp.Answer) != 0 {
			t.Errorf("over %s: %s with %v, want REFUSED", network, rcode(resp), resp.Answer)
		}
		if e := ede(resp); e == nil || e.InfoCode != dns.ExtendedErrorCodeProhibited {
			t.Errorf("extended error %v, want Prohibited", e)
		}
	}
	if up.Queries() != 0 || len(f.opener.all()) != 0 {
		t.Errorf("upstream asked %d times, Open called %d times", up.Queries(), len(f.opener.all()))
	}
	if log := joinLines(f.log.all()); strings.Count(log, "client outside the container networks") != 2 {
		t.Errorf("log:\n%s", log)
	}
}

func TestANYZoneTransfersAndOtherClassesAreRefused(t *testing.T) {
	up := startUpstream(t, nil, func(q dns.Question) dnstest.Reply {
		return dnstest.Reply{Answer: []string{q.Name + " 300 IN A " + pub4a}}
	})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})

	for _, tc := range []struct {
		network string
		qtype   uint16
		class   uint16
	}{
		{"udp", dns.TypeANY, dns.ClassINET},
		{"tcp", dns.TypeAXFR, dns.ClassINET},
		{"tcp", dns.TypeIXFR, dns.ClassINET},
		{"udp", dns.TypeMAILA, dns.ClassINET},
		{"udp", dns.TypeTSIG, dns.ClassINET},
		{"udp", dns.TypeA, dns.ClassCHAOS},
		{"udp", dns.TypeTXT, dns.ClassANY},
	} {
		m := new(dns.Msg).SetQuestion("zone.allowed.test.", tc.qtype)
		m.Question[0].Qclass = tc.class
		resp := exchange(t, tc.network, f.addr, m)
		if rcode(resp) != "REFUSED" || len(resp.Answer) != 0 {
			t.Errorf("%s %s over %s: %s, want REFUSED", dns.Class(tc.class), dns.Type(tc.qtype), tc.network, rcode(resp))
		}
	}
	if n := up.Queries(); n != 0 {
		t.Errorf("upstream received %d queries: %q", n, up.Asked())
	}
}

func TestReverseNamesOfTheContainerNetworksAreAnsweredLocally(t *testing.T) {
	up := startUpstream(t, nil, func(q dns.Question) dnstest.Reply {
		return dnstest.Reply{Answer: []string{q.Name + " 300 IN PTR host.example."}}
	})
	f := startFilter(t, Config{
		Upstreams: []string{up.Addr},
		Clients:   []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.88.0.0/16"), netip.MustParsePrefix("fd00:88::/64")},
		Names:     mustNames(t, "*.allowed.test", "4.4.8.8.in-addr.arpa"),
	})

	for _, name := range []string{
		"5.0.88.10.in-addr.arpa",
		"88.10.in-addr.arpa",
		"1.0.0.127.in-addr.arpa",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.8.0.0.0.0.d.f.ip6.arpa",
	} {
		resp := ask(t, "udp", f.addr, name, dns.TypePTR)
		if rcode(resp) != "NXDOMAIN" || ede(resp) != nil {
			t.Errorf("%s: %s, EDE %v; want a plain NXDOMAIN", name, rcode(resp), ede(resp))
		}
	}
	if n := up.Queries(); n != 0 {
		t.Errorf("upstream received %d queries: %q", n, up.Asked())
	}
	if lines := f.log.all(); len(lines) != 0 {
		t.Errorf("local answers were logged as refusals: %q", lines)
	}
	// Other reverse names are names like any other.
	if resp := ask(t, "udp", f.addr, "10.in-addr.arpa", dns.TypePTR); ede(resp) == nil || ede(resp).InfoCode != dns.ExtendedErrorCodeBlocked {
		t.Errorf("10.in-addr.arpa: %s, want blocked", rcode(resp))
	}
	if resp := ask(t, "udp", f.addr, "4.4.8.8.in-addr.arpa", dns.TypePTR); rcode(resp) != "NOERROR" || len(resp.Answer) != 1 {
		t.Errorf("an allowed reverse name: %s %v", rcode(resp), resp.Answer)
	}
}

func TestTheCacheCountsTTLsDownAndDoesNotOpenAgainWithinThem(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{
		"api.allowed.test. A": {Answer: []string{"api.allowed.test. 120 IN A " + pub4a}},
		"gone.allowed.test. A": {Rcode: dns.RcodeNameError,
			Ns: []string{"allowed.test. 3600 IN SOA ns.allowed.test. admin.allowed.test. 1 7200 900 1209600 60"}},
	})
	clk := &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	f := startFilter(t, Config{Upstreams: []string{up.Addr}}, func(h *Handler) { h.now = clk.now })

	ttl := func() uint32 {
		t.Helper()
		resp := ask(t, "udp", f.addr, "api.allowed.test", dns.TypeA)
		if len(resp.Answer) != 1 {
			t.Fatalf("answer %v", resp.Answer)
		}
		return resp.Answer[0].Header().Ttl
	}
	if got := ttl(); got != 120 {
		t.Errorf("first answer TTL %d, want 120", got)
	}
	clk.advance(50 * time.Second)
	if got := ttl(); got != 70 {
		t.Errorf("TTL after 50 s: %d, want 70", got)
	}
	clk.advance(69*time.Second + 500*time.Millisecond)
	if got := ttl(); got != 0 {
		t.Errorf("TTL after 119.5 s: %d, want 0 (rounded down, never past the entry)", got)
	}
	if n, calls := up.Queries(), len(f.opener.all()); n != 1 || calls != 1 {
		t.Fatalf("within the TTL: upstream asked %d times, Open called %d times; want 1 and 1", n, calls)
	}
	clk.advance(time.Second)
	if got := ttl(); got != 120 {
		t.Errorf("after expiry TTL %d, want a fresh 120", got)
	}
	if n, calls := up.Queries(), len(f.opener.all()); n != 2 || calls != 2 {
		t.Errorf("after expiry: upstream asked %d times, Open called %d times; want 2 and 2", n, calls)
	}

	// Negative answers are cached for the SOA's MINIMUM, and need no Open.
	for range 3 {
		if resp := ask(t, "udp", f.addr, "gone.allowed.test", dns.TypeA); rcode(resp) != "NXDOMAIN" || len(resp.Ns) != 1 || resp.Ns[0].Header().Ttl > 60 {
			t.Fatalf("negative answer %s %v", rcode(resp), resp.Ns)
		}
	}
	if n := up.Queries(); n != 3 {
		t.Errorf("upstream asked %d times, want 3 (one for the negative answer)", n)
	}

	// Flush forgets everything: the next answer is opened again.
	f.h.Flush()
	ttl()
	if calls := len(f.opener.all()); calls != 3 {
		t.Errorf("after Flush Open called %d times, want 3", calls)
	}
}

func TestTTLsAreCappedAndOpenedForTheCap(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{"long.allowed.test. A": {Answer: []string{"long.allowed.test. 86400 IN A " + pub4a}}})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}, MaxTTL: 30 * time.Minute, MinTTL: time.Minute})
	resp := ask(t, "udp", f.addr, "long.allowed.test", dns.TypeA)
	if got := resp.Answer[0].Header().Ttl; got > 1800 {
		t.Errorf("TTL handed out %d, above the cap of 1800", got)
	}
	if calls := f.opener.all(); len(calls) != 1 || calls[0].TTL != 30*time.Minute {
		t.Errorf("Open calls %v, want one for the cap of 30m", calls)
	}
}

func TestConcurrentQueriesForOneNameShareOneLookupAndOneOpen(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{"api.allowed.test. A": {Answer: []string{"api.allowed.test. 300 IN A " + pub4a}}})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})
	done := make(chan *dns.Msg)
	for range 20 {
		go func() { done <- ask(t, "udp", f.addr, "api.allowed.test", dns.TypeA) }()
	}
	for range 20 {
		if resp := <-done; len(resp.Answer) != 1 {
			t.Errorf("answer %v", resp.Answer)
		}
	}
	if n, calls := up.Queries(), len(f.opener.all()); n != 1 || calls != 1 {
		t.Errorf("upstream asked %d times, Open called %d times; want 1 and 1", n, calls)
	}
}

func TestANewPolicyTakesEffectAtOnceEvenForCachedNames(t *testing.T) {
	up := startUpstream(t, dnstest.Zone{"api.allowed.test. A": {Answer: []string{"api.allowed.test. 300 IN A " + pub4a}}})
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})
	if resp := ask(t, "udp", f.addr, "api.allowed.test", dns.TypeA); len(resp.Answer) != 1 {
		t.Fatalf("answer %v", resp.Answer)
	}
	f.h.SetNames(mustNames(t, "*.allowed.test", "!api.allowed.test"))
	resp := ask(t, "udp", f.addr, "api.allowed.test", dns.TypeA)
	if rcode(resp) != "NXDOMAIN" || len(resp.Answer) != 0 {
		t.Errorf("after the deny: %s %v, want NXDOMAIN", rcode(resp), resp.Answer)
	}
	if e := ede(resp); e == nil || !strings.Contains(e.ExtraText, "denied by !api.allowed.test") {
		t.Errorf("extended error %v does not name the deny entry", e)
	}
}

func TestWithoutEDNSTheAnswerCarriesNoOPTRecord(t *testing.T) {
	up := startUpstream(t, nil)
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})
	m := new(dns.Msg).SetQuestion("evil.example.", dns.TypeA)
	resp := exchange(t, "udp", f.addr, m)
	if rcode(resp) != "NXDOMAIN" || resp.IsEdns0() != nil {
		t.Errorf("%s with OPT %v, want NXDOMAIN without OPT (RFC 6891 §7)", rcode(resp), resp.IsEdns0())
	}
}

func TestMalformedQueriesAreRefusedWithoutAskingUpstream(t *testing.T) {
	up := startUpstream(t, nil)
	f := startFilter(t, Config{Upstreams: []string{up.Addr}})
	h := f.h
	client := netip.MustParseAddr("127.0.0.1")

	two := new(dns.Msg).SetQuestion("a.allowed.test.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "b.allowed.test.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	none := new(dns.Msg)
	none.Id = 7
	update := new(dns.Msg).SetUpdate("allowed.test.")
	badVers := new(dns.Msg).SetQuestion("a.allowed.test.", dns.TypeA)
	badVers.SetEdns0(1232, false)
	badVers.IsEdns0().SetVersion(1)
	answer := new(dns.Msg).SetQuestion("a.allowed.test.", dns.TypeA)
	answer.Response = true

	for _, tc := range []struct {
		name string
		req  *dns.Msg
		want int
	}{
		{"two questions", two, dns.RcodeFormatError},
		{"no question", none, dns.RcodeFormatError},
		{"an update", update, dns.RcodeNotImplemented},
		{"EDNS version 1", badVers, dns.RcodeBadVers},
	} {
		resp := h.answer(t.Context(), client, tc.req)
		if resp == nil || resp.Rcode != tc.want {
			t.Errorf("%s: %v, want rcode %d", tc.name, resp, tc.want)
			continue
		}
		if _, err := resp.Pack(); err != nil {
			t.Errorf("%s: the reply does not pack: %v", tc.name, err)
		}
	}
	if resp := h.answer(t.Context(), client, answer); resp != nil {
		t.Errorf("a response was answered: %v", resp)
	}
	if n := up.Queries(); n != 0 {
		t.Errorf("upstream received %d queries", n)
	}
}

func TestNewRefusesAConfigWithoutItsSafeguards(t *testing.T) {
	base := Config{
		Clients:   []netip.Prefix{netip.MustParsePrefix("10.88.0.0/16")},
		Upstreams: []string{"127.0.0.1:53"},
		Opener:    &fakeOpener{},
		Vet:       testVet,
	}
	if _, err := New(base); err != nil {
		t.Fatalf("the base config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no opener", func(c *Config) { c.Opener = nil }, "no Opener"},
		{"no vet", func(c *Config) { c.Vet = nil }, "no Vet"},
		{"no clients", func(c *Config) { c.Clients = nil }, "no client networks"},
		{"mapped client", func(c *Config) { c.Clients = []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")} }, "not mapped"},
		{"no upstream", func(c *Config) { c.Upstreams = nil }, "no upstream"},
		{"upstream by name", func(c *Config) { c.Upstreams = []string{"dns.google:53"} }, `"dns.google:53" is not ip:port`},
		{"upstream without port", func(c *Config) { c.Upstreams = []string{"8.8.8.8"} }, "is not ip:port"},
		{"floor above cap", func(c *Config) { c.MinTTL, c.MaxTTL = 2*time.Hour, time.Hour }, "MinTTL 2h0m0s is above MaxTTL 1h0m0s"},
	} {
		cfg := base
		tc.change(&cfg)
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}
