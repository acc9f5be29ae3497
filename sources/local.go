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
		if p, err := ParsePrefix(entry); err == nil {
			if p.Bits() == 0 {
				return Result{}, fmt.Errorf("%s: %q would allow every address; remove it", where, entry)
			}
			if raw, err := netip.ParsePrefix(entry); err == nil && raw.Masked() != raw {
				env.warnf("%s: %q has host bits set; using %s", where, entry, p)
			}
			res.Prefixes = append(res.Prefixes, p)
			continue
		}
		host := strings.TrimSuffix(strings.ToLower(entry), ".")
		if strings.HasPrefix(host, "*.") || strings.HasPrefix(host, "!") {
			if _, err := dnsfilter.ParseNames([]string{host}); err != nil {
				return Result{}, fmt.Errorf("%s: %q: %v; want *.example.com, !name.example.com or !*.example.com", where, entry, errors.Unwrap(err))
			}
			res.Domains = append(res.Domains, host)
			continue
		}
		if !ValidHost(host) {
			return Result{}, fmt.Errorf("%s: %q is not a host name, IP address or CIDR; want one entry a line, such as example.com, *.example.com, !gist.github.com, 203.0.113.7 or 203.0.113.0/24 (no ports or URLs)", where, entry)
		}
		res.Hosts = append(res.Hosts, host)
	}
	if err := sc.Err(); err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", env.LocalFile, err)
	}
	return res, nil
}
