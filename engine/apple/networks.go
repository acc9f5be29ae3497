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
// another in the [network] section of config.toml.
var DefaultSubnet = netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, 64, 0}), 24)

// Network returns the named network with its subnets, gateway and the host
// bridge that carries it (Interface is "" while no container is attached:
// macOS creates the bridge with the first container). The error wraps
// engine.ErrNotFound when there is no such network.
//
// On macOS 15 `container network` does not exist and only the default
// network does; asking for it there reads its subnet from the running
// containers attached to it, or, when none runs, assumes DefaultSubnet.
// Callers should check a container's addresses (Attachments) against the
// network once it runs.
func (e *Engine) Network(ctx context.Context, name string) (policy.Network, error) {
	var n policy.Network
	out, v, err := e.list(ctx, "container networks", "network", "list")
	switch {
	case pluginMissing(err):
		n, err = e.defaultOnly(ctx, name)
	case err == nil:
		n, err = FindNetwork(out, name, v)
	}
	if err != nil {
		return policy.Network{}, err
	}
	if n.Interface, err = e.bridge(ctx, n); err != nil {
		return policy.Network{}, err
	}
	return n, nil
}

// pluginMissing reports whether err is the CLI's answer on macOS 15 to
// `container network …`: there the network commands are not registered
// (Application.swift: `guard #available(macOS 26, *)`), so the word falls
// to DefaultCommand, which looks for a plugin of that name and fails with
// "Plugin 'container-network' not found.", a ValidationError (exit 64).
func pluginMissing(err error) bool {
	var ee *proc.ExitError
	return errors.As(err, &ee) && ee.Code == 64 && strings.Contains(ee.Stderr, "Plugin 'container-network' not found")
}

// noNetworks explains why only the default network can be used.
func noNetworks(name string) error {
	return fmt.Errorf("this Mac cannot use container network %q: `container network` exists only on macOS 26 "+
		"(container says: Plugin 'container-network' not found). On macOS 15 containers can only use the default network "+
		"(192.168.64.0/24 unless `[network] subnet` is set in config.toml), whose containers cannot reach each other, and which has no IPv6. "+
		"Upgrade to macOS 26 to get a dedicated network, or set CLAUDECONTAINER_NETWORK=default to guard the default network "+
		"(the firewall then applies to every container on this Mac)", name)
}

// defaultOnly finds the default network without `container network`: from
// the attachments of its running containers, else DefaultSubnet.
func (e *Engine) defaultOnly(ctx context.Context, name string) (policy.Network, error) {
	if name != DefaultNetwork {
		return policy.Network{}, noNetworks(name)
	}
	cs, err := e.containers(ctx)
	if err != nil {
		return policy.Network{}, err
	}
	subnet4, gateway4, subnet6 := DefaultSubnet.String(), "", ""
	var seen *Attachment
	for _, c := range cs {
		for _, a := range c.Attachments {
			if c.State != "running" || a.Network != DefaultNetwork {
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
		subnet4 = seen.IPv4.Masked().String()
		if seen.Gateway4.IsValid() {
			gateway4 = seen.Gateway4.String()
		}
		if seen.IPv6.IsValid() {
			subnet6 = seen.IPv6.Masked().String()
		}
	}
	return network(DefaultNetwork, subnet4, gateway4, subnet6)
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
// (`container network create --subnet CIDR NAME`) and reads it back.
func (e *Engine) CreateNetwork(ctx context.Context, name string, subnet netip.Prefix) error {
	if !networkName.MatchString(name) || name == "none" {
		return fmt.Errorf("network name %q: want lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit", name)
	}
	if !subnet.IsValid() || !subnet.Addr().Is4() || !subnet.Addr().IsPrivate() || subnet.Bits() < 8 || subnet.Bits() > 29 {
		return fmt.Errorf("network %q: subnet %v must be a private IPv4 range of /8 to /29, such as 192.168.218.0/24", name, subnet)
	}
	subnet = subnet.Masked()
	v, err := e.release(ctx)
	if err != nil {
		return err
	}
	if _, err := e.run(ctx, "network", "create", "--subnet", subnet.String(), name); err != nil {
		if pluginMissing(err) {
			return noNetworks(name)
		}
		return fmt.Errorf("creating container network %q: %w", name, err)
	}
	out, err := e.run(ctx, "network", "list", "--format", "json")
	if err != nil {
		return fmt.Errorf("reading back container network %q: %w", name, err)
	}
	got, err := FindNetwork(out, name, v)
	if err != nil {
		return fmt.Errorf("reading back container network %q: %w", name, err)
	}
	if got.IPv4 != subnet {
		return fmt.Errorf("created container network %q with --subnet %s, but the container service reports subnet %s: "+
			"delete it with `container network delete %s` and check the [network] section of ~/.config/container/config.toml",
			name, subnet, got.IPv4, name)
	}
	return nil
}
