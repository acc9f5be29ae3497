// Package allowlist builds the firewall's allowlist. It runs every source
// (fixed entries and Fetch) concurrently, resolves each host name once,
// vets every prefix and DNS answer (see vet.go), merges the lot into a
// minimal CIDR list and writes it as a pf table file, atomically and only
// when the whole list is known good.
package allowlist

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/dnsfilter"
	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/resolve"
	"github.com/VerilyPete/claudecontainer/sources"
)

// Resolver looks up host names; *resolve.Resolver is the real one. The
// answers come back in the order of hosts.
type Resolver interface {
	LookupAll(ctx context.Context, hosts []string) []resolve.Answer
}

var _ Resolver = (*resolve.Resolver)(nil)

// Options configure Collect and Update.
type Options struct {
	// Timeout bounds the whole run: every fetch and every DNS look-up
	// together. Zero means no bound beyond ctx.
	Timeout time.Duration
	// Env is passed to every Fetch. Its Warn is replaced: warnings are
	// collected per source into SourceReport.Warnings.
	Env sources.Env
	// Resolver looks up the host names the sources name.
	Resolver Resolver
	// Progress, when set, is called once per source as soon as the source is
	// done, one call at a time.
	Progress func(SourceReport)
	// Runner runs the privileged install when the file's directory is not
	// writable by this process (Update only); nil means proc.Exec{}.
	Runner proc.Runner
}

// SourceReport is what one source contributed.
type SourceReport struct {
	Name     string
	Required bool
	Prefixes int           // prefixes accepted (a cut entry counts once per remaining piece)
	Addrs    int           // DNS answers accepted
	Hosts    []HostReport  // every host the source named
	Elapsed  time.Duration // from the start of the run to the source's last answer
	Warnings []string      // problems that did not stop the run
	Notes    []string      // things worth knowing, such as private ranges kept
	// Err is non-nil when a required source failed, which fails the run.
	// An optional source's failures are Warnings instead.
	Err error

	entries []netip.Prefix // accepted, for the merge
	names   []string       // for the DNS filter: its hosts and domains
}

// HostReport is the outcome of one host name.
type HostReport struct {
	Host  string
	Addrs []netip.Addr // the addresses accepted
	Err   error        // why the host gave no usable address
}

// Report is the outcome of a run.
type Report struct {
	Sources  []SourceReport // in the order the sources were given
	Entries  int            // accepted entries before merging, duplicates included
	Set      *netipx.IPSet  // the merged allowlist; nil when the run failed
	Prefixes []netip.Prefix // Set as a minimal CIDR list, IPv4 first, sorted
	// Names are the DNS filter's entries (see dnsfilter.Names): every
	// source's host names and domains, sorted, each once.
	Names     []string
	Generated time.Time // UTC
}

// Collect runs srcs and returns the merged, vetted allowlist. The error
// names every required source that failed and why (the report still says
// what the others did); an empty allowlist is an error too.
func Collect(ctx context.Context, srcs []sources.Source, opts Options) (*Report, error) {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	c := &collector{opts: opts, start: time.Now(), dns: &lookups{r: opts.Resolver, m: map[string]*lookup{}}}

	rep := &Report{Sources: make([]SourceReport, len(srcs))}
	done := make(chan int)
	for i, s := range srcs {
		go func() {
			rep.Sources[i] = c.run(ctx, s)
			done <- i
		}()
	}
	for range srcs {
		if i := <-done; opts.Progress != nil {
			opts.Progress(rep.Sources[i])
		}
	}

	var errs []error
	var all []netip.Prefix
	for _, s := range rep.Sources {
		if s.Err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", s.Name, s.Err))
		}
		all = append(all, s.entries...)
		rep.Names = append(rep.Names, s.names...)
	}
	slices.Sort(rep.Names)
	rep.Names = slices.Compact(rep.Names)
	all = rep.leaveOutDenied(all)
	rep.Entries = len(all)
	rep.Generated = time.Now().UTC()
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	set, err := Merge(all)
	if err != nil {
		return rep, err
	}
	rep.Prefixes = set.Prefixes()
	if len(rep.Prefixes) == 0 {
		return rep, errors.New("the allowlist is empty: no source gave a usable entry")
	}
	rep.Set = set
	return rep, nil
}

