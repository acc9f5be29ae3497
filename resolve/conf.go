package resolve

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Limits resolv.conf(5) puts on its options.
const (
	maxTimeout  = 30 * time.Second
	maxAttempts = 5
)

// FromResolvConf returns a Resolver using the nameservers of a resolv.conf
// file, in the file's order, as "ip:port" (IPv6 in brackets). The timeout
// and attempts options are honoured within resolv.conf's limits; without a
// timeout option each attempt gets DefaultTimeout.
func FromResolvConf(path string) (*Resolver, error) {
	// Read once, so the options seen below belong to the same file contents.
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("resolve: %w", err)
	}
	cc, err := dns.ClientConfigFromReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("resolve: reading %s: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return nil, fmt.Errorf("resolve: %s lists no nameserver; add a line such as \"nameserver 192.0.2.53\"", path)
	}
	port, err := strconv.ParseUint(cc.Port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("resolve: %s: bad port %q", path, cc.Port)
	}
	r := &Resolver{
		Timeout:  DefaultTimeout,
		Attempts: min(cc.Attempts, maxAttempts),
		MaxCNAME: DefaultMaxCNAME,
	}
	if hasOption(data, "timeout:") {
		// Capped before the multiplication, which a large number would
		// overflow (resolv.conf's parser takes timeout:99999999999 as is).
		r.Timeout = time.Duration(min(cc.Timeout, int(maxTimeout/time.Second))) * time.Second
	}
	for _, s := range cc.Servers {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("resolve: %s: nameserver %q is not an IP address; name servers must be given by address", path, s)
		}
		r.Servers = append(r.Servers, netip.AddrPortFrom(addr, uint16(port)).String())
	}
	return r, nil
}

// hasOption reports whether an options line of a resolv.conf sets the
// option that starts with prefix.
func hasOption(data []byte, prefix string) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[0] == "options" && slices.ContainsFunc(f[1:], func(o string) bool { return strings.HasPrefix(o, prefix) }) {
			return true
		}
	}
	return false
}
