package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/resolve"
)

const metaFixture = "../sources/testdata/github-meta-2023-11-27.json"

// allowlistWorld is what an allowlist test runs against: settings pointing
// at temporary directories, a GitHub meta server, a DNS server, and the
// paths involved.
type allowlistWorld struct {
	file, cacheDir, localFile string
	metaURL, dnsAddr          string
	metaHits                  atomic.Int64
	metaStatus                int  // 0 means 200 with the snapshot
	metaHangs                 bool // answer only when the client gives up
}

// anthropicZone answers for the anthropic source's hosts and one host of
// the local file.
var anthropicZone = map[string][]string{
	"api.anthropic.com. A":       {"api.anthropic.com. 300 IN A 160.79.104.10"},
	"api.anthropic.com. AAAA":    {"api.anthropic.com. 300 IN AAAA 2607:6bc0::10"},
	"claude.ai. A":               {"claude.ai. 300 IN A 160.79.104.10"},
	"platform.claude.com. A":     {"platform.claude.com. 300 IN A 34.149.66.137"},
	"downloads.claude.ai. A":     {"downloads.claude.ai. 300 IN CNAME cdn.example.net.", "cdn.example.net. 60 IN A 34.160.81.203"},
	"intranet.example.com. A":    {"intranet.example.com. 300 IN A 10.20.1.5"},
	"intranet.example.com. AAAA": {},
}

func newAllowlistWorld(t *testing.T) *allowlistWorld {
	t.Helper()
	dir := t.TempDir()
	w := &allowlistWorld{
		file:      filepath.Join(dir, "etc", "claudecontainer", "allowed_destinations"),
		cacheDir:  filepath.Join(dir, "cache", "claudecontainer"),
		localFile: filepath.Join(dir, "allowlist.local"),
	}
	for k, v := range map[string]string{
		"ALLOWLIST_FILE": w.file,
		"CACHE_DIR":      w.cacheDir,
		"LOCAL_FILE":     w.localFile,
		"STATE_DIR":      filepath.Join(dir, "state"),
		"SOURCES":        "github,anthropic,local",
		"SKIP_SOURCES":   "",
		"FETCH_TIMEOUT":  "10s",
		"FIREWALL":       "nftables",
		"RUNTIME":        "podman",
		"DNS_FILTER":     "off",
		"WORKSPACE":      dir,
	} {
		t.Setenv(config.Prefix+k, v)
	}
	t.Setenv("GITHUB_TOKEN", "")
	if err := os.WriteFile(w.localFile, []byte("10.20.0.0/16 # the lab\nintranet.example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	meta, err := os.ReadFile(metaFixture)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.metaHits.Add(1)
		if w.metaHangs {
			<-r.Context().Done()
			return
		}
		if w.metaStatus != 0 {
			http.Error(rw, "unavailable", w.metaStatus)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Write(meta)
	}))
	t.Cleanup(srv.Close)
	w.metaURL, w.dnsAddr = srv.URL+"/meta", serveZone(t, anthropicZone)
	return w
}

// env returns the environment of a target run in the world (its settings
// read now), writing to out. The firewall is a stand-in that is not up.
func (w *allowlistWorld) env(t *testing.T, out io.Writer) *env {
	t.Helper()
	e, err := newEnv(out)
	if err != nil {
		t.Fatal(err)
	}
	e.sourceURLs = map[string]string{"github": w.metaURL}
	e.newResolver = func() (allowlist.Resolver, error) {
		return &resolve.Resolver{Servers: []string{w.dnsAddr}, Timeout: 2 * time.Second}, nil
	}
	e.fw = &replacer{err: firewall.ErrNotUp}
	return e
}

// replacer is a firewall of which only Replace may be called: it keeps the
// set and returns err.
type replacer struct {
	firewall.Backend
	err error
	got *netipx.IPSet
}

func (r *replacer) Replace(_ context.Context, set *netipx.IPSet) error {
	r.got = set
	return r.err
}