// Update collects srcs and, when the whole allowlist is good, replaces the
// file at path with it (atomically, through sudo when this process may not
// write there). A file at path that is not an allowlist is refused before
// anything is fetched, and the report is nil then. On any error the file is
// left as it was.
func Update(ctx context.Context, srcs []sources.Source, opts Options, path string) (*Report, error) {
	if err := checkReplaceable(path); err != nil {
		return nil, err
	}
	rep, err := Collect(ctx, srcs, opts)
	if err != nil {
		return rep, err
	}
	data, err := Render(rep)
	if err != nil {
		return rep, err
	}
	if err := atomicfile.Install(ctx, cmp.Or[proc.Runner](opts.Runner, proc.Exec{}), path, data, 0o644); err != nil {
		return rep, fmt.Errorf("writing the allowlist: %w", err)
	}
	return rep, nil
}

// Merge unions prefixes into one set. IPv4-mapped prefixes are unmapped
// first; an invalid prefix is an error.
func Merge(prefixes []netip.Prefix) (*netipx.IPSet, error) {
	var b netipx.IPSetBuilder
	for _, p := range prefixes {
		b.AddPrefix(unmap(p))
	}
	set, err := b.IPSet()
	if err != nil {
		return nil, fmt.Errorf("merging the allowlist: %w", err)
	}
	return set, nil
}

// leaveOutDenied drops from all the addresses that only a denied host
// name gave: a deny entry ("!statsig.com") wins over a source that lists
// the name, in the firewall's table as in the DNS filter. An address that
// an allowed host gave too, or that a source gave as such, stays, and so do
// prefixes wider than one address.
func (rep *Report) leaveOutDenied(all []netip.Prefix) []netip.Prefix {
	names, err := dnsfilter.ParseNames(rep.Names)
	if err != nil {
		return all // every entry was checked as it came: cannot happen
	}
	denied := map[netip.Addr]bool{}
	keep := map[netip.Addr]bool{} // given by an allowed host, or written as such
	for i := range rep.Sources {
		s := &rep.Sources[i]
		fromHosts := map[netip.Addr]bool{}
		for _, h := range s.Hosts {
			allowed := names.Allowed(h.Host)
			for _, a := range h.Addrs {
				fromHosts[a] = true
				if allowed {
					keep[a] = true
				} else {
					denied[a] = true
				}
			}
			if !allowed && len(h.Addrs) > 0 {
				s.Notes = append(s.Notes, fmt.Sprintf("%s is denied: its addresses are left out", h.Host))
			}
		}
		for _, p := range s.entries {
			if p.IsSingleIP() && !fromHosts[p.Addr()] {
				keep[p.Addr()] = true
			}
		}
	}
	return slices.DeleteFunc(all, func(p netip.Prefix) bool { return p.IsSingleIP() && denied[p.Addr()] && !keep[p.Addr()] })
}

// collector is one run of Collect.
type collector struct {
	opts  Options
	start time.Time
	dns   *lookups
}

// run runs one source: its fixed entries, its Fetch and the look-ups of its
// host names, then vets what came back. It returns by ctx's deadline even
// when the source's Fetch ignores ctx.
func (c *collector) run(ctx context.Context, s sources.Source) SourceReport {
	r := &sourceRun{rep: SourceReport{Name: s.Name, Required: s.Required}, timeout: c.opts.Timeout}
	entries, hosts := c.gather(ctx, s, r)
	r.rep.names = slices.Concat(hosts, r.rep.names)
	for _, e := range entries {
		c.addEntry(r, e)
	}
	for _, h := range hosts {
		c.addHost(ctx, r, h)
	}
	if len(r.rep.entries) == 0 && len(r.failures) == 0 && s.Required {
		r.problem(ctx, "gave no usable entry")
	}
	r.rep.Err = errors.Join(r.failures...)
	r.rep.Elapsed = time.Since(c.start)
	return r.finish()
}

