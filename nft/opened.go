//go:build linux

package nft

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/policy"
)

// Opener opens addresses in the opened sets of our table (OpenedSetNames),
// each for its own time, over netlink: one batch per call, no process
// started. The DNS filter calls it, as root, with the addresses of each
// answer before it sends the answer.
type Opener struct {
	conn   *nftables.Conn
	table  *nftables.Table
	prefix string
	now    func() time.Time

	mu         sync.Mutex
	set4, set6 *nftables.Set // looked up on first use, and again after a failure
	// until records how long each address is open, so that an address
	// already open long enough costs nothing.
	until     map[netip.Addr]time.Time
	nextPrune time.Time
}

// NewOpener returns an Opener for table (DefaultTable when empty) and its
// set prefix (policy.Policy.Table). netnsFd names the network namespace to
// work in; -1 is this process's. Close releases the netlink socket.
func NewOpener(table, prefix string, netnsFd int) (*Opener, error) {
	if table == "" {
		table = DefaultTable
	}
	if !policy.ValidIdentifier(table) || !policy.ValidIdentifier(prefix) {
		return nil, fmt.Errorf("nftables table %q or set prefix %q: want letters, digits and '_', starting with a letter", table, prefix)
	}
	opts := []nftables.ConnOption{nftables.AsLasting()}
	if netnsFd >= 0 {
		opts = append(opts, nftables.WithNetNSFd(netnsFd))
	}
	conn, err := nftables.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("opening a netlink connection to nftables: %w", err)
	}
	return &Opener{
		conn:   conn,
		table:  &nftables.Table{Name: table, Family: nftables.TableFamilyINet},
		prefix: prefix,
		now:    time.Now,
		until:  map[netip.Addr]time.Time{},
	}, nil
}

// Close releases the netlink connection.
func (o *Opener) Close() error { return o.conn.CloseLasting() }

// Open makes every address in addrs reachable for at least ttl from now:
// it adds the new ones to the opened sets and renews those that would
// expire sooner, in one transaction. An address already open for longer
// keeps its time. Every address must be a global unicast address.
func (o *Opener) Open(ctx context.Context, addrs []netip.Addr, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	addrs, err := firewall.CheckOpen(addrs, ttl)
	if err != nil {
		return err
	}
	ttl = ttl.Truncate(time.Millisecond) // the kernel counts milliseconds
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	o.prune(now)
	until := now.Add(ttl)
	var add, renew []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		switch u, ok := o.until[a]; {
		case ok && !u.Before(until.Add(-time.Second)):
			// open long enough already
		case ok && u.After(now.Add(time.Second)):
			renew = append(renew, a)
		default:
			add = append(add, a)
		}
	}
	if len(add)+len(renew) == 0 {
		return nil
	}
	if err := o.lookup(); err != nil {
		return err
	}
	// Renewing is a delete and an add in one batch: an add alone leaves an
	// existing element's timeout as it was on older kernels.
	err = errors.Join(o.queue(o.conn.SetDeleteElements, renew, 0), o.queue(o.conn.SetAddElements, append(add, renew...), ttl))
	if err == nil {
		err = o.conn.Flush()
	}
	if err != nil {
		// An element due to be renewed may have expired meanwhile, and its
		// delete fails the whole batch: renew one by one, ignoring that.
		for _, a := range renew {
			if o.queue(o.conn.SetDeleteElements, []netip.Addr{a}, 0) == nil {
				_ = o.conn.Flush()
			}
		}
		err = o.queue(o.conn.SetAddElements, append(add, renew...), ttl)
		if err == nil {
			err = o.conn.Flush()
		}
		if err != nil {
			o.set4, o.set6 = nil, nil // the table may have been replaced
			return fmt.Errorf("opening %d addresses in nftables table %s: %w", len(add)+len(renew), o.table.Name, err)
		}
	}
	for _, a := range append(add, renew...) {
		o.until[a] = until
	}
	return nil
}

// Revoke closes addrs at once: the DNS filter calls it for the addresses of
// names it no longer answers (`mage allow NAME -remove`, a new deny). Each
// address is deleted on its own, so that one that expired meanwhile does
// not keep the others open.
func (o *Opener) Revoke(ctx context.Context, addrs []netip.Addr) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.lookup(); err != nil {
		return err
	}
	var errs []error
	for _, a := range addrs {
		a = a.Unmap()
		if _, ok := o.until[a]; !ok {
			continue
		}
		delete(o.until, a)
		if err := o.queue(o.conn.SetDeleteElements, []netip.Addr{a}, 0); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := o.conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("closing %s in nftables table %s: %w", a, o.table.Name, err))
		}
	}
	return errors.Join(errs...)
}

// lookup finds the opened sets, with their flags: a set without its timeout
// flag would make netlink drop every element's timeout.
func (o *Opener) lookup() error {
	if o.set4 != nil && o.set6 != nil {
		return nil
	}
	n4, n6 := OpenedSetNames(o.prefix)
	var errs []error
	for _, s := range []struct {
		name string
		into **nftables.Set
	}{{n4, &o.set4}, {n6, &o.set6}} {
		set, err := o.conn.GetSetByName(o.table, s.name)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("nftables set %s in table %s: %w (is the firewall up with the DNS filter?)", s.name, o.table.Name, err))
		case !set.HasTimeout:
			errs = append(errs, fmt.Errorf("nftables set %s in table %s has no timeout flag", s.name, o.table.Name))
		default:
			*s.into = set
		}
	}
	return errors.Join(errs...)
}

// queue adds one operation per address family to the pending batch.
func (o *Opener) queue(op func(*nftables.Set, []nftables.SetElement) error, addrs []netip.Addr, ttl time.Duration) error {
	var e4, e6 []nftables.SetElement
	for _, a := range addrs {
		e := nftables.SetElement{Key: a.AsSlice(), Timeout: ttl}
		if a.Is4() {
			e4 = append(e4, e)
		} else {
			e6 = append(e6, e)
		}
	}
	var errs []error
	if len(e4) > 0 {
		errs = append(errs, op(o.set4, e4))
	}
	if len(e6) > 0 {
		errs = append(errs, op(o.set6, e6))
	}
	return errors.Join(errs...)
}

// prune forgets addresses whose time has passed, at most every half minute.
func (o *Opener) prune(now time.Time) {
	if now.Before(o.nextPrune) {
		return
	}
	for a, u := range o.until {
		if !u.After(now) {
			delete(o.until, a)
		}
	}
	o.nextPrune = now.Add(30 * time.Second)
}
