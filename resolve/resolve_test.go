package resolve_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/internal/dnstest"
	"github.com/VerilyPete/claudecontainer/resolve"
)

// answerer is a generous per-attempt timeout for servers that do answer, so
// a slow machine never turns a good answer into a timeout.
const answerer = 5 * time.Second

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s)) // test literals only
	}
	return out
}

// checkAnswer compares a successful answer, or the error of a failed one.
// wantMsg lists substrings the error text must hold.
func checkAnswer(t *testing.T, got resolve.Answer, want resolve.Answer, wantErr error, wantMsg ...string) {
	t.Helper()
	if wantErr == nil && len(wantMsg) == 0 {
		if got.Err != nil {
			t.Fatalf("Lookup(%q) failed: %v", got.Host, got.Err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Errorf("Lookup(%q) (-want +got):\n%s", got.Host, diff)
		}
		return
	}
	if got.Err == nil {
		t.Fatalf("Lookup(%q) = %v, want an error", got.Host, got.Addrs)
	}
	if wantErr != nil && !errors.Is(got.Err, wantErr) {
		t.Errorf("Lookup(%q) error %q is not %q", got.Host, got.Err, wantErr)
	}
	for _, m := range wantMsg {
		if !strings.Contains(got.Err.Error(), m) {
			t.Errorf("Lookup(%q) error %q does not say %q", got.Host, got.Err, m)
		}
	}
	if got.Addrs != nil {
		t.Errorf("Lookup(%q) failed but returned addresses %v", got.Host, got.Addrs)
	}
}

func TestLookupFollowsAnswersFromOneServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		zone     dnstest.Zone
		host     string
		maxCNAME int
		want     []netip.Addr
		wantErr  error
		wantMsg  []string
	}{
		{
			name: "an A record is returned",
			zone: dnstest.Zone{"a.example. A": {Answer: []string{"a.example. 300 IN A 192.0.2.1"}}},
			host: "a.example",
			want: addrs("192.0.2.1"),
		},
		{
			name: "a host with only AAAA records resolves",
			zone: dnstest.Zone{"a.example. AAAA": {Answer: []string{"a.example. 300 IN AAAA 2001:db8::1"}}},
			host: "a.example",
			want: addrs("2001:db8::1"),
		},
		{
			name: "both families come back sorted",
			zone: dnstest.Zone{
				"a.example. A":    {Answer: []string{"a.example. 300 IN A 192.0.2.9", "a.example. 300 IN A 192.0.2.1"}},
				"a.example. AAAA": {Answer: []string{"a.example. 60 IN AAAA 2001:db8::1"}},
			},
			host: "a.example",
			want: addrs("192.0.2.1", "192.0.2.9", "2001:db8::1"),
		},
		{
			name: "a CNAME chain inside one answer is followed",
			zone: dnstest.Zone{
				"a.example. A": {Answer: []string{
					"a.example. 120 IN CNAME b.example.",
					"b.example. 600 IN CNAME c.example.",
					"c.example. 300 IN A 192.0.2.3",
				}},
				"a.example. AAAA": {Answer: []string{
					"a.example. 120 IN CNAME b.example.",
					"b.example. 600 IN CNAME c.example.",
				}},
			},
			host: "a.example",
			want: addrs("192.0.2.3"),
		},
		{
			name: "a CNAME chain listed out of order is followed",
			zone: dnstest.Zone{"a.example. A": {Answer: []string{
				"c.example. 300 IN A 192.0.2.3",
				"b.example. 600 IN CNAME c.example.",
				"a.example. 600 IN CNAME b.example.",
			}}},
			host: "a.example",
			want: addrs("192.0.2.3"),
		},
		{
			name: "a CNAME chain that an answer leaves unfinished is asked again",
			zone: dnstest.Zone{
				"a.example. A":    {Answer: []string{"a.example. 600 IN CNAME b.example."}},
				"a.example. AAAA": {Answer: []string{"a.example. 600 IN CNAME b.example."}},
				"b.example. A":    {Answer: []string{"b.example. 600 IN CNAME c.example."}},
				"b.example. AAAA": {Answer: []string{"b.example. 600 IN CNAME c.example."}},
				"c.example. A":    {Answer: []string{"c.example. 30 IN A 192.0.2.3"}},
				"c.example. AAAA": {Answer: []string{"c.example. 40 IN AAAA 2001:db8::3"}},
			},
			host: "a.example",
			want: addrs("192.0.2.3", "2001:db8::3"),
		},
		{
			name: "a chain exactly MaxCNAME long is followed",
			zone: dnstest.Zone{"a.example. A": {Answer: []string{
				"a.example. 60 IN CNAME b.example.",
				"b.example. 60 IN CNAME c.example.",
				"c.example. 60 IN A 192.0.2.3",
			}}},
			host:     "a.example",
			maxCNAME: 2,
			want:     addrs("192.0.2.3"),
		},
		{
			name: "a chain longer than MaxCNAME is an error",
			zone: dnstest.Zone{"a.example. A": {Answer: []string{
				"a.example. 60 IN CNAME b.example.",
				"b.example. 60 IN CNAME c.example.",
				"c.example. 60 IN CNAME d.example.",
				"d.example. 60 IN A 192.0.2.4",
			}}},
			host:     "a.example",
			maxCNAME: 2,
			wantErr:  resolve.ErrCNAMEChain,
			wantMsg:  []string{"more than 2 CNAMEs", "a.example -> b.example -> c.example -> d.example"},
		},
		{
			name: "a chain longer than the default of 8 is an error",
			zone: dnstest.Zone{"n0.example. A": {Answer: chainOf(10)}},
			host: "n0.example",
			// the default MaxCNAME
			wantErr: resolve.ErrCNAMEChain,
			wantMsg: []string{"more than 8 CNAMEs"},
		},
		{
			name: "a CNAME loop inside one answer is an error naming the loop",
			zone: dnstest.Zone{"a.example. A": {Answer: []string{
				"a.example. 60 IN CNAME b.example.",
				"b.example. 60 IN CNAME a.example.",
			}}},
			host:    "a.example",
			wantErr: resolve.ErrCNAMELoop,
			wantMsg: []string{"a.example -> b.example -> a.example"},
		},
		{
			name: "a CNAME loop across queries is an error naming the loop",
			zone: dnstest.Zone{
				"a.example. A": {Answer: []string{"a.example. 60 IN CNAME b.example."}},
				"b.example. A": {Answer: []string{"b.example. 60 IN CNAME c.example."}},
				"c.example. A": {Answer: []string{"c.example. 60 IN CNAME b.example."}},
			},
			host:    "a.example",
			wantErr: resolve.ErrCNAMELoop,
			wantMsg: []string{"a.example -> b.example -> c.example -> b.example"},
		},
		{
			name: "an owner with two different CNAMEs is an error",
			zone: dnstest.Zone{"a.example. A": {Answer: []string{
				"a.example. 60 IN CNAME b.example.",
				"a.example. 60 IN CNAME c.example.",
				"c.example. 60 IN A 192.0.2.3",
			}}},
			host:    "a.example",
			wantMsg: []string{"a.example has two CNAMEs (b.example and c.example) (answer from 127.0.0.1:"},
		},
		{
			name: "an owner with addresses before two different CNAMEs is an error too",
			zone: dnstest.Zone{"a.example. A": {Answer: []string{
				"a.example. 60 IN A 192.0.2.1",
				"a.example. 60 IN CNAME b.example.",
				"a.example. 60 IN CNAME c.example.",
			}}},
			host:    "a.example",
			wantMsg: []string{"a.example has two CNAMEs (b.example and c.example) (answer from 127.0.0.1:"},
		},
		{
			name: "NXDOMAIN says the name does not exist",
			zone: dnstest.Zone{
				"gone.example. A":    {Rcode: dns.RcodeNameError},
				"gone.example. AAAA": {Rcode: dns.RcodeNameError},
			},
			host:    "gone.example",
			wantErr: resolve.ErrNotExist,
			wantMsg: []string{"resolve gone.example: name does not exist (NXDOMAIN from 127.0.0.1:"},
		},
		{
			name: "NXDOMAIN at the end of a CNAME chain names the missing target",
			zone: dnstest.Zone{
				"a.example. A":    {Rcode: dns.RcodeNameError, Answer: []string{"a.example. 60 IN CNAME gone.example."}},
				"a.example. AAAA": {Rcode: dns.RcodeNameError, Answer: []string{"a.example. 60 IN CNAME gone.example."}},
			},
			host:    "a.example",
			wantErr: resolve.ErrNotExist,
			wantMsg: []string{"CNAME target gone.example", "a.example -> gone.example"},
		},
		{
			name:    "a name with neither A nor AAAA records is an error",
			zone:    dnstest.Zone{"a.example. TXT": {Answer: []string{`a.example. 60 IN TXT "hello"`}}},
			host:    "a.example",
			wantErr: resolve.ErrNoRecords,
			wantMsg: []string{"resolve a.example: no A or AAAA records"},
		},
		{
			name: "private, loopback and link-local addresses are returned as the server gave them",
			zone: dnstest.Zone{
				"a.example. A": {Answer: []string{
					"a.example. 60 IN A 10.0.0.1",
					"a.example. 60 IN A 127.0.0.1",
					"a.example. 60 IN A 169.254.169.254",
					"a.example. 60 IN A 192.168.1.1",
				}},
				"a.example. AAAA": {Answer: []string{
					"a.example. 60 IN AAAA ::1",
					"a.example. 60 IN AAAA fd00::1",
					"a.example. 60 IN AAAA fe80::1",
				}},
			},
			host: "a.example",
			want: addrs("10.0.0.1", "127.0.0.1", "169.254.169.254", "192.168.1.1", "::1", "fd00::1", "fe80::1"),
		},
		{
			name: "IPv4-mapped AAAA records come back as IPv4 addresses",
			zone: dnstest.Zone{
				"a.example. A": {Answer: []string{"a.example. 60 IN A 192.0.2.7"}},
				"a.example. AAAA": {Answer: []string{
					"a.example. 60 IN AAAA ::ffff:192.0.2.7",
					"a.example. 60 IN AAAA ::ffff:198.51.100.1",
				}},
			},
			host: "a.example",
			want: addrs("192.0.2.7", "198.51.100.1"),
		},
		{
			name: "records whose owner is not on the chain are ignored",
			zone: dnstest.Zone{
				"a.example. A": {
					Answer: []string{
						"evil.example. 60 IN A 203.0.113.66",
						"x.example. 60 IN CNAME evil.example.",
						"a.example. 60 IN AAAA 2001:db8::66",
						"a.example. 60 CH A 203.0.113.67",
						"a.example. 60 IN CNAME b.example.",
						"b.example. 60 IN A 192.0.2.2",
						"c.example. 1 IN A 203.0.113.68",
					},
					Extra: []string{"a.example. 1 IN A 203.0.113.69", "b.example. 1 IN A 203.0.113.70"},
				},
				"b.example. AAAA": {Answer: []string{"evil.example. 60 IN AAAA 2001:db8::67"}},
			},
			host: "a.example",
			want: addrs("192.0.2.2"),
		},
		{
			name: "duplicate records are returned once",
			zone: dnstest.Zone{
				"a.example. A": {Answer: []string{
					"a.example. 60 IN A 192.0.2.2",
					"a.example. 60 IN A 192.0.2.1",
					"a.example. 60 IN A 192.0.2.2",
				}},
				"a.example. AAAA": {Answer: []string{
					"a.example. 60 IN AAAA 2001:db8::1",
					"a.example. 60 IN AAAA 2001:db8:0::1",
				}},
			},
			host: "a.example",
			want: addrs("192.0.2.1", "192.0.2.2", "2001:db8::1"),
		},
		{
			name: "names match whatever their letter case",
			zone: dnstest.Zone{"a.example. A": {Answer: []string{
				"A.EXAMPLE. 60 IN CNAME B.Example.",
				"b.EXAMPLE. 60 IN A 192.0.2.2",
			}}},
			host: "A.Example.",
			want: addrs("192.0.2.2"),
		},
		{
			name: "one family failing does not spoil the other",
			zone: dnstest.Zone{
				"a.example. A":    {Rcode: dns.RcodeServerFailure},
				"a.example. AAAA": {Answer: []string{"a.example. 60 IN AAAA 2001:db8::1"}},
			},
			host: "a.example",
			want: addrs("2001:db8::1"),
		},
		{
			name:    "SERVFAIL is an error naming the rcode and the server",
			zone:    dnstest.Zone{"a.example. A": {Rcode: dns.RcodeServerFailure}, "a.example. AAAA": {Rcode: dns.RcodeServerFailure}},
			host:    "a.example",
			wantMsg: []string{"resolve a.example: server 127.0.0.1:", "answered SERVFAIL"},
		},
		{
			name:    "REFUSED is an error naming the rcode and the server",
			zone:    dnstest.Zone{"a.example. A": {Rcode: dns.RcodeRefused}, "a.example. AAAA": {Rcode: dns.RcodeRefused}},
			host:    "a.example",
			wantMsg: []string{"resolve a.example: server 127.0.0.1:", "answered REFUSED"},
		},
		{
			name: "an answer to another question is not accepted",
			zone: dnstest.Zone{
				"a.example. A":    {Question: "evil.example.", Answer: []string{"evil.example. 60 IN A 203.0.113.66"}},
				"a.example. AAAA": {Question: "evil.example."},
			},
			host:    "a.example",
			wantMsg: []string{"no usable answer in 2 attempts", "answer is for evil.example. A, asked a.example. A"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := dnstest.Start(t, tt.zone, 0)
			r := &resolve.Resolver{Servers: []string{s.Addr}, Timeout: answerer, MaxCNAME: tt.maxCNAME}
			got := r.Lookup(t.Context(), tt.host)
			want := resolve.Answer{Host: tt.host, Addrs: tt.want}
			checkAnswer(t, got, want, tt.wantErr, tt.wantMsg...)
		})
	}
}

