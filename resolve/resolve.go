// Package resolve looks up host names with github.com/miekg/dns: A and AAAA
// together, CNAME chains followed to a bounded depth, TCP when an answer is
// truncated, a timeout and a retry per query, every name concurrently.
//
// A Resolver holds no state besides its settings, so one value may serve many
// goroutines at once.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Defaults used when a Resolver field is zero.
const (
	DefaultTimeout  = 2 * time.Second
	DefaultAttempts = 2
	DefaultMaxCNAME = 8
	DefaultWorkers  = 64
)

// Errors an Answer may wrap; test them with errors.Is.
var (
	// ErrNotExist means a server answered NXDOMAIN for the host or for a
	// name its CNAME chain leads to.
	ErrNotExist = errors.New("name does not exist")
	// ErrNoRecords means the name exists but has neither A nor AAAA records.
	ErrNoRecords = errors.New("no A or AAAA records")
	// ErrCNAMELoop means a CNAME chain leads back to a name already on it.
	ErrCNAMELoop = errors.New("CNAME loop")
	// ErrCNAMEChain means a CNAME chain is longer than Resolver.MaxCNAME.
	ErrCNAMEChain = errors.New("CNAME chain too long")
)

// Answer is the outcome of looking up one host.
type Answer struct {
	Host  string
	Addrs []netip.Addr // unmapped, de-duplicated, sorted
	Err   error        // nil when at least one address was found
}

// Resolver asks a fixed list of DNS servers. Its zero fields take the
// Default values above. A Resolver is safe for concurrent use as long as its
// fields are not changed meanwhile.
type Resolver struct {
	Servers  []string      // "ip:port", asked in order until one answers
	Timeout  time.Duration // per query attempt
	Attempts int           // tries per server
	MaxCNAME int           // longest CNAME chain followed
	Workers  int           // hosts LookupAll resolves at once
}