// entry is one prefix a source gave; literal says the user wrote it by hand.
type entry struct {
	p       netip.Prefix
	literal bool
}

// gather returns a source's fixed entries and what its Fetch found, and the
// valid host names among them, each once. It starts looking the names up as
// soon as they are known.
func (c *collector) gather(ctx context.Context, s sources.Source, r *sourceRun) ([]entry, []string) {
	var entries []entry
	var hosts []string
	seen := map[string]bool{}
	addHosts := func(hs []string) {
		var fresh []string
		for _, h := range hs {
			switch {
			case !sources.ValidHost(h):
				r.problem(ctx, "invalid host name %q", h)
			case !seen[h]:
				seen[h] = true
				fresh = append(fresh, h)
			}
		}
		hosts = append(hosts, fresh...)
		c.dns.start(ctx, fresh)
	}

	addHosts(s.Hosts)
	r.rep.names = append(r.rep.names, s.Domains...)
	for _, str := range s.Prefixes {
		p, err := sources.ParsePrefix(str)
		if err != nil {
			r.problem(ctx, "%w", err)
			continue
		}
		entries = append(entries, entry{p, false})
	}
	if s.Fetch == nil {
		return entries, hosts
	}
	res, err := c.fetch(ctx, s, r)
	if err != nil {
		r.problem(ctx, "fetching: %w", err)
		return entries, hosts
	}
	for _, p := range res.Prefixes {
		entries = append(entries, entry{p, res.Literal})
	}
	addHosts(res.Hosts)
	for _, d := range res.Domains {
		if _, err := dnsfilter.ParseNames([]string{d}); err != nil {
			r.problem(ctx, "%w", err)
			continue
		}
		r.rep.names = append(r.rep.names, d)
	}
	return entries, hosts
}

// addEntry vets one prefix and adds what passes to the report.
func (c *collector) addEntry(r *sourceRun, e entry) {
	v := vet(e.p, e.literal)
	switch {
	case v.refused != "":
		r.warn("refused %s: %s", v.entry, v.refused)
	case len(v.removed) > 0:
		r.warn("%s: removed %s", v.entry, joinCuts(v.removed))
	}
	for _, k := range v.kept {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("kept %s because you wrote it in %s", k, c.localName()))
	}
	r.rep.Prefixes += len(v.allowed)
	r.rep.entries = append(r.rep.entries, v.allowed...)
}

// addHost waits for the answer for host h, vets its addresses and adds what
// passes to the report.
func (c *collector) addHost(ctx context.Context, r *sourceRun, h string) {
	ans := c.dns.wait(ctx, h)
	hr := HostReport{Host: h, Err: ans.Err}
	var refused []string
	if ans.Err == nil {
		var private bool
		hr.Addrs, refused, private = vetAddrs(ans.Addrs)
		if len(refused) > 0 {
			hint := ""
			if private {
				hint = fmt.Sprintf("; write the address in %s if you mean it", c.localName())
			}
			r.warn("%s resolved to %s: refused%s", h, strings.Join(refused, ", "), hint)
		}
		switch {
		case len(ans.Addrs) == 0:
			hr.Err = errors.New("no address in the answer")
		case len(hr.Addrs) == 0:
			hr.Err = errors.New("no usable address")
		}
	}
	// For an optional source the warning about the refused addresses
	// already says the host gave nothing.
	if hr.Err != nil && (r.rep.Required || len(refused) == 0) {
		r.problem(ctx, "host %s: %w", h, hr.Err)
	}
	r.rep.Addrs += len(hr.Addrs)
	for _, a := range hr.Addrs {
		r.rep.entries = append(r.rep.entries, netip.PrefixFrom(a, a.BitLen()))
	}
	r.rep.Hosts = append(r.rep.Hosts, hr)
}