// chainOf returns n0.example -> n1.example -> ... -> nN.example and an A
// record at the end.
func chainOf(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("n%d.example. 60 IN CNAME n%d.example.", i, i+1))
	}
	return append(out, fmt.Sprintf("n%d.example. 60 IN A 192.0.2.1", n))
}

func TestLookupAsksTheNextServerWhenOneFails(t *testing.T) {
	t.Parallel()
	for _, rcode := range []int{dns.RcodeServerFailure, dns.RcodeRefused} {
		t.Run(dns.RcodeToString[rcode], func(t *testing.T) {
			t.Parallel()
			failing := dnstest.Serve(t, dnstest.Rcode(rcode))
			good := dnstest.Start(t, dnstest.Zone{"a.example. A": {Answer: []string{"a.example. 60 IN A 192.0.2.1"}}}, 0)
			r := &resolve.Resolver{Servers: []string{failing, good.Addr}, Timeout: answerer}
			got := r.Lookup(t.Context(), "a.example")
			checkAnswer(t, got, resolve.Answer{Host: "a.example", Addrs: addrs("192.0.2.1")}, nil)
		})
	}
}

func TestLookupNamesEveryFailedServer(t *testing.T) {
	t.Parallel()
	servfail := dnstest.Serve(t, dnstest.Rcode(dns.RcodeServerFailure))
	refused := dnstest.Serve(t, dnstest.Rcode(dns.RcodeRefused))
	r := &resolve.Resolver{Servers: []string{servfail, refused}, Timeout: answerer}
	got := r.Lookup(t.Context(), "a.example")
	checkAnswer(t, got, resolve.Answer{}, nil,
		"server "+servfail+" answered SERVFAIL; server "+refused+" answered REFUSED")
	var rc *resolve.RcodeError
	if !errors.As(got.Err, &rc) || rc.Server != servfail || rc.Rcode != dns.RcodeServerFailure {
		t.Errorf("error %v does not hold the SERVFAIL of %s as a *RcodeError", got.Err, servfail)
	}
}

