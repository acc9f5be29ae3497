// Package dnsfilter is the DNS server of the container network. It answers
// only the names its policy allows, and it opens the firewall to every
// address it hands out before the answer leaves: a name that is not allowed
// never leaves the host, so DNS is no way out (no queries for
// <secret>.attacker.example), and a name that is allowed reaches whatever
// addresses it has at the moment, so rotating CDN addresses keep working.
//
// Handler is the dns.Handler that does the filtering, Server runs it on UDP
// and TCP listeners, and LogFile and ReadLog keep and read back the log of
// refused queries.
package dnsfilter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Defaults used when a Config field is zero.
const (
	DefaultMinTTL    = 5 * time.Minute
	DefaultMaxTTL    = time.Hour
	DefaultTimeout   = 2 * time.Second
	DefaultCacheSize = 100_000
)

// Limits that are not configurable.
const (
	// maxQueryTime bounds one query from start to answer, the upstreams
	// and Open included. Stub resolvers give up after 5 s (resolv.conf's
	// default timeout), so an answer later than that helps nobody.
	maxQueryTime = 5 * time.Second
	// ednsSize is the UDP payload size the filter offers, to clients and
	// upstreams alike (the 2020 DNS flag day value, which avoids IP
	// fragmentation).
	ednsSize = 1232
	// maxChain is the longest CNAME chain followed inside an answer.
	maxChain = 16
	// maxFetches bounds the upstream lookups under way at once.
	maxFetches = 1024
)

// Opener opens the firewall. The firewall backends implement it.
type Opener interface {
	// Open lets the containers connect to addrs for at least ttl. It
	// returns only once the addresses are open, and an error when any of
	// them may not be: the answer that holds them is then never sent.
	// addrs are unmapped, sorted and distinct. It is called from many
	// goroutines at once.
	Open(ctx context.Context, addrs []netip.Addr, ttl time.Duration) error
}

// Config configures a Handler. Opener and Vet are required; zero values of
// the others take the defaults above.
type Config struct {
	// Names is the policy the Handler starts with; nil allows nothing.
	// Handler.SetNames replaces it.
	Names *Names
	// Clients are the networks that may ask: the container subnets. Other
	// clients are refused. Reverse names (in-addr.arpa, ip6.arpa) inside
	// these networks are answered NXDOMAIN at once, as RFC 6303 asks of
	// private address space, and never leave the host.
	Clients []netip.Prefix
	// Upstreams are the resolvers asked for allowed names, as "ip:port".
	// The first is asked first; after a failure the next one is, and the
	// one that answered last is asked first from then on.
	Upstreams []string
	// Timeout bounds one attempt at one upstream.
	Timeout time.Duration
	// Dial, when set, opens the connections to the upstreams (network is
	// "udp" or "tcp"); nil dials them from this host as it is. Tests that
	// run the filter inside a network namespace dial from there.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Opener opens the firewall to the addresses of each answer.
	Opener Opener
	// Vet says why an address from an answer must not be handed out (for
	// example a private or loopback address, which would turn an allowed
	// name into a way into the host's networks), or returns nil. Refused
	// addresses are dropped from the answer and logged. A firewall that
	// does not enforce IPv6 refuses every IPv6 address here, so AAAA
	// answers come back empty and clients use IPv4.
	Vet func(netip.Addr) error
	// MinTTL and MaxTTL bound how long addresses are opened for. Answer
	// TTLs above MaxTTL are lowered to it; addresses are opened for at
	// least MinTTL, because programs keep addresses longer than their TTL
	// (libcurl and Java cache them for 30 to 60 s whatever the TTL).
	MinTTL, MaxTTL time.Duration
	// CacheSize is the number of answers kept; the least recently used go
	// first. An answer of a CNAME and two A records takes about 500 bytes,
	// so the default of 100,000 answers takes about 50 MB.
	CacheSize int
	// Answered, when set, is told the addresses of each answer fetched
	// from an upstream, once they are open (not for cached answers), with
	// the names they answer for: the name asked, then the CNAME targets on
	// the way, without the final dot. It must not block.
	Answered func(chain []string, addrs []netip.Addr)
	// Log receives every refused query as one JSON line (a Record), one
	// Write per line; nil discards them. Write errors are ignored: a
	// refusal is answered whether or not it could be logged.
	Log io.Writer
}