// serveZone runs a DNS server on a UDP port of 127.0.0.1 answering from z
// ("name. TYPE" → records) until the test ends.
func serveZone(t *testing.T, z map[string][]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		q := req.Question[0]
		m := new(dns.Msg).SetReply(req)
		recs, ok := z[dns.CanonicalName(q.Name)+" "+dns.TypeToString[q.Qtype]]
		if !ok {
			m.SetRcode(req, dns.RcodeNameError)
		}
		for _, l := range recs {
			rr, err := dns.NewRR(l)
			if err != nil {
				panic("bad record in test zone: " + l)
			}
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: h}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// wantAllowlist is the set the world's sources should give, computed from
// the snapshot and the zone without the sources' code.
func wantAllowlist(t *testing.T) *netipx.IPSet {
	t.Helper()
	b, err := os.ReadFile(metaFixture)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ Web, API, Git []string }
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	var bld netipx.IPSetBuilder
	for _, s := range append(append(meta.Web, meta.API...), meta.Git...) {
		bld.AddPrefix(netip.MustParsePrefix(s))
	}
	for _, s := range []string{
		"160.79.104.0/23", "2607:6bc0::/48", // anthropic, fixed
		"34.149.66.137/32", "34.160.81.203/32", // anthropic, DNS (the rest is inside the fixed ranges)
		"10.20.0.0/16", // local, kept because written by hand
	} {
		bld.AddPrefix(netip.MustParsePrefix(s))
	}
	set, err := bld.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestAllowlistFetchesTheSourcesAndWritesTheFile(t *testing.T) {
	w := newAllowlistWorld(t)
	var out bytes.Buffer
	if err := w.env(t, &out).refreshAllowlist(context.Background()); err != nil {
		t.Fatalf("Allowlist: %v\n%s", err, out.String())
	}
	t.Logf("output:\n%s", out.String())

	set, err := allowlist.Load(w.file)
	if err != nil {
		t.Fatal(err)
	}
	if want := wantAllowlist(t); !set.Equal(want) {
		t.Errorf("the file holds\n%v\nwant\n%v", set.Prefixes(), want.Prefixes())
	}
	if fi, err := os.Stat(w.cacheDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory: %v, %v; want it made 0700", fi, err)
	}
	if fi, _ := os.Stat(filepath.Dir(w.file)); fi.Mode().Perm() != 0o755 {
		t.Errorf("allowlist directory mode = %v, want 0755", fi.Mode().Perm())
	}

	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if want := "==> allowlist: fetching anthropic, github, local (time limit 10s)"; lines[0] != want {
		t.Errorf("first line = %q, want %q", lines[0], want)
	}
	summary := lines[len(lines)-2]
	if !strings.HasPrefix(summary, "==> allowlist: ") || !strings.HasSuffix(summary, "; wrote "+w.file) {
		t.Errorf("last line but one = %q, want the summary and the path", summary)
	}
	for _, want := range []string{
		"\n    github     36 prefixes (",
		"\n    anthropic  2 prefixes, 5 addresses from 4 hosts (",
		"\n    local      1 prefix, 0 addresses from 1 host with warnings (",
		"\n      warning: intranet.example.com resolved to 10.20.1.5 (private network, RFC 1918): refused; write the address in " + w.localFile + " if you mean it\n",
		"\n      note: kept 10.20.0.0/16 (private network, RFC 1918) because you wrote it in " + w.localFile + "\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestAllowlistLeavesTheFileUnchangedWhenARequiredSourceFails(t *testing.T) {
	w := newAllowlistWorld(t)
	w.metaStatus = http.StatusServiceUnavailable
	old := []byte("# an earlier run\n192.30.252.0/22\n")
	if err := os.MkdirAll(filepath.Dir(w.file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.file, old, 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := w.env(t, &out).refreshAllowlist(context.Background())
	if err == nil {
		t.Fatalf("Allowlist succeeded:\n%s", out.String())
	}
	for _, want := range []string{
		"the allowlist was not updated; " + w.file + " is unchanged:\n",
		"source github: fetching: " + w.metaURL + ": 503 Service Unavailable",
		"\n(check the network and DNS and run it again; to go without a source, leave it out with CLAUDECONTAINER_SKIP_SOURCES=github)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if b, _ := os.ReadFile(w.file); !bytes.Equal(b, old) {
		t.Errorf("the file changed to:\n%s", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(w.file)); len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want only the file", len(ents))
	}
	if !strings.Contains(out.String(), "\n    github     0 prefixes FAILED (") {
		t.Errorf("output does not show the failed source:\n%s", out.String())
	}
}

func TestAllowlistThatRunsOutOfTimeSaysWhichSettingToRaise(t *testing.T) {
	w := newAllowlistWorld(t)
	w.metaHangs = true
	t.Setenv(config.Prefix+"FETCH_TIMEOUT", "1s")
	var out bytes.Buffer
	err := w.env(t, &out).refreshAllowlist(context.Background())
	if err == nil {
		t.Fatalf("Allowlist succeeded:\n%s", out.String())
	}
	for _, want := range []string{
		"the allowlist was not updated; " + w.file + " is unchanged:\n",
		"source github: fetching: ",
		"context deadline exceeded",
		"\n(raise CLAUDECONTAINER_FETCH_TIMEOUT if the network is slow)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "SKIP_SOURCES") {
		t.Errorf("error suggests leaving a source out when only time ran out:\n%v", err)
	}
	if _, err := os.Stat(w.file); !os.IsNotExist(err) {
		t.Errorf("a file was written: %v", err)
	}
}

func TestAllowlistReplacesTheLiveTableWhenTheFirewallIsUp(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantOut string
		wantErr string
	}{
		{"up", nil, "==> firewall: live allowlist replaced\n", ""},
		{"not up", firewall.ErrNotUp, "    the firewall is not up; it loads the file when it comes up\n", ""},
		{"failing", errors.New("nft: exit status 1"), "", "the allowlist file is written, but the live table was not replaced: nft: exit status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newAllowlistWorld(t)
			var out bytes.Buffer
			e := w.env(t, &out)
			fw := &replacer{err: tt.err}
			e.fw = fw
			err := e.refreshAllowlist(context.Background())
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if !strings.HasSuffix(out.String(), "; wrote "+w.file+"\n"+tt.wantOut) {
				t.Errorf("output ends:\n%s\nwant it to end with %q", out.String(), tt.wantOut)
			}
			fromFile, lerr := allowlist.Load(w.file)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if fw.got == nil || !fw.got.Equal(fromFile) {
				t.Errorf("Replace was given a set other than the file's")
			}
		})
	}
}

func TestAllowlistForUsesAFreshFileAndFallsBackToTheLastGoodOne(t *testing.T) {
	t.Run("a fresh file is used without fetching", func(t *testing.T) {
		w := newAllowlistWorld(t)
		if err := w.env(t, &bytes.Buffer{}).refreshAllowlist(context.Background()); err != nil {
			t.Fatal(err)
		}
		hits := w.metaHits.Load()
		var out bytes.Buffer
		set, err := w.env(t, &out).allowlistFor(context.Background(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if w.metaHits.Load() != hits {
			t.Errorf("fetched although the file is fresh")
		}
		if !set.Equal(wantAllowlist(t)) {
			t.Errorf("set = %v", set.Prefixes())
		}
		if want := "==> allowlist: using " + w.file + " (younger than 1h0m0s)\n"; out.String() != want {
			t.Errorf("output = %q, want %q", out.String(), want)
		}
	})
	t.Run("a zero age forces a fetch", func(t *testing.T) {
		w := newAllowlistWorld(t)
		if err := w.env(t, &bytes.Buffer{}).refreshAllowlist(context.Background()); err != nil {
			t.Fatal(err)
		}
		hits := w.metaHits.Load()
		if _, err := w.env(t, &bytes.Buffer{}).allowlistFor(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if w.metaHits.Load() != hits+1 {
			t.Errorf("did not fetch")
		}
	})
	t.Run("a failed fetch falls back to the last good file", func(t *testing.T) {
		w := newAllowlistWorld(t)
		if err := w.env(t, &bytes.Buffer{}).refreshAllowlist(context.Background()); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(w.file)
		w.metaStatus = http.StatusInternalServerError
		os.RemoveAll(w.cacheDir) // no cached copy for the github source to fall back on
		var out bytes.Buffer
		set, err := w.env(t, &out).allowlistFor(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !set.Equal(wantAllowlist(t)) {
			t.Errorf("set = %v", set.Prefixes())
		}
		if !strings.Contains(out.String(), "    using the last good allowlist in "+w.file+"\n") {
			t.Errorf("output does not say the old file is used:\n%s", out.String())
		}
		if after, _ := os.ReadFile(w.file); !bytes.Equal(before, after) {
			t.Errorf("the file changed")
		}
	})
	t.Run("a failed fetch with no file is an error", func(t *testing.T) {
		w := newAllowlistWorld(t)
		w.metaStatus = http.StatusInternalServerError
		if _, err := w.env(t, &bytes.Buffer{}).allowlistFor(context.Background(), time.Hour); err == nil {
			t.Error("allowlistFor succeeded")
		}
		if _, err := os.Stat(w.file); !os.IsNotExist(err) {
			t.Errorf("a file was written: %v", err)
		}
	})
}
