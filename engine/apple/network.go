package apple

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/policy"
)

// networkJSON holds the keys read of a network object, a NetworkResource
// (1.2.2:Sources/ContainerResource/Network/NetworkResource.swift):
//
//	{id, configuration{name, mode, ipv4Subnet?, …}, status{ipv4Subnet, ipv4Gateway, ipv6Subnet?}}
//
// id is the network's name; status is always encoded (not optional), with
// the subnet the network got, which configuration.ipv4Subnet holds only
// when one was asked for. An absent ipv4Gateway or ipv6Subnet reads as "".
type networkJSON struct {
	ID     *string `json:"id"`
	Status *struct {
		IPv4Subnet  *string `json:"ipv4Subnet"`
		IPv4Gateway string  `json:"ipv4Gateway"`
		IPv6Subnet  string  `json:"ipv6Subnet"`
	} `json:"status"`
}

// networkName is apple/container's rule for network names
// (1.2.2:Sources/ContainerResource/Network/NetworkResource.swift, nameValid).
var networkName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$`)

// network checks the addresses of network name and returns them as the
// firewall sees them: the IPv4 subnet masked (192.168.64.1/24 means
// 192.168.64.0/24), the gateway as given or, when gateway4 is "", the
// subnet's first host (where apple/container always puts it), and the IPv6
// subnet when subnet6 is not "". Interface is left empty; Engine.Network
// fills it.
func network(name, subnet4, gateway4, subnet6 string) (policy.Network, error) {
	net := policy.Network{Name: name}
	p, err := netip.ParsePrefix(subnet4)
	if err != nil {
		return policy.Network{}, fmt.Errorf("network %q: IPv4 subnet %q: %w", name, subnet4, err)
	}
	if !p.Addr().Is4() {
		return policy.Network{}, fmt.Errorf("network %q: IPv4 subnet %q is not an IPv4 prefix", name, subnet4)
	}
	net.IPv4 = p.Masked()
	if !net.IPv4.Addr().IsPrivate() {
		return policy.Network{}, fmt.Errorf("network %q: subnet %s is not a private range (10/8, 172.16/12, 192.168/16); "+
			"refusing to guard it: recreate the network with `container network create --subnet 192.168.218.0/24 %s`", name, net.IPv4, name)
	}
	if b := net.IPv4.Bits(); b < 8 || b > 30 {
		return policy.Network{}, fmt.Errorf("network %q: subnet %s must be between /8 and /30", name, net.IPv4)
	}
	if gateway4 == "" {
		net.Gateway4 = net.IPv4.Addr().Next()
	} else if net.Gateway4, err = netip.ParseAddr(gateway4); err != nil {
		return policy.Network{}, fmt.Errorf("network %q: gateway %q: %w", name, gateway4, err)
	}
	if !net.Gateway4.Is4() || !net.IPv4.Contains(net.Gateway4) ||
		net.Gateway4 == net.IPv4.Addr() || net.Gateway4 == lastAddr(net.IPv4) {
		return policy.Network{}, fmt.Errorf("network %q: gateway %s is not a host address inside %s", name, net.Gateway4, net.IPv4)
	}
	if subnet6 != "" {
		p6, err := netip.ParsePrefix(subnet6)
		if err != nil {
			return policy.Network{}, fmt.Errorf("network %q: IPv6 subnet %q: %w", name, subnet6, err)
		}
		if !p6.Addr().Is6() || p6.Addr().Is4In6() || p6.Addr().Zone() != "" {
			return policy.Network{}, fmt.Errorf("network %q: IPv6 subnet %q is not an IPv6 prefix", name, subnet6)
		}
		net.IPv6 = p6.Masked()
		if !net.IPv6.Addr().IsPrivate() || net.IPv6.Bits() < 48 || net.IPv6.Bits() > 64 {
			return policy.Network{}, fmt.Errorf("network %q: IPv6 subnet %s is not a unique local (fc00::/7) prefix of /48 to /64; "+
				"refusing to guard it", name, net.IPv6)
		}
	}
	return net, nil
}

// lastAddr returns the highest address of p (its broadcast address for IPv4).
func lastAddr(p netip.Prefix) netip.Addr { return netipx.PrefixLastIP(p) }

// FindNetwork parses `container network list --format json` output of
// release v and returns the named network, checked; the error wraps
// engine.ErrNotFound when no network has the name. Only that network is
// read: another one, whatever its name or addresses, is not the firewall's
// business and must not stop this one from being found. Names were checked
// only from 0.5.0 (0.5.0:Sources/Services/ContainerNetworkService/
// NetworkConfiguration.swift); 1.2.2 checks them again when it loads a
// network (NetworkConfiguration.init(from:), validate), but the driver does
// not count on what the service does with an older one.
func FindNetwork(data []byte, name string, v Version) (policy.Network, error) {
	if !networkName.MatchString(name) {
		return policy.Network{}, fmt.Errorf("network name %q is not a valid container network name", name)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return policy.Network{}, fmt.Errorf("reading `container network list` output: %w (output: %q)", err, engine.Clip(data))
	}
	for i, item := range items {
		var id struct {
			ID *string `json:"id"`
		}
		if err := json.Unmarshal(item, &id); err != nil {
			return policy.Network{}, fmt.Errorf("reading network %d of `container network list` output: %w", i, err)
		}
		if id.ID == nil {
			return policy.Network{}, missingKey(v, "network list", "id")
		}
		if *id.ID != name {
			continue
		}
		var n networkJSON
		if err := json.Unmarshal(item, &n); err != nil {
			return policy.Network{}, fmt.Errorf("reading network %q of `container network list` output: %w", name, err)
		}
		if n.Status == nil || n.Status.IPv4Subnet == nil {
			return policy.Network{}, missingKey(v, "network list", "status.ipv4Subnet")
		}
		return network(name, *n.Status.IPv4Subnet, n.Status.IPv4Gateway, n.Status.IPv6Subnet)
	}
	return policy.Network{}, fmt.Errorf("container network %q: %w", name, engine.ErrNotFound)
}

// missingKey reports output of `container CMD --format json` that lacks a key
// the driver needs: release v prints a shape the driver does not know.
func missingKey(v Version, cmd, key string) error {
	return fmt.Errorf("container %s: `container %s --format json` printed no %q, which claudecontainer needs "+
		"(it knows the output of releases 1.0.0 to 1.4.1): please report it at "+
		"https://github.com/VerilyPete/claudecontainer/issues, with that output", v, cmd, key)
}
