package sources_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/sources"
)

// githubFixtureWant is web ∪ api ∪ git of testdata/github-meta-2023-11-27.json,
// IPv4 and IPv6, sorted.
var githubFixtureWant = []string{
	"20.27.177.113/32", "20.27.177.116/32", "20.27.177.118/32",
	"20.29.134.17/32", "20.29.134.19/32", "20.29.134.23/32",
	"20.87.245.0/32", "20.87.245.4/32", "20.87.245.6/32",
	"20.175.192.146/32", "20.175.192.147/32", "20.175.192.149/32",
	"20.200.245.245/32", "20.200.245.247/32", "20.200.245.248/32",
	"20.201.28.148/32", "20.201.28.151/32", "20.201.28.152/32",
	"20.205.243.160/32", "20.205.243.166/32", "20.205.243.168/32",
	"20.207.73.82/32", "20.207.73.83/32", "20.207.73.85/32",
	"20.233.83.145/32", "20.233.83.146/32", "20.233.83.149/32",
	"20.248.137.48/32", "20.248.137.49/32", "20.248.137.50/32",
	"140.82.112.0/20", "143.55.64.0/20", "185.199.108.0/22", "192.30.252.0/22",
	"2606:50c0::/32", "2a0a:a440::/29",
}

const fixtureETag = `W/"7dc470913f1fe9bb6c7355b50a0737bc"`

func githubFixture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/github-meta-2023-11-27.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// metaServer serves the fixture with an ETag, answers 304 to that ETag, and
// records the requests it saw.
type metaServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []http.Header
}

func newMetaServer(t *testing.T, doc []byte) *metaServer {
	t.Helper()
	s := &metaServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Header.Clone())
		s.mu.Unlock()
		if r.Header.Get("If-None-Match") == fixtureETag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", fixtureETag)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *metaServer) requests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

func fetch(t *testing.T, name string, env *testEnv) (sources.Result, error) {
	t.Helper()
	return lookup(t, name).Fetch(context.Background(), env.Env)
}

func TestGitHubTakesWebAPIAndGitBothFamiliesFromTheMetaDocument(t *testing.T) {
	srv := newMetaServer(t, githubFixture(t))
	env := newEnv(t)
	env.URL["github"] = srv.URL
	got, err := fetch(t, "github", env)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sources.Result{Prefixes: prefixes(t, githubFixtureWant...)}, got, equateNet); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if len(env.warnings) != 0 {
		t.Errorf("warnings: %q", env.warnings)
	}
	h := srv.requests()[0]
	if got := h.Get("Accept"); got != "application/vnd.github+json" {
		t.Errorf("Accept = %q", got)
	}
	if h.Get("User-Agent") == "" || strings.HasPrefix(h.Get("User-Agent"), "Go-http-client") {
		t.Errorf("User-Agent = %q, want the tool's own", h.Get("User-Agent"))
	}
	if h.Get("If-None-Match") != "" {
		t.Errorf("If-None-Match sent with an empty cache: %q", h.Get("If-None-Match"))
	}
}

func TestGitHubCachesTheDocumentAndETagPrivatelyAndSendsTheETagNextTime(t *testing.T) {
	doc := githubFixture(t)
	srv := newMetaServer(t, doc)
	env := newEnv(t)
	env.URL["github"] = srv.URL
	first, err := fetch(t, "github", env)
	if err != nil {
		t.Fatal(err)
	}

	cached, err := os.ReadFile(filepath.Join(env.CacheDir, "github-meta.json"))
	if err != nil || !bytes.Equal(cached, doc) {
		t.Errorf("cached document differs from the one served (err %v)", err)
	}
	etag, err := os.ReadFile(filepath.Join(env.CacheDir, "github-meta.etag"))
	if err != nil || string(etag) != fixtureETag {
		t.Errorf("cached ETag = %q (err %v), want %q", etag, err, fixtureETag)
	}
	for _, p := range []string{"", "github-meta.json", "github-meta.etag"} {
		fi, err := os.Stat(filepath.Join(env.CacheDir, p))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s/%s has mode %v, want it private to the owner", env.CacheDir, p, perm)
		}
	}
	ents, _ := os.ReadDir(env.CacheDir)
	if len(ents) != 2 {
		t.Errorf("cache directory holds %d entries, want 2 (no temporary files left)", len(ents))
	}

	second, err := fetch(t, "github", env)
	if err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if got := reqs[len(reqs)-1].Get("If-None-Match"); got != fixtureETag {
		t.Errorf("second request If-None-Match = %q, want %q", got, fixtureETag)
	}
	if diff := cmp.Diff(first, second, equateNet); diff != "" {
		t.Errorf("the 304 answer did not give the cached prefixes (-first +second):\n%s", diff)
	}
	if len(env.warnings) != 0 {
		t.Errorf("warnings: %q", env.warnings)
	}
}

