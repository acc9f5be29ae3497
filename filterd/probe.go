package filterd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// probeTimeout bounds one Probe.
const probeTimeout = 3 * time.Second

// Answer is what the filter said to a Probe.
type Answer struct {
	Rcode int
	Addrs []netip.Addr // A and AAAA records
	EDE   string       // the Extended DNS Error's text, if any
}

// Probe asks the filter at addr for name's A records over UDP, as a
// container would, and returns its answer.
func Probe(ctx context.Context, addr netip.AddrPort, name string) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	q.SetEdns0(1232, false)
	c := &dns.Client{Net: "udp", Timeout: probeTimeout}
	r, _, err := c.ExchangeContext(ctx, q, addr.String())
	if err != nil {
		return Answer{}, fmt.Errorf("asking the DNS filter at %s for %s: %w", addr, name, err)
	}
	if r.Id != q.Id || len(r.Question) != 1 || !dns.IsFqdn(r.Question[0].Name) {
		return Answer{}, errors.New("the DNS filter's answer does not match the question")
	}
	a := Answer{Rcode: r.Rcode}
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(rr.A); ok {
				a.Addrs = append(a.Addrs, ip.Unmap())
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(rr.AAAA); ok {
				a.Addrs = append(a.Addrs, ip)
			}
		}
	}
	if opt := r.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				a.EDE = e.ExtraText
			}
		}
	}
	return a, nil
}
