package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

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

// keyedList is a list of CIDRs in a fetched document and the key it is found
// under; list is nil when the document lacks the key (or has null there).
type keyedList struct {
	key  string
	list *[]string
}

// parseLists parses lists (see parseList) into one set of prefixes, sorted
// and de-duplicated. A missing list, a bad entry, or lists that are all
// empty make an error.
func parseLists(lists ...keyedList) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, l := range lists {
		if l.list == nil {
			return nil, fmt.Errorf("no %q list", l.key)
		}
		ps, err := parseList(l.key, *l.list)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	if len(out) == 0 {
		return nil, errors.New("the lists are all empty")
	}
	slices.SortFunc(out, comparePrefixes)
	return slices.Compact(out), nil
}

func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
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
