package dnsfilter

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Errors of lookup; the client is told which, the log also why.
var (
	errBusy     = errors.New("too busy")
	errUpstream = errors.New("no upstream resolver gave a usable answer")
	errFirewall = errors.New("opening the firewall failed")
)

// key names a cached answer. Every query goes upstream with the same EDNS
// settings (see fetch), so the answer depends on nothing else.
type key struct {
	name  string // canonical: lower case, fully qualified
	qtype uint16
}

// entry is an answer as the filter hands it out. It is never changed once
// made, so cached entries are shared between goroutines.
//
// A cached entry never needs a new Open: it expires when its first record
// runs out, and its addresses were opened for at least the longest TTL of
// its address records. Handler.Flush empties the cache when the firewall
// forgets what was opened.
type entry struct {
	rcode   int
	answer  []dns.RR     // TTLs as of stored, none above MaxTTL
	ns      []dns.RR     // only the SOA of a negative answer
	addrs   []netip.Addr // unmapped, sorted, distinct
	targets []string     // the CNAME targets on the chain, in order
	stored  time.Time
	expires time.Time     // when the first record runs out
	openFor time.Duration // what the addresses were opened for
}

// lookup returns the answer for k, from the cache or from the upstreams.
// Concurrent queries for the same key share one upstream query and one Open;
// at most maxFetches keys are looked up at once, and a query beyond that
// fails at once rather than holding a goroutine for seconds.
func (h *Handler) lookup(ctx context.Context, q query, k key) (*entry, error) {
	if e := h.cache.get(k, h.now()); e != nil {
		return e, nil
	}
	return h.flights.do(ctx, k, func() (*entry, error) {
		select {
		case h.slots <- struct{}{}:
			defer func() { <-h.slots }()
		default:
			return nil, fmt.Errorf("%w: more than %d names being looked up at once", errBusy, cap(h.slots))
		}
		return h.fetch(ctx, q, k)
	})
}

// fetch asks the upstreams for k, vets the answer, opens its addresses and
// caches it. The upstream query carries no option and no flag of the
// client's (no DO, no CD, no EDNS options such as Client Subnet): they are
// data the container chose, and the answers are rewritten anyway, which
// would break DNSSEC signatures.
func (h *Handler) fetch(ctx context.Context, q query, k key) (*entry, error) {
	m := new(dns.Msg).SetQuestion(k.name, k.qtype)
	m.SetEdns0(ednsSize, false)
	resp, err := h.up.exchange(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUpstream, err)
	}
	v, err := h.vetAnswer(resp, k.name, k.qtype)
	if err != nil {
		return nil, fmt.Errorf("%w: unusable answer: %w", errUpstream, err)
	}
	for _, d := range v.dropped {
		h.logRefusal(q, "answer address dropped: "+d)
	}
	if err := h.deniedTarget(v.targets); err != nil {
		return nil, err // before Open: nothing of a denied name is opened
	}
	gen := h.cache.generation()
	e := newEntry(v, h.now(), h.minTTL, h.maxTTL)
	if len(e.addrs) > 0 {
		if err := h.opener.Open(ctx, e.addrs, e.openFor); err != nil {
			return nil, fmt.Errorf("%w: %w", errFirewall, err)
		}
		if h.answered != nil {
			chain := []string{strings.TrimSuffix(k.name, ".")}
			for _, t := range e.targets {
				chain = append(chain, strings.TrimSuffix(t, "."))
			}
			h.answered(chain, e.addrs)
		}
	}
	h.cache.put(k, e, gen)
	return e, nil
}

// vetted is an upstream answer made fit to hand out.
type vetted struct {
	rcode   int
	answer  []dns.RR
	ns      []dns.RR
	addrs   []netip.Addr
	targets []string // the CNAME targets on the chain, in order
	dropped []string // "address (why)" for every address Vet refused
}

