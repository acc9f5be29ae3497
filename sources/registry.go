// Package sources holds the allowlist sources: each one is a small file in
// this directory that registers itself from init, so adding a source is
// dropping in a file. A source yields prefixes (CIDRs), host names to resolve,
// or both; the allowlist package fetches them all, resolves the names, vets
// and merges the result.
package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"sort"
	"strings"
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

// URLFor returns the address a source should fetch: env.URL[name] when set,
// def otherwise.
func (env Env) URLFor(name, def string) string {
	if u := env.URL[name]; u != "" {
		return u
	}
	return def
}

// Warnf calls env.Warn when it is set.
func (env Env) Warnf(format string, args ...any) {
	if env.Warn != nil {
		env.Warn(format, args...)
	}
}

// Result is what one fetch found.
type Result struct {
	Prefixes []netip.Prefix
	Hosts    []string
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
	if s.Fetch == nil && len(s.Prefixes) == 0 && len(s.Hosts) == 0 {
		panic(fmt.Sprintf("sources: source %q has no prefixes, hosts or Fetch", s.Name))
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

// All returns every registered source, sorted by name.
func All() []Source {
	out := make([]Source, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Names returns the names of every registered source, sorted.
func Names() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Select returns the sources to use: the named ones (all when names is
// empty), less those in skip. Unknown names in either list are an error.
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
		skipped := false
		for _, k := range skip {
			skipped = skipped || k == n
		}
		if !skipped {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ParsePrefix parses a CIDR or a bare IP address (taken as a single host)
// from outside data. IPv4-mapped IPv6 addresses are unmapped, and the result
// is masked, so 10.0.0.5/8 becomes 10.0.0.0/8.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: zones are not allowed", s)
		}
		if p.Addr().Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				return netip.Prefix{}, fmt.Errorf("invalid CIDR %q: IPv4-mapped prefix shorter than ::ffff:0:0/96", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid address or CIDR %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

var hostLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidHost reports whether h is a fully spelled-out DNS host name (no
// wildcard, no trailing dot, at least two labels, letters, digits and
// hyphens only).
func ValidHost(h string) bool {
	if len(h) == 0 || len(h) > 253 || h != strings.ToLower(h) {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !hostLabel.MatchString(l) {
			return false
		}
	}
	// The last label of a host name is never all digits; this keeps IPv4
	// addresses out.
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != ""
}

// userAgent is sent with every request a source makes.
const userAgent = "claudecontainer (+https://github.com/VerilyPete/claudecontainer)"

// newGet returns a GET request for url that accepts the media type accept
// and carries the tool's User-Agent, for a source to send with env.HTTP.
func newGet(ctx context.Context, env Env, url, accept string) (*http.Request, error) {
	if env.HTTP == nil {
		return nil, errors.New("no HTTP client")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", userAgent)
	return req, nil
}

// parseList parses the list called key of a fetched document: CIDRs, or
// bare addresses taken as single hosts. An entry that does not parse, or
// that would allow every address, makes the whole list an error naming
// key[index].
func parseList(key string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %v", key, i, err)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("%s[%d]: %s would allow every address", key, i, p)
		}
		out = append(out, p)
	}
	return out, nil
}

// readLimited reads all of r, failing once it holds more than limit bytes:
// a document that large is not the one asked for, and reading on would only
// use memory.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("document larger than %d bytes", limit)
	}
	return b, nil
}
