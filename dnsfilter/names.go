package dnsfilter

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Limits of a domain name in presentation form (RFC 1035 §2.3.4): 63 bytes
// per label and 253 for the whole name without its trailing dot.
const (
	maxLabel = 63
	maxName  = 253
)

// Names is the name policy: which names the filter answers. It is built from
// entries of four kinds:
//
//	api.anthropic.com     the name itself, nothing under it
//	*.github.com          every name under github.com (a.github.com,
//	                      a.b.github.com), not github.com itself
//	!gist.github.com      never this name, whatever allows it
//	!*.corp.github.com    never a name under corp.github.com
//
// A deny entry wins over every allow entry, and over CNAMEs too: an allowed
// name whose answer is an alias of a denied name is refused (see
// Handler.ServeDNS). Matching ignores case and a trailing dot. Names are compared as the ASCII they are on the wire, so an
// internationalised name is written in its punycode form (xn--…).
//
// A Names is never changed after ParseNames returns it, so it is safe for
// concurrent use; a new policy is a new Names (see Handler.SetNames).
type Names struct {
	allow, deny           map[string]bool // exact names
	allowUnder, denyUnder map[string]bool // wildcards, keyed by the domain after "*."
}

// ParseNames builds a policy from entries. Every entry is checked, and the
// error names each bad one and why; a policy with errors is not returned.
// No entries make a policy that allows nothing.
func ParseNames(entries []string) (*Names, error) {
	n := &Names{
		allow: map[string]bool{}, deny: map[string]bool{},
		allowUnder: map[string]bool{}, denyUnder: map[string]bool{},
	}
	var errs []error
	for _, e := range entries {
		deny, wild, name, err := parseEntry(e)
		if err != nil {
			errs = append(errs, fmt.Errorf("name %q: %w", e, err))
			continue
		}
		switch {
		case deny && wild:
			n.denyUnder[name] = true
		case deny:
			n.deny[name] = true
		case wild:
			n.allowUnder[name] = true
		default:
			n.allow[name] = true
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("dnsfilter: %w", errors.Join(errs...))
	}
	return n, nil
}

// Allowed reports whether the policy allows name.
func (n *Names) Allowed(name string) bool {
	ok, _ := n.check(name)
	return ok
}

// check reports whether name is allowed and, when a deny entry refuses it,
// that entry as written.
func (n *Names) check(name string) (ok bool, deniedBy string) {
	if n == nil {
		return false, ""
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	// miekg/dns writes a byte that is not plain text, a dot inside a label
	// included, as a \ escape. No entry holds one, and walking the parents
	// of such a name by its dots would cut it in the wrong places.
	if name == "" || strings.Contains(name, `\`) {
		return false, ""
	}
	if n.deny[name] {
		return false, "!" + name
	}
	allowed := n.allow[name]
	// Walk the parent domains: a.b.example.com, then b.example.com, then
	// example.com, then com.
	for rest := name; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		if n.denyUnder[rest] {
			return false, "!*." + rest
		}
		allowed = allowed || n.allowUnder[rest]
	}
	return allowed, ""
}

// parseEntry checks one entry and returns it lower case, without the
// trailing dot, "!" or "*.".
func parseEntry(e string) (deny, wild bool, name string, err error) {
	s := strings.TrimSpace(e)
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		deny, s = true, rest
	}
	s = strings.ToLower(s)
	switch {
	case s == "":
		return false, false, "", errors.New("empty")
	case strings.Contains(s, "://"):
		return false, false, "", errors.New("is a URL; write the host name alone")
	case strings.ContainsAny(s, "/?#@"):
		return false, false, "", errors.New("has a path or user part; write the host name alone")
	}
	if _, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return false, false, "", errors.New("is an IP address; the name policy holds names only")
	}
	if strings.Contains(s, ":") {
		return false, false, "", errors.New("has a port; write the host name alone (the policy covers every port)")
	}
	s = strings.TrimSuffix(s, ".")
	if s == "*" {
		return false, false, "", errors.New("a bare * would match every name")
	}
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		wild, s = true, rest
	}
	if len(s) > maxName {
		return false, false, "", fmt.Errorf("longer than %d bytes", maxName)
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return false, false, "", err
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return false, false, "", errors.New("the last label is a number; a name ends in a top-level domain")
	}
	if len(labels) < 2 {
		if wild {
			return false, false, "", fmt.Errorf("*.%s would match a whole top-level domain; name a domain under it", s)
		}
		return false, false, "", errors.New("a single label is not a public name; write the full name")
	}
	return deny, wild, s, nil
}

// checkLabel reports what is wrong with one label of an entry: letters,
// digits, hyphens and underscores (service labels such as _acme-challenge)
// are allowed, a hyphen neither first nor last.
func checkLabel(l string) error {
	switch {
	case l == "":
		return errors.New("has an empty label (two dots in a row, or a leading dot)")
	case l == "*" || strings.Contains(l, "*"):
		return errors.New(`"*" may only be the whole first label, as in *.example.com`)
	case len(l) > maxLabel:
		return fmt.Errorf("label %q is longer than %d bytes", l, maxLabel)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for _, c := range []byte(l) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("label %q holds %q; names are letters, digits, hyphens and underscores (punycode for other scripts)", l, c)
		}
	}
	return nil
}
