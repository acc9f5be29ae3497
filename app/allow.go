package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/sources"
)

// Allow adds entries (names, *.domains, addresses, CIDRs; separated by
// commas or spaces) to the local allowlist file, or takes them out with
// remove, or adds them as deny entries with deny, and applies the file to
// the live firewall and the running DNS filter at once.
func Allow(ctx context.Context, out io.Writer, list string, remove, deny bool) error {
	return withEnv(out, func(e *env) error { return e.allow(ctx, list, remove, deny) })
}

func (e *env) allow(ctx context.Context, list string, remove, deny bool) error {
	if remove && deny {
		return errors.New("-remove and -deny do not go together: `mage allow ENTRY -remove` takes an entry out, `mage allow NAME -deny` refuses a name")
	}
	words := strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(words) == 0 {
		return errors.New("nothing to allow: give names, *.domains, addresses or CIDRs, such as `mage allow pypi.org,*.pythonhosted.org`")
	}
	entries, err := parseAllowEntries(words, remove, deny)
	if err != nil {
		return err
	}
	add, take := entries, []sources.Entry(nil)
	if remove {
		add, take = nil, entries
	} else {
		e.describeEntries(ctx, entries)
	}
	ed, err := sources.EditLocal(ctx, e.cfg.LocalFile, e.stateFile("local-file.lock"), add, take)
	if err != nil {
		return err
	}
	for _, s := range ed.Added {
		e.step("%s: added %s", e.cfg.LocalFile, s)
	}
	for _, s := range ed.Removed {
		e.step("%s: took out %s", e.cfg.LocalFile, s)
	}
	for _, s := range ed.Already {
		e.note("%s is in the file already", s)
	}
	for _, s := range ed.Missing {
		e.note("%s is not in the file (entries from the built-in sources cannot be taken out; deny a name with `mage allow NAME -deny`)", s)
	}
	if !ed.Changed() {
		return nil
	}
	up, err := e.fw.IsUp(ctx)
	if err != nil {
		return fmt.Errorf("the file is changed, but whether the firewall is up is unknown (%w); `mage allowlist` applies it", err)
	}
	if !up {
		e.note("the firewall is not up: the change applies at the next `mage up` or `mage dev`")
		return nil
	}
	e.step("applying it to the live firewall and the DNS filter")
	if err := e.refreshAllowlist(ctx); err != nil {
		return fmt.Errorf("the file is changed, but the live firewall is not (run `mage allowlist` to try again): %w", err)
	}
	return nil
}

// parseAllowEntries checks each word as the local file's reader does, and
// refuses what the allowlist would refuse or drop anyway.
func parseAllowEntries(words []string, remove, deny bool) ([]sources.Entry, error) {
	var entries []sources.Entry
	var errs []error
	for _, w := range words {
		if deny && !strings.HasPrefix(w, "!") {
			w = "!" + w
		}
		en, err := sources.ParseEntry(w)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if en.Prefix.IsValid() && !remove {
			if err := allowlist.VetLiteral(en.Prefix); err != nil {
				errs = append(errs, fmt.Errorf("%q: %v: the allowlist would refuse it", w, err))
				continue
			}
		}
		entries = append(entries, en)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("nothing was changed:\n%w", errors.Join(errs...))
	}
	return entries, nil
}