// Handler is a dns.Handler that answers queries from the container
// networks; see Config and ServeDNS. It is safe for concurrent use.
type Handler struct {
	names    atomic.Pointer[Names]
	clients  []netip.Prefix
	up       *upstreams
	opener   Opener
	vet      func(netip.Addr) error
	answered func([]string, []netip.Addr)
	minTTL   time.Duration
	maxTTL   time.Duration
	cache    *cache
	flights  flights
	slots    chan struct{} // one per upstream lookup under way

	logMu sync.Mutex
	log   io.Writer

	now func() time.Time // the clock; tests replace it
}

// New returns a Handler for cfg.
func New(cfg Config) (*Handler, error) {
	var errs []error
	if cfg.Opener == nil {
		errs = append(errs, errors.New("no Opener: answers would hand out addresses the firewall does not let through"))
	}
	if cfg.Vet == nil {
		errs = append(errs, errors.New("no Vet: answers could open private and loopback addresses"))
	}
	if len(cfg.Clients) == 0 {
		errs = append(errs, errors.New("no client networks: every query would be refused"))
	}
	clients := make([]netip.Prefix, 0, len(cfg.Clients))
	for _, p := range cfg.Clients {
		if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			errs = append(errs, fmt.Errorf("client network %s is not valid (IPv4 networks are written as such, not mapped)", p))
			continue
		}
		clients = append(clients, p.Masked())
	}
	up, err := newUpstreams(cfg.Upstreams, orDefault(cfg.Timeout, DefaultTimeout))
	if up != nil {
		up.dial = cfg.Dial
	}
	if err != nil {
		errs = append(errs, err)
	}
	minTTL, maxTTL := orDefault(cfg.MinTTL, DefaultMinTTL), orDefault(cfg.MaxTTL, DefaultMaxTTL)
	if minTTL > maxTTL {
		errs = append(errs, fmt.Errorf("MinTTL %s is above MaxTTL %s", minTTL, maxTTL))
	}
	if maxTTL > 1<<31*time.Second {
		errs = append(errs, fmt.Errorf("MaxTTL %s is beyond what a DNS TTL can say", maxTTL))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("dnsfilter: %w", errors.Join(errs...))
	}
	h := &Handler{
		clients:  clients,
		up:       up,
		opener:   cfg.Opener,
		vet:      cfg.Vet,
		answered: cfg.Answered,
		minTTL:   minTTL,
		maxTTL:   maxTTL,
		cache:    newCache(orDefault(cfg.CacheSize, DefaultCacheSize)),
		slots:    make(chan struct{}, maxFetches),
		log:      cfg.Log,
		now:      time.Now,
	}
	h.names.Store(cfg.Names)
	return h, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// SetNames replaces the policy; queries that arrive afterwards see the new
// one. Cached answers of names the new policy refuses are never handed out
// again (the policy is checked before the cache), and addresses already
// opened stay open until their TTL runs out.
func (h *Handler) SetNames(n *Names) { h.names.Store(n) }

// Flush forgets every cached answer, and answers being looked up meanwhile
// are not cached. Call it when the firewall has lost what Open put in it
// (the set or table was created anew), so that the next answer for each
// name opens its addresses again.
func (h *Handler) Flush() { h.cache.flush() }

