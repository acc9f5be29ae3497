// Package sources holds the allowlist sources: each one is a small file in
// this directory that registers itself from init, so adding a source is
// dropping in a file. A source yields prefixes (CIDRs), host names to resolve,
// or both; the allowlist package fetches them all, resolves the names, vets
// and merges the result.
package sources

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/VerilyPete/claudecontainer/dnsfilter"
)

// Source is one origin of allowlist entries.
type Source struct {
	Name     string // lower-case word, equal to the file name: github ↔ github.go
	Doc      string // one line, shown in listings
	Required bool   // a failure aborts the run; otherwise it is a warning

	// Prefixes and Hosts are fixed entries. Prefixes are parsed when the
	// source registers, so a typo panics at start-up rather than opening
	// something by accident.
	Prefixes []string
	Hosts    []string
	// Domains are names for the DNS filter beyond Hosts (every host is one
	// already): a name, "*.domain" for every name under domain, or a deny
	// entry "!name" or "!*.domain" (see dnsfilter.Names). They are not
	// resolved: the filter opens their addresses as it answers for them.
	Domains []string

	// Fetch, when set, finds further entries at run time (an HTTP document,
	// a file). It must honour ctx.
	Fetch func(ctx context.Context, env Env) (Result, error)
}

// Env is what a Fetch may use. Tests point it at local servers and temporary
// directories.
type Env struct {
	HTTP      *http.Client // has a timeout; never http.DefaultClient
	CacheDir  string       // per-source cache files live here
	LocalFile string       // the user's additions file
	Getenv    func(string) string
	// URL overrides a source's document address, by source name; tests use
	// it to point sources at httptest servers. Empty means the real address.
	URL map[string]string
	// Warn records a problem that did not stop the source (for example a
	// fallback to a cached copy).
	Warn func(format string, args ...any)
}

// urlFor returns the address a source should fetch: env.URL[name] when set,
// def otherwise.
func (env Env) urlFor(name, def string) string {
	if u := env.URL[name]; u != "" {
		return u
	}
	return def
}

// warnf calls env.Warn when it is set.
func (env Env) warnf(format string, args ...any) {
	if env.Warn != nil {
		env.Warn(format, args...)
	}
}

// Result is what one fetch found.
type Result struct {
	Prefixes []netip.Prefix
	Hosts    []string
	Domains  []string // as Source.Domains
	// Literal marks prefixes the user wrote by hand (the local file): the
	// allowlist keeps private ranges from such a source, because the user
	// asked for them, and says so.
	Literal bool
}

// registry holds every source. It is written only from init functions, which
// run one at a time, and read after; so it needs no lock.
var registry = map[string]Source{}

var name = regexp.MustCompile(`^[a-z][a-z0-9]*$`)

// Register adds s. It panics on a source that could never work: an invalid
// or duplicate name, no Doc or one of several lines, no entries and no Fetch,
// or a fixed prefix or host name that does not parse.
func Register(s Source) {
	registerIn(registry, s)
}

// registerIn is Register on the map m, so that tests can check what Register
// refuses without touching the real registry.
func registerIn(m map[string]Source, s Source) {
	if !name.MatchString(s.Name) {
		panic(fmt.Sprintf("sources: Register: invalid source name %q (want a lower-case word)", s.Name))
	}
	if _, dup := m[s.Name]; dup {
		panic(fmt.Sprintf("sources: Register called twice for source %q", s.Name))
	}
	if strings.TrimSpace(s.Doc) == "" {
		panic(fmt.Sprintf("sources: source %q has no Doc", s.Name))
	}
	if strings.ContainsAny(s.Doc, "\r\n") {
		panic(fmt.Sprintf("sources: source %q: Doc must be one line", s.Name))
	}
	if s.Fetch == nil && len(s.Prefixes) == 0 && len(s.Hosts) == 0 && len(s.Domains) == 0 {
		panic(fmt.Sprintf("sources: source %q has no prefixes, hosts, domains or Fetch", s.Name))
	}
	for _, p := range s.Prefixes {
		if _, err := ParsePrefix(p); err != nil {
			panic(fmt.Sprintf("sources: source %q: %v", s.Name, err))
		}
	}
	for _, h := range s.Hosts {
		if !ValidHost(h) {
			panic(fmt.Sprintf("sources: source %q: invalid host name %q", s.Name, h))
		}
	}
	if _, err := dnsfilter.ParseNames(s.Domains); err != nil {
		panic(fmt.Sprintf("sources: source %q: %v", s.Name, err))
	}
	m[s.Name] = s
}

// Lookup returns the source called name.
func Lookup(n string) (Source, error) {
	s, ok := registry[n]
	if !ok {
		return Source{}, fmt.Errorf("unknown source %q (no sources/%s.go? known: %s)", n, n, strings.Join(Names(), ", "))
	}
	return s, nil
}

// Names returns the names of every registered source, sorted.
func Names() []string { return slices.Sorted(maps.Keys(registry)) }

// Select returns the sources to use: the named ones (all when names is
// empty), less those in skip, sorted by name. Unknown names in either list
// are an error.
func Select(names, skip []string) ([]Source, error) {
	for _, n := range skip {
		if _, err := Lookup(n); err != nil {
			return nil, err
		}
	}
	if len(names) == 0 {
		names = Names()
	}
	var out []Source
	for _, n := range names {
		s, err := Lookup(n)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(skip, n) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Source) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
