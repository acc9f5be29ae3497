package apple

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

// DefaultNetwork is the network every release has, the only one on macOS 15.
const DefaultNetwork = "default"

// DefaultSubnet is the default network's subnet on macOS 15 (configured
// there as 192.168.64.1/24) and usually on macOS 26, unless the user set
// another with `container system property set network.subnet` or the
// [network] section of config.toml.
var DefaultSubnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, 64, 0}), 24)

// ErrSubnetNotFixed is wrapped by CreateNetwork's error when the network was
// created but the installed release cannot give it a fixed subnet.
var ErrSubnetNotFixed = errors.New("the network's subnet is not fixed")

// Network returns the named network with its subnets, gateway and the host
// bridge that carries it (Interface is "" while no container is attached:
// macOS creates the bridge with the first container). The error wraps
// engine.ErrNotFound when there is no such network.
//
// Where `container network` does not exist (releases before 0.2.0, and
// macOS 15 for every release) only the default network exists; asking for it
// there reads its subnet from the running containers attached to it, or,
// when none runs, assumes DefaultSubnet. Callers should check a container's
// addresses (Attachments) against the network once it runs.
func (e *Engine) Network(ctx context.Context, name string) (policy.Network, error) {
	v, err := e.ParsedVersion(ctx)
	if err != nil {
		return policy.Network{}, err
	}
	var n policy.Network
	if !v.hasNetworkCommand() {
		n, err = e.defaultOnly(ctx, name, v)
	} else {
		var out []byte
		out, err = e.run(ctx, "network", "list", "--format", "json")
		switch {
		case pluginMissing(err):
			n, err = e.defaultOnly(ctx, name, v)
		case err != nil:
			return policy.Network{}, fmt.Errorf("listing container networks: %w", err)
		default:
			n, err = FindNetwork(out, name)
		}
	}
	if err != nil {
		return policy.Network{}, err
	}
	if n.Interface, err = e.bridge(ctx, n); err != nil {
		return policy.Network{}, err
	}
	return n, nil
}

// pluginMissing reports whether err is the CLI's answer on macOS 15 (and
// before 0.2.0) to `container network …`: "Plugin 'container-network' not
// found", a usage error (exit 64).
func pluginMissing(err error) bool {
	var ee *proc.ExitError
	return errors.As(err, &ee) && ee.Code == 64 && strings.Contains(ee.Stderr, "container-network")
}

// noNetworks explains why only the default network can be used.
func noNetworks(name string, v Version) error {
	if !v.hasNetworkCommand() {
		return fmt.Errorf("container %s has only the default network, so network %q cannot exist "+
			"(the `container network` command arrived in 0.2.0): upgrade container (0.6.0 or later, which can fix a network's subnet), "+
			"or set CLAUDECONTAINER_NETWORK=default to use the default network", v, name)
	}
	return fmt.Errorf("this Mac cannot use container network %q: `container network` exists only on macOS 26 "+
		"(container says: Plugin 'container-network' not found). On macOS 15 containers can only use the default network "+
		"(192.168.64.0/24 unless `network.subnet` is set), whose containers cannot reach each other, and which has no IPv6. "+
		"Upgrade to macOS 26 to get a dedicated network, or set CLAUDECONTAINER_NETWORK=default to guard the default network "+
		"(the firewall then applies to every container on this Mac)", name)
}