// vetAnswer keeps what may be handed out of an upstream answer to name
// (canonical) and qtype:
//
//   - Records of the answer section whose owner is on the CNAME chain that
//     starts at name, and whose type is qtype, or CNAME for the links of the
//     chain. The chain is followed inside the answer, as the upstream
//     resolved it: a CNAME target need not be allowed by the policy, since
//     the container asked only for name, the name's owner chose the target,
//     and what the container gets is the addresses, each vetted. A client
//     that asks for the target itself is still refused. A target that a
//     deny entry names refuses the whole answer (see deniedTarget).
//   - A and AAAA records whose address Vet accepts; an AAAA record holding
//     an IPv4-mapped address is dropped.
//   - HTTPS and SVCB records without their ipv4hint and ipv6hint
//     parameters. Hints are optional (RFC 9460 §7.3): a client without them
//     looks up the A and AAAA records of the target, which pass through the
//     filter and are opened then; so every opened address comes from an A
//     or AAAA record, and the client is never told an address that is not
//     open.
//   - From the authority section, the SOA (negative caching); nothing from
//     the additional section (glue addresses would be addresses not opened).
//
// TTLs above MaxTTL are lowered to it.
func (h *Handler) vetAnswer(resp *dns.Msg, name string, qtype uint16) (vetted, error) {
	chain, targets, err := cnameChain(resp.Answer, name, qtype)
	if err != nil {
		return vetted{}, err
	}
	v := vetted{rcode: resp.Rcode, targets: targets}
	maxTTL := uint32(h.maxTTL / time.Second)
	for _, rr := range resp.Answer {
		hdr := rr.Header()
		if hdr.Class != dns.ClassINET || !chain[dns.CanonicalName(hdr.Name)] {
			continue
		}
		switch r := rr.(type) {
		case *dns.CNAME:
		case *dns.A:
			a, ok := netip.AddrFromSlice(r.A)
			if qtype != dns.TypeA || !ok || !a.Unmap().Is4() || !h.vetAddr(a.Unmap(), &v) {
				continue
			}
		case *dns.AAAA:
			a, ok := netip.AddrFromSlice(r.AAAA)
			if qtype != dns.TypeAAAA || !ok || !a.Is6() {
				continue
			}
			if a.Is4In6() {
				v.dropped = append(v.dropped, fmt.Sprintf("%s (IPv4-mapped address in an AAAA record)", a))
				continue
			}
			if !h.vetAddr(a, &v) {
				continue
			}
		case *dns.HTTPS:
			if qtype != dns.TypeHTTPS {
				continue
			}
			stripHints(&r.SVCB)
		case *dns.SVCB:
			if qtype != dns.TypeSVCB {
				continue
			}
			stripHints(r)
		default:
			// A record of an address-bearing type that is not the type
			// above was not unpacked as such; keep nothing unvetted.
			if hdr.Rrtype != qtype || carriesAddrs(qtype) {
				continue
			}
		}
		hdr.Ttl = min(hdr.Ttl, maxTTL)
		v.answer = append(v.answer, rr)
	}
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok && soa.Hdr.Class == dns.ClassINET {
			// RFC 2308 §5: a negative answer lives for the smaller of the
			// SOA's TTL and its MINIMUM field.
			soa.Hdr.Ttl = min(soa.Hdr.Ttl, soa.Minttl, maxTTL)
			v.ns = append(v.ns, soa)
			break
		}
	}
	slices.SortFunc(v.addrs, netip.Addr.Compare)
	v.addrs = slices.Compact(v.addrs)
	return v, nil
}

// vetAddr adds a to v.addrs when Vet accepts it, and to v.dropped when not.
func (h *Handler) vetAddr(a netip.Addr, v *vetted) bool {
	if err := h.vet(a); err != nil {
		v.dropped = append(v.dropped, fmt.Sprintf("%s (%v)", a, err))
		return false
	}
	v.addrs = append(v.addrs, a)
	return true
}

func carriesAddrs(t uint16) bool {
	switch t {
	case dns.TypeA, dns.TypeAAAA, dns.TypeHTTPS, dns.TypeSVCB:
		return true
	}
	return false
}

