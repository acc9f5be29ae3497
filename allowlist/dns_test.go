package allowlist_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/internal/dnstest"
	"github.com/VerilyPete/claudecontainer/resolve"
	"github.com/VerilyPete/claudecontainer/sources"
)

var testZone = dnstest.Zone{
	"api.example.com. A":      {Answer: []string{"api.example.com. 300 IN A 34.36.122.224"}},
	"api.example.com. AAAA":   {Answer: []string{"api.example.com. 60 IN AAAA 2600:1901:0:5e8a::1"}},
	"cdn.example.com. A":      {Answer: []string{"cdn.example.com. 600 IN CNAME edge.example.net.", "edge.example.net. 30 IN A 151.101.1.1"}},
	"rebind.example.com. A":   {Answer: []string{"rebind.example.com. 300 IN A 10.0.0.5", "rebind.example.com. 300 IN A 127.0.0.1"}},
	"mixed.example.com. A":    {Answer: []string{"mixed.example.com. 300 IN A 192.168.1.7", "mixed.example.com. 300 IN A 104.16.0.1"}},
	"mixed.example.com. AAAA": {Answer: []string{"mixed.example.com. 300 IN AAAA ::1"}},
	"gone.example.com. A":     {Rcode: dns.RcodeNameError},
	"gone.example.com. AAAA":  {Rcode: dns.RcodeNameError},
}

func TestCollectResolvesThroughARealDNSServer(t *testing.T) {
	addr := dnstest.Start(t, testZone, 0).Addr
	r := &resolve.Resolver{Servers: []string{addr}, Timeout: 2 * time.Second, Attempts: 2}
	path := oldFile(t)
	srcs := []sources.Source{
		{Name: "anthropic", Required: true, Prefixes: []string{"160.79.104.0/23"}, Hosts: []string{"api.example.com", "cdn.example.com"}},
		{Name: "extra", Hosts: []string{"rebind.example.com", "mixed.example.com", "gone.example.com", "cdn.example.com"}},
	}
	opts := allowlist.Options{Timeout: 10 * time.Second, Resolver: r, Env: sources.Env{LocalFile: localFile}}
	rep, err := allowlist.Update(context.Background(), srcs, opts, path)
	if err != nil {
		t.Fatal(err)
	}

	want := []string{"34.36.122.224/32", "104.16.0.1/32", "151.101.1.1/32", "160.79.104.0/23", "2600:1901:0:5e8a::1/128"}
	if diff := cmp.Diff(want, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
	ws := warnings(rep)
	wantPrefixes := []string{
		"extra: rebind.example.com resolved to 10.0.0.5 (private network, RFC 1918), 127.0.0.1 (loopback): refused",
		"extra: mixed.example.com resolved to 192.168.1.7 (private network, RFC 1918), ::1 (loopback): refused",
		"extra: host gone.example.com: resolve gone.example.com",
	}
	if len(ws) != len(wantPrefixes) {
		t.Fatalf("warnings = %q", ws)
	}
	for i, w := range wantPrefixes {
		if !strings.HasPrefix(ws[i], w) {
			t.Errorf("warning %d = %q, want it to start %q", i, ws[i], w)
		}
	}

	hosts := map[string]allowlist.HostReport{}
	for _, s := range rep.Sources {
		for _, h := range s.Hosts {
			hosts[s.Name+" "+h.Host] = h
		}
	}
	if h := hosts["anthropic api.example.com"]; len(h.Addrs) != 2 {
		t.Errorf("api.example.com: %d addresses, want 2", len(h.Addrs))
	}
	if h := hosts["extra gone.example.com"]; !errors.Is(h.Err, resolve.ErrNotExist) {
		t.Errorf("gone.example.com: err = %v, want ErrNotExist", h.Err)
	}
	// cdn.example.com is named by both sources and counted for both.
	if a, b := hosts["anthropic cdn.example.com"].Addrs, hosts["extra cdn.example.com"].Addrs; len(a) != 1 || len(b) != 1 {
		t.Errorf("cdn.example.com gave %v and %v, want one address each", a, b)
	}
}

func TestARequiredHostTheRealServerDoesNotKnowFailsTheRun(t *testing.T) {
	addr := dnstest.Start(t, testZone, 0).Addr
	r := &resolve.Resolver{Servers: []string{addr}, Timeout: 2 * time.Second, Attempts: 2}
	path := oldFile(t)
	srcs := []sources.Source{{Name: "npm", Required: true, Hosts: []string{"api.example.com", "gone.example.com"}}}
	opts := allowlist.Options{Timeout: 10 * time.Second, Resolver: r}
	_, err := allowlist.Update(context.Background(), srcs, opts, path)
	if err == nil || !strings.HasPrefix(err.Error(), "source npm: host gone.example.com: ") || !errors.Is(err, resolve.ErrNotExist) {
		t.Errorf("err = %v, want source npm: host gone.example.com: … name does not exist", err)
	}
	assertUnchanged(t, path)
}
