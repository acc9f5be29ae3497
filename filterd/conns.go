package filterd

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VerilyPete/claudecontainer/dnsfilter"
)

// ConnsFile is the log of connections the firewall refused, JSON lines
// (ConnRecord), kept as RefusedFile is. The daemon writes it from the
// firewall's own log (nftables: NFLOG group nft.LogGroup).
const ConnsFile = "dnsfilter-refused-conns.log"

// ConnRecord is one packet the firewall refused.
type ConnRecord struct {
	Time   time.Time  `json:"time"`
	Client netip.Addr `json:"client"` // the container's address
	Addr   netip.Addr `json:"addr"`   // where it went
	Proto  string     `json:"proto"`  // tcp, udp, icmp, ipv6-icmp or the protocol number
	Port   uint16     `json:"port,omitempty"`
	// Names are the names the filter answered with Addr lately, if any.
	Names []string `json:"names,omitempty"`
}

// ReadConns reads the log of refused connections at path, as
// dnsfilter.ReadLog reads refused names.
func ReadConns(path string, warn func(error)) ([]ConnRecord, error) {
	return dnsfilter.ReadLines(path, warn, func(r ConnRecord) error {
		if r.Time.IsZero() || !r.Addr.IsValid() {
			return errors.New("no time or address")
		}
		return nil
	})
}

// parsePacket reads the addresses, the protocol and the destination port
// of an IPv4 or IPv6 packet (the port only from an unfragmented or first
// fragment). ok is false when the packet is too short to hold them.
func parsePacket(b []byte) (src, dst netip.Addr, proto string, port uint16, ok bool) {
	if len(b) < 1 {
		return
	}
	var next byte
	var rest []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return
		}
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		next = b[9]
		if binary.BigEndian.Uint16(b[6:8])&0x1fff == 0 { // fragment offset 0
			rest = b[ihl:]
		}
	case 6:
		if len(b) < 40 {
			return
		}
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		next, rest = b[6], b[40:]
		for i := 0; i < 8 && rest != nil; i++ {
			switch next {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(rest) < 2 || len(rest) < (int(rest[1])+1)*8 {
					rest = nil
					break
				}
				next, rest = rest[0], rest[(int(rest[1])+1)*8:]
				continue
			case 44: // fragment
				if len(rest) < 8 {
					rest = nil
					break
				}
				first := binary.BigEndian.Uint16(rest[2:4])&0xfff8 == 0
				next, rest = rest[0], rest[8:]
				if !first {
					rest = nil
				}
				continue
			}
			break
		}
	default:
		return
	}
	switch next {
	case 6:
		proto = "tcp"
	case 17:
		proto = "udp"
	case 1:
		proto = "icmp"
	case 58:
		proto = "ipv6-icmp"
	default:
		proto = strconv.Itoa(int(next))
	}
	if (next == 6 || next == 17) && len(rest) >= 4 {
		port = binary.BigEndian.Uint16(rest[2:4])
	}
	return src, dst, proto, port, true
}

// recent remembers which names the filter answered with each address, and
// when: for the log of refused connections (an address that was answered
// and then refused is worth naming), and to close what names taken out of
// the policy had opened. An address answered longer ago than the filter
// ever keeps one open (dnsfilter.DefaultMaxTTL) is closed already and is
// forgotten.
type recent struct {
	mu       sync.Mutex
	names    map[netip.Addr]*answeredBy
	adds     int
	now      func() time.Time // the clock; nil is time.Now
	forgetAt time.Duration    // zero is dnsfilter.DefaultMaxTTL
}

type answeredBy struct {
	// chains are the names each answer with the address was for: the
	// name asked, then its CNAME targets, separated by spaces (no name
	// the filter answers holds one).
	chains []string
	last   time.Time
}

// maxNames bounds the names kept for one address (a CDN's address answers
// for many): past it, the address is never closed for a name taken out.
const maxNames = 32

func (r *recent) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// add remembers that the answer for chain (the name asked, then its CNAME
// targets) held addrs.
func (r *recent) add(chain []string, addrs []netip.Addr) {
	key := strings.Join(chain, " ")
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock()
	if r.names == nil {
		r.names = map[netip.Addr]*answeredBy{}
	}
	if r.adds++; r.adds%1024 == 0 {
		keep := r.forgetAt
		if keep == 0 {
			keep = dnsfilter.DefaultMaxTTL
		}
		for a, ab := range r.names {
			if now.Sub(ab.last) > keep {
				delete(r.names, a)
			}
		}
	}
	for _, a := range addrs {
		ab := r.names[a]
		if ab == nil {
			ab = &answeredBy{}
			r.names[a] = ab
		}
		ab.last = now
		switch {
		case slices.Contains(ab.chains, key), slices.Contains(ab.chains, ""):
		case len(ab.chains) >= maxNames:
			ab.chains = append(ab.chains, "") // too many to tell: never closed early
		default:
			ab.chains = append(ab.chains, key)
		}
	}
}

// drop returns the addresses none of whose names allowed still allows,
// and forgets them: after a reload, what the filter handed out for names it
// no longer answers is closed at once. An address that answered for more
// names than it keeps is never returned.
func (r *recent) drop(allowed func(string) bool) []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []netip.Addr
	for a, ab := range r.names {
		if !slices.ContainsFunc(ab.chains, func(c string) bool { return c == "" || allAllowed(allowed, strings.Fields(c)) }) {
			out = append(out, a)
			delete(r.names, a)
		}
	}
	return out
}

func (r *recent) of(a netip.Addr) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ab := r.names[a]
	if ab == nil {
		return nil
	}
	var names []string
	for _, c := range ab.chains {
		if name, _, _ := strings.Cut(c, " "); name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// allAllowed reports whether allowed allows every name of chain: an answer
// reached through a name taken out, the name asked or a CNAME target on
// the way, is one the filter no longer gives.
func allAllowed(allowed func(string) bool, chain []string) bool {
	return !slices.ContainsFunc(chain, func(n string) bool { return !allowed(n) })
}