// cnameChain returns the names on the CNAME chain from name within answer,
// name included, and the targets alone, in order. A question for CNAME
// records follows no chain. Two different CNAMEs for one name, a loop and a
// chain longer than maxChain make the answer unusable.
func cnameChain(answer []dns.RR, name string, qtype uint16) (chain map[string]bool, targets []string, err error) {
	chain = map[string]bool{name: true}
	if qtype == dns.TypeCNAME {
		return chain, nil, nil
	}
	for owner, links := name, 0; ; links++ {
		next := ""
		for _, rr := range answer {
			c, ok := rr.(*dns.CNAME)
			if !ok || c.Hdr.Class != dns.ClassINET || dns.CanonicalName(c.Hdr.Name) != owner {
				continue
			}
			t := dns.CanonicalName(c.Target)
			if next != "" && next != t {
				return nil, nil, fmt.Errorf("%s has two CNAMEs (%s and %s)", plain(owner), plain(next), plain(t))
			}
			next = t
		}
		switch {
		case next == "":
			return chain, targets, nil
		case chain[next]:
			return nil, nil, fmt.Errorf("CNAME loop at %s", plain(next))
		case links == maxChain:
			return nil, nil, fmt.Errorf("CNAME chain from %s longer than %d", plain(name), maxChain)
		}
		chain[next] = true
		targets = append(targets, next)
		owner = next
	}
}

// stripHints removes the ipv4hint and ipv6hint parameters of s, and their
// keys from its mandatory list (a mandatory key must be present).
func stripHints(s *dns.SVCB) {
	isHint := func(k dns.SVCBKey) bool { return k == dns.SVCB_IPV4HINT || k == dns.SVCB_IPV6HINT }
	s.Value = slices.DeleteFunc(s.Value, func(kv dns.SVCBKeyValue) bool {
		if m, ok := kv.(*dns.SVCBMandatory); ok {
			m.Code = slices.DeleteFunc(m.Code, isHint)
			return len(m.Code) == 0
		}
		return isHint(kv.Key())
	})
}

// newEntry makes the entry for v, received at now. Its addresses are to be
// opened for the longest TTL of its address records, within [minTTL,
// maxTTL], so that no client is told to keep an address longer than it is
// open.
func newEntry(v vetted, now time.Time, minTTL, maxTTL time.Duration) *entry {
	e := &entry{rcode: v.rcode, answer: v.answer, ns: v.ns, addrs: v.addrs, targets: v.targets, stored: now}
	life := uint32(0)
	first := true
	var addrTTL uint32
	for _, rr := range slices.Concat(v.answer, v.ns) {
		hdr := rr.Header()
		if first || hdr.Ttl < life {
			life, first = hdr.Ttl, false
		}
		if hdr.Rrtype == dns.TypeA || hdr.Rrtype == dns.TypeAAAA {
			addrTTL = max(addrTTL, hdr.Ttl)
		}
	}
	e.expires = now.Add(time.Duration(life) * time.Second)
	e.openFor = min(max(time.Duration(addrTTL)*time.Second, minTTL), maxTTL)
	return e
}

// handOut returns copies of the entry's records with their TTLs counted
// down to now. Elapsed time is rounded up, so a client never keeps a record
// past the moment the entry's own TTL ends.
func (e *entry) handOut(now time.Time) (answer, ns []dns.RR) {
	elapsed := now.Sub(e.stored)
	secs := uint32(max((elapsed+time.Second-1)/time.Second, 0))
	return countDown(e.answer, secs), countDown(e.ns, secs)
}

func countDown(rrs []dns.RR, secs uint32) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		c.Header().Ttl -= min(c.Header().Ttl, secs)
		out[i] = c
	}
	return out
}

// deniedError is an answer refused because its CNAME chain leads to a name
// a deny entry names.
type deniedError struct {
	target, by string
}

func (e *deniedError) Error() string {
	return fmt.Sprintf("CNAME target %s denied by %s", plain(e.target), e.by)
}

// deniedTarget returns a *deniedError when the current policy denies one of
// targets. A deny entry wins over every allow entry, and so over the CNAME
// of an allowed name too: the addresses of a denied name are never handed
// out, whichever name they are asked by. (A target that is merely not on
// the allowlist is fine; see vetAnswer.)
func (h *Handler) deniedTarget(targets []string) error {
	n := h.names.Load()
	for _, t := range targets {
		if _, by := n.check(t); by != "" {
			return &deniedError{t, by}
		}
	}
	return nil
}