func (r *Resolver) timeout() time.Duration { return orDefault(r.Timeout, DefaultTimeout) }
func (r *Resolver) attempts() int          { return orDefault(r.Attempts, DefaultAttempts) }
func (r *Resolver) maxCNAME() int          { return orDefault(r.MaxCNAME, DefaultMaxCNAME) }
func (r *Resolver) workers() int           { return orDefault(r.Workers, DefaultWorkers) }

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Lookup resolves one host: it asks for A and AAAA records at the same time
// and follows CNAME chains. Only records whose owner name is on the chain
// count; addresses come back exactly as the servers gave them (private and
// loopback ones included), IPv4-mapped IPv6 addresses unmapped. An answer
// with only one address family is a success.
func (r *Resolver) Lookup(ctx context.Context, host string) Answer {
	if err := checkHost(host); err != nil {
		return Answer{Host: host, Err: fmt.Errorf("resolve %q: %w", host, err)}
	}
	if err := ctx.Err(); err != nil {
		return Answer{Host: host, Err: fmt.Errorf("resolve %s: %w", host, err)}
	}
	name := dns.CanonicalName(host)

	var v4, v6 []netip.Addr
	var err4, err6 error
	var wg sync.WaitGroup
	wg.Go(func() { v4, err4 = r.chase(ctx, name, dns.TypeA) })
	wg.Go(func() { v6, err6 = r.chase(ctx, name, dns.TypeAAAA) })
	wg.Wait()

	addrs := append(v4, v6...)
	if len(addrs) == 0 {
		return Answer{Host: host, Err: fmt.Errorf("resolve %s: %w", host, combine(err4, err6))}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	return Answer{Host: host, Addrs: slices.Compact(addrs)}
}

// LookupAll resolves every host concurrently, at most Workers at a time; the
// answers come back in the order of hosts.
func (r *Resolver) LookupAll(ctx context.Context, hosts []string) []Answer {
	out := make([]Answer, len(hosts))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(r.workers(), len(hosts)) {
		wg.Go(func() {
			for i := range next {
				out[i] = r.Lookup(ctx, hosts[i])
			}
		})
	}
	for i := range hosts {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

func checkHost(host string) error {
	if host == "" {
		return errors.New("empty host name")
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return errors.New("is an IP address, not a host name")
	}
	if _, ok := dns.IsDomainName(host); !ok {
		return errors.New("not a valid host name")
	}
	return nil
}

// chase asks for qtype records of name, following CNAMEs through the answer
// sections and querying again where an answer stops short of the end of the
// chain. A NODATA answer gives neither addresses nor error.
func (r *Resolver) chase(ctx context.Context, name string, qtype uint16) ([]netip.Addr, error) {
	chain := []string{name}
	target := name
	for {
		q := new(dns.Msg).SetQuestion(target, qtype)
		q.SetEdns0(1232, false)
		resp, server, err := r.exchange(ctx, q)
		if err != nil {
			return nil, err
		}
		owner := target
		for {
			addrs, next, err := step(resp.Answer, owner, qtype)
			if err != nil {
				return nil, fmt.Errorf("%w (answer from %s)", err, server)
			}
			if len(addrs) > 0 {
				return addrs, nil
			}
			if next == "" {
				break
			}
			if slices.Contains(chain, next) {
				return nil, fmt.Errorf("%w %s", ErrCNAMELoop, arrows(append(chain, next)))
			}
			if len(chain) > r.maxCNAME() {
				return nil, fmt.Errorf("%w: more than %d CNAMEs in %s", ErrCNAMEChain, r.maxCNAME(), arrows(append(chain, next)))
			}
			chain = append(chain, next)
			owner = next
		}
		// The answer holds nothing more for owner, the end of the chain so far.
		switch {
		case resp.Rcode == dns.RcodeNameError:
			return nil, notExist(chain, server)
		case owner == target:
			return nil, nil // NODATA
		}
		target = owner
	}
}

// step looks at the records of the answer section owned by owner. It returns
// the addresses of type qtype, if there are any; otherwise the target of
// owner's CNAME, or "" when there is none. Records of other owners are
// ignored here.
func step(answer []dns.RR, owner string, qtype uint16) (addrs []netip.Addr, next string, err error) {
	for _, rr := range answer {
		h := rr.Header()
		if h.Class != dns.ClassINET || dns.CanonicalName(h.Name) != owner {
			continue
		}
		var ip []byte
		switch v := rr.(type) {
		case *dns.A:
			if qtype == dns.TypeA {
				ip = v.A
			}
		case *dns.AAAA:
			if qtype == dns.TypeAAAA {
				ip = v.AAAA
			}
		case *dns.CNAME:
			t := dns.CanonicalName(v.Target)
			if next != "" && next != t {
				return nil, "", fmt.Errorf("%s has two CNAMEs (%s and %s)", plain(owner), plain(next), plain(t))
			}
			next = t
		}
		if addr, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, addr.Unmap())
		}
	}
	if len(addrs) > 0 {
		return addrs, "", nil // a CNAME beside addresses is malformed; the addresses win
	}
	return nil, next, nil
}

func notExist(chain []string, server string) error {
	if len(chain) == 1 {
		return fmt.Errorf("%w (NXDOMAIN from %s)", ErrNotExist, server)
	}
	return fmt.Errorf("CNAME target %s: %w (NXDOMAIN from %s; chain %s)",
		plain(chain[len(chain)-1]), ErrNotExist, server, arrows(chain))
}

// combine merges the errors of the A and AAAA lookups when neither found an
// address; identical messages are reported once.
func combine(a, b error) error {
	switch {
	case a == nil && b == nil:
		return ErrNoRecords
	case a == nil:
		return b
	case b == nil || a.Error() == b.Error():
		return a
	}
	return fmt.Errorf("asking for A: %w; asking for AAAA: %w", a, b)
}

func arrows(chain []string) string {
	names := make([]string, len(chain))
	for i, n := range chain {
		names[i] = plain(n)
	}
	return strings.Join(names, " -> ")
}

// plain drops the trailing dot of a fully qualified name for messages.
func plain(name string) string {
	if name == "." {
		return name
	}
	return strings.TrimSuffix(name, ".")
}
