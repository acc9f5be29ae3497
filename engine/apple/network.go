package apple

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/policy"
)

// NetworkInfo is one network as `container network list --format json`
// reports it, whatever the release. Its addresses are checked by Network.
type NetworkInfo struct {
	Name string
	Mode string // "nat" or "hostOnly"; "" when not reported
	// Running reports whether the network has a status, that is, whether its
	// vmnet network was started and its subnet is known.
	Running bool
	// State is 0.x's "running" or "created"; 1.x reports none.
	State string

	subnet4, gateway4, subnet6 string
}

// networkJSON holds the keys of every release's network object:
//
//	0.2–0.7:  {id, state, config{id, subnet?}, status?{address, gateway}}
//	0.8–0.12: {id, state, config{id, ipv4Subnet?}, status?{ipv4Subnet, ipv4Gateway, ipv6Subnet?}}
//	1.x:      {id, configuration{name, ipv4Subnet?}, status{ipv4Subnet, ipv4Gateway, ipv6Subnet?}}
type networkJSON struct {
	ID            *string        `json:"id"`
	State         *string        `json:"state"`
	Config        *netConfigJSON `json:"config"`
	Configuration *netConfigJSON `json:"configuration"`
	Status        *struct {
		Address     *string `json:"address"`
		Gateway     *string `json:"gateway"`
		IPv4Subnet  *string `json:"ipv4Subnet"`
		IPv4Gateway *string `json:"ipv4Gateway"`
		IPv6Subnet  *string `json:"ipv6Subnet"`
	} `json:"status"`
}

type netConfigJSON struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
	Mode *string `json:"mode"`
}