// defaultOnly finds the default network without `container network`: from
// the attachments of its running containers, else DefaultSubnet.
func (e *Engine) defaultOnly(ctx context.Context, name string, v Version) (policy.Network, error) {
	if name != DefaultNetwork {
		return policy.Network{}, noNetworks(name, v)
	}
	cs, err := e.containers(ctx)
	if err != nil {
		return policy.Network{}, err
	}
	info := NetworkInfo{Name: DefaultNetwork, Running: true, subnet4: DefaultSubnet.String()}
	var seen *Attachment
	for _, c := range cs {
		if c.State != "running" {
			continue
		}
		for _, a := range c.Attachments {
			if a.Network != DefaultNetwork {
				continue
			}
			if seen != nil && (seen.IPv4.Masked() != a.IPv4.Masked() || seen.Gateway4 != a.Gateway4) {
				return policy.Network{}, fmt.Errorf("containers on the default network disagree on its subnet (%s via %s, %s via %s): "+
					"restart the container service (`container system stop`, then `container system start`)",
					seen.IPv4.Masked(), seen.Gateway4, a.IPv4.Masked(), a.Gateway4)
			}
			seen = &a
		}
	}
	if seen != nil {
		info.subnet4 = seen.IPv4.Masked().String()
		if seen.Gateway4.IsValid() {
			info.gateway4 = seen.Gateway4.String()
		}
		if seen.IPv6.IsValid() {
			info.subnet6 = seen.IPv6.Masked().String()
		}
	}
	return info.Network()
}

// bridge finds the host interface holding the network's gateway.
func (e *Engine) bridge(ctx context.Context, n policy.Network) (string, error) {
	res, err := e.runner.Run(ctx, proc.Cmd{Name: "ifconfig"})
	if err != nil {
		return "", fmt.Errorf("listing host interfaces to find network %q's bridge: %w", n.Name, err)
	}
	ifs, err := ParseIfconfig(res.Stdout)
	if err != nil {
		return "", err
	}
	return BridgeFor(ifs, n)
}

// CreateNetwork creates the named network with the given IPv4 subnet
// (`container network create --subnet CIDR NAME`). Releases before 0.6.0
// have no --subnet: the network is then created with the subnet vmnet picks,
// which may change after a restart, and the error wraps ErrSubnetNotFixed
// unless vmnet happened to pick the one asked for.
func (e *Engine) CreateNetwork(ctx context.Context, name string, subnet netip.Prefix) error {
	if !networkName.MatchString(name) || name == "none" {
		return fmt.Errorf("network name %q: want lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit", name)
	}
	if !subnet.IsValid() || !subnet.Addr().Is4() || !subnet.Addr().IsPrivate() || subnet.Bits() < 8 || subnet.Bits() > 29 {
		return fmt.Errorf("network %q: subnet %v must be a private IPv4 range of /8 to /29, such as 192.168.218.0/24", name, subnet)
	}
	subnet = subnet.Masked()
	v, err := e.ParsedVersion(ctx)
	if err != nil {
		return err
	}
	if !v.hasNetworkCommand() {
		return noNetworks(name, v)
	}
	args := []string{"network", "create"}
	if v.hasSubnetFlag() {
		args = append(args, "--subnet", subnet.String())
	}
	args = append(args, name)
	if _, err := e.run(ctx, args...); err != nil {
		if pluginMissing(err) {
			return noNetworks(name, v)
		}
		return fmt.Errorf("creating container network %q: %w", name, err)
	}
	out, err := e.run(ctx, "network", "list", "--format", "json")
	if err != nil {
		return fmt.Errorf("reading back container network %q: %w", name, err)
	}
	got, err := FindNetwork(out, name)
	if err != nil {
		return fmt.Errorf("reading back container network %q: %w", name, err)
	}
	switch {
	case got.IPv4 == subnet:
		return nil
	case !v.hasSubnetFlag():
		return fmt.Errorf("created container network %q, but container %s cannot fix its subnet (--subnet arrived in 0.6.0): "+
			"it got %s instead of %s and may get another after a restart or reboot; claudecontainer reads the subnet again at every start, "+
			"but upgrade container to keep it fixed: %w", name, v, got.IPv4, subnet, ErrSubnetNotFixed)
	default:
		return fmt.Errorf("created container network %q with --subnet %s, but the container service reports subnet %s: "+
			"delete it with `container network delete %s` and check `container system property list` (network.subnet)",
			name, subnet, got.IPv4, name)
	}
}