// describeEntries says what each entry opens: the addresses a name
// resolves to now, and how wide a wildcard is.
func (e *env) describeEntries(ctx context.Context, entries []sources.Entry) {
	cdns := maps.Clone(cdnRanges)
	// CloudFront's ranges are fetched only when an entry opens addresses:
	// a name or a prefix.
	if slices.ContainsFunc(entries, func(en sources.Entry) bool { return !en.IsDomain() }) {
		if cf := e.cloudFront(ctx); cf != nil {
			cdns["CloudFront"] = cf
		}
	}
	var hosts []string
	for _, en := range entries {
		switch {
		case strings.HasPrefix(en.Name, "!*."):
			e.note("%s: no name under %s is answered, whatever else allows it", en, en.Name[3:])
		case strings.HasPrefix(en.Name, "!"):
			e.note("%s: %s is never answered, whatever else allows it", en, en.Name[1:])
		case strings.HasPrefix(en.Name, "*."):
			d := en.Name[2:]
			e.note("%s: every name under %s, at any depth (a.%s, a.b.%s), not %s itself; each answer opens only its own addresses, for as long as its records last", en, d, d, d, d)
			if !e.cfg.DNSFilter {
				e.note("warning: %sDNS_FILTER is off, so a wildcard allows nothing", config.Prefix)
			}
		case en.Prefix.IsValid():
			warnCDN(e, cdns, en.String(), []netip.Prefix{en.Prefix})
		default:
			hosts = append(hosts, en.Name)
		}
	}
	if len(hosts) == 0 || e.newResolver == nil {
		return
	}
	r, err := e.newResolver()
	if err != nil {
		e.note("cannot resolve %s now: %v", strings.Join(hosts, ", "), err)
		return
	}
	for _, a := range r.LookupAll(ctx, hosts) {
		if a.Err != nil {
			e.note("%s does not resolve now (%v)", a.Host, a.Err)
			continue
		}
		e.note("%s resolves now to %v", a.Host, a.Addrs)
		var ps []netip.Prefix
		for _, ad := range a.Addrs {
			ps = append(ps, netip.PrefixFrom(ad, ad.BitLen()))
		}
		warnCDN(e, cdns, a.Host, ps)
	}
}

// warnCDN warns when prefixes lie in a shared CDN's published ranges:
// allowing such an address lets the container connect to every site behind
// it (the DNS filter still answers only the names allowed).
func warnCDN(e *env, cdns map[string]*netipx.IPSet, what string, prefixes []netip.Prefix) {
	for _, p := range prefixes {
		for _, name := range []string{"Cloudflare", "Fastly", "CloudFront"} {
			if set := cdns[name]; set != nil && set.OverlapsPrefix(p) {
				e.note("warning: %s is in %s's published ranges, which front many other sites: an address there lets the container connect to all of them, not only to %s", what, name, what)
				return
			}
		}
	}
}

// cdnRanges are the published ranges of shared CDNs: Cloudflare's
// (cloudflare.com/ips, 15 IPv4 and 7 IPv6 prefixes) and Fastly's
// (api.fastly.com/public-ip-list), as published in 2026.
var cdnRanges = map[string]*netipx.IPSet{
	"Cloudflare": mustSet("173.245.48.0/20", "103.21.244.0/22", "103.22.200.0/22", "103.31.4.0/22", "141.101.64.0/18",
		"108.162.192.0/18", "190.93.240.0/20", "188.114.96.0/20", "197.234.240.0/22", "198.41.128.0/17", "162.158.0.0/15",
		"104.16.0.0/13", "104.24.0.0/14", "172.64.0.0/13", "131.0.72.0/22",
		"2400:cb00::/32", "2606:4700::/32", "2803:f800::/32", "2405:b500::/32", "2405:8100::/32", "2a06:98c0::/29", "2c0f:f248::/32"),
	"Fastly": mustSet("23.235.32.0/20", "43.249.72.0/22", "103.244.50.0/24", "103.245.222.0/23", "103.245.224.0/24",
		"104.156.80.0/20", "140.248.64.0/18", "140.248.128.0/17", "146.75.0.0/17", "151.101.0.0/16", "157.52.64.0/18",
		"167.82.0.0/17", "167.82.128.0/20", "167.82.160.0/20", "167.82.224.0/20", "172.111.64.0/18", "185.31.16.0/22",
		"199.27.72.0/21", "199.232.0.0/16", "2a04:4e40::/32", "2a04:4e42::/32"),
}

func mustSet(ss ...string) *netipx.IPSet {
	var b netipx.IPSetBuilder
	for _, s := range ss {
		b.AddPrefix(netip.MustParsePrefix(s))
	}
	set, _ := b.IPSet() // MustParsePrefix let only valid prefixes through
	return set
}
