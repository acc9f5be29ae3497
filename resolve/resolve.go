// Package resolve looks up host names with github.com/miekg/dns: A and AAAA
// together, CNAME chains followed to a bounded depth, TCP when an answer is
// truncated, a timeout and a retry per query, every name concurrently.
package resolve

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Answer is the outcome of looking up one host.
type Answer struct {
	Host  string
	Addrs []netip.Addr  // unmapped, de-duplicated, sorted
	TTL   time.Duration // the smallest TTL along the chain
	Err   error         // nil when at least one address was found
}

// Resolver asks a fixed list of DNS servers.
type Resolver struct {
	Servers  []string      // "ip:port", asked in order until one answers
	Timeout  time.Duration // per query attempt
	Attempts int           // tries per server
	MaxCNAME int           // longest CNAME chain followed
}

// FromResolvConf returns a Resolver using the servers in a resolv.conf file.
func FromResolvConf(path string) (*Resolver, error) {
	return nil, errors.New("resolve: not implemented yet")
}

// Lookup resolves one host.
func (r *Resolver) Lookup(ctx context.Context, host string) Answer {
	return Answer{Host: host, Err: errors.New("resolve: not implemented yet")}
}

// LookupAll resolves every host concurrently; the answers come back in the
// order of hosts.
func (r *Resolver) LookupAll(ctx context.Context, hosts []string) []Answer {
	out := make([]Answer, len(hosts))
	for i, h := range hosts {
		out[i] = r.Lookup(ctx, h)
	}
	return out
}