// networkName is apple/container's rule for network names (all releases).
var networkName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$`)

// ParseNetworks reads the output of `container network list --format json`
// or `container network inspect` from any release from 0.2.0 on. It fails on
// output that is not such a document; the addresses of each network are
// checked only when NetworkInfo.Network is asked for them, so that one odd
// network does not hide the others.
func ParseNetworks(data []byte) ([]NetworkInfo, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("reading `container network list` output: %w (output: %q)", err, clip(data))
	}
	out := make([]NetworkInfo, 0, len(raw))
	for i, item := range raw {
		var n networkJSON
		if err := json.Unmarshal(item, &n); err != nil {
			return nil, fmt.Errorf("reading network %d of `container network list` output: %w", i, err)
		}
		info, err := n.info()
		if err != nil {
			return nil, fmt.Errorf("reading network %d of `container network list` output: %w", i, err)
		}
		out = append(out, info)
	}
	return out, nil
}

func (n networkJSON) info() (NetworkInfo, error) {
	if n.ID == nil {
		return NetworkInfo{}, errors.New(`no "id" key`)
	}
	info := NetworkInfo{Name: *n.ID}
	if !networkName.MatchString(info.Name) {
		return NetworkInfo{}, fmt.Errorf("network name %q is not a valid container network name", info.Name)
	}
	cfg := n.Config
	if n.Configuration != nil {
		cfg = n.Configuration
	}
	if cfg == nil {
		return NetworkInfo{}, fmt.Errorf(`network %q: no "config" or "configuration" key`, info.Name)
	}
	for _, id := range []*string{cfg.ID, cfg.Name} {
		if id != nil && *id != info.Name {
			return NetworkInfo{}, fmt.Errorf("network %q: its configuration names it %q", info.Name, *id)
		}
	}
	if cfg.Mode != nil {
		info.Mode = *cfg.Mode
	}
	if n.State != nil {
		info.State = *n.State
	}
	if n.Status == nil {
		return info, nil
	}
	s := n.Status
	info.Running = true
	info.subnet4 = first(s.IPv4Subnet, s.Address)
	info.gateway4 = first(s.IPv4Gateway, s.Gateway)
	info.subnet6 = first(s.IPv6Subnet)
	if info.subnet4 == "" {
		return NetworkInfo{}, fmt.Errorf("network %q: its status has no IPv4 subnet (neither ipv4Subnet nor address)", info.Name)
	}
	return info, nil
}

func first(ss ...*string) string {
	for _, s := range ss {
		if s != nil && *s != "" {
			return *s
		}
	}
	return ""
}

// Network checks the network's addresses and returns them as the firewall
// sees them: the IPv4 subnet masked (192.168.64.1/24 means 192.168.64.0/24),
// the gateway from the status or else the subnet's first host, and the IPv6
// subnet when there is one. Interface is left empty; Engine.Network fills it.
func (n NetworkInfo) Network() (policy.Network, error) {
	if !n.Running {
		state := n.State
		if state == "" {
			state = "without status"
		}
		return policy.Network{}, fmt.Errorf("network %q exists but is not running (%s), so its subnet is not known yet: "+
			"restart the container service (`container system stop`, then `container system start`) and try again", n.Name, state)
	}
	net := policy.Network{Name: n.Name}
	p, err := netip.ParsePrefix(n.subnet4)
	if err != nil {
		return policy.Network{}, fmt.Errorf("network %q: IPv4 subnet %q: %w", n.Name, n.subnet4, err)
	}
	if !p.Addr().Is4() {
		return policy.Network{}, fmt.Errorf("network %q: IPv4 subnet %q is not an IPv4 prefix", n.Name, n.subnet4)
	}
	net.IPv4 = p.Masked()
	if !net.IPv4.Addr().IsPrivate() {
		return policy.Network{}, fmt.Errorf("network %q: subnet %s is not a private range (10/8, 172.16/12, 192.168/16); "+
			"refusing to guard it: recreate the network with `container network create --subnet 192.168.218.0/24 %s`", n.Name, net.IPv4, n.Name)
	}
	if b := net.IPv4.Bits(); b < 8 || b > 30 {
		return policy.Network{}, fmt.Errorf("network %q: subnet %s must be between /8 and /30", n.Name, net.IPv4)
	}
	if n.gateway4 == "" {
		net.Gateway4 = net.IPv4.Addr().Next()
	} else if net.Gateway4, err = netip.ParseAddr(n.gateway4); err != nil {
		return policy.Network{}, fmt.Errorf("network %q: gateway %q: %w", n.Name, n.gateway4, err)
	}
	if !net.Gateway4.Is4() || !net.IPv4.Contains(net.Gateway4) ||
		net.Gateway4 == net.IPv4.Addr() || net.Gateway4 == lastAddr(net.IPv4) {
		return policy.Network{}, fmt.Errorf("network %q: gateway %s is not a host address inside %s", n.Name, net.Gateway4, net.IPv4)
	}
	if n.subnet6 != "" {
		p6, err := netip.ParsePrefix(n.subnet6)
		if err != nil {
			return policy.Network{}, fmt.Errorf("network %q: IPv6 subnet %q: %w", n.Name, n.subnet6, err)
		}
		if !p6.Addr().Is6() || p6.Addr().Is4In6() || p6.Addr().Zone() != "" {
			return policy.Network{}, fmt.Errorf("network %q: IPv6 subnet %q is not an IPv6 prefix", n.Name, n.subnet6)
		}
		net.IPv6 = p6.Masked()
		if !net.IPv6.Addr().IsPrivate() || net.IPv6.Bits() < 48 || net.IPv6.Bits() > 64 {
			return policy.Network{}, fmt.Errorf("network %q: IPv6 subnet %s is not a unique local (fc00::/7) prefix of /48 to /64; "+
				"refusing to guard it", n.Name, net.IPv6)
		}
	}
	return net, nil
}

// lastAddr returns the highest address of p (its broadcast address for IPv4).
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// FindNetwork parses `container network list --format json` output and
// returns the named network, checked; the error wraps engine.ErrNotFound
// when no network has the name.
func FindNetwork(data []byte, name string) (policy.Network, error) {
	nets, err := ParseNetworks(data)
	if err != nil {
		return policy.Network{}, err
	}
	for _, n := range nets {
		if n.Name == name {
			return n.Network()
		}
	}
	return policy.Network{}, fmt.Errorf("container network %q: %w", name, engine.ErrNotFound)
}
