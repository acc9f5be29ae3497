package firewall

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// MaxOpen is the longest a DNS answer's address may be opened for at once.
const MaxOpen = 24 * time.Hour

// CheckOpen validates what the DNS filter asks a backend to open: ttl must
// be more than 0 and at most MaxOpen, and every address a public unicast
// address. It returns the addresses unmapped and without repeats.
func CheckOpen(addrs []netip.Addr, ttl time.Duration) ([]netip.Addr, error) {
	if ttl <= 0 || ttl > MaxOpen {
		return nil, fmt.Errorf("opening for %v: want more than 0 and at most %v", ttl, MaxOpen)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if a = a.Unmap(); !a.IsGlobalUnicast() || a.Zone() != "" || a.IsPrivate() {
			return nil, fmt.Errorf("refusing to open %v: not a public unicast address", a)
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}
