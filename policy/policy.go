// Package policy is the firewall policy that every backend renders: which
// container network is guarded, where its DNS may go, and which table holds
// the allowlist. Rules turns it into one ordered list of rules as data; pf
// and nftables each print that list in their own syntax, and Decide
// evaluates it, so the flow table both backends are tested against checks
// the list itself.
package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"go4.org/netipx"
)

// Network is a container network as the runtime reports it, after parsing.
type Network struct {
	Name      string
	IPv4      netip.Prefix // masked, e.g. 192.168.64.0/24
	Gateway4  netip.Addr   // the host's address on the network; the default DNS server
	IPv6      netip.Prefix // masked; invalid (zero) when the network has no IPv6 subnet
	Interface string       // host bridge interface (bridge100, cni-podman1); "" when unknown
}

// Subnet returns the network's subnet of a's family (a unmapped), invalid
// when the network has none or a is invalid.
func (n Network) Subnet(a netip.Addr) netip.Prefix {
	switch a = a.Unmap(); {
	case a.Is4():
		return n.IPv4
	case a.Is6():
		return n.IPv6
	}
	return netip.Prefix{}
}

// HostAddrs4 returns the addresses of the IPv4 subnet that the host itself
// receives: the gateway, the subnet's last address (its broadcast address)
// and its first (the network's own address, which BSD kernels, macOS's
// among them, also take as a broadcast). A datagram a container sends to a
// broadcast address reaches every host service listening on all addresses,
// so these are refused like the gateway. An invalid network gives none.
func (n Network) HostAddrs4() []netip.Addr {
	if !n.IPv4.IsValid() || !n.IPv4.Addr().Is4() {
		return nil
	}
	addrs := []netip.Addr{n.Gateway4}
	for _, a := range []netip.Addr{n.IPv4.Masked().Addr(), netipx.PrefixLastIP(n.IPv4)} {
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// Policy is everything a firewall backend needs to render its rules.
type Policy struct {
	Network Network
	// DNS lists the only addresses the containers may send DNS queries to
	// (UDP and TCP port 53). By default it is the network's gateway; a DNS
	// forwarder run by claudecontainer would put its own address here.
	DNS []netip.Addr
	// Table names the allowlist table (pf) or the prefix of the allowlist
	// sets (nftables).
	Table string
	// Filter, when set, sends the containers' DNS to claudecontainer's DNS
	// filter on the host instead of to a resolver.
	Filter *Filter
}

// Filter is claudecontainer's DNS filter as the rules see it. Every TCP and
// UDP query to port 53 from the containers, whatever its destination, is
// redirected to Port on the host, where the filter answers only allowlisted
// names; and TCP and UDP pass to the addresses it opened (the Opened set),
// as to the allowlist, for as long as it keeps them open.
type Filter struct {
	// Port is where the filter listens on the host: on the network's
	// gateway address for nftables, on loopback for pf.
	Port uint16
}

// New returns the default policy for a network: DNS only to the gateway.
func New(n Network, table string) (Policy, error) {
	p := Policy{Network: n, DNS: []netip.Addr{n.Gateway4}, Table: table}
	return p, p.Validate()
}

var (
	identifier = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,30}$`)
	ifname     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,14}$`)
)

// ValidIdentifier reports whether s can be used as a table, set or anchor
// name in both pf and nftables without quoting.
func ValidIdentifier(s string) bool { return identifier.MatchString(s) }

// ValidInterface reports whether s is a plausible network interface name
// (at most 15 characters, as on Linux; no spaces, colons or quotes).
func ValidInterface(s string) bool { return ifname.MatchString(s) }

// Validate checks that every value can be rendered safely and means what the
// policy intends. Backends call it before rendering.
func (p Policy) Validate() error {
	n := p.Network
	var errs []error
	if !n.IPv4.IsValid() || !n.IPv4.Addr().Is4() {
		errs = append(errs, fmt.Errorf("network %q has no IPv4 subnet", n.Name))
	} else {
		if n.IPv4 != n.IPv4.Masked() {
			errs = append(errs, fmt.Errorf("network %q: subnet %s is not masked", n.Name, n.IPv4))
		}
		if !n.IPv4.Addr().IsPrivate() {
			errs = append(errs, fmt.Errorf("network %q: subnet %s is not a private range; refusing to treat it as a container network", n.Name, n.IPv4))
		}
		if n.IPv4.Bits() < 8 || n.IPv4.Bits() > 30 {
			errs = append(errs, fmt.Errorf("network %q: subnet %s must be between /8 and /30", n.Name, n.IPv4))
		}
		if !n.Gateway4.Is4() || !n.IPv4.Contains(n.Gateway4) {
			errs = append(errs, fmt.Errorf("network %q: gateway %v is not inside %s", n.Name, n.Gateway4, n.IPv4))
		}
	}
	if n.IPv6.IsValid() {
		if !n.IPv6.Addr().Is6() || n.IPv6.Addr().Is4In6() || n.IPv6 != n.IPv6.Masked() || n.IPv6.Bits() < 48 {
			errs = append(errs, fmt.Errorf("network %q: IPv6 subnet %s must be a masked IPv6 prefix of /48 or longer", n.Name, n.IPv6))
		}
	}
	if n.Interface != "" && !ValidInterface(n.Interface) {
		errs = append(errs, fmt.Errorf("network %q: %q is not a valid interface name", n.Name, n.Interface))
	}
	if len(p.DNS) == 0 {
		errs = append(errs, errors.New("policy names no DNS server"))
	}
	for _, a := range p.DNS {
		if !a.IsValid() || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("DNS server %v is not a plain IP address", a))
		}
	}
	if p.Filter != nil && (p.Filter.Port == 0 || p.Filter.Port == 53) {
		errs = append(errs, fmt.Errorf("DNS filter port %d: want a port other than 0 and 53 (53 on the host is the runtime's own resolver)", p.Filter.Port))
	}
	if !ValidIdentifier(p.Table) {
		errs = append(errs, fmt.Errorf("table name %q: want letters, digits and '_', starting with a letter, at most 31 characters", p.Table))
	}
	return errors.Join(errs...)
}
