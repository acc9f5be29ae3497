package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// upstreams forwards queries to the resolvers of the host.
//
// It differs from resolve.Resolver's exchange, which looks up names for
// `mage allowlist`, in what a long-running forwarder needs: it remembers
// which upstream answered last and asks that one first, so a dead first
// upstream costs one timeout once rather than on every query; it tries each
// upstream once per query, since the client's stub resolver retries on its
// own; and it requires every answer to echo the question.
type upstreams struct {
	addrs   []string
	timeout time.Duration
	dial    func(ctx context.Context, network, addr string) (net.Conn, error) // nil: the system's
	first   atomic.Uint32                                                     // index of the upstream asked first
}

func newUpstreams(addrs []string, timeout time.Duration) (*upstreams, error) {
	if len(addrs) == 0 {
		return nil, errors.New("no upstream resolvers")
	}
	u := &upstreams{timeout: timeout}
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || ap.Port() == 0 {
			return nil, fmt.Errorf("upstream %q is not ip:port (for IPv6 [ip]:port)", a)
		}
		u.addrs = append(u.addrs, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String())
	}
	return u, nil
}

// exchange sends q to the upstreams in turn until one gives a NOERROR or
// NXDOMAIN answer to it.
func (u *upstreams) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, error) {
	first := int(u.first.Load())
	var errs []error
	for i := range u.addrs {
		n := (first + i) % len(u.addrs)
		resp, err := u.ask(ctx, u.addrs[n], q)
		if err == nil {
			if n != first {
				u.first.Store(uint32(n))
			}
			return resp, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", u.addrs[n], err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// ask sends q to one upstream over UDP, and again over TCP when the UDP
// answer is truncated.
func (u *upstreams) ask(ctx context.Context, addr string, q *dns.Msg) (*dns.Msg, error) {
	resp, err := u.once(ctx, "udp", addr, q)
	if resp != nil && resp.Truncated {
		resp, err = u.once(ctx, "tcp", addr, q)
	}
	if err != nil {
		return nil, err
	}
	switch resp.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
		return resp, nil
	}
	return nil, fmt.Errorf("answered %s", rcodeString(resp.Rcode))
}

// once makes one exchange over network with a fresh random ID. A UDP answer
// with another ID is discarded while the client waits on (miekg/dns does
// that); an answer with the right ID that does not echo the question is an
// error. When a truncated UDP answer does not unpack, once returns it
// anyway, with the error, so that ask moves on to TCP.
func (u *upstreams) once(ctx context.Context, network, addr string, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	m := q.Copy()
	m.Id = dns.Id()
	c := &dns.Client{Net: network, Timeout: u.timeout}
	var resp *dns.Msg
	var err error
	if u.dial == nil {
		resp, _, err = c.ExchangeContext(ctx, m, addr)
	} else {
		var nc net.Conn
		if nc, err = u.dial(ctx, network, addr); err == nil {
			conn := &dns.Conn{Conn: nc}
			resp, _, err = c.ExchangeWithConnContext(ctx, m, conn)
			conn.Close()
		}
	}
	if err != nil {
		if resp != nil && resp.Truncated && resp.Id == m.Id && network == "udp" {
			return resp, err
		}
		return nil, fmt.Errorf("over %s: %w", network, err)
	}
	if err := matches(m, resp); err != nil {
		return nil, fmt.Errorf("over %s: %w", network, err)
	}
	return resp, nil
}

// matches checks that resp answers q: same ID, a response to the same
// opcode, and the same single question.
func matches(q, resp *dns.Msg) error {
	switch {
	case resp.Id != q.Id:
		return fmt.Errorf("answer has ID %d, asked with %d", resp.Id, q.Id)
	case !resp.Response:
		return errors.New("message is not a response")
	case resp.Opcode != q.Opcode:
		return fmt.Errorf("opcode %s, asked %s", opcodeString(resp.Opcode), opcodeString(q.Opcode))
	case len(resp.Question) != 1:
		return fmt.Errorf("%d questions in the answer", len(resp.Question))
	}
	got, want := resp.Question[0], q.Question[0]
	if got.Qtype != want.Qtype || got.Qclass != want.Qclass || !strings.EqualFold(got.Name, want.Name) {
		return fmt.Errorf("answer is for %s %s, asked %s %s",
			got.Name, dns.Type(got.Qtype), want.Name, dns.Type(want.Qtype))
	}
	return nil
}

func rcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rc)
}