func TestLookupRetriesTruncatedAnswersOverTCP(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, dnstest.Zone{
		"a.example. A":    {TruncUDP: true, Answer: []string{"a.example. 60 IN A 192.0.2.1", "a.example. 60 IN A 192.0.2.2"}},
		"a.example. AAAA": {TruncUDP: true, Answer: []string{"a.example. 60 IN AAAA 2001:db8::1"}},
	}, 0)
	r := &resolve.Resolver{Servers: []string{s.Addr}, Timeout: answerer}
	got := r.Lookup(t.Context(), "a.example")
	want := resolve.Answer{Host: "a.example", Addrs: addrs("192.0.2.1", "192.0.2.2", "2001:db8::1")}
	checkAnswer(t, got, want, nil)
	if udp, tcp := s.UDP.Load(), s.TCP.Load(); udp != 2 || tcp != 2 {
		t.Errorf("server saw %d UDP and %d TCP questions, want 2 and 2", udp, tcp)
	}
}

func TestLookupGivesUpOnAServerThatNeverAnswers(t *testing.T) {
	t.Parallel()
	silent, _ := dnstest.Blackhole(t)
	r := &resolve.Resolver{Servers: []string{silent}, Timeout: 50 * time.Millisecond, Attempts: 2}
	got := r.Lookup(t.Context(), "a.example")
	checkAnswer(t, got, resolve.Answer{}, nil, "server "+silent+": no usable answer in 2 attempts of 50ms", "timeout")
}