func TestGitHubSendsTheTokenOnlyWhenGitHubTokenIsSet(t *testing.T) {
	for _, token := range []string{"", "ghp_test123"} {
		srv := newMetaServer(t, githubFixture(t))
		env := newEnv(t)
		env.URL["github"] = srv.URL
		env.vars["GITHUB_TOKEN"] = token
		if _, err := fetch(t, "github", env); err != nil {
			t.Fatal(err)
		}
		want := ""
		if token != "" {
			want = "Bearer " + token
		}
		if got := srv.requests()[0].Get("Authorization"); got != want {
			t.Errorf("GITHUB_TOKEN=%q: Authorization = %q, want %q", token, got, want)
		}
	}
}

func TestGitHubWithNoGetenvSendsNoToken(t *testing.T) {
	srv := newMetaServer(t, githubFixture(t))
	env := newEnv(t)
	env.URL["github"] = srv.URL
	env.Getenv = nil
	if _, err := fetch(t, "github", env); err != nil {
		t.Fatal(err)
	}
	if got := srv.requests()[0].Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q", got)
	}
}

// githubFailures are the ways the meta fetch can go wrong; each must fall
// back to the cached copy with a warning naming the cause, and fail when
// there is no cached copy.
func githubFailures(t *testing.T) []struct {
	name    string
	handler http.HandlerFunc
	timeout time.Duration
	cause   string
} {
	serve := func(status int, body string, headers ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(headers); i += 2 {
				w.Header().Set(headers[i], headers[i+1])
			}
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	huge := append([]byte(`{"web":["192.30.252.0/22"],"api":[],"git":[],"pad":"`), bytes.Repeat([]byte("x"), 4<<20)...)
	huge = append(huge, `"}`...)
	return []struct {
		name    string
		handler http.HandlerFunc
		timeout time.Duration
		cause   string
	}{
		{name: "malformed JSON", handler: serve(200, `{"web": [`), cause: "malformed meta document"},
		{name: "a JSON array instead of an object", handler: serve(200, `["192.30.252.0/22"]`), cause: "malformed meta document"},
		{name: "JSON null", handler: serve(200, `null`), cause: `no "web" list`},
		{name: "no git key", handler: serve(200, `{"web":["192.30.252.0/22"],"api":["192.30.252.0/22"]}`), cause: `no "git" list`},
		{name: "git null", handler: serve(200, `{"web":["192.30.252.0/22"],"api":[],"git":null}`), cause: `no "git" list`},
		{name: "all three lists empty", handler: serve(200, `{"web":[],"api":[],"git":[]}`), cause: "all empty"},
		{name: "a bad CIDR entry", handler: serve(200, `{"web":["192.30.252.0/22"],"api":["140.82.112.0/33"],"git":[]}`), cause: `api[0]: invalid CIDR "140.82.112.0/33"`},
		{name: "a non-string entry", handler: serve(200, `{"web":[42],"api":[],"git":[]}`), cause: "malformed meta document"},
		{name: "an allow-everything entry", handler: serve(200, `{"web":["192.30.252.0/22"],"api":[],"git":["::/0"]}`), cause: "would allow every address"},
		{name: "trailing garbage", handler: serve(200, `{"web":["192.30.252.0/22"],"api":[],"git":[]} x`), cause: "malformed meta document"},
		{name: "a body over 4 MiB", handler: serve(200, string(huge)), cause: "larger than 4194304 bytes"},
		{name: "a server slower than the client timeout", timeout: 50 * time.Millisecond,
			handler: func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			cause:   "Client.Timeout exceeded"},
		{name: "403 with rate-limit headers", handler: serve(403, `{"message":"API rate limit exceeded"}`,
			"X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1798761600"),
			cause: "403 Forbidden (rate limit used up; the limit resets at 2027-01-01T00:00:00Z; set GITHUB_TOKEN"},
		{name: "429 with Retry-After", handler: serve(429, ``, "Retry-After", "120"),
			cause: "429 Too Many Requests (retry after 120s; set GITHUB_TOKEN"},
		{name: "500", handler: serve(500, `oops`), cause: "500 Internal Server Error"},
		{name: "404", handler: serve(404, `{}`), cause: "404 Not Found"},
	}
}

func TestGitHubFailuresFallBackToTheCachedCopyWithAWarningNamingTheCause(t *testing.T) {
	for _, tt := range githubFailures(t) {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			good := newMetaServer(t, githubFixture(t))
			env.URL["github"] = good.URL
			want, err := fetch(t, "github", env)
			if err != nil {
				t.Fatal(err)
			}
			docBefore, _ := os.ReadFile(filepath.Join(env.CacheDir, "github-meta.json"))
			// The failing server ignores the ETag, as a broken proxy might.
			bad := httptest.NewServer(tt.handler)
			defer bad.Close()
			env.URL["github"] = bad.URL
			if tt.timeout != 0 {
				env.HTTP = &http.Client{Timeout: tt.timeout}
			}

			got, err := fetch(t, "github", env)
			if err != nil {
				t.Fatalf("fetch failed despite a cached copy: %v", err)
			}
			if diff := cmp.Diff(want, got, equateNet); diff != "" {
				t.Errorf("result is not the cached copy (-want +got):\n%s", diff)
			}
			if len(env.warnings) != 1 || !strings.Contains(env.warnings[0], tt.cause) || !strings.Contains(env.warnings[0], "cached") {
				t.Errorf("warnings = %q, want one naming %q and the cached copy", env.warnings, tt.cause)
			}
			docAfter, _ := os.ReadFile(filepath.Join(env.CacheDir, "github-meta.json"))
			if !bytes.Equal(docBefore, docAfter) {
				t.Error("the failure changed the cached document")
			}
		})
	}
}

