package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/policy"
)

// objectName is the rule docker and podman share for network and container
// names. Checking it keeps a name from being read as an option.
var objectName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

func checkName(kind, name string) error {
	if !objectName.MatchString(name) {
		return fmt.Errorf("%s name %q: want letters, digits, '_', '.' or '-', starting with a letter or digit", kind, name)
	}
	return nil
}

// Network returns the named network, or an error wrapping engine.ErrNotFound
// when there is none. It accepts what podman 4 and later print and docker's
// network object, and refuses a network the firewall could not guard: not a
// bridge, no or several IPv4 subnets, a subnet outside the private ranges, a
// gateway outside its subnet, no host interface.
func (e *Engine) Network(ctx context.Context, name string) (policy.Network, error) {
	if err := checkName("network", name); err != nil {
		return policy.Network{}, err
	}
	out, err := e.output(ctx, "network", "inspect", name)
	if err != nil {
		if notFound(err, "network") {
			return policy.Network{}, missing("network", name, err)
		}
		return policy.Network{}, err
	}
	return parseNetwork(e.program, name, out)
}

// CreateNetwork creates a bridge network with the given IPv4 subnet and no
// IPv6 (both runtimes add IPv6 only when asked with --ipv6).
func (e *Engine) CreateNetwork(ctx context.Context, name string, subnet netip.Prefix) error {
	if err := checkName("network", name); err != nil {
		return err
	}
	if err := checkSubnet(subnet); err != nil {
		return fmt.Errorf("creating network %q: %w", name, err)
	}
	_, err := e.output(ctx, "network", "create", "--driver", "bridge", "--subnet", subnet.String(), name)
	return err
}

// checkSubnet accepts a masked private IPv4 prefix from /8 to /30 that lies
// wholly inside one private range.
func checkSubnet(p netip.Prefix) error {
	switch {
	case !p.IsValid() || !p.Addr().Is4():
		return fmt.Errorf("subnet %v is not an IPv4 prefix", p)
	case p != p.Masked():
		return fmt.Errorf("subnet %s is not masked (did you mean %s?)", p, p.Masked())
	case p.Bits() < 8 || p.Bits() > 30:
		return fmt.Errorf("subnet %s must be between /8 and /30", p)
	case !p.Addr().IsPrivate() || !netipx.PrefixLastIP(p).IsPrivate():
		return fmt.Errorf("subnet %s is not inside a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)", p)
	}
	return nil
}

// networkJSON holds the keys of both shapes `network inspect` prints. Go
// matches JSON keys without regard to case, so podman's "name" and docker's
// "Name" land in the same field.
//
//	podman 4+:  {name, id, driver, network_interface, subnets[{subnet, gateway}], ipv6_enabled, internal, dns_enabled, …}
//	docker:     {Name, Id, Driver, EnableIPv6, IPAM{Config[{Subnet, Gateway}]}, Options{"com.docker.network.bridge.name"}, …}
//
// podman 3 printed its CNI configuration list instead; EnsureRunning refuses
// podman before 4, so that shape is not read.
type networkJSON struct {
	Name   *string `json:"name"`
	ID     string  `json:"id"`
	Driver string  `json:"driver"`

	NetworkInterface *string      `json:"network_interface"`
	Subnets          []subnetJSON `json:"subnets"`

	IPAM *struct {
		Config []subnetJSON `json:"Config"`
	} `json:"IPAM"`
	Options map[string]string `json:"Options"`
}

type subnetJSON struct {
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
}

// dockerBridgeOption names the option that overrides docker's bridge name.
const dockerBridgeOption = "com.docker.network.bridge.name"

var dockerID = regexp.MustCompile(`^[0-9a-f]{12,64}$`)

// parseNetwork reads the output of `network inspect name`: a bridge network
// whose host interface is named, with one private IPv4 subnet and at most
// one IPv6 subnet.
func parseNetwork(program, name string, data []byte) (policy.Network, error) {
	n, err := decodeNetwork(program, name, data)
	if err != nil {
		return policy.Network{}, err
	}
	fix := fmt.Sprintf("remove it (`%s network rm %s`) and let claudecontainer create it with the configured subnet", program, name)
	if n.Driver != "bridge" {
		return policy.Network{}, fmt.Errorf("network %q uses the %q driver; claudecontainer needs a bridge network: %s", name, n.Driver, fix)
	}
	// podman names its bridge and every subnet's gateway; docker names the
	// bridge only when it is not br-<ID>, and leaves out default gateways.
	out := policy.Network{Name: name}
	subnets, needGateway := n.Subnets, true
	switch {
	case n.IPAM != nil:
		subnets, needGateway = n.IPAM.Config, false
		if out.Interface = n.Options[dockerBridgeOption]; out.Interface == "" {
			if !dockerID.MatchString(n.ID) {
				return policy.Network{}, fmt.Errorf("network %q: ID %q is not a docker network ID, so its bridge interface cannot be named", name, n.ID)
			}
			out.Interface = "br-" + n.ID[:12]
		}
	case n.NetworkInterface != nil:
		out.Interface = *n.NetworkInterface
	}
	switch {
	case out.Interface == "":
		return policy.Network{}, fmt.Errorf("network %q does not name its host bridge interface", name)
	case !policy.ValidInterface(out.Interface):
		return policy.Network{}, fmt.Errorf("network %q: %q is not a valid interface name", name, out.Interface)
	}
	if err := addSubnets(&out, subnets, needGateway, fix); err != nil {
		return policy.Network{}, err
	}
	return out, nil
}

