package pf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

// Opener opens addresses in the DNS filter's table of our anchor
// (OpenedTable) for the DNS filter, which calls it as root with the
// addresses of each answer before it sends the answer. A pf table keeps no
// timeout of its own, so the Opener keeps each address's expiry and Expire
// deletes the addresses whose time is up. Each answer costs at most one
// pfctl call (`-T add a b c`), none when its addresses are open long enough
// already; each Expire one `-T show` and at most one `-T delete`.
type Opener struct {
	run    proc.Runner
	anchor string // the anchor's full path
	table  string // the opened table
	now    func() time.Time

	// busy is held while pfctl changes or reads the table, so that until
	// and the table change together. It is a channel so that waiting for
	// it ends with the caller's context.
	busy chan struct{}

	mu sync.Mutex
	// until holds the addresses in the table, each with the time it is open
	// until.
	until map[netip.Addr]time.Time
}

// NewOpener returns an Opener for the anchor com.apple/<anchor>
// (Config.Anchor) and the allowlist table named table (policy.Policy.Table),
// whose opened table is OpenedTable(table). It runs pfctl through r with
// root rights: directly, since the DNS filter runs as root.
func NewOpener(r proc.Runner, anchor, table string) (*Opener, error) {
	if !policy.ValidIdentifier(anchor) || !policy.ValidIdentifier(table) || len(OpenedTable(table)) > maxTableName {
		return nil, fmt.Errorf("pf: anchor %q or table %q: want letters, digits and '_', starting with a letter, the table at most %d characters",
			anchor, table, maxTableName-len(OpenedTable("")))
	}
	return &Opener{
		run:    r,
		anchor: AnchorPath(anchor),
		table:  OpenedTable(table),
		now:    time.Now,
		busy:   make(chan struct{}, 1),
		until:  map[netip.Addr]time.Time{},
	}, nil
}

// Open makes every address in addrs reachable for at least ttl from now:
// it adds those not in the table in one pfctl call, and gives those in it a
// later expiry where ttl asks for one. It may be called from many
// goroutines at once. Every address must be a public
// unicast address. An error means that some of them may not be open.
func (o *Opener) Open(ctx context.Context, addrs []netip.Addr, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	addrs, err := firewall.CheckOpen(addrs, ttl)
	if err != nil {
		return err
	}
	o.mu.Lock()
	now := o.now()
	until := now.Add(ttl)
	var add []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		switch u, ok := o.until[a]; {
		case ok:
			// In the table, where it stays until Expire finds its time up
			// (Expire forgets an address before it deletes it), so a new
			// expiry is all it takes, even when the old one has passed.
			if until.After(u) {
				o.until[a] = until
			}
		case !slices.Contains(add, a):
			add = append(add, a)
		}
	}
	o.mu.Unlock()
	if len(add) == 0 {
		return nil
	}

	release, err := o.hold(ctx)
	if err != nil {
		return err
	}
	defer release()
	args := []string{"-a", o.anchor, "-t", o.table, "-T", "add"}
	for _, a := range add {
		args = append(args, a.String())
	}
	res, err := runPfctl(ctx, o.run, nil, args...)
	if err != nil {
		return fmt.Errorf("opening %d addresses in the pf table <%s>: %w", len(add), o.table, err)
	}
	if strings.Contains(string(res.Stderr), "table created") {
		// pfctl made the table: the anchor has none, so no rule of ours
		// names it and nothing is open. Take away what the add made.
		_, kerr := runPfctl(context.WithoutCancel(ctx), o.run, nil, "-a", o.anchor, "-t", o.table, "-T", "kill")
		return errors.Join(fmt.Errorf("the pf anchor %s has no table <%s>: the firewall is not up with the DNS filter", o.anchor, o.table), kerr)
	}
	o.mu.Lock()
	for _, a := range add {
		if o.until[a].Before(until) {
			o.until[a] = until
		}
	}
	o.mu.Unlock()
	return nil
}

// Reopen adds back, in one pfctl call, every address that is open and whose
// time is not up, for after the anchor was flushed and loaded again while
// the filter ran. (A reload alone keeps the table: `table <x> persist`
// without addresses defines it without PFR_FLAG_ADDRSTOO, which leaves the
// contents of a live table as they are; parse.y and pfctl_table.c.)
func (o *Opener) Reopen(ctx context.Context) error {
	release, err := o.hold(ctx)
	if err != nil {
		return err
	}
	defer release()
	o.mu.Lock()
	now := o.now()
	args := []string{"-a", o.anchor, "-t", o.table, "-T", "add"}
	for a, u := range o.until {
		if u.After(now) {
			args = append(args, a.String())
		}
	}
	o.mu.Unlock()
	if len(args) == 6 {
		return nil
	}
	if _, err := runPfctl(ctx, o.run, nil, args...); err != nil {
		return fmt.Errorf("opening %d addresses again in the pf table <%s>: %w", len(args)-6, o.table, err)
	}
	return nil
}

