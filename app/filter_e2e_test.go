package app

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/filterd"
	"github.com/VerilyPete/claudecontainer/internal/dnstest"
)

// withFilter turns the DNS filter on for a fake Mac: a free loopback port,
// an upstream on loopback that answers api.example.com, and that name in
// the allowlist file. The daemon is this test binary (see TestMain), run as
// the user running the tests; its pfctl is the fake (macOS 26's pfctl).
func (m *mac) withFilter() (upstream *dnstest.Server, port int) {
	m.t.Helper()
	up := dnstest.Start(m.t, dnstest.Zone{"api.example.com. A": {Answer: []string{"api.example.com. 60 IN A 140.82.112.77"}}}, 0)
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		m.t.Fatal(err)
	}
	port = l.LocalAddr().(*net.UDPAddr).Port
	l.Close()
	allow := os.Getenv(config.Prefix + "ALLOWLIST_FILE")
	if err := os.WriteFile(allow, []byte("# test\n#name api.example.com\n#name *.githubusercontent.com\n140.82.112.0/20\n160.79.104.0/23\n2606:50c0::/32\n"), 0o644); err != nil {
		m.t.Fatal(err)
	}
	m.t.Setenv(config.Prefix+"DNS_FILTER", "on")
	m.t.Setenv(config.Prefix+"DNS_FILTER_PORT", strconv.Itoa(port))
	m.t.Setenv(config.Prefix+"DNS_UPSTREAM", up.Addr)
	m.t.Cleanup(func() {
		// Whatever a failed test left running goes.
		(&filterd.Control{Dir: m.stateDir}).Stop(context.Background())
	})
	return up, port
}

func TestE2EMacWithTheDNSFilterUpStatusAndReset(t *testing.T) {
	m := newMac(t, "1.2.2")
	up, port := m.withFilter()
	ctx := context.Background()
	var out bytes.Buffer
	if err := Up(ctx, &out); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	ctl := &filterd.Control{Dir: m.stateDir}
	st, ok, err := ctl.Running(ctx)
	if err != nil || !ok {
		t.Fatalf("no DNS filter after `mage up` (%v):\n%s", err, out.String())
	}
	a := m.pf().Anchors["com.apple/claude_firewall"]
	if a == nil || !slices.ContainsFunc(a.NAT, func(r string) bool {
		return strings.HasPrefix(r, "rdr pass") && strings.Contains(r, "127.0.0.1 port "+strconv.Itoa(port))
	}) {
		t.Errorf("pf holds no rdr to the filter: %+v", a)
	}

	// Status asks the filter for a blocked and an allowed name. (It fails
	// on the bridge, which no container has brought up yet.)
	out.Reset()
	Status(ctx, &out)
	if strings.Contains(out.String(), "FAIL  DNS") {
		t.Errorf("status fails the filter:\n%s", out.String())
	}
	for _, want := range []string{"ok    DNS filter: process " + strconv.Itoa(st.Pid), "ok    DNS filter refuses what is not allowed", "ok    DNS filter answers what is allowed: api.example.com: [140.82.112.77]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	if n := up.UDP.Load() + up.TCP.Load(); n != 1 {
		t.Errorf("the upstream saw %d questions, want 1 (the allowed name only)", n)
	}
	// What the filter answered, pf holds open.
	if got := m.pf().Anchors["com.apple/claude_firewall"].Tables["allowed_destinations_dns"]; !slices.Contains(got, "140.82.112.77") {
		t.Errorf("the opened table holds %q, want 140.82.112.77", got)
	}
	// A container's query (from the network's subnet) for a blocked name
	// is refused and logged.
	q := new(dns.Msg).SetQuestion("exfil.attacker.example.", dns.TypeTXT)
	if r, err := dns.Exchange(q, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String()); err != nil || r.Rcode != dns.RcodeNameError {
		t.Errorf("a blocked TXT question: %v, %v", r, err)
	}

	// `mage subnet` shows the redirect.
	out.Reset()
	if err := Subnet(ctx, &out); err != nil || !strings.Contains(out.String(), "rdr pass") {
		t.Errorf("subnet: %v; output lacks the rdr rule:\n%s", err, out.String())
	}

	// Reset stops the daemon and leaves no status behind.
	out.Reset()
	if err := Reset(ctx, &out, false); err != nil {
		t.Fatalf("reset: %v\n%s", err, out.String())
	}
	if _, ok, _ := ctl.Running(ctx); ok {
		t.Error("the DNS filter runs after `mage reset`")
	}
	if _, err := os.Stat(filepath.Join(m.stateDir, "dnsfilter.json")); !os.IsNotExist(err) {
		t.Errorf("the filter's status file is left after `mage reset` (%v)", err)
	}
	if err := syscallAlive(st.Pid); err == nil {
		t.Errorf("process %d still runs after `mage reset`", st.Pid)
	}
	m.assertDown()
}

func TestE2EDevOnAMacWithTheDNSFilter(t *testing.T) {
	m := newMac(t, "1.2.2")
	m.withFilter()
	var out bytes.Buffer
	if err := Dev(context.Background(), &out, ""); err != nil {
		t.Fatalf("dev: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "DNS filter serving on") {
		t.Errorf("dev did not start the filter:\n%s", out.String())
	}
	if _, ok, _ := (&filterd.Control{Dir: m.stateDir}).Running(context.Background()); ok {
		t.Error("the DNS filter runs after the last shell left")
	}
	m.assertCallsSafe()
	m.assertDown()
}

// syscallAlive returns nil when pid is a live process (a zombie counts as
// gone).
func syscallAlive(pid int) error {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return err
	}
	if strings.Contains(string(b), ") Z ") {
		return os.ErrNotExist
	}
	return nil
}