// ServeDNS answers one query; it implements dns.Handler.
//
//   - A client outside Config.Clients is REFUSED.
//   - A message must hold one question (else FORMERR) of class IN and
//     opcode QUERY; zone transfers (AXFR, IXFR), ANY and the other meta
//     query types are REFUSED.
//   - A reverse name inside the client networks gets NXDOMAIN at once.
//   - A name the policy does not allow gets NXDOMAIN with an Extended DNS
//     Error (RFC 8914) "Blocked" that says how to allow it, when the query
//     carries EDNS; the query never leaves the host. So does an allowed
//     name whose CNAME chain leads to a name a deny entry names.
//   - An allowed name is answered from the cache or asked of the upstreams.
//     The answer keeps only the records on the question's CNAME chain, the
//     SOA of a negative answer, and none of the additional section; it
//     drops every address Vet refuses and strips address hints from HTTPS
//     and SVCB records. Its addresses are opened (one Open call) before it
//     is written; when that fails, or no upstream answers, the client gets
//     SERVFAIL.
//
// Every refusal is logged (Config.Log). Answers over UDP are truncated to
// the client's EDNS payload size (512 bytes without EDNS) with the TC bit
// set, so the client asks again over TCP.
func (h *Handler) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	ctx, cancel := context.WithTimeout(context.Background(), maxQueryTime)
	defer cancel()
	resp := h.answer(ctx, remoteAddr(w), req)
	if resp == nil {
		return
	}
	size := dns.MaxMsgSize
	if isUDP(w) {
		size = dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = min(max(int(opt.UDPSize()), dns.MinMsgSize), ednsSize)
		}
	}
	resp.Truncate(size)
	w.WriteMsg(resp)
}

// remoteAddr is the client's address, unmapped; invalid when unknown.
func remoteAddr(w dns.ResponseWriter) netip.Addr {
	var ap netip.AddrPort
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	case nil:
		return netip.Addr{}
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return ap.Addr().Unmap().WithZone("")
}

func isUDP(w dns.ResponseWriter) bool {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	return !tcp
}

// answer builds the reply to req from client, or nil when nothing is to be
// sent.
func (h *Handler) answer(ctx context.Context, client netip.Addr, req *dns.Msg) *dns.Msg {
	if req.Response {
		return nil // never answer an answer: that is how reflection loops start
	}
	q := query{client: client, req: req}
	if len(req.Question) > 0 {
		q.q = req.Question[0]
	}
	if !h.fromClient(client) {
		return h.refuse(q, dns.RcodeRefused, dns.ExtendedErrorCodeProhibited,
			"client outside the container networks", "")
	}
	switch {
	case req.Opcode != dns.OpcodeQuery:
		return h.refuse(q, dns.RcodeNotImplemented, dns.ExtendedErrorCodeNotSupported,
			fmt.Sprintf("opcode %s", opcodeString(req.Opcode)), "")
	case len(req.Question) != 1:
		return h.refuse(q, dns.RcodeFormatError, dns.ExtendedErrorCodeOther,
			fmt.Sprintf("%d questions in one query", len(req.Question)), "")
	}
	if opt := req.IsEdns0(); opt != nil && opt.Version() != 0 {
		return h.refuse(q, dns.RcodeBadVers, dns.ExtendedErrorCodeOther,
			fmt.Sprintf("EDNS version %d", opt.Version()), "")
	}
	if why := refusedType(q.q); why != "" {
		return h.refuse(q, dns.RcodeRefused, dns.ExtendedErrorCodeNotSupported, why, "")
	}
	name := dns.CanonicalName(q.q.Name)
	if h.localReverse(name) {
		return reply(req, dns.RcodeNameError, 0, "")
	}
	if ok, deniedBy := h.names.Load().check(name); !ok {
		why, text := "not on the allowlist",
			fmt.Sprintf("claudecontainer: %s is not on the allowlist; on the host: mage allow %s", plain(name), plain(name))
		if deniedBy != "" {
			why = "denied by " + deniedBy
			text = fmt.Sprintf("claudecontainer: %s is denied by %s on the allowlist", plain(name), deniedBy)
		}
		return h.refuse(q, dns.RcodeNameError, dns.ExtendedErrorCodeBlocked, why, text)
	}

	e, err := h.lookup(ctx, q, key{name, q.q.Qtype})
	if err == nil {
		err = h.deniedTarget(e.targets) // the policy may have changed since
	}
	var denied *deniedError
	if errors.As(err, &denied) {
		return h.refuse(q, dns.RcodeNameError, dns.ExtendedErrorCodeBlocked, err.Error(),
			fmt.Sprintf("claudecontainer: %s is an alias of %s, which is denied by %s on the allowlist",
				plain(name), plain(denied.target), denied.by))
	}
	if err != nil {
		// The client learns which step failed, not the details (addresses
		// of upstreams, firewall messages); the log has them.
		text, code := "claudecontainer: "+errUpstream.Error(), dns.ExtendedErrorCodeNetworkError
		switch {
		case errors.Is(err, errFirewall):
			text, code = "claudecontainer: "+errFirewall.Error(), dns.ExtendedErrorCodeOther
		case errors.Is(err, errBusy):
			text, code = "claudecontainer: "+errBusy.Error(), dns.ExtendedErrorCodeOther
		}
		return h.refuse(q, dns.RcodeServerFailure, code, err.Error(), text)
	}
	resp := reply(req, e.rcode, 0, "")
	resp.Answer, resp.Ns = e.handOut(h.now())
	return resp
}

