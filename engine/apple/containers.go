package apple

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
)

// ContainerInfo is one container as `container ls --all --format json`
// reports it, whatever the release.
type ContainerInfo struct {
	Name  string
	State string // "running", "stopped", "stopping" (0.2+) or "unknown"
	Image string // the image reference as the runtime normalised it
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

// containerJSON holds the keys of every release's container object:
//
//	0.1–0.12: {status: "running", configuration{id, image, networks}, networks: [attachment]}
//	1.x:      {id, configuration{id, image, networks}, status{state, networks: [attachment]}}
//
// configuration.networks is ["default"] in 0.1–0.3 and
// [{"network":"default","options":{…}}] from 0.4.
type containerJSON struct {
	ID            *string         `json:"id"`
	Status        json.RawMessage `json:"status"`
	Networks      []attachJSON    `json:"networks"`
	Configuration *struct {
		ID    *string `json:"id"`
		Image *struct {
			Reference *string `json:"reference"`
		} `json:"image"`
		Networks []json.RawMessage `json:"networks"`
	} `json:"configuration"`
}

type statusJSON struct {
	State    *string      `json:"state"`
	Networks []attachJSON `json:"networks"`
}

// attachJSON: 0.1–0.7 {network, address, gateway}; 0.8+ {network,
// ipv4Address, ipv4Gateway, ipv6Address?}.
type attachJSON struct {
	Network     *string `json:"network"`
	Address     *string `json:"address"`
	Gateway     *string `json:"gateway"`
	IPv4Address *string `json:"ipv4Address"`
	IPv4Gateway *string `json:"ipv4Gateway"`
	IPv6Address *string `json:"ipv6Address"`
}

// containerName is apple/container's rule for container ids.
var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ParseContainers reads the output of `container ls --all --format json`
// (or 0.x `container inspect`) from any release from 0.1.0 on, checking
// every name, state and address in it.
func ParseContainers(data []byte) ([]ContainerInfo, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("reading `container ls` output: %w (output: %q)", err, clip(data))
	}
	out := make([]ContainerInfo, 0, len(raw))
	for i, item := range raw {
		var c containerJSON
		if err := json.Unmarshal(item, &c); err != nil {
			return nil, fmt.Errorf("reading container %d of `container ls` output: %w", i, err)
		}
		info, err := c.info()
		if err != nil {
			return nil, fmt.Errorf("reading container %d of `container ls` output: %w", i, err)
		}
		out = append(out, info)
	}
	return out, nil
}

func (c containerJSON) info() (ContainerInfo, error) {
	if c.Configuration == nil {
		return ContainerInfo{}, errors.New(`no "configuration" key`)
	}
	cfg := c.Configuration
	var info ContainerInfo
	switch {
	case c.ID != nil:
		info.Name = *c.ID
	case cfg.ID != nil:
		info.Name = *cfg.ID
	default:
		return ContainerInfo{}, errors.New(`no "id" key`)
	}
	if !containerName.MatchString(info.Name) {
		return ContainerInfo{}, fmt.Errorf("container id %q is not a valid container name", info.Name)
	}
	if cfg.ID != nil && *cfg.ID != info.Name {
		return ContainerInfo{}, fmt.Errorf("container %q: its configuration names it %q", info.Name, *cfg.ID)
	}
	if cfg.Image != nil && cfg.Image.Reference != nil {
		info.Image = *cfg.Image.Reference
	}

	attach := c.Networks
	var state string
	if err := json.Unmarshal(c.Status, &state); err != nil {
		// 1.x: status is an object holding the state and the attachments.
		var s statusJSON
		if err := json.Unmarshal(c.Status, &s); err != nil || s.State == nil {
			return ContainerInfo{}, fmt.Errorf("container %q: status %s is neither a state nor an object with a state", info.Name, clip(c.Status))
		}
		state, attach = *s.State, s.Networks
	}
	switch state {
	case "running", "stopped", "stopping", "unknown":
		info.State = state
	default:
		return ContainerInfo{}, fmt.Errorf("container %q: unknown state %q", info.Name, state)
	}

	for _, raw := range cfg.Networks {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			var obj struct {
				Network *string `json:"network"`
			}
			if err := json.Unmarshal(raw, &obj); err != nil || obj.Network == nil {
				return ContainerInfo{}, fmt.Errorf("container %q: network %s is neither a name nor an object with a network", info.Name, clip(raw))
			}
			name = *obj.Network
		}
		if !networkName.MatchString(name) {
			return ContainerInfo{}, fmt.Errorf("container %q: network name %q is not valid", info.Name, name)
		}
		info.Networks = append(info.Networks, name)
	}
	for _, a := range attach {
		at, err := a.attachment()
		if err != nil {
			return ContainerInfo{}, fmt.Errorf("container %q: %w", info.Name, err)
		}
		info.Attachments = append(info.Attachments, at)
	}
	return info, nil
}

func (a attachJSON) attachment() (Attachment, error) {
	if a.Network == nil || !networkName.MatchString(*a.Network) {
		return Attachment{}, errors.New("an attachment has no valid network name")
	}
	at := Attachment{Network: *a.Network}
	addr := first(a.IPv4Address, a.Address)
	p, err := netip.ParsePrefix(addr)
	if err != nil || !p.Addr().Is4() {
		return Attachment{}, fmt.Errorf("attachment to %q: IPv4 address %q is not an IPv4 address with prefix length", at.Network, addr)
	}
	at.IPv4 = p
	if gw := first(a.IPv4Gateway, a.Gateway); gw != "" {
		if at.Gateway4, err = netip.ParseAddr(gw); err != nil || !at.Gateway4.Is4() || !p.Masked().Contains(at.Gateway4) {
			return Attachment{}, fmt.Errorf("attachment to %q: gateway %q is not an IPv4 address inside %s", at.Network, gw, p.Masked())
		}
	}
	if v6 := first(a.IPv6Address); v6 != "" {
		if at.IPv6, err = netip.ParsePrefix(v6); err != nil || !at.IPv6.Addr().Is6() || at.IPv6.Addr().Is4In6() {
			return Attachment{}, fmt.Errorf("attachment to %q: IPv6 address %q is not an IPv6 address with prefix length", at.Network, v6)
		}
	}
	return at, nil
}

// OnNetwork reports whether the container is attached to, or was created
// on, the network.
func (c ContainerInfo) OnNetwork(network string) bool {
	for _, a := range c.Attachments {
		if a.Network == network {
			return true
		}
	}
	for _, n := range c.Networks {
		if n == network {
			return true
		}
	}
	return false
}