// vetAddrs vets the addresses of a DNS answer, unmapped. refused describes
// each address refused, and private reports whether every one of them would
// pass if the user wrote it by hand.
func vetAddrs(addrs []netip.Addr) (allowed []netip.Addr, refused []string, private bool) {
	private = true
	for _, a := range addrs {
		a = a.Unmap()
		p := netip.PrefixFrom(a, a.BitLen())
		if v := vet(p, false); v.refused != "" {
			refused = append(refused, fmt.Sprintf("%s (%s)", a, v.refused))
			private = private && vet(p, true).refused == ""
			continue
		}
		allowed = append(allowed, a)
	}
	return allowed, refused, private
}

// fetch calls s.Fetch, giving up at ctx's deadline even if Fetch does not,
// and turning a panic into an error.
func (c *collector) fetch(ctx context.Context, s sources.Source, r *sourceRun) (sources.Result, error) {
	env := c.opts.Env
	env.Warn = r.warn
	type out struct {
		res sources.Result
		err error
	}
	ch := make(chan out, 1) // buffered: an abandoned Fetch can still finish
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- out{err: fmt.Errorf("the source crashed: %v", p)}
			}
		}()
		res, err := s.Fetch(ctx, env)
		ch <- out{res, err}
	}()
	select {
	case o := <-ch:
		return o.res, o.err
	case <-ctx.Done():
		return sources.Result{}, ctx.Err()
	}
}

func (c *collector) localName() string {
	return cmp.Or(c.opts.Env.LocalFile, "your local allowlist file")
}

// sourceRun gathers one source's report. Warn may be called from a Fetch
// that has been abandoned, so it locks, and drops what comes after finish;
// everything else runs on the source's own goroutine.
type sourceRun struct {
	mu       sync.Mutex
	rep      SourceReport
	failures []error
	finished bool
	timeout  time.Duration
}

func (r *sourceRun) warn(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.finished {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf(format, args...))
	}
}

// problem records something that fails a required source and is a warning
// for an optional one. format and args are as for fmt.Errorf.
func (r *sourceRun) problem(ctx context.Context, format string, args ...any) {
	err := fmt.Errorf(format, args...)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && r.timeout > 0 {
		err = fmt.Errorf("%w (the time limit of %s ran out)", err, r.timeout)
	}
	if r.rep.Required {
		r.failures = append(r.failures, err)
		return
	}
	r.warn("%v", err)
}

func (r *sourceRun) finish() SourceReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = true
	return r.rep
}

// lookups resolves each host name once, however many sources name it.
type lookups struct {
	r  Resolver
	mu sync.Mutex
	m  map[string]*lookup
}

type lookup struct {
	done chan struct{}
	ans  resolve.Answer
}

// start begins looking up the hosts not asked for yet, concurrently.
func (l *lookups) start(ctx context.Context, hosts []string) {
	l.mu.Lock()
	var fresh []string
	var pending []*lookup
	for _, h := range hosts {
		if _, ok := l.m[h]; !ok {
			lk := &lookup{done: make(chan struct{})}
			l.m[h] = lk
			fresh = append(fresh, h)
			pending = append(pending, lk)
		}
	}
	l.mu.Unlock()
	if len(fresh) == 0 {
		return
	}
	go func() {
		var answers []resolve.Answer
		if l.r != nil {
			answers = l.r.LookupAll(ctx, fresh)
		}
		for i, lk := range pending {
			switch {
			case l.r == nil:
				lk.ans = resolve.Answer{Host: fresh[i], Err: errors.New("no resolver configured")}
			case i >= len(answers) || (answers[i].Host != "" && answers[i].Host != fresh[i]):
				lk.ans = resolve.Answer{Host: fresh[i], Err: errors.New("the resolver gave no answer for it")}
			default:
				lk.ans = answers[i]
			}
			close(lk.done)
		}
	}()
}

// wait returns the answer for host, which start has been called for, or
// gives up when ctx ends.
func (l *lookups) wait(ctx context.Context, host string) resolve.Answer {
	l.mu.Lock()
	lk := l.m[host]
	l.mu.Unlock()
	select {
	case <-lk.done:
		return lk.ans
	case <-ctx.Done():
		return resolve.Answer{Host: host, Err: fmt.Errorf("no answer: %w", ctx.Err())}
	}
}

func joinCuts(cs []cut) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}