// query is one question being answered, for the log.
type query struct {
	client netip.Addr
	req    *dns.Msg
	q      dns.Question
}

func (h *Handler) fromClient(a netip.Addr) bool {
	for _, p := range h.clients {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// refusedType says why a question is refused for its class or type, or "".
// Types 128 to 255 are query and meta types (RFC 6895 §3.1): TKEY, TSIG,
// IXFR, AXFR, MAILB, MAILA and ANY among them.
func refusedType(q dns.Question) string {
	switch {
	case q.Qclass != dns.ClassINET:
		return fmt.Sprintf("class %s", classString(q.Qclass))
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		return "zone transfer " + dns.Type(q.Qtype).String()
	case q.Qtype == dns.TypeANY:
		return "query type ANY (RFC 8482)"
	case q.Qtype == dns.TypeNone || q.Qtype == dns.TypeOPT || (q.Qtype >= 128 && q.Qtype <= 255):
		return "query type " + dns.Type(q.Qtype).String()
	}
	return ""
}

// refuse logs why q is refused and returns the reply with rcode and, when
// the client speaks EDNS, an Extended DNS Error (text defaults to the
// reason).
func (h *Handler) refuse(q query, rcode int, ede uint16, why, text string) *dns.Msg {
	h.logRefusal(q, why)
	if text == "" {
		text = "claudecontainer: " + why
	}
	return reply(q.req, rcode, ede, text)
}

// reply returns a reply to req with rcode. When req carries EDNS, so does
// the reply, with an Extended DNS Error ede when text is not empty.
func reply(req *dns.Msg, rcode int, ede uint16, text string) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Rcode = rcode
	m.RecursionAvailable = true
	m.CheckingDisabled = false
	if req.IsEdns0() != nil {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(ednsSize)
		if text != "" {
			opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: ede, ExtraText: text})
		}
		m.Extra = append(m.Extra, opt)
	}
	return m
}

// Record is one refused query in the log.
type Record struct {
	Time   time.Time  `json:"time"`   // UTC, written as RFC 3339 with nanoseconds
	Client netip.Addr `json:"client"` // the address that asked
	Name   string     `json:"name"`   // as asked, lower case, without the final dot
	Type   string     `json:"type"`   // the query type, such as "A" or "TXT"
	Reason string     `json:"reason"` // why it was refused
}

func (h *Handler) logRefusal(q query, why string) {
	if h.log == nil {
		return
	}
	rec := Record{Time: h.now().UTC(), Client: q.client, Reason: why}
	if q.q.Name != "" {
		rec.Name = plain(strings.ToLower(q.q.Name))
		rec.Type = dns.Type(q.q.Qtype).String()
	}
	line, err := json.Marshal(rec)
	if err != nil {
		return // unreachable: every field marshals
	}
	line = append(line, '\n')
	h.logMu.Lock()
	defer h.logMu.Unlock()
	h.log.Write(line)
}

// plain drops the final dot of a fully qualified name.
func plain(name string) string {
	if name == "." {
		return name
	}
	return strings.TrimSuffix(name, ".")
}

func opcodeString(op int) string {
	if s, ok := dns.OpcodeToString[op]; ok {
		return s
	}
	return fmt.Sprint(op)
}

func classString(c uint16) string {
	if s, ok := dns.ClassToString[c]; ok {
		return s
	}
	return fmt.Sprintf("CLASS%d", c)
}