func TestLookupMovesOnFromAServerThatNeverAnswers(t *testing.T) {
	t.Parallel()
	silent, _ := dnstest.Blackhole(t)
	good := dnstest.Start(t, dnstest.Zone{"a.example. AAAA": {Answer: []string{"a.example. 60 IN AAAA 2001:db8::1"}}}, 0)
	r := &resolve.Resolver{Servers: []string{silent, good.Addr}, Timeout: 50 * time.Millisecond, Attempts: 1}
	got := r.Lookup(t.Context(), "a.example")
	checkAnswer(t, got, resolve.Answer{Host: "a.example", Addrs: addrs("2001:db8::1")}, nil)
}

func TestLookupStopsWhenTheContextIsCancelled(t *testing.T) {
	t.Parallel()
	silent, asked := dnstest.Blackhole(t)
	// Timeouts far beyond any test run: only the cancellation can end this.
	r := &resolve.Resolver{Servers: []string{silent}, Timeout: time.Hour, Attempts: 5}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan resolve.Answer)
	go func() { done <- r.Lookup(ctx, "a.example") }()
	<-asked
	cancel()
	var got resolve.Answer
	select {
	case got = <-done:
	case <-time.After(time.Minute): // a guard against hanging, not a speed check
		t.Fatal("Lookup still runs a minute after its context was cancelled")
	}
	checkAnswer(t, got, resolve.Answer{}, context.Canceled, "resolve a.example: context canceled")
}

