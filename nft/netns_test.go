package nft

// The end-to-end tests build a small network out of Linux network
// namespaces and run the firewall in one of them:
//
//	ctr ──┐                        ┌── wan (stands for the internet: every
//	      ├─ bridge ── host ── wan0┘        outside address on its loopback)
//	peer ─┘   (our table,   └── lan0 ── lan (other hosts of the LAN)
//	           the runtime's
//	           stand-in table)
//
// ctr and peer are containers on the bridge; host routes between them and
// holds the gateway addresses, a DNS server and other services. Every
// address lives inside these namespaces, so no packet leaves the machine,
// even where an address stands for a real public host.
//
// Sockets are created inside a namespace by a goroutine that locks its
// thread and switches the thread's namespace (setns), so servers and clients
// are ordinary Go code in the test process. A socket stays in the namespace
// it was created in and can be used from any goroutine afterwards.

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/netns"

	"github.com/miekg/dns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/VerilyPete/claudecontainer/policy"
)

// dialTimeout bounds every probe. It is generous on purpose: a refused
// connection fails within milliseconds, so a probe that reaches the timeout
// has met a silent drop, and the test reports it as such.
const dialTimeout = 5 * time.Second

// needNetns skips the test unless this machine can run the end-to-end tests.
func needNetns(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test: needs root to create network namespaces")
	}
	var missing []string
	for _, prog := range []string{"nft", "ip"} {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
		}
	}
	if len(missing) > 0 {
		t.Skipf("end-to-end test: %s not installed (apt-get install -y nftables iproute2)", strings.Join(missing, " and "))
	}
	probe := "ccprobe-" + randomID()
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("end-to-end test: this kernel or container cannot create network namespaces: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", probe).Run()
	if out, err := exec.Command("ip", "netns", "exec", probe, "nft", "list", "ruleset").CombinedOutput(); err != nil {
		t.Skipf("end-to-end test: nftables does not work in a network namespace here: %v: %s", err, out)
	}
}