// decodeNetwork reads the one network object of `network inspect name`.
func decodeNetwork(program, name string, data []byte) (networkJSON, error) {
	var list []networkJSON
	if err := json.Unmarshal(data, &list); err != nil {
		return networkJSON{}, fmt.Errorf("reading `%s network inspect %s` output: %w (output: %q)", program, name, err, engine.Clip(data))
	}
	switch {
	case len(list) == 0:
		return networkJSON{}, missing("network", name, errors.New("the runtime listed no network"))
	case len(list) > 1:
		return networkJSON{}, fmt.Errorf("`%s network inspect %s` listed %d networks; want one", program, name, len(list))
	case list[0].Name == nil:
		return networkJSON{}, fmt.Errorf("reading `%s network inspect %s` output: no name key", program, name)
	case *list[0].Name != name:
		// Both runtimes also match a network by a prefix of its ID.
		return networkJSON{}, fmt.Errorf("`%s network inspect %s` answered with network %q", program, name, *list[0].Name)
	}
	return list[0], nil
}

// addSubnets checks the network's subnets and sets n's addresses from them:
// exactly one IPv4 subnet, private, with its gateway (the first host when
// the runtime names none, unless needGateway), and at most one IPv6 subnet,
// /48 or narrower.
func addSubnets(n *policy.Network, subnets []subnetJSON, needGateway bool, fix string) error {
	var v4, v6 []string
	for _, s := range subnets {
		p, err := netip.ParsePrefix(strings.TrimSpace(s.Subnet))
		switch {
		case err != nil:
			return fmt.Errorf("network %q: subnet %q: %w", n.Name, s.Subnet, err)
		case p != p.Masked():
			return fmt.Errorf("network %q: subnet %s is not masked", n.Name, p)
		case p.Addr().Is4In6():
			return fmt.Errorf("network %q: subnet %s is an IPv4-mapped IPv6 prefix", n.Name, p)
		case p.Addr().Is6():
			v6 = append(v6, p.String())
			n.IPv6 = p
			if _, err := gateway(p, s.Gateway, false); err != nil {
				return fmt.Errorf("network %q: %w", n.Name, err)
			}
		case len(v4) == 0:
			v4 = append(v4, p.String())
			n.IPv4 = p
			if n.Gateway4, err = gateway(p, s.Gateway, needGateway); err != nil {
				return fmt.Errorf("network %q: %w", n.Name, err)
			}
		default:
			v4 = append(v4, p.String())
		}
	}
	switch {
	case len(v4) == 0:
		return fmt.Errorf("network %q has no IPv4 subnet: %s", n.Name, fix)
	case len(v4) > 1:
		return fmt.Errorf("network %q has %d IPv4 subnets (%s); the firewall guards exactly one: %s", n.Name, len(v4), strings.Join(v4, ", "), fix)
	case len(v6) > 1:
		return fmt.Errorf("network %q has %d IPv6 subnets (%s); the firewall guards at most one: %s", n.Name, len(v6), strings.Join(v6, ", "), fix)
	}
	if err := checkSubnet(n.IPv4); err != nil {
		return fmt.Errorf("network %q: %w: %s", n.Name, err, fix)
	}
	if n.IPv6.IsValid() && n.IPv6.Bits() < 48 {
		return fmt.Errorf("network %q: IPv6 subnet %s is wider than /48: %s", n.Name, n.IPv6, fix)
	}
	return nil
}

// gateway parses a subnet's gateway. An empty one is the subnet's first host
// (docker's and CNI's default) unless required is set.
func gateway(p netip.Prefix, s string, required bool) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		if required {
			return netip.Addr{}, fmt.Errorf("subnet %s has no gateway", p)
		}
		return p.Addr().Next(), nil
	}
	gw, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("subnet %s: gateway %q: %w", p, s, err)
	}
	if gw.Zone() != "" || !p.Contains(gw) || gw == p.Addr() {
		return netip.Addr{}, fmt.Errorf("gateway %s is not a host address inside subnet %s", gw, p)
	}
	return gw, nil
}
