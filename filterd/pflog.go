package filterd

import (
	"bytes"
	"encoding/binary"
)

// pf logs to pflog0, read through BPF: each record of a read is a bpf_hdr
// (XNU bsd/net/bpf.h: a timeval32, caplen, datalen, hdrlen), the packet at
// hdrlen, and the next record at the packet's end rounded up to 4 bytes.
// The packet is a pfloghdr (bsd/net/if_pflog.h: length, af, action,
// reason, ifname[16], ruleset[16], rulenr, subrulenr, uid, pid, rule_uid,
// rule_pid, dir, pad[3]) and the IP packet after it, at length rounded up
// to 4 bytes (61 → 64).

const (
	bpfHdrMin     = 18 // up to and with hdrlen
	pflogRealLen  = 61 // offsetof(struct pfloghdr, pad)
	pfActionDrop  = 1  // PF_DROP
	pflogRuleset  = 20 // offset of ruleset[16]
	pflogRulesetN = 16
)

// pflogPacket is one packet that pf logged.
type pflogPacket struct {
	ruleset string
	drop    bool
	ip      []byte
}

// splitBPF returns the packets of one BPF read, in order, skipping
// whatever does not parse.
func splitBPF(buf []byte) [][]byte {
	var out [][]byte
	for len(buf) >= bpfHdrMin {
		caplen := int(binary.NativeEndian.Uint32(buf[8:12]))
		hdrlen := int(binary.NativeEndian.Uint16(buf[16:18]))
		if hdrlen < bpfHdrMin || hdrlen+caplen > len(buf) {
			return out
		}
		out = append(out, buf[hdrlen:hdrlen+caplen])
		next := align4(hdrlen + caplen)
		if next >= len(buf) {
			return out
		}
		buf = buf[next:]
	}
	return out
}

// parsePflog reads a pfloghdr and the IP packet after it.
func parsePflog(b []byte) (pflogPacket, bool) {
	if len(b) < pflogRealLen || int(b[0]) < pflogRealLen {
		return pflogPacket{}, false
	}
	start := align4(int(b[0]))
	if start > len(b) {
		return pflogPacket{}, false
	}
	rs := b[pflogRuleset : pflogRuleset+pflogRulesetN]
	if i := bytes.IndexByte(rs, 0); i >= 0 {
		rs = rs[:i]
	}
	return pflogPacket{ruleset: string(rs), drop: b[2] == pfActionDrop, ip: b[start:]}, true
}

func align4(n int) int { return (n + 3) &^ 3 }

// refusedByPf returns what to log of one BPF read: the packets our anchor
// (by its own name, as pf records it: at most 15 bytes of it) dropped, with
// their addresses.
func refusedByPf(buf []byte, anchor string) []ConnRecord {
	if len(anchor) > pflogRulesetN-1 {
		anchor = anchor[:pflogRulesetN-1]
	}
	var out []ConnRecord
	for _, pkt := range splitBPF(buf) {
		pl, ok := parsePflog(pkt)
		if !ok || !pl.drop || pl.ruleset != anchor {
			continue
		}
		src, dst, proto, port, ok := parsePacket(pl.ip)
		if !ok {
			continue
		}
		out = append(out, ConnRecord{Client: src, Addr: dst, Proto: proto, Port: port})
	}
	return out
}