func TestLookupDoesNotAskWithAContextAlreadyDone(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, dnstest.Zone{"a.example. A": {Answer: []string{"a.example. 60 IN A 192.0.2.1"}}}, 0)
	r := &resolve.Resolver{Servers: []string{s.Addr}, Timeout: answerer}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	got := r.Lookup(ctx, "a.example")
	checkAnswer(t, got, resolve.Answer{}, context.Canceled)
	if n := s.UDP.Load() + s.TCP.Load(); n != 0 {
		t.Errorf("server was asked %d questions", n)
	}
}

func TestLookupRefusesWhatIsNotAHostName(t *testing.T) {
	t.Parallel()
	s := dnstest.Start(t, dnstest.Zone{}, 0)
	r := &resolve.Resolver{Servers: []string{s.Addr}, Timeout: answerer}
	for host, msg := range map[string]string{
		"":                        "empty host name",
		"192.0.2.1":               "is an IP address",
		"2001:db8::1":             "is an IP address",
		"a..example":              "not a valid host name",
		strings.Repeat("a", 64):   "not a valid host name",
		strings.Repeat("a.", 130): "not a valid host name",
	} {
		got := r.Lookup(t.Context(), host)
		checkAnswer(t, got, resolve.Answer{}, nil, msg)
	}
	if n := s.UDP.Load() + s.TCP.Load(); n != 0 {
		t.Errorf("server was asked %d questions", n)
	}
}

