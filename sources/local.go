package sources

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"

	"github.com/VerilyPete/claudecontainer/dnsfilter"
)

func init() {
	Register(Source{
		Name:  "local",
		Doc:   "your own additions: host names, *.domain and !name entries, IPs/CIDRs, one a line, in CLAUDECONTAINER_LOCAL_FILE (absent file: nothing added)",
		Fetch: fetchLocal,
	})
}

// fetchLocal reads the user's file: one entry a line, a host name, an IP
// address or CIDR, "*.domain" (every name under domain, for the DNS filter)
// or "!name" / "!*.domain" (never answered, whatever else allows it); '#'
// starts a comment, and blank lines are skipped. The
// source is optional in that a missing file adds nothing, but a malformed
// line is returned as an error rather than skipped: the user meant something
// by it, and the error names file:line so it can be fixed.
func fetchLocal(ctx context.Context, env Env) (Result, error) {
	res := Result{Literal: true}
	if env.LocalFile == "" {
		return res, nil
	}
	f, err := os.Open(env.LocalFile)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		entry := strings.TrimSpace(line)
		if entry == "" {
			continue
		}
		where := fmt.Sprintf("%s:%d", env.LocalFile, n)
		e, err := ParseEntry(entry)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", where, err)
		}
		if e.Warning != "" {
			env.warnf("%s: %s", where, e.Warning)
		}
		switch {
		case e.Prefix.IsValid():
			res.Prefixes = append(res.Prefixes, e.Prefix)
		case e.IsDomain():
			res.Domains = append(res.Domains, e.Name)
		default:
			res.Hosts = append(res.Hosts, e.Name)
		}
	}
	if err := sc.Err(); err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", env.LocalFile, err)
	}
	return res, nil
}

// Entry is one entry of the local file.
type Entry struct {
	// Prefix is an address or CIDR entry, masked; invalid for a name.
	Prefix netip.Prefix
	// Name is a host name, "*.domain", "!name" or "!*.domain", lower
	// case and without a trailing dot; "" for a prefix.
	Name string
	// Warning is something to tell about the entry as written (host bits
	// set), or "".
	Warning string
}

// IsDomain reports whether e is an entry for the DNS filter alone: a
// wildcard or a deny entry, which is not resolved.
func (e Entry) IsDomain() bool {
	return strings.HasPrefix(e.Name, "*.") || strings.HasPrefix(e.Name, "!")
}

// String is e as the file holds it.
func (e Entry) String() string {
	if e.Prefix.IsValid() {
		if e.Prefix.Bits() == e.Prefix.Addr().BitLen() {
			return e.Prefix.Addr().String()
		}
		return e.Prefix.String()
	}
	return e.Name
}

// ParseEntry parses one entry of the local file, its comment taken off: a
// host name, an IP address or CIDR, "*.domain", "!name" or "!*.domain".
func ParseEntry(entry string) (Entry, error) {
	entry = strings.TrimSpace(entry)
	if p, err := ParsePrefix(entry); err == nil {
		if p.Bits() == 0 {
			return Entry{}, fmt.Errorf("%q would allow every address; remove it", entry)
		}
		e := Entry{Prefix: p}
		if raw, err := netip.ParsePrefix(entry); err == nil && raw.Masked() != raw {
			e.Warning = fmt.Sprintf("%q has host bits set; using %s", entry, p)
		}
		return e, nil
	}
	host := strings.TrimSuffix(strings.ToLower(entry), ".")
	if strings.HasPrefix(host, "*.") || strings.HasPrefix(host, "!") {
		if _, err := dnsfilter.ParseNames([]string{host}); err != nil {
			return Entry{}, fmt.Errorf("%q: %v; want *.example.com, !name.example.com or !*.example.com", entry, errors.Unwrap(err))
		}
		return Entry{Name: host}, nil
	}
	if !ValidHost(host) {
		return Entry{}, fmt.Errorf("%q is not a host name, IP address or CIDR; want one entry a line, such as example.com, *.example.com, !gist.github.com, 203.0.113.7 or 203.0.113.0/24 (no ports or URLs)", entry)
	}
	return Entry{Name: host}, nil
}
