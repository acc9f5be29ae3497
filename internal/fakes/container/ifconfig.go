package container

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/VerilyPete/claudecontainer/internal/fakebin"
)

// Ifconfig runs the fake macOS `ifconfig`: lo0, en0, and one vmnet bridge
// (bridge100, bridge101, …) for each network of the fake `container` that
// has a running container, holding the network's gateway address. With no
// argument or -a it lists every interface; with a name, that one.
func Ifconfig() int {
	fakebin.Record()
	c, err := newCLI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake ifconfig:", err)
		return 2
	}
	var s *state
	if c.dir != "" {
		var e *exit
		if s, e = c.snapshot(); e != nil {
			fmt.Fprintln(os.Stderr, "fake ifconfig:", e.msg)
			return 2
		}
	}
	ifs := interfaces(s)
	args := os.Args[1:]
	if len(args) == 0 || args[0] == "-a" {
		for _, it := range ifs {
			fmt.Fprint(os.Stdout, it.text)
		}
		fmt.Fprint(os.Stdout, os.Getenv(EnvIfExtra))
		return 0
	}
	for _, it := range ifs {
		if it.name == args[0] {
			fmt.Fprint(os.Stdout, it.text)
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "ifconfig: interface %s does not exist\n", args[0])
	return 1
}

type iface struct{ name, text string }

// inet is an interface's line for the IPv4 address a in the subnet p.
func inet(a netip.Addr, p netip.Prefix) string {
	mask := uint32(0xffffffff) << (32 - p.Bits())
	b := p.Masked().Addr().As4()
	binary.BigEndian.PutUint32(b[:], binary.BigEndian.Uint32(b[:])|^mask)
	return fmt.Sprintf("\tinet %s netmask 0x%08x broadcast %s\n", a, mask, netip.AddrFrom4(b))
}

func interfaces(s *state) []iface {
	en0, err := netip.ParsePrefix(cmp.Or(os.Getenv(EnvEn0), "192.168.1.23/24"))
	if err != nil || !en0.Addr().Is4() {
		en0 = netip.MustParsePrefix("192.168.1.23/24")
	}
	ifs := []iface{
		{"lo0", "lo0: flags=8049<UP,LOOPBACK,RUNNING,MULTICAST> mtu 16384\n" +
			"\toptions=1203<RXCSUM,TXCSUM,TXSTATUS,SW_TIMESTAMP>\n" +
			"\tinet 127.0.0.1 netmask 0xff000000\n" +
			"\tinet6 ::1 prefixlen 128 \n" +
			"\tinet6 fe80::1%lo0 prefixlen 64 scopeid 0x1 \n" +
			"\tnd6 options=201<PERFORMNUD,DAD>\n"},
		{"en0", "en0: flags=8863<UP,BROADCAST,SMART,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n" +
			"\toptions=6460<TSO4,TSO6,CHANNEL_IO,PARTIAL_CSUM,ZEROINVERT_CSUM>\n" +
			"\tether 1c:f6:4c:6c:cc:87\n" +
			"\tinet6 fe80::1c:f6ff:fe4c:cc87%en0 prefixlen 64 secured scopeid 0xb \n" +
			inet(en0.Addr(), en0) +
			"\tnd6 options=201<PERFORMNUD,DAD>\n" +
			"\tmedia: autoselect\n" +
			"\tstatus: active\n"},
	}
	if s == nil {
		return ifs
	}
	member := 0
	// The bridges in the order of their index.
	for _, name := range slices.SortedFunc(maps.Keys(s.Bridges), func(a, b string) int { return s.Bridges[a] - s.Bridges[b] }) {
		n := s.network(name)
		if n == nil {
			continue
		}
		idx := s.Bridges[name]
		p, _ := netip.ParsePrefix(n.Subnet)
		var b strings.Builder
		fmt.Fprintf(&b, "bridge%d: flags=8a63<UP,BROADCAST,SMART,RUNNING,ALLMULTI,SIMPLEX,MULTICAST> mtu 1500\n", idx)
		b.WriteString("\toptions=3<RXCSUM,TXCSUM>\n")
		fmt.Fprintf(&b, "\tether 6e:7e:67:eb:5b:%02x\n", idx)
		b.WriteString(inet(n.gateway(), p))
		fmt.Fprintf(&b, "\tinet6 fe80::6c7e:67ff:feeb:5b%02x%%bridge%d prefixlen 64 scopeid 0x%x \n", idx, idx, idx-80)
		if p6, err := netip.ParsePrefix(n.Subnet6); err == nil { // none without IPv6
			fmt.Fprintf(&b, "\tinet6 %s prefixlen 64 \n", p6.Masked().Addr().Next())
		}
		b.WriteString("\tConfiguration:\n" +
			"\t\tid 0:0:0:0:0:0 priority 0 hellotime 0 fwddelay 0\n" +
			"\t\tmaxage 0 holdcnt 0 proto stp maxaddr 100 timeout 1200\n" +
			"\t\troot id 0:0:0:0:0:0 priority 0 ifcost 0 port 0\n" +
			"\t\tipfilter disabled flags 0x0\n")
		for range s.running(name) {
			fmt.Fprintf(&b, "\tmember: vmenet%d flags=3<LEARNING,DISCOVER>\n\t        ifmaxaddr 0 port %d priority 0 path cost 0\n", member, 21+member)
			member++
		}
		b.WriteString("\tnd6 options=201<PERFORMNUD,DAD>\n\tmedia: autoselect\n\tstatus: active\n")
		ifs = append(ifs, iface{fmt.Sprintf("bridge%d", idx), b.String()})
	}
	return ifs
}
