package policy_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/policy"
)

var (
	a = netip.MustParseAddr
	p = netip.MustParsePrefix
)

func dualStack() policy.Policy {
	pol, err := policy.New(policy.Network{
		Name: "claude", IPv4: p("192.168.64.0/24"), Gateway4: a("192.168.64.1"),
		IPv6: p("fd5e:9a3b:1c2d:4e5f::/64"), Interface: "bridge100",
	}, "allowed_destinations")
	if err != nil {
		panic(err)
	}
	return pol
}

func allowlist() *netipx.IPSet {
	var b netipx.IPSetBuilder
	b.AddPrefix(p("140.82.112.0/20"))
	b.AddPrefix(p("2606:50c0::/32"))
	s, err := b.IPSet()
	if err != nil {
		panic(err)
	}
	return s
}

func TestDecideFollowsThePolicy(t *testing.T) {
	pol, set := dualStack(), allowlist()
	ctr, ctr6 := a("192.168.64.5"), a("fd5e:9a3b:1c2d:4e5f::5")
	cases := []struct {
		name string
		f    policy.Flow
		want policy.Verdict
	}{
		{"https to an allowlisted address", policy.Flow{Src: ctr, Dst: a("140.82.113.4"), Proto: policy.TCP, Port: 443}, policy.Pass},
		{"ssh to an allowlisted address", policy.Flow{Src: ctr, Dst: a("140.82.113.4"), Proto: policy.TCP, Port: 22}, policy.Pass},
		{"udp to an allowlisted address", policy.Flow{Src: ctr, Dst: a("140.82.113.4"), Proto: policy.UDP, Port: 443}, policy.Pass},
		{"icmp to an allowlisted address", policy.Flow{Src: ctr, Dst: a("140.82.113.4"), Proto: policy.ICMP}, policy.Refuse},
		{"https elsewhere", policy.Flow{Src: ctr, Dst: a("93.184.216.34"), Proto: policy.TCP, Port: 443}, policy.Refuse},
		{"ssh elsewhere", policy.Flow{Src: ctr, Dst: a("93.184.216.34"), Proto: policy.TCP, Port: 22}, policy.Refuse},
		{"dns to the gateway over udp", policy.Flow{Src: ctr, Dst: a("192.168.64.1"), Proto: policy.UDP, Port: 53}, policy.Pass},
		{"dns to the gateway over tcp", policy.Flow{Src: ctr, Dst: a("192.168.64.1"), Proto: policy.TCP, Port: 53}, policy.Pass},
		{"dns to a public resolver", policy.Flow{Src: ctr, Dst: a("8.8.8.8"), Proto: policy.UDP, Port: 53}, policy.Refuse},
		{"ssh to the host", policy.Flow{Src: ctr, Dst: a("192.168.64.1"), Proto: policy.TCP, Port: 22}, policy.Refuse},
		{"udp to the subnet's broadcast address reaches the host", policy.Flow{Src: ctr, Dst: a("192.168.64.255"), Proto: policy.UDP, Port: 137}, policy.Refuse},
		{"udp to the subnet's own address reaches a BSD host", policy.Flow{Src: ctr, Dst: a("192.168.64.0"), Proto: policy.UDP, Port: 137}, policy.Refuse},
		{"dns to the broadcast address", policy.Flow{Src: ctr, Dst: a("192.168.64.255"), Proto: policy.UDP, Port: 53}, policy.Refuse},
		{"another container", policy.Flow{Src: ctr, Dst: a("192.168.64.7"), Proto: policy.TCP, Port: 8080}, policy.Pass},
		{"the LAN", policy.Flow{Src: ctr, Dst: a("192.168.1.10"), Proto: policy.TCP, Port: 80}, policy.Refuse},
		{"ipv6 to an allowlisted address", policy.Flow{Src: ctr6, Dst: a("2606:50c0::1"), Proto: policy.TCP, Port: 443}, policy.Pass},
		{"ipv6 elsewhere", policy.Flow{Src: ctr6, Dst: a("2001:db8::1"), Proto: policy.TCP, Port: 443}, policy.Refuse},
		{"ipv6 to the host's address on the network", policy.Flow{Src: ctr6, Dst: a("fd5e:9a3b:1c2d:4e5f::1"), Proto: policy.TCP, Port: 22, ToHost: true}, policy.Refuse},
		{"ipv6 to another container", policy.Flow{Src: ctr6, Dst: a("fd5e:9a3b:1c2d:4e5f::7"), Proto: policy.TCP, Port: 22}, policy.Pass},
		{"the host's LAN address", policy.Flow{Src: ctr, Dst: a("192.168.1.5"), Proto: policy.TCP, Port: 22, ToHost: true}, policy.Refuse},
		{"dns to an allowlisted address", policy.Flow{Src: ctr, Dst: a("140.82.113.4"), Proto: policy.UDP, Port: 53}, policy.Refuse},
		{"dns over tcp to an allowlisted IPv6 address", policy.Flow{Src: ctr6, Dst: a("2606:50c0::1"), Proto: policy.TCP, Port: 53}, policy.Refuse},
		{"dns to another container", policy.Flow{Src: ctr, Dst: a("192.168.64.7"), Proto: policy.UDP, Port: 53}, policy.Pass},
		{"a made-up IPv4 source on the bridge", policy.Flow{Src: a("203.0.113.9"), Dst: a("140.82.113.4"), Proto: policy.UDP, Port: 443, FromBridge: true}, policy.Drop},
		{"a made-up IPv6 source on the bridge", policy.Flow{Src: a("2001:db8::9"), Dst: a("2606:50c0::1"), Proto: policy.UDP, Port: 443, FromBridge: true}, policy.Drop},
		{"a link-local source on the bridge", policy.Flow{Src: a("fe80::5"), Dst: a("fe80::1"), Proto: policy.TCP, Port: 22, FromBridge: true}, policy.Refuse},
		{"a container's own address on the bridge", policy.Flow{Src: ctr, Dst: a("140.82.113.4"), Proto: policy.TCP, Port: 443, FromBridge: true}, policy.Pass},
		{"the host opens a connection to a container", policy.Flow{Src: a("192.168.64.1"), Dst: ctr, Proto: policy.TCP, Port: 8080, FromHost: true}, policy.Pass},
		{"traffic from elsewhere", policy.Flow{Src: a("10.1.1.1"), Dst: a("8.8.8.8"), Proto: policy.UDP, Port: 53}, policy.Ignore},
		{"an IPv4-mapped destination counts as IPv4", policy.Flow{Src: ctr, Dst: a("::ffff:140.82.113.4"), Proto: policy.TCP, Port: 443}, policy.Pass},
	}
	for _, c := range cases {
		if got := pol.Decide(c.f, set); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Without the bridge, a made-up source cannot be told from traffic
	// that is not the network's: the backends leave it alone.
	pol.Network.Interface = ""
	spoofed := policy.Flow{Src: a("203.0.113.9"), Dst: a("140.82.113.4"), Proto: policy.UDP, Port: 443, FromBridge: true}
	if got := pol.Decide(spoofed, set); got != policy.Ignore {
		t.Errorf("a made-up source without the bridge: %v, want %v", got, policy.Ignore)
	}
}

func TestHostAddrs4AreTheGatewayAndTheBroadcastAddresses(t *testing.T) {
	cases := []struct {
		name string
		n    policy.Network
		want []netip.Addr
	}{
		{"a /24", policy.Network{IPv4: p("192.168.64.0/24"), Gateway4: a("192.168.64.1")},
			[]netip.Addr{a("192.168.64.1"), a("192.168.64.0"), a("192.168.64.255")}},
		{"a /16 with the gateway elsewhere", policy.Network{IPv4: p("10.89.0.0/16"), Gateway4: a("10.89.3.1")},
			[]netip.Addr{a("10.89.3.1"), a("10.89.0.0"), a("10.89.255.255")}},
		{"no subnet", policy.Network{}, nil},
	}
	for _, c := range cases {
		if diff := cmp.Diff(c.want, c.n.HostAddrs4(), cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestDecideSendsDNSOnlyWhereThePolicySays(t *testing.T) {
	pol := dualStack()
	pol.DNS = []netip.Addr{a("192.168.64.2")} // a forwarder on the network
	ctr := a("192.168.64.5")
	if got := pol.Decide(policy.Flow{Src: ctr, Dst: a("192.168.64.2"), Proto: policy.UDP, Port: 53}, nil); got != policy.Pass {
		t.Errorf("dns to the forwarder: %v", got)
	}
	if got := pol.Decide(policy.Flow{Src: ctr, Dst: a("192.168.64.1"), Proto: policy.UDP, Port: 53}, nil); got != policy.Refuse {
		t.Errorf("dns to the gateway when a forwarder is named: %v", got)
	}
	// The pf anchor writes an IPv4-mapped DNS server as IPv4; so does Decide.
	pol.DNS = []netip.Addr{a("::ffff:192.168.64.2")}
	if got := pol.Decide(policy.Flow{Src: ctr, Dst: a("192.168.64.2"), Proto: policy.UDP, Port: 53}, nil); got != policy.Pass {
		t.Errorf("dns to a forwarder named as an IPv4-mapped address: %v", got)
	}
}

func TestValidateRefusesWhatCannotBeRenderedSafely(t *testing.T) {
	good := dualStack()
	cases := map[string]func(*policy.Policy){
		"no subnet":            func(q *policy.Policy) { q.Network.IPv4 = netip.Prefix{} },
		"unmasked subnet":      func(q *policy.Policy) { q.Network.IPv4 = p("192.168.64.1/24") },
		"public subnet":        func(q *policy.Policy) { q.Network.IPv4 = p("8.8.8.0/24"); q.Network.Gateway4 = a("8.8.8.1") },
		"gateway outside":      func(q *policy.Policy) { q.Network.Gateway4 = a("10.0.0.1") },
		"ipv4 as ipv6 subnet":  func(q *policy.Policy) { q.Network.IPv6 = p("192.168.0.0/24") },
		"short ipv6 subnet":    func(q *policy.Policy) { q.Network.IPv6 = p("fd00::/8") },
		"interface with colon": func(q *policy.Policy) { q.Network.Interface = "bridge100:" },
		"interface injection":  func(q *policy.Policy) { q.Network.Interface = "en0 all" },
		"table with a space":   func(q *policy.Policy) { q.Table = "a b" },
		"no dns":               func(q *policy.Policy) { q.DNS = nil },
	}
	for name, mutate := range cases {
		pol := good
		pol.DNS = append([]netip.Addr(nil), good.DNS...)
		mutate(&pol)
		if err := pol.Validate(); err == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
	if err := good.Validate(); err != nil {
		t.Errorf("good policy: %v", err)
	}
}

func TestDecideWithTheDNSFilter(t *testing.T) {
	pol, set := dualStack(), allowlist()
	pol.Filter = &policy.Filter{Port: 15353}
	var b netipx.IPSetBuilder
	b.Add(a("93.184.216.34"))
	b.Add(a("2001:db8::34"))
	opened, err := b.IPSet()
	if err != nil {
		t.Fatal(err)
	}
	ctr, ctr6 := a("192.168.64.5"), a("fd5e:9a3b:1c2d:4e5f::5")
	for _, c := range []struct {
		name string
		f    policy.Flow
		want policy.Verdict
	}{
		{"dns to the gateway goes to the filter", policy.Flow{Src: ctr, Dst: a("192.168.64.1"), Proto: policy.UDP, Port: 53}, policy.Redirect},
		{"dns over tcp to the gateway goes to the filter", policy.Flow{Src: ctr, Dst: a("192.168.64.1"), Proto: policy.TCP, Port: 53}, policy.Redirect},
		{"dns to a public resolver goes to the filter", policy.Flow{Src: ctr, Dst: a("8.8.8.8"), Proto: policy.UDP, Port: 53}, policy.Redirect},
		{"a TXT tunnel over tcp to an allowlisted address goes to the filter", policy.Flow{Src: ctr, Dst: a("140.82.113.4"), Proto: policy.TCP, Port: 53}, policy.Redirect},
		{"ipv6 dns anywhere goes to the filter", policy.Flow{Src: ctr6, Dst: a("2001:4860:4860::8888"), Proto: policy.UDP, Port: 53}, policy.Redirect},
		{"dns to an opened address still goes to the filter", policy.Flow{Src: ctr, Dst: a("93.184.216.34"), Proto: policy.UDP, Port: 53}, policy.Redirect},
		{"https to an address the filter opened", policy.Flow{Src: ctr, Dst: a("93.184.216.34"), Proto: policy.TCP, Port: 443}, policy.Pass},
		{"udp to an address the filter opened", policy.Flow{Src: ctr, Dst: a("93.184.216.34"), Proto: policy.UDP, Port: 443}, policy.Pass},
		{"ipv6 to an address the filter opened", policy.Flow{Src: ctr6, Dst: a("2001:db8::34"), Proto: policy.TCP, Port: 443}, policy.Pass},
		{"icmp to an address the filter opened", policy.Flow{Src: ctr, Dst: a("93.184.216.34"), Proto: policy.ICMP}, policy.Refuse},
		{"https to an address it did not open", policy.Flow{Src: ctr, Dst: a("93.184.216.35"), Proto: policy.TCP, Port: 443}, policy.Refuse},
		{"the filter's port on the gateway, asked directly", policy.Flow{Src: ctr, Dst: a("192.168.64.1"), Proto: policy.UDP, Port: 15353, ToHost: true}, policy.Refuse},
		{"the allowlist still passes", policy.Flow{Src: ctr, Dst: a("140.82.113.4"), Proto: policy.TCP, Port: 443}, policy.Pass},
		{"dns on another port to a public resolver", policy.Flow{Src: ctr, Dst: a("8.8.8.8"), Proto: policy.UDP, Port: 5353}, policy.Refuse},
	} {
		if got := pol.DecideOpened(c.f, set, opened); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Without the filter, what it opened is nothing.
	pol.Filter = nil
	if got := pol.DecideOpened(policy.Flow{Src: ctr, Dst: a("93.184.216.34"), Proto: policy.TCP, Port: 443}, set, opened); got != policy.Refuse {
		t.Errorf("an opened address without the filter: %v, want Refuse", got)
	}
}

func TestSubnetIsTheOneOfTheAddressFamily(t *testing.T) {
	n := policy.Network{IPv4: netip.MustParsePrefix("192.168.64.0/24"), IPv6: netip.MustParsePrefix("fd00::/64")}
	for a, want := range map[string]netip.Prefix{
		"93.184.216.34":        n.IPv4,
		"::ffff:93.184.216.34": n.IPv4,
		"2606:50c0::1":         n.IPv6,
	} {
		if got := n.Subnet(netip.MustParseAddr(a)); got != want {
			t.Errorf("Subnet(%s) = %v, want %v", a, got, want)
		}
	}
	if got := (policy.Network{IPv4: n.IPv4}).Subnet(netip.MustParseAddr("2606:50c0::1")); got.IsValid() {
		t.Errorf("a network without IPv6: Subnet of an IPv6 address = %v", got)
	}
	if got := n.Subnet(netip.Addr{}); got.IsValid() {
		t.Errorf("Subnet of the zero address = %v", got)
	}
}
