package sources

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
)

func init() {
	Register(Source{
		Name:     "github",
		Doc:      "GitHub web, API and git ranges (IPv4 and IPv6) from api.github.com/meta, cached; GITHUB_TOKEN raises the rate limit",
		Required: true,
		Domains:  []string{"github.com", "*.github.com", "*.githubusercontent.com"},
		Fetch:    fetchGitHub,
	})
}

// See https://docs.github.com/en/rest/meta/meta#get-github-meta-information
// and https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/about-githubs-ip-addresses.
// Only web, api and git are taken: actions, codespaces and the like are
// whole Azure regions shared with everyone else.
const (
	githubMetaURL   = "https://api.github.com/meta"
	githubMetaLimit = 4 << 20 // the 2026 document, actions included, is well under 1 MiB
	githubDocFile   = "github-meta.json"
	githubETagFile  = "github-meta.etag"
)

// githubMeta is the part of the meta document used here; other keys are
// ignored. The lists are pointers so that a missing key (or null) is told
// apart from an empty list.
type githubMeta struct {
	Web *[]string `json:"web"`
	API *[]string `json:"api"`
	Git *[]string `json:"git"`
}

// fetchGitHub gets the meta document, asking with the cached copy's ETag so
// that an unchanged document costs nothing. On any failure it falls back to
// the cached copy with a warning; it fails only when there is none.
func fetchGitHub(ctx context.Context, env Env) (Result, error) {
	url := env.urlFor("github", githubMetaURL)
	cache := githubCache{dir: env.CacheDir}
	cached, etag, err := cache.load()
	if err != nil {
		env.warnf("ignoring the cached GitHub meta document: %v", err)
	}
	ps, notModified, err := getGitHubMeta(ctx, env, url, cache, etag, cached != nil)
	switch {
	case err == nil && notModified:
		return Result{Prefixes: cached}, nil
	case err == nil:
		return Result{Prefixes: ps}, nil
	case cached != nil:
		env.warnf("fetching %s: %v; using the copy cached in %s", url, err, cache.path(githubDocFile))
		return Result{Prefixes: cached}, nil
	default:
		return Result{}, fmt.Errorf("%s: %w (and no cached copy in %s to fall back to)", url, err, env.CacheDir)
	}
}

// getGitHubMeta asks for the document and, when a new one comes, checks it
// and caches it. notModified reports a 304 answer when there is a cached
// copy to use.
// It calls env.HTTP directly rather than through a script pipe because it
// needs the status and headers (ETag, 304, rate limits), which a pipe hides.
func getGitHubMeta(ctx context.Context, env Env, url string, cache githubCache, etag string, haveCache bool) (ps []netip.Prefix, notModified bool, err error) {
	req, err := newGet(ctx, env, url, "application/vnd.github+json")
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	if env.Getenv != nil {
		if token := strings.TrimSpace(env.Getenv("GITHUB_TOKEN")); token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := env.HTTP.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()

	switch {
	case resp.StatusCode == http.StatusNotModified && haveCache:
		return nil, true, nil
	case resp.StatusCode == http.StatusNotModified:
		return nil, false, errors.New("304 Not Modified, but there is no cached copy to use")
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
		return nil, false, fmt.Errorf("%s%s", resp.Status, rateLimitNote(resp.Header, env))
	case resp.StatusCode/100 != 2:
		return nil, false, errors.New(resp.Status)
	}
	body, err := readLimited(resp.Body, githubMetaLimit)
	if err != nil {
		return nil, false, err
	}
	if ps, err = parseGitHubMeta(body); err != nil {
		return nil, false, err
	}
	if err := cache.save(body, resp.Header.Get("ETag")); err != nil {
		env.warnf("caching the GitHub meta document: %v", err)
	}
	return ps, false, nil
}

// parseGitHubMeta returns the union of web, api and git, de-duplicated and
// sorted. Every entry must parse: one bad entry makes the document
// malformed.
func parseGitHubMeta(b []byte) ([]netip.Prefix, error) {
	var m githubMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("malformed meta document: %v", err)
	}
	ps, err := parseLists(keyedList{"web", m.Web}, keyedList{"api", m.API}, keyedList{"git", m.Git})
	if err != nil {
		return nil, fmt.Errorf("malformed meta document: %w", err)
	}
	return ps, nil
}

// rateLimitNote explains a 403 or 429 from GitHub's rate-limit headers.
func rateLimitNote(h http.Header, env Env) string {
	var notes []string
	if h.Get("X-RateLimit-Remaining") == "0" {
		notes = append(notes, "rate limit used up")
	}
	if s := strings.TrimSpace(h.Get("Retry-After")); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			notes = append(notes, fmt.Sprintf("retry after %ds", n))
		} else if t, err := http.ParseTime(s); err == nil {
			notes = append(notes, "retry after "+t.UTC().Format(time.RFC3339))
		}
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(h.Get("X-RateLimit-Reset")), 10, 64); err == nil && n > 0 {
		notes = append(notes, "the limit resets at "+time.Unix(n, 0).UTC().Format(time.RFC3339))
	}
	if len(notes) == 0 {
		return ""
	}
	if env.Getenv == nil || strings.TrimSpace(env.Getenv("GITHUB_TOKEN")) == "" {
		notes = append(notes, "set GITHUB_TOKEN to raise the limit from 60 to 5,000 requests an hour")
	}
	return " (" + strings.Join(notes, "; ") + ")"
}

// githubCache keeps the last good meta document and its ETag. An empty dir
// turns caching off.
type githubCache struct{ dir string }

func (c githubCache) path(file string) string { return filepath.Join(c.dir, file) }

// load returns the cached document's prefixes and ETag; nil prefixes when
// there is no usable copy. An error means a copy exists but is unusable.
func (c githubCache) load() ([]netip.Prefix, string, error) {
	if c.dir == "" {
		return nil, "", nil
	}
	b, err := os.ReadFile(c.path(githubDocFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	ps, err := parseGitHubMeta(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %v", c.path(githubDocFile), err)
	}
	etag, err := os.ReadFile(c.path(githubETagFile))
	if err != nil || !validETag(string(etag)) {
		etag = nil // the document is still good; it is just fetched in full
	}
	return ps, string(etag), nil
}

// save stores a document known to be good. The old ETag goes first, so that
// a crash half-way leaves a document with no ETag (fetched in full next
// time), never a new ETag beside an old document.
func (c githubCache) save(doc []byte, etag string) error {
	if c.dir == "" {
		return nil
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	if err := os.Remove(c.path(githubETagFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := atomicfile.Write(c.path(githubDocFile), doc, 0o600); err != nil {
		return err
	}
	if !validETag(etag) {
		return nil
	}
	return atomicfile.Write(c.path(githubETagFile), []byte(etag), 0o600)
}

// validETag reports whether s can be sent back as an If-None-Match value:
// non-empty, short, and visible ASCII or spaces only.
func validETag(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	return !bytes.ContainsFunc([]byte(s), func(r rune) bool { return r < ' ' || r > '~' })
}
