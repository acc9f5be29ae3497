package apple

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"

	"github.com/VerilyPete/claudecontainer/engine"
)

// ContainerInfo is one container as `container list --all --format json`
// reports it.
type ContainerInfo struct {
	Name  string
	State string // "running", "stopped", "stopping" or "unknown"
	// Networks are the networks the container was created on.
	Networks []string
	// Attachments are the container's live network interfaces; empty when
	// it is not running.
	Attachments []Attachment
}

// Attachment is a running container's interface on one network.
type Attachment struct {
	Network  string
	IPv4     netip.Prefix // the container's address with the network's prefix length
	Gateway4 netip.Addr
	IPv6     netip.Prefix // zero when the network has no IPv6
}

// containerJSON holds the keys read of a container object, a
// ManagedContainer (1.2.2:Sources/ContainerResource/Container/ManagedContainer.swift):
//
//	{id, configuration{id, networks[{network, options}], …}, status{state, networks[attachment], startedDate?}}
type containerJSON struct {
	ID            *string `json:"id"`
	Configuration struct {
		Networks []struct {
			Network *string `json:"network"`
		} `json:"networks"`
	} `json:"configuration"`
	Status *struct {
		State    *string      `json:"state"`
		Networks []attachJSON `json:"networks"`
	} `json:"status"`
}

// attachJSON is an Attachment
// (1.2.2:Sources/ContainerResource/Network/Attachment.swift):
// {network, hostname, ipv4Address, ipv4Gateway, ipv6Address?, macAddress?, mtu?, variant?}.
type attachJSON struct {
	Network     *string `json:"network"`
	IPv4Address *string `json:"ipv4Address"`
	IPv4Gateway *string `json:"ipv4Gateway"`
	IPv6Address *string `json:"ipv6Address"`
}

// containerName is apple/container's rule for container ids
// (1.2.2:Sources/ContainerResource/Container/ManagedContainer.swift, nameValid).
var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ParseContainers reads the output of `container list --all --format json`
// of release v, checking every name, state and address in it. A network
// whose name apple/container would refuse cannot be the one claudecontainer
// guards, so attachments to it are left out instead of failing the list.
func ParseContainers(data []byte, v Version) ([]ContainerInfo, error) {
	var items []containerJSON
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, fmt.Errorf("reading `container list` output: %w (output: %q)", err, engine.Clip(data))
	}
	out := make([]ContainerInfo, 0, len(items))
	for _, c := range items {
		info, err := c.info(v)
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

func (c containerJSON) info(v Version) (ContainerInfo, error) {
	switch {
	case c.ID == nil:
		return ContainerInfo{}, missingKey(v, "list", "id")
	case c.Status == nil || c.Status.State == nil:
		return ContainerInfo{}, missingKey(v, "list", "status.state")
	case !containerName.MatchString(*c.ID):
		return ContainerInfo{}, fmt.Errorf("reading `container list` output: container id %q is not a valid container name", *c.ID)
	case !slices.Contains([]string{"running", "stopped", "stopping", "unknown"}, *c.Status.State):
		return ContainerInfo{}, fmt.Errorf("container %q: unknown state %q", *c.ID, *c.Status.State)
	}
	info := ContainerInfo{Name: *c.ID, State: *c.Status.State}
	for _, n := range c.Configuration.Networks {
		if n.Network == nil {
			return ContainerInfo{}, missingKey(v, "list", "configuration.networks[].network")
		}
		if networkName.MatchString(*n.Network) {
			info.Networks = append(info.Networks, *n.Network)
		}
	}
	for _, a := range c.Status.Networks {
		if a.Network == nil {
			return ContainerInfo{}, missingKey(v, "list", "status.networks[].network")
		}
		if a.IPv4Address == nil {
			return ContainerInfo{}, missingKey(v, "list", "status.networks[].ipv4Address")
		}
		if !networkName.MatchString(*a.Network) {
			continue
		}
		at, err := a.attachment()
		if err != nil {
			return ContainerInfo{}, fmt.Errorf("container %q: %w", info.Name, err)
		}
		info.Attachments = append(info.Attachments, at)
	}
	return info, nil
}

func (a attachJSON) attachment() (Attachment, error) {
	at := Attachment{Network: *a.Network}
	p, err := netip.ParsePrefix(*a.IPv4Address)
	if err != nil || !p.Addr().Is4() {
		return Attachment{}, fmt.Errorf("attachment to %q: IPv4 address %q is not an IPv4 address with prefix length", at.Network, *a.IPv4Address)
	}
	at.IPv4 = p
	if a.IPv4Gateway != nil {
		if at.Gateway4, err = netip.ParseAddr(*a.IPv4Gateway); err != nil || !at.Gateway4.Is4() || !p.Masked().Contains(at.Gateway4) {
			return Attachment{}, fmt.Errorf("attachment to %q: gateway %q is not an IPv4 address inside %s", at.Network, *a.IPv4Gateway, p.Masked())
		}
	}
	if a.IPv6Address != nil {
		if at.IPv6, err = netip.ParsePrefix(*a.IPv6Address); err != nil || !at.IPv6.Addr().Is6() || at.IPv6.Addr().Is4In6() {
			return Attachment{}, fmt.Errorf("attachment to %q: IPv6 address %q is not an IPv6 address with prefix length", at.Network, *a.IPv6Address)
		}
	}
	return at, nil
}

// OnNetwork reports whether the container is attached to, or was created
// on, the network.
func (c ContainerInfo) OnNetwork(network string) bool {
	return slices.Contains(c.Networks, network) ||
		slices.ContainsFunc(c.Attachments, func(a Attachment) bool { return a.Network == network })
}