// Revoke closes addrs at once (one Expire): the DNS filter calls it for
// the addresses of names it no longer answers.
func (o *Opener) Revoke(ctx context.Context, addrs []netip.Addr) error {
	o.mu.Lock()
	for _, a := range addrs {
		delete(o.until, a.Unmap())
	}
	o.mu.Unlock()
	return o.Expire(ctx)
}

// Expire deletes from the table, in one pfctl call, every address whose
// time is up, and anything else the table holds that no Open put there
// (what an earlier run of the DNS filter left behind). It forgets the
// addresses the table no longer holds (the anchor was flushed), so that the
// next Open adds them again. A table that does not exist holds nothing to
// expire. An address stays open until the first Expire after its time:
// call it every few seconds.
func (o *Opener) Expire(ctx context.Context) error {
	release, err := o.hold(ctx)
	if err != nil {
		return err
	}
	defer release()
	res, err := runPfctl(ctx, o.run, nil, "-a", o.anchor, "-t", o.table, "-T", "show")
	if err != nil {
		var pe *pfctlError
		if errors.As(err, &pe) && strings.Contains(pe.stderr, "Table does not exist") {
			o.mu.Lock()
			clear(o.until)
			o.mu.Unlock()
			return nil
		}
		return fmt.Errorf("reading the pf table <%s>: %w", o.table, err)
	}
	entries, err := parseShow(string(res.Stdout))
	if err != nil {
		return fmt.Errorf("reading the pf table <%s>: %w", o.table, err)
	}
	o.mu.Lock()
	now := o.now()
	held := map[netip.Addr]bool{}
	var del []string
	for _, e := range entries {
		if e.single {
			held[e.addr] = true
			if u, ok := o.until[e.addr]; ok && u.After(now) {
				continue
			}
		}
		del = append(del, e.text)
	}
	for a, u := range o.until {
		if !held[a] || !u.After(now) {
			delete(o.until, a)
		}
	}
	o.mu.Unlock()
	if len(del) == 0 {
		return nil
	}
	// From standard input: the list can be longer than a command line.
	stdin := []byte(strings.Join(del, "\n") + "\n")
	if _, err := runPfctl(ctx, o.run, stdin, "-a", o.anchor, "-t", o.table, "-T", "delete", "-f", "-"); err != nil {
		// What is still in the table is no longer in until: the next
		// Expire deletes it.
		return fmt.Errorf("closing %d addresses in the pf table <%s>: %w", len(del), o.table, err)
	}
	return nil
}

// ExpireEvery runs Expire every interval until ctx ends, and returns ctx's
// error. A failed Expire is handed to report (when not nil) and tried again
// at the next tick.
func (o *Opener) ExpireEvery(ctx context.Context, interval time.Duration, report func(error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if err := o.Expire(ctx); err != nil && report != nil && ctx.Err() == nil {
				report(err)
			}
		}
	}
}

// hold waits for the table to be free, or for ctx to end.
func (o *Opener) hold(ctx context.Context) (release func(), err error) {
	select {
	case o.busy <- struct{}{}:
		return func() { <-o.busy }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// shownEntry is one line of `pfctl -T show`.
type shownEntry struct {
	text   string     // as pfctl takes it back, rendered from the parsed value
	single bool       // a single address, not negated
	addr   netip.Addr // when single
}

// parseShow reads `pfctl -t T -T show`: one entry per line, indented,
// "[!]address[/bits]". Anything else is an error, so that unreadable output
// never goes back to pfctl.
func parseShow(out string) ([]shownEntry, error) {
	var entries []shownEntry
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		w := fields[0]
		neg := strings.HasPrefix(w, "!")
		p, err := netip.ParsePrefix(strings.TrimPrefix(w, "!"))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimPrefix(w, "!"))
			if aerr != nil {
				err = aerr
			} else {
				p, err = netip.PrefixFrom(a, a.BitLen()), nil
			}
		}
		if err != nil || len(fields) != 1 || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("pfctl -T show printed an unexpected line: %q", line)
		}
		p = p.Masked()
		e := shownEntry{text: p.String()}
		if p.IsSingleIP() {
			e.text = p.Addr().String()
			e.single, e.addr = !neg, p.Addr()
		}
		if neg {
			e.text = "!" + e.text
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// EndStates kills the states from the container network n to addrs
// (`pfctl -k NET -k ADDR`): the connections open to addresses the DNS
// filter closed, which the states would otherwise keep passing.
func EndStates(ctx context.Context, r proc.Runner, n policy.Network, addrs []netip.Addr) error {
	var errs []error
	for _, a := range addrs {
		a = a.Unmap()
		net := n.Subnet(a)
		if !net.IsValid() {
			continue
		}
		if _, err := runPfctl(ctx, r, nil, "-k", net.String(), "-k", a.String()); err != nil {
			errs = append(errs, fmt.Errorf("killing the states to %s: %w", a, err))
		}
	}
	return errors.Join(errs...)
}