func randomID() string { return hex.EncodeToString(randomBytes(3)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

var inNS = netns.Do

// nsRunner runs host programs inside a network namespace, so the backend
// under test drives the nft of that namespace.
func nsRunner(ns string) netns.Runner { return netns.Runner{NS: ns} }

// The roles an address can play in the topology.
type role string

const (
	roleHost role = "host"
	roleCtr  role = "ctr"
	rolePeer role = "peer"
	roleWAN  role = "wan"
	roleLAN  role = "lan"
)

// topology is one test's set of namespaces, addresses and servers.
type topology struct {
	t      *testing.T
	p      policy.Policy
	id     string
	ns     map[role]string
	bridge string
	ctr    []netip.Addr // sources of flows from the network
	lan    []netip.Addr // sources of flows from elsewhere
	served map[string]bool
}

// Link addresses between host and wan and host and lan, from the
// documentation ranges.
var (
	wanHost4, wanPeer4 = netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	lanHost4, lanPeer4 = netip.MustParseAddr("198.51.100.5"), netip.MustParseAddr("198.51.100.6")
	wanHost6, wanPeer6 = netip.MustParseAddr("2001:db8:ffff:1::1"), netip.MustParseAddr("2001:db8:ffff:1::2")
	lanHost6, lanPeer6 = netip.MustParseAddr("2001:db8:ffff:2::1"), netip.MustParseAddr("2001:db8:ffff:2::2")
)

// hostAddr6 is the host's IPv6 address on the bridge: the first address of
// the subnet, as the flow table assumes.
func hostAddr6(n policy.Network) netip.Addr { return n.IPv6.Addr().Next() }

// where returns the namespace that owns address a.
func (tp *topology) where(a netip.Addr) role {
	n := tp.p.Network
	a = a.Unmap()
	inNet := n.IPv4.Contains(a) || (n.IPv6.IsValid() && n.IPv6.Contains(a))
	switch {
	case a == n.Gateway4 || (n.IPv6.IsValid() && a == hostAddr6(n)):
		return roleHost
	case inNet && slices.Contains(tp.p.DNS, a):
		return roleHost // a DNS forwarder the host runs on the network
	case inNet && slices.Contains(tp.ctr, a):
		return roleCtr
	case inNet:
		return rolePeer
	case slices.Contains(tp.lan, a):
		return roleLAN
	}
	return roleWAN
}

// newTopology builds the namespaces for p and starts a server for every
// destination of flows (and of extra, which only adds servers). Everything
// is removed when the test ends, also when it fails half-way.
func newTopology(t *testing.T, p policy.Policy, flows []policy.Flow) *topology {
	t.Helper()
	needNetns(t)
	tp := &topology{t: t, p: p, id: randomID(), ns: map[role]string{}, bridge: p.Network.Interface, served: map[string]bool{}}
	if tp.bridge == "" {
		tp.bridge = "br-ctr"
	}
	n := p.Network
	for _, f := range flows {
		src := f.Src.Unmap()
		switch {
		case f.FromHost, f.FromBridge:
			// FromBridge flows have made-up sources: the attack tests send
			// them as raw packets and listen where an answer would go.
		case n.IPv4.Contains(src) || (n.IPv6.IsValid() && n.IPv6.Contains(src)):
			if !slices.Contains(tp.ctr, src) {
				tp.ctr = append(tp.ctr, src)
			}
		default:
			if !slices.Contains(tp.lan, src) {
				tp.lan = append(tp.lan, src)
			}
		}
	}
	// Registered first, so it runs after every namespace has been removed.
	t.Cleanup(func() {
		for _, name := range netnsList(t) {
			if strings.Contains(name, tp.id) {
				t.Errorf("namespace %s is still there after the test", name)
			}
		}
	})
	for _, r := range []role{roleHost, roleCtr, rolePeer, roleWAN, roleLAN} {
		name := fmt.Sprintf("ccnft-%s-%s", tp.id, r)
		tp.ns[r] = name
		tp.ip("netns", "add", name)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("removing namespace %s: %v: %s", name, err, out)
			}
		})
		tp.sysctl(r, map[string]string{
			"ipv6/conf/all/accept_dad":     "0",
			"ipv6/conf/default/accept_dad": "0",
		})
		tp.ip("-n", name, "link", "set", "lo", "up")
	}
	tp.sysctl(roleHost, map[string]string{
		"ipv4/ip_forward":          "1",
		"ipv6/conf/all/forwarding": "1",
		// The kernel rate-limits ICMP errors per destination; the tests
		// send many refused probes from one address in a short time.
		"ipv4/icmp_ratelimit":  "0",
		"ipv6/icmp/ratelimit":  "0",
		"ipv4/icmp_msgs_burst": "10000",
	})

	host := tp.ns[roleHost]
	tp.ip("-n", host, "link", "add", tp.bridge, "type", "bridge", "forward_delay", "0")
	tp.ip("-n", host, "link", "set", tp.bridge, "up")
	hostAddrs := []netip.Prefix{netip.PrefixFrom(n.Gateway4, n.IPv4.Bits())}
	if n.IPv6.IsValid() {
		hostAddrs = append(hostAddrs, netip.PrefixFrom(hostAddr6(n), n.IPv6.Bits()))
	}
	for _, d := range p.DNS {
		if tp.where(d) == roleHost && d != n.Gateway4 {
			bits := n.IPv4.Bits()
			if d.Is6() {
				bits = n.IPv6.Bits()
			}
			hostAddrs = append(hostAddrs, netip.PrefixFrom(d, bits))
		}
	}
	for _, a := range hostAddrs {
		tp.addAddr(host, tp.bridge, a)
	}

	// The containers, each on a veth whose host end is a bridge port.
	peerAddrs := map[netip.Addr]bool{}
	for _, f := range flows {
		if d := f.Dst.Unmap(); tp.where(d) == rolePeer {
			peerAddrs[d] = true
		}
	}
	for _, c := range []struct {
		r     role
		addrs []netip.Addr
	}{{roleCtr, tp.ctr}, {rolePeer, keys(peerAddrs)}} {
		ns, port := tp.ns[c.r], "v"+string(c.r)
		tp.ip("-n", host, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		tp.ip("-n", host, "link", "set", port, "master", tp.bridge, "up")
		tp.ip("-n", ns, "link", "set", "eth0", "up")
		for _, a := range c.addrs {
			bits := n.IPv4.Bits()
			if a.Is6() {
				bits = n.IPv6.Bits()
			}
			tp.addAddr(ns, "eth0", netip.PrefixFrom(a, bits))
		}
		if slices.ContainsFunc(c.addrs, netip.Addr.Is4) {
			tp.ip("-n", ns, "route", "add", "default", "via", n.Gateway4.String())
		}
		if slices.ContainsFunc(c.addrs, netip.Addr.Is6) {
			tp.ip("-n", ns, "-6", "route", "add", "default", "via", hostAddr6(n).String())
		}
	}

	// wan and lan: a point-to-point link each, outside addresses on lo.
	outside := map[role]map[netip.Addr]bool{roleWAN: {}, roleLAN: {}}
	for _, a := range tp.lan {
		outside[roleLAN][a] = true
	}
	for _, f := range flows {
		if d := f.Dst.Unmap(); tp.where(d) == roleWAN || tp.where(d) == roleLAN {
			outside[tp.where(d)][d] = true
		}
	}
	for _, l := range []struct {
		r                   role
		dev                 string
		h4, p4, h6, p6      netip.Addr
		defaultRouteThrough bool
	}{
		{roleWAN, "wan0", wanHost4, wanPeer4, wanHost6, wanPeer6, true},
		{roleLAN, "lan0", lanHost4, lanPeer4, lanHost6, lanPeer6, false},
	} {
		ns := tp.ns[l.r]
		tp.ip("-n", host, "link", "add", l.dev, "type", "veth", "peer", "name", "eth0", "netns", ns)
		tp.ip("-n", host, "link", "set", l.dev, "up")
		tp.ip("-n", ns, "link", "set", "eth0", "up")
		tp.addAddr(host, l.dev, netip.PrefixFrom(l.h4, 30))
		tp.addAddr(host, l.dev, netip.PrefixFrom(l.h6, 64))
		tp.addAddr(ns, "eth0", netip.PrefixFrom(l.p4, 30))
		tp.addAddr(ns, "eth0", netip.PrefixFrom(l.p6, 64))
		tp.ip("-n", ns, "route", "add", "default", "via", l.h4.String())
		tp.ip("-n", ns, "-6", "route", "add", "default", "via", l.h6.String())
		if l.defaultRouteThrough {
			tp.ip("-n", host, "route", "add", "default", "via", l.p4.String())
			tp.ip("-n", host, "-6", "route", "add", "default", "via", l.p6.String())
		}
		for _, a := range keys(outside[l.r]) {
			tp.addAddr(ns, "lo", netip.PrefixFrom(a, a.BitLen()))
			if !l.defaultRouteThrough {
				via := l.p4
				if a.Is6() {
					via = l.p6
				}
				tp.ip("-n", host, "route", "add", netip.PrefixFrom(a, a.BitLen()).String(), "via", via.String())
			}
		}
	}

	// The container runtime's own rules, as docker or podman would add
	// them in a table of their own: accept the network's traffic early and
	// masquerade it on the way out.
	runtimeRules := fmt.Sprintf(`table inet runtime {
	chain forward {
		type filter hook forward priority filter - 100; policy accept;
		ip saddr %[1]s accept
		ct state established,related accept
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr %[1]s oifname "wan0" masquerade
	}
}
`, n.IPv4)
	cmd := exec.Command("ip", "netns", "exec", host, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(runtimeRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loading the runtime's stand-in table: %v: %s", err, out)
	}

	for _, f := range flows {
		tp.serve(f)
	}
	return tp
}

func keys(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func (tp *topology) ip(args ...string) {
	tp.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tp.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (tp *topology) addAddr(ns, dev string, p netip.Prefix) {
	tp.t.Helper()
	args := []string{"-n", ns, "addr", "add", p.String(), "dev", dev}
	if p.Addr().Is6() {
		args = append(args, "nodad")
	}
	tp.ip(args...)
}

// sysctl writes net.* settings in the namespace of r; the keys are paths
// under /proc/sys/net.
func (tp *topology) sysctl(r role, kv map[string]string) {
	tp.t.Helper()
	err := inNS(tp.ns[r], func() error {
		for k, v := range kv {
			if err := os.WriteFile("/proc/sys/net/"+k, []byte(v), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tp.t.Fatalf("sysctl in %s: %v", r, err)
	}
}

// readSysctl reads a net.* setting in the namespace of r; "" when absent.
func (tp *topology) readSysctl(r role, key string) string {
	var v string
	inNS(tp.ns[r], func() error {
		b, err := os.ReadFile("/proc/sys/net/" + key)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v
}

// backend returns a Backend that drives nft in the host namespace and keeps
// its state in a temporary directory.
func (tp *topology) backend() *Backend {
	tp.t.Helper()
	b, err := New(nsRunner(tp.ns[roleHost]), Config{Table: DefaultTable, SetPrefix: tp.p.Table, StateDir: tp.t.TempDir()})
	if err != nil {
		tp.t.Fatal(err)
	}
	return b
}

// ruleset returns `nft list ruleset` of the host namespace.
func (tp *topology) ruleset() string {
	tp.t.Helper()
	out, err := exec.Command("ip", "netns", "exec", tp.ns[roleHost], "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		tp.t.Fatalf("nft list ruleset: %v: %s", err, out)
	}
	return string(out)
}

func netnsList(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

// answer is the A record each role's DNS server gives, so a client can tell
// which server answered.
func answer(r role) netip.Addr {
	i := slices.Index([]role{roleHost, roleCtr, rolePeer, roleWAN, roleLAN}, r)
	return netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
}

// serve starts the server that f's destination needs: a DNS server for UDP
// (any port) and for TCP port 53, a plain TCP server for other ports. ICMP
// needs none: the kernel answers echo requests.
func (tp *topology) serve(f policy.Flow) {
	tp.t.Helper()
	if f.Proto == policy.ICMP {
		return
	}
	dst := f.Dst.Unmap()
	r := tp.where(dst)
	addr := netip.AddrPortFrom(dst, f.Port).String()
	key := string(f.Proto) + " " + addr
	if tp.served[key] {
		return
	}
	tp.served[key] = true
	var (
		srv *dns.Server
		ln  net.Listener
	)
	err := inNS(tp.ns[r], func() error {
		var err error
		switch {
		case f.Proto == policy.UDP:
			var pc net.PacketConn
			pc, err = net.ListenPacket("udp", addr)
			srv = &dns.Server{PacketConn: pc}
		case f.Port == 53:
			ln, err = net.Listen("tcp", addr)
			srv, ln = &dns.Server{Listener: ln}, nil
		default:
			ln, err = net.Listen("tcp", addr)
		}
		return err
	})
	if err != nil {
		tp.t.Fatalf("starting the %s server on %s in %s: %v", f.Proto, addr, r, err)
	}
	if srv != nil {
		a := answer(r)
		srv.Handler = dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(q)
			if len(q.Question) == 1 {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a.AsSlice()})
			}
			w.WriteMsg(m)
		})
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		tp.t.Cleanup(func() { srv.Shutdown() })
		return
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "ok\n")
			c.Close()
		}
	}()
	tp.t.Cleanup(func() { ln.Close() })
}

// outcome is what a client saw.
type outcome string

const (
	connected  outcome = "connected"  // handshake done, or a reply came back
	refused    outcome = "refused"    // TCP reset (or ICMP port unreachable)
	prohibited outcome = "prohibited" // ICMP administratively prohibited
	timedOut   outcome = "timeout"    // nothing came back: a silent drop
)

func classify(err error) outcome {
	var ne net.Error
	switch {
	case err == nil:
		return connected
	case errors.Is(err, syscall.ECONNREFUSED):
		return refused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EACCES):
		// Linux reports ICMP "communication administratively prohibited"
		// as EHOSTUNREACH (IPv4) and EACCES (IPv6).
		return prohibited
	case errors.As(err, &ne) && ne.Timeout():
		return timedOut
	}
	return outcome("error: " + err.Error())
}

// origin returns the namespace a flow starts in and the source address to
// bind (invalid when the kernel should choose).
func (tp *topology) origin(f policy.Flow) (role, netip.Addr) {
	src := f.Src.Unmap()
	if f.FromHost {
		if tp.where(src) == roleHost {
			return roleHost, src
		}
		return roleHost, netip.Addr{}
	}
	return tp.where(src), src
}

// probe sends f's first packet and reports what came back.
func (tp *topology) probe(f policy.Flow) outcome {
	r, src := tp.origin(f)
	dst := f.Dst.Unmap()
	var got outcome
	err := inNS(tp.ns[r], func() error {
		switch f.Proto {
		case policy.TCP:
			got = dialTCP(src, netip.AddrPortFrom(dst, f.Port))
		case policy.UDP:
			got = queryUDP(src, netip.AddrPortFrom(dst, f.Port), nil)
		case policy.ICMP:
			got = ping(src, dst)
		}
		return nil
	})
	if err != nil {
		return outcome("error: " + err.Error())
	}
	return got
}

func dialer(src netip.Addr, network string) *net.Dialer {
	d := &net.Dialer{Timeout: dialTimeout}
	if src.IsValid() {
		switch network {
		case "tcp":
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		case "udp":
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
		}
	}
	return d
}

func dialTCP(src netip.Addr, dst netip.AddrPort) outcome {
	c, err := dialer(src, "tcp").Dial("tcp", dst.String())
	if err == nil {
		c.Close()
	}
	return classify(err)
}

// queryUDP sends a DNS query over UDP (resent every second, within
// dialTimeout) and reports the outcome; when reply is not nil it receives
// the answer.
func queryUDP(src netip.Addr, dst netip.AddrPort, reply *netip.Addr) outcome {
	c, err := dialer(src, "udp").Dial("udp", dst.String())
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	q := new(dns.Msg)
	q.SetQuestion("probe.test.", dns.TypeA)
	wire, err := q.Pack()
	if err != nil {
		return classify(err)
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(dialTimeout)
	for time.Now().Before(deadline) {
		if _, err := c.Write(wire); err != nil {
			return classify(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			return classify(err)
		}
		if reply != nil {
			*reply = firstA(buf[:n])
		}
		return connected
	}
	return timedOut
}

// queryTCP sends a DNS query over TCP.
func queryTCP(src netip.Addr, dst netip.AddrPort, reply *netip.Addr) outcome {
	nc, err := dialer(src, "tcp").Dial("tcp", dst.String())
	if err != nil {
		return classify(err)
	}
	c := &dns.Conn{Conn: nc}
	defer c.Close()
	c.SetDeadline(time.Now().Add(dialTimeout))
	q := new(dns.Msg)
	q.SetQuestion("probe.test.", dns.TypeA)
	if err := c.WriteMsg(q); err != nil {
		return classify(err)
	}
	m, err := c.ReadMsg()
	if err != nil {
		return classify(err)
	}
	if reply != nil && len(m.Answer) > 0 {
		if a, ok := m.Answer[0].(*dns.A); ok {
			*reply, _ = netip.AddrFromSlice(a.A.To4())
		}
	}
	return connected
}

func firstA(wire []byte) netip.Addr {
	m := new(dns.Msg)
	if m.Unpack(wire) != nil || len(m.Answer) == 0 {
		return netip.Addr{}
	}
	if a, ok := m.Answer[0].(*dns.A); ok {
		addr, _ := netip.AddrFromSlice(a.A.To4())
		return addr
	}
	return netip.Addr{}
}

// ping sends ICMP echo requests from a raw socket bound to src and waits
// for the echo reply or a destination-unreachable error about dst.
func ping(src, dst netip.Addr) outcome {
	network, proto, any := "ip4:icmp", 1, "0.0.0.0"
	var echo, reply, unreach icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply, ipv4.ICMPTypeDestinationUnreachable
	origDst := func(b []byte) netip.Addr { // original IPv4 header: destination at 16..20
		if len(b) < 20 {
			return netip.Addr{}
		}
		return netip.AddrFrom4([4]byte(b[16:20]))
	}
	if dst.Is6() {
		network, proto, any = "ip6:ipv6-icmp", 58, "::"
		echo, reply, unreach = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, ipv6.ICMPTypeDestinationUnreachable
		origDst = func(b []byte) netip.Addr { // original IPv6 header: destination at 24..40
			if len(b) < 40 {
				return netip.Addr{}
			}
			return netip.AddrFrom16([16]byte(b[24:40]))
		}
	}
	bind := any
	if src.IsValid() {
		bind = src.String()
	}
	c, err := icmp.ListenPacket(network, bind)
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	id := int(binary.BigEndian.Uint16(randomBytes(2)))
	deadline := time.Now().Add(dialTimeout)
	buf := make([]byte, 1500)
	for seq := 1; time.Now().Before(deadline); seq++ {
		msg := icmp.Message{Type: echo, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("claudecontainer")}}
		wire, err := msg.Marshal(nil)
		if err != nil {
			return classify(err)
		}
		if _, err := c.WriteTo(wire, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return classify(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, peer, err := c.ReadFrom(buf)
			if err != nil {
				break // resend after a second without an answer
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil {
				continue
			}
			switch m.Type {
			case reply:
				if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id && peer.String() == dst.String() {
					return connected
				}
			case unreach:
				if d, ok := m.Body.(*icmp.DstUnreach); ok && origDst(d.Data) == dst {
					return prohibited
				}
			}
		}
	}
	return timedOut
}

// expect returns the outcome a flow must have under verdict v: what passes
// (or is not ours to judge) connects, TCP is reset, the rest is
// administratively prohibited.
func expect(f policy.Flow, v policy.Verdict) outcome {
	switch {
	case v != policy.Refuse:
		return connected
	case f.Proto == policy.TCP:
		return refused
	}
	return prohibited
}
