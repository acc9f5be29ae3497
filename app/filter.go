package app

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/filterd"
	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/resolve"
)

// The DNS filter runs as a daemon from the first load of the firewall until
// the firewall is lifted (filterd). Every load of the firewall makes sure it
// runs for that network, with the names of the allowlist file: started
// when it is not running (also after it died), told to read the names again
// when it is.

// filterOn reports whether the DNS filter is configured.
func (e *env) filterOn() bool { return e.cfg.DNSFilter && e.filter != nil }

// filterSpec is what the daemon runs with for policy p.
func (e *env) filterSpec(p policy.Policy) (filterd.Spec, error) {
	n, port := p.Network, e.cfg.DNSFilterPort
	loop4, loop6 := netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()
	spec := filterd.Spec{
		Backend:       e.fw.Name(),
		Table:         e.cfg.Anchor,
		Set:           p.Table,
		Clients:       []netip.Prefix{n.IPv4, netip.PrefixFrom(loop4, 8), netip.PrefixFrom(loop6, 128)},
		AllowlistFile: e.cfg.AllowlistFile,
		IPv6:          n.IPv6.IsValid(),
		Watch:         &p,
	}
	if n.IPv6.IsValid() {
		spec.Clients = append(spec.Clients, n.IPv6)
	}
	// pf's rdr sends the queries to loopback. nftables' redirect sends
	// them to the address of the bridge they arrived on, which exists
	// only once the runtime made the bridge; loopback is for `mage status`.
	spec.Listen = []netip.AddrPort{netip.AddrPortFrom(loop4, port)}
	switch spec.Backend {
	case "pf":
		spec.Listen = append(spec.Listen, netip.AddrPortFrom(loop6, port))
	default:
		spec.FreeBind = true
		spec.Listen = append(spec.Listen, netip.AddrPortFrom(n.Gateway4, port))
		if n.IPv6.IsValid() {
			spec.Listen = append(spec.Listen, netip.AddrPortFrom(n.IPv6.Addr().Next(), port))
		}
	}
	ups := slices.Clone(e.cfg.DNSUpstream)
	if len(ups) == 0 {
		r, err := resolve.FromResolvConf(e.resolvConf)
		if err != nil {
			return filterd.Spec{}, fmt.Errorf("finding the resolvers the DNS filter should ask (or set %sDNS_UPSTREAM): %w", "CLAUDECONTAINER_", err)
		}
		for _, s := range r.Servers {
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				return filterd.Spec{}, fmt.Errorf("%s: nameserver %q: %w", e.resolvConf, s, err)
			}
			// A link-local resolver (an IPv6 router's, fe80::1%en0) keeps
			// its zone: without it, it cannot be reached.
			ups = append(ups, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	spec.Upstreams = ups
	return spec, nil
}

// ensureFilter makes the daemon run for p, after the firewall was loaded
// for it. On error the caller does not start the container.
func (e *env) ensureFilter(ctx context.Context, p policy.Policy) error {
	if !e.filterOn() {
		// Turned off since it started: the rules just loaded send no DNS
		// to it any more.
		return e.stopFilter(ctx)
	}
	spec, err := e.filterSpec(p)
	if err != nil {
		return err
	}
	started, err := e.filter.Ensure(ctx, spec)
	if err != nil {
		return fmt.Errorf("the DNS filter: %w", err)
	}
	if started {
		e.note("DNS filter serving on %v (log of refused names: %s)", spec.Listen, e.stateFile(filterd.RefusedFile))
	} else {
		e.note("DNS filter running: names read again")
	}
	return nil
}

// reloadFilter tells a running daemon to read the names again, after
// `mage allowlist` wrote the file. Without a daemon there is nothing to do.
func (e *env) reloadFilter(ctx context.Context) error {
	if e.filter == nil {
		return nil
	}
	st, ok, err := e.filter.Running(ctx)
	if err != nil || !ok {
		return err
	}
	_, err = e.filter.Ensure(ctx, st.Spec)
	return err
}

// stopFilter stops the daemon, before the firewall is lifted: queries then
// find nothing listening, so nothing resolves and nothing new opens.
func (e *env) stopFilter(ctx context.Context) error {
	if e.filter == nil {
		return nil
	}
	if err := e.filter.Stop(ctx); err != nil {
		return fmt.Errorf("stopping the DNS filter: %w", err)
	}
	return nil
}

// statusProbeName is a name no allowlist holds, asked by `mage status` to see
// the filter refuse it.
const statusProbeName = "claudecontainer-status-check.invalid"

// filterChecks checks the daemon end to end: it is ours and running, it
// refuses a name that is not allowed, and it answers one that is.
func (e *env) filterChecks(ctx context.Context, fwUp bool) []firewall.Check {
	const what = "DNS filter"
	if e.filter == nil {
		return nil
	}
	st, running, err := e.filter.Running(ctx)
	switch {
	case err != nil:
		return []firewall.Check{{What: what, Detail: err.Error(), Fix: "run `mage reset`"}}
	case !e.filterOn() && running:
		return []firewall.Check{{What: what, Detail: fmt.Sprintf("process %d runs, but %sDNS_FILTER is off", st.Pid, "CLAUDECONTAINER_"), Fix: "run `mage reset`"}}
	case !e.filterOn():
		to := "the network's gateway"
		if len(e.cfg.DNS) > 0 {
			to = fmt.Sprint(e.cfg.DNS)
		}
		return []firewall.Check{{What: what, OK: true, Detail: "off: the containers' DNS goes to " + to + ", and only the allowlist's addresses are open"}}
	case !fwUp && running:
		return []firewall.Check{{What: what, Detail: fmt.Sprintf("process %d runs with the firewall down", st.Pid), Fix: "run `mage reset`"}}
	case !fwUp:
		return []firewall.Check{{What: what, OK: true, Detail: "not running (the firewall is down)"}}
	case !running:
		return []firewall.Check{{What: what, Detail: "not running: the containers resolve nothing (the firewall sends their DNS to it)",
			Fix: "run `mage up` or `mage dev`, which start it again; its log is " + e.stateFile(filterd.LogFile)}}
	}
	checks := []firewall.Check{{What: what, OK: true, Detail: fmt.Sprintf("process %d, %d names, serving on %v", st.Pid, st.Names, st.Spec.Listen)}}
	if st.ReloadError != "" {
		checks = append(checks, firewall.Check{What: what + " names", Detail: "the last reload failed: " + st.ReloadError, Fix: "fix the allowlist (`mage allowlist`)"})
	}
	at := st.Spec.Listen[0] // loopback
	a, err := filterd.Probe(ctx, at, statusProbeName)
	c := firewall.Check{What: what + " refuses what is not allowed", OK: err == nil && a.Rcode == dns.RcodeNameError}
	switch {
	case err != nil:
		c.Detail, c.Fix = err.Error(), "see "+e.stateFile(filterd.LogFile)+"; `mage reset` then `mage up` starts it afresh"
	case !c.OK:
		c.Detail, c.Fix = fmt.Sprintf("%s got %s, want NXDOMAIN", statusProbeName, dns.RcodeToString[a.Rcode]), "`mage reset` then `mage up` starts it afresh"
	default:
		c.Detail = fmt.Sprintf("%s: NXDOMAIN (%s)", statusProbeName, a.EDE)
	}
	checks = append(checks, c)
	if name := e.anAllowedName(); name != "" {
		a, err := filterd.Probe(ctx, at, name)
		c := firewall.Check{What: what + " answers what is allowed", OK: err == nil && a.Rcode == dns.RcodeSuccess && len(a.Addrs) > 0}
		switch {
		case err != nil:
			c.Detail, c.Fix = err.Error(), "check the upstream resolvers "+fmt.Sprint(st.Spec.Upstreams)
		case !c.OK:
			c.Detail, c.Fix = fmt.Sprintf("%s: %s with %d addresses", name, dns.RcodeToString[a.Rcode], len(a.Addrs)), "check the upstream resolvers "+fmt.Sprint(st.Spec.Upstreams)+" (CLAUDECONTAINER_DNS_UPSTREAM)"
		default:
			c.Detail = fmt.Sprintf("%s: %v", name, a.Addrs)
		}
		checks = append(checks, c)
	}
	return checks
}

// anAllowedName returns the first name of the allowlist that is neither a
// wildcard nor a deny entry, or "" (also when the file does not load).
func (e *env) anAllowedName() string {
	_, entries, _ := allowlist.LoadNames(e.cfg.AllowlistFile)
	if i := slices.IndexFunc(entries, func(n string) bool { return !strings.ContainsAny(n, "*!") }); i >= 0 {
		return entries[i]
	}
	return ""
}

// stateFile is the path of a file in the state directory.
func (e *env) stateFile(name string) string { return filepath.Join(e.cfg.StateDir, name) }