func TestLookupWithoutServersIsAnError(t *testing.T) {
	t.Parallel()
	got := (&resolve.Resolver{}).Lookup(t.Context(), "a.example")
	checkAnswer(t, got, resolve.Answer{}, nil, "no DNS servers configured")
}

func TestLookupAllAnswersInTheOrderOfTheHosts(t *testing.T) {
	t.Parallel()
	z := dnstest.Zone{}
	var hosts []string
	var want []resolve.Answer
	for i := range 40 {
		h := fmt.Sprintf("h%d.example", i)
		hosts = append(hosts, h)
		if i%7 == 3 {
			z[h+". A"] = dnstest.Reply{Rcode: dns.RcodeNameError}
			z[h+". AAAA"] = dnstest.Reply{Rcode: dns.RcodeNameError}
			want = append(want, resolve.Answer{Host: h})
			continue
		}
		a := fmt.Sprintf("192.0.2.%d", i+1)
		z[h+". A"] = dnstest.Reply{Answer: []string{fmt.Sprintf("%s. %d IN A %s", h, 100+i, a)}}
		want = append(want, resolve.Answer{Host: h, Addrs: addrs(a)})
	}
	s := dnstest.Start(t, z, 0)
	r := &resolve.Resolver{Servers: []string{s.Addr}, Timeout: answerer, Workers: 8}
	got := r.LookupAll(t.Context(), hosts)
	if len(got) != len(want) {
		t.Fatalf("LookupAll returned %d answers for %d hosts", len(got), len(hosts))
	}
	for i := range got {
		if want[i].Addrs == nil {
			checkAnswer(t, got[i], want[i], resolve.ErrNotExist)
			continue
		}
		checkAnswer(t, got[i], want[i], nil)
	}
}

func TestLookupAllOfNoHostsIsEmpty(t *testing.T) {
	t.Parallel()
	got := (&resolve.Resolver{}).LookupAll(t.Context(), nil)
	if len(got) != 0 {
		t.Errorf("LookupAll(nil) = %v", got)
	}
}

// BenchmarkLookupAll50NamesWithDelay resolves 50 names from a server that
// answers every question after 20ms; concurrent lookups take about one delay.
func BenchmarkLookupAll50NamesWithDelay(b *testing.B) {
	z := dnstest.Zone{}
	var hosts []string
	for i := range 50 {
		h := fmt.Sprintf("h%d.example", i)
		hosts = append(hosts, h)
		z[h+". A"] = dnstest.Reply{Answer: []string{fmt.Sprintf("%s. 60 IN A 192.0.2.%d", h, i+1)}}
		z[h+". AAAA"] = dnstest.Reply{Answer: []string{fmt.Sprintf("%s. 60 IN AAAA 2001:db8::%d", h, i+1)}}
	}
	s := dnstest.Start(b, z, 20*time.Millisecond)
	r := &resolve.Resolver{Servers: []string{s.Addr}, Timeout: answerer}
	for b.Loop() {
		for _, a := range r.LookupAll(b.Context(), hosts) {
			if a.Err != nil || len(a.Addrs) != 2 {
				b.Fatalf("%s: %v %v", a.Host, a.Addrs, a.Err)
			}
		}
	}
}