func TestGitHubFailuresWithNoCachedCopyAreErrorsNamingTheCause(t *testing.T) {
	for _, tt := range githubFailures(t) {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			bad := httptest.NewServer(tt.handler)
			defer bad.Close()
			env.URL["github"] = bad.URL
			if tt.timeout != 0 {
				env.HTTP = &http.Client{Timeout: tt.timeout}
			}
			got, err := fetch(t, "github", env)
			if err == nil {
				t.Fatalf("fetch succeeded with %v", got)
			}
			if !strings.Contains(err.Error(), tt.cause) || !strings.Contains(err.Error(), "no cached copy") {
				t.Errorf("error = %q, want one naming %q and the missing cache", err, tt.cause)
			}
			if _, err := os.Stat(filepath.Join(env.CacheDir, "github-meta.json")); err == nil {
				t.Error("a failed fetch wrote a cached document")
			}
		})
	}
}

func TestGitHubRateLimitNoteLeavesOutTheTokenHintWhenATokenIsSet(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", "1798761600")
		w.WriteHeader(http.StatusForbidden)
	}))
	defer bad.Close()
	env := newEnv(t)
	env.URL["github"] = bad.URL
	env.vars["GITHUB_TOKEN"] = "ghp_test123"
	_, err := fetch(t, "github", env)
	if err == nil || !strings.Contains(err.Error(), "resets at 2027-01-01T00:00:00Z") || strings.Contains(err.Error(), "set GITHUB_TOKEN") {
		t.Errorf("error = %v", err)
	}
}

func TestGitHubFallsBackWhenTheServerIsUnreachable(t *testing.T) {
	env := newEnv(t)
	good := newMetaServer(t, githubFixture(t))
	env.URL["github"] = good.URL
	if _, err := fetch(t, "github", env); err != nil {
		t.Fatal(err)
	}
	good.Close()
	got, err := fetch(t, "github", env)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(prefixes(t, githubFixtureWant...), got.Prefixes, equateNet); diff != "" {
		t.Errorf("prefixes (-want +got):\n%s", diff)
	}
	if len(env.warnings) != 1 || !strings.Contains(env.warnings[0], "connection refused") {
		t.Errorf("warnings = %q", env.warnings)
	}

	env.CacheDir = filepath.Join(t.TempDir(), "empty")
	if _, err := fetch(t, "github", env); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("with no cache: error = %v", err)
	}
}

