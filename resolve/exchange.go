package resolve

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// RcodeError is an answer whose rcode is neither NOERROR nor NXDOMAIN, such
// as SERVFAIL or REFUSED.
type RcodeError struct {
	Server string
	Rcode  int
}

func (e *RcodeError) Error() string {
	name, ok := dns.RcodeToString[e.Rcode]
	if !ok {
		name = fmt.Sprintf("rcode %d", e.Rcode)
	}
	return fmt.Sprintf("server %s answered %s", e.Server, name)
}

// serversError holds one error per server asked, in order.
type serversError []error

func (e serversError) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e serversError) Unwrap() []error { return e }

// exchange sends q, which holds one question, to the servers in order until
// one gives a NOERROR or NXDOMAIN answer, and returns that answer and the
// server that gave it. Each server gets Attempts tries of at most Timeout
// each over UDP, and a truncated UDP answer is asked again over TCP. A
// server that answers with another rcode is not asked again; the next one
// is. An answer must echo the question of q. exchange stops when ctx is
// done.
func (r *Resolver) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, string, error) {
	if len(r.Servers) == 0 {
		return nil, "", errors.New("no DNS servers configured")
	}
	var errs serversError
	for _, server := range r.Servers {
		resp, err := r.ask(ctx, server, q)
		if err == nil {
			return resp, server, nil
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		errs = append(errs, err)
	}
	return nil, "", errs
}

// ask queries one server, retrying on timeouts, network errors and malformed
// answers.
func (r *Resolver) ask(ctx context.Context, server string, q *dns.Msg) (*dns.Msg, error) {
	var err error
	for range r.attempts() {
		var resp *dns.Msg
		resp, err = r.once(ctx, "udp", server, q)
		if err == nil && resp.Truncated {
			resp, err = r.once(ctx, "tcp", server, q)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess, dns.RcodeNameError:
			return resp, nil
		}
		return nil, &RcodeError{Server: server, Rcode: resp.Rcode}
	}
	return nil, fmt.Errorf("server %s: no usable answer in %d attempts of %s: %w",
		server, r.attempts(), r.timeout(), err)
}

// once makes one exchange with a fresh ID over network ("udp" or "tcp").
func (r *Resolver) once(ctx context.Context, network, server string, q *dns.Msg) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout())
	defer cancel()
	c := &dns.Client{Net: network, Timeout: r.timeout()}
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	// The client takes only the deadline from ctx, so a cancellation closes
	// the connection to end a read at once.
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.Canceled) {
			conn.Close()
		}
	})
	defer stop()

	m := q.Copy()
	m.Id = dns.Id()
	resp, _, err := c.ExchangeWithConnContext(ctx, m, conn)
	if err != nil {
		return nil, err
	}
	if err := matches(m, resp); err != nil {
		return nil, fmt.Errorf("bad answer over %s: %w", network, err)
	}
	return resp, nil
}

// matches checks that resp answers q. The client has already checked the ID.
func matches(q, resp *dns.Msg) error {
	if !resp.Response {
		return errors.New("message is not a response")
	}
	if resp.Opcode != q.Opcode {
		return fmt.Errorf("opcode %d, asked %d", resp.Opcode, q.Opcode)
	}
	if len(resp.Question) == 0 && resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
		return nil // some servers refuse without echoing the question
	}
	want := q.Question[0]
	if len(resp.Question) != 1 {
		return fmt.Errorf("%d questions in answer to %s", len(resp.Question), qstr(want))
	}
	got := resp.Question[0]
	if got.Qtype != want.Qtype || got.Qclass != want.Qclass || !strings.EqualFold(got.Name, want.Name) {
		return fmt.Errorf("answer is for %s, asked %s", qstr(got), qstr(want))
	}
	return nil
}

func qstr(q dns.Question) string {
	return q.Name + " " + dns.TypeToString[q.Qtype]
}
