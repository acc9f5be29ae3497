package apple

import (
	"fmt"
	"math/bits"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/VerilyPete/claudecontainer/policy"
)

// Interface is one interface in macOS `ifconfig` output, with its IPv4
// addresses.
type Interface struct {
	Name string
	IPv4 []netip.Prefix // address with the prefix length of its netmask
}

var (
	// "bridge100: flags=8a63<UP,BROADCAST,...> mtu 1500": the name's
	// trailing colon is not part of it.
	ifHeader = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_.-]*): flags=`)
	// "\tinet 192.168.64.1 netmask 0xffffff00 broadcast 192.168.64.255" or,
	// on point-to-point links, "\tinet 10.0.0.2 --> 10.0.0.1 netmask 0xffffffff".
	ifInet = regexp.MustCompile(`^\s+inet (\S+)(?: --> \S+)? netmask (0x[0-9a-fA-F]{1,8})\b`)
)

// ParseIfconfig reads macOS `ifconfig` output (all interfaces). Lines it
// does not need (options, ether, inet6, bridge members, media) are skipped.
func ParseIfconfig(out []byte) ([]Interface, error) {
	var ifs []Interface
	for i, text := range strings.Split(string(out), "\n") {
		if m := ifHeader.FindStringSubmatch(text); m != nil {
			ifs = append(ifs, Interface{Name: m[1]})
			continue
		}
		m := ifInet.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		if len(ifs) == 0 {
			return nil, fmt.Errorf("ifconfig output line %d: an address before any interface: %q", i+1, text)
		}
		addr, err := netip.ParseAddr(m[1])
		if err != nil || !addr.Is4() {
			return nil, fmt.Errorf("ifconfig output line %d: bad IPv4 address in %q", i+1, text)
		}
		ones, err := maskBits(m[2])
		if err != nil {
			return nil, fmt.Errorf("ifconfig output line %d: %w", i+1, err)
		}
		cur := &ifs[len(ifs)-1]
		cur.IPv4 = append(cur.IPv4, netip.PrefixFrom(addr, ones))
	}
	return ifs, nil
}

// maskBits turns a netmask such as 0xffffff00 into a prefix length (24).
func maskBits(hex string) (int, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(hex, "0x"), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("bad netmask %q", hex)
	}
	ones := bits.LeadingZeros32(^uint32(v))
	if uint32(v)<<ones != 0 {
		return 0, fmt.Errorf("netmask %q is not contiguous", hex)
	}
	return ones, nil
}

// BridgeFor returns the name of the host interface that holds the network's
// gateway address: the vmnet bridge (bridge100, bridge101, …) the network's
// containers are attached to. It returns "" without error when no interface
// holds the address yet: macOS creates the bridge only when the first
// container attaches to the network and removes it when the last one leaves.
//
// It fails when the address is on an interface that is not a bridge, or on
// more than one, or when the bridge's netmask disagrees with the network:
// the network then collides with another host network, and rules keyed on
// that interface would guard the wrong traffic.
func BridgeFor(ifs []Interface, n policy.Network) (string, error) {
	var found []string
	var mismatch string
	for _, it := range ifs {
		for _, p := range it.IPv4 {
			if p.Addr() != n.Gateway4 {
				continue
			}
			found = append(found, it.Name)
			if p.Bits() != n.IPv4.Bits() {
				mismatch = fmt.Sprintf("%s has %s but the network is %s", it.Name, p, n.IPv4)
			}
		}
	}
	switch {
	case len(found) == 0:
		return "", nil
	case len(found) > 1:
		return "", fmt.Errorf("network %q: its gateway %s is on several interfaces (%s); "+
			"the network's subnet collides with another host network: recreate it with another --subnet",
			n.Name, n.Gateway4, strings.Join(found, ", "))
	}
	name := found[0]
	if !strings.HasPrefix(name, "bridge") || !policy.ValidInterface(name) {
		return "", fmt.Errorf("network %q: its gateway %s is on interface %q, not on a vmnet bridge; "+
			"the network's subnet collides with a host network: recreate it with another --subnet", n.Name, n.Gateway4, name)
	}
	if mismatch != "" {
		return "", fmt.Errorf("network %q: the bridge and the container service disagree on the subnet (%s); "+
			"restart the container service (`container system stop`, then `container system start`)", n.Name, mismatch)
	}
	return name, nil
}