func TestGitHubFallsBackWhenTheContextIsCancelled(t *testing.T) {
	env := newEnv(t)
	good := newMetaServer(t, githubFixture(t))
	env.URL["github"] = good.URL
	if _, err := fetch(t, "github", env); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got, err := lookup(t, "github").Fetch(ctx, env.Env)
	if err != nil || len(got.Prefixes) != len(githubFixtureWant) {
		t.Errorf("got %d prefixes, err %v", len(got.Prefixes), err)
	}
	if len(env.warnings) != 1 || !strings.Contains(env.warnings[0], "context canceled") {
		t.Errorf("warnings = %q", env.warnings)
	}
}

func TestGitHubIgnoresACorruptCachedCopyAndFetchesInFull(t *testing.T) {
	env := newEnv(t)
	if err := os.MkdirAll(env.CacheDir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(env.CacheDir, "github-meta.json"), []byte(`{"web":`), 0o600)
	os.WriteFile(filepath.Join(env.CacheDir, "github-meta.etag"), []byte(fixtureETag), 0o600)
	srv := newMetaServer(t, githubFixture(t))
	env.URL["github"] = srv.URL

	got, err := fetch(t, "github", env)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Prefixes) != len(githubFixtureWant) {
		t.Errorf("got %d prefixes, want %d", len(got.Prefixes), len(githubFixtureWant))
	}
	if h := srv.requests()[0].Get("If-None-Match"); h != "" {
		t.Errorf("sent the corrupt copy's ETag %q", h)
	}
	if len(env.warnings) != 1 || !strings.Contains(env.warnings[0], "ignoring the cached GitHub meta document") {
		t.Errorf("warnings = %q", env.warnings)
	}
	if cached, _ := os.ReadFile(filepath.Join(env.CacheDir, "github-meta.json")); !bytes.Equal(cached, githubFixture(t)) {
		t.Error("the corrupt copy was not replaced by the good document")
	}
}

func TestGitHubDropsTheStoredETagWhenANewDocumentComesWithoutOne(t *testing.T) {
	env := newEnv(t)
	good := newMetaServer(t, githubFixture(t))
	env.URL["github"] = good.URL
	if _, err := fetch(t, "github", env); err != nil {
		t.Fatal(err)
	}
	noETag := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"web":["192.30.252.0/22"],"api":[],"git":[]}`))
	}))
	defer noETag.Close()
	env.URL["github"] = noETag.URL
	got, err := fetch(t, "github", env)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(prefixes(t, "192.30.252.0/22"), got.Prefixes, equateNet); diff != "" {
		t.Errorf("prefixes (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(env.CacheDir, "github-meta.etag")); err == nil {
		t.Error("the old ETag was kept beside the new document")
	}
}

func TestGitHubWarnsButSucceedsWhenTheCacheCannotBeWritten(t *testing.T) {
	env := newEnv(t)
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o600)
	env.CacheDir = filepath.Join(blocker, "cache") // under a regular file: cannot be created
	srv := newMetaServer(t, githubFixture(t))
	env.URL["github"] = srv.URL
	got, err := fetch(t, "github", env)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Prefixes) != len(githubFixtureWant) {
		t.Errorf("got %d prefixes", len(got.Prefixes))
	}
	if !strings.Contains(strings.Join(env.warnings, "\n"), "caching the GitHub meta document") {
		t.Errorf("warnings = %q, want one about caching", env.warnings)
	}
}

func TestGitHubAnswered304WithNoCachedCopyIsAnError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotModified)
	}))
	defer srv.Close()
	env := newEnv(t)
	env.URL["github"] = srv.URL
	_, err := fetch(t, "github", env)
	if err == nil || !strings.Contains(err.Error(), "304 Not Modified, but there is no cached copy") {
		t.Errorf("error = %v", err)
	}
}
