//go:build linux

package filterd_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/dnsfilter"
	"github.com/VerilyPete/claudecontainer/filterd"
	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/dnstest"
	"github.com/VerilyPete/claudecontainer/internal/netns"
	"github.com/VerilyPete/claudecontainer/nft"
	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/policy/policytest"
	"github.com/VerilyPete/claudecontainer/session"
)

// watchWait is how often the daemon looks at the interfaces (filterd's
// watchEvery).
const watchWait = time.Second

// The daemon in these tests is this test binary run again with filterd.Arg,
// as mage's binary is, inside a network namespace the test makes, with the
// real nftables of that namespace and a DNS server there as its upstream.

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == filterd.Arg {
		os.Exit(filterd.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// rig is one namespace with our nftables table loaded with the DNS filter's
// rules, an upstream DNS server, an allowlist file, and a Control for a
// daemon run in the namespace.
type rig struct {
	t        *testing.T
	ns       string
	dir      string
	allow    string
	upstream netip.AddrPort
	asked    atomic.Int64 // questions the upstream saw
	ctl      *filterd.Control
	spec     filterd.Spec
	p        policy.Policy
}

const listenPort = 15353

// upstreamAddr is what the upstream answers A questions with, wildAddr
// for names under wild.example.
var (
	upstreamAddr = netip.MustParseAddr("140.82.112.9")
	wildAddr     = netip.MustParseAddr("140.82.112.10")
)

func newRig(t *testing.T) *rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test: needs root for a network namespace and nftables")
	}
	for _, prog := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("end-to-end test: %s not installed (apt-get install -y nftables iproute2)", prog)
		}
	}
	b := make([]byte, 3)
	rand.Read(b)
	r := &rig{t: t, ns: "ccfd-" + hex.EncodeToString(b), dir: t.TempDir()}
	if out, err := exec.Command("ip", "netns", "add", r.ns).CombinedOutput(); err != nil {
		t.Skipf("end-to-end test: cannot create a network namespace here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", r.ns).CombinedOutput(); err != nil {
			t.Errorf("removing namespace %s: %v: %s", r.ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", r.ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	r.p = policytest.IPv4Only()
	r.p.Network.Interface = "" // no container yet: the bridge is not there
	r.p.Filter = &policy.Filter{Port: listenPort}
	fw, err := nft.New(netns.Runner{NS: r.ns}, nft.Config{StateDir: filepath.Join(r.dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Up(context.Background(), r.p, policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}

	if err := netns.Do(r.ns, func() error {
		r.upstream = netip.MustParseAddrPort(dnstest.Serve(t, dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			r.asked.Add(1)
			m := new(dns.Msg).SetReply(q)
			if q.Question[0].Qtype == dns.TypeA {
				a := upstreamAddr
				if strings.HasSuffix(q.Question[0].Name, ".wild.example.") {
					a = wildAddr
				}
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: a.AsSlice()})
			}
			w.WriteMsg(m)
		})))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r.allow = filepath.Join(r.dir, "allowed_destinations")
	r.writeNames("allowed.example", "*.wild.example", "!deny.wild.example")

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r.ctl = &filterd.Control{Dir: filepath.Join(r.dir, "state"), Command: []string{"ip", "netns", "exec", r.ns, exe, filterd.Arg}}
	r.spec = filterd.Spec{
		Backend:       "nftables",
		Table:         nft.DefaultTable,
		Set:           r.p.Table,
		Listen:        []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), listenPort)},
		Clients:       []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Upstreams:     []netip.AddrPort{r.upstream},
		AllowlistFile: r.allow,
	}
	// Whatever the test leaves running is stopped, and must be gone.
	t.Cleanup(func() {
		if err := r.ctl.Stop(context.Background()); err != nil {
			t.Errorf("stopping the daemon: %v", err)
		}
	})
	return r
}

func (r *rig) writeNames(names ...string) {
	r.t.Helper()
	var b strings.Builder
	b.WriteString("# test allowlist\n")
	for _, n := range names {
		b.WriteString("#name " + n + "\n")
	}
	b.WriteString("192.30.252.0/22\n")
	if err := os.WriteFile(r.allow, []byte(b.String()), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// ask asks the daemon from inside the namespace.
func (r *rig) ask(name string) (filterd.Answer, error) {
	var a filterd.Answer
	var err error
	netns.Do(r.ns, func() error {
		a, err = filterd.Probe(context.Background(), r.spec.Listen[0], name)
		return nil
	})
	return a, err
}

// opened lists the daemon's opened IPv4 set.
func (r *rig) opened() string {
	r.t.Helper()
	o4, _ := nft.OpenedSetNames(r.p.Table)
	out, err := exec.Command("ip", "netns", "exec", r.ns, "nft", "list", "set", nft.Family, nft.DefaultTable, o4).CombinedOutput()
	if err != nil {
		r.t.Fatalf("listing %s: %v: %s", o4, err, out)
	}
	return string(out)
}

func TestTheDaemonAnswersOpensRefusesReloadsAndStopsLeavingNothing(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	started, err := r.ctl.Ensure(ctx, r.spec)
	if err != nil {
		t.Fatal(err)
	}
	if !started {
		t.Error("Ensure on a fresh state directory did not start a daemon")
	}
	st, ok, err := r.ctl.Running(ctx)
	if err != nil || !ok {
		t.Fatalf("Running = %v, %v after a start", ok, err)
	}

	// A blocked name: NXDOMAIN that says what to do, never asked upstream,
	// and logged.
	a, err := r.ask("secret.attacker.example")
	if err != nil {
		t.Fatal(err)
	}
	if a.Rcode != dns.RcodeNameError || !strings.Contains(a.EDE, "mage allow") {
		t.Errorf("blocked name: %s %q, want NXDOMAIN naming `mage allow`", dns.RcodeToString[a.Rcode], a.EDE)
	}
	for _, name := range []string{"deny.wild.example", "wild.example"} {
		if a, _ := r.ask(name); a.Rcode != dns.RcodeNameError {
			t.Errorf("%s: %s, want NXDOMAIN", name, dns.RcodeToString[a.Rcode])
		}
	}
	if n := r.asked.Load(); n != 0 {
		t.Errorf("the upstream saw %d questions for blocked names", n)
	}
	recs, err := dnsfilter.ReadLog(filepath.Join(r.ctl.Dir, filterd.RefusedFile), func(err error) { t.Error(err) })
	if err != nil || len(recs) != 3 || recs[0].Name != "secret.attacker.example" {
		t.Errorf("refusal log = %+v, %v; want the three blocked names", recs, err)
	}

	// An allowed name and a wildcard: answered, and opened before.
	for name, want := range map[string]netip.Addr{"allowed.example": upstreamAddr, "a.b.wild.example": wildAddr} {
		a, err := r.ask(name)
		if err != nil || a.Rcode != dns.RcodeSuccess || len(a.Addrs) != 1 || a.Addrs[0] != want {
			t.Errorf("%s: %+v, %v; want %v", name, a, err, want)
		}
	}
	if set := r.opened(); !strings.Contains(set, upstreamAddr.String()) || !strings.Contains(set, wildAddr.String()) {
		t.Errorf("the opened set does not hold %v and %v:\n%s", upstreamAddr, wildAddr, set)
	}

	// New names: the same settings read the file again, in the same process.
	r.writeNames("allowed.example", "new.example")
	if started, err := r.ctl.Ensure(ctx, r.spec); err != nil || started {
		t.Fatalf("Ensure with the same settings = started %v, %v; want a reload", started, err)
	}
	if a, err := r.ask("new.example"); err != nil || a.Rcode != dns.RcodeSuccess {
		t.Errorf("new.example after the reload: %+v, %v", a, err)
	}
	if a, _ := r.ask("x.wild.example"); a.Rcode != dns.RcodeNameError {
		t.Errorf("x.wild.example after its entry went: %s, want NXDOMAIN", dns.RcodeToString[a.Rcode])
	}
	// What the wildcard opened closed with it; what a name still allowed
	// opened stays.
	if set := r.opened(); strings.Contains(set, wildAddr.String()) || !strings.Contains(set, upstreamAddr.String()) {
		t.Errorf("after *.wild.example went, the opened set should hold %v and not %v:\n%s", upstreamAddr, wildAddr, set)
	}
	if now, _, _ := r.ctl.Running(ctx); now.Pid != st.Pid || now.Reloads != 1 || now.Names != 2 {
		t.Errorf("after the reload: %+v, want pid %d, 1 reload, 2 names", now, st.Pid)
	}

	// Killed: nothing resolves, nothing opens; Ensure starts it again.
	if err := syscall.Kill(st.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, st.Pid)
	before := r.asked.Load()
	if a, err := r.ask("other.wild.example"); err == nil {
		t.Errorf("a query with the daemon killed was answered: %+v", a)
	}
	if r.asked.Load() != before {
		t.Error("a query with the daemon killed reached the upstream")
	}
	if _, ok, err := r.ctl.Running(ctx); ok || err != nil {
		t.Errorf("Running = %v, %v with the daemon killed", ok, err)
	}
	if started, err := r.ctl.Ensure(ctx, r.spec); err != nil || !started {
		t.Fatalf("Ensure after the kill = started %v, %v; want a new daemon", started, err)
	}
	st2, _, _ := r.ctl.Running(ctx)
	if a, err := r.ask("new.example"); err != nil || a.Rcode != dns.RcodeSuccess {
		t.Errorf("after the restart: %+v, %v", a, err)
	}

	// Stop leaves no process, no status and no settings.
	if err := r.ctl.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	waitGone(t, st2.Pid)
	for _, f := range []string{"dnsfilter.json", "dnsfilter-spec.json"} {
		if _, err := os.Stat(filepath.Join(r.ctl.Dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Stop (%v)", f, err)
		}
	}
}

func TestTheDaemonLoadsTheRulesForTheBridgeWhenItAppears(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	spec := r.spec
	spec.Watch = &r.p
	if _, err := r.ctl.Ensure(ctx, spec); err != nil {
		t.Fatal(err)
	}
	ruleset := func() string {
		out, err := exec.Command("ip", "netns", "exec", r.ns, "nft", "list", "table", nft.Family, nft.DefaultTable).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return string(out)
	}
	if strings.Contains(ruleset(), "br-agent") {
		t.Fatal("the rules name the bridge before it exists")
	}
	// mage holds the sessions lock while it loads rules: the daemon waits.
	sessions, err := session.Open(r.ctl.Dir)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := sessions.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The runtime makes the bridge, with the gateway's address, as podman
	// does when the first container starts.
	for _, args := range [][]string{
		{"link", "add", "br-agent", "type", "bridge"},
		{"addr", "add", r.p.Network.Gateway4.String() + "/24", "dev", "br-agent"},
		{"link", "set", "br-agent", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", r.ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	time.Sleep(2 * watchWait) // what the daemon would need, and more; the assertion follows
	if l, ok, _ := firewall.ReadLoaded(r.ctl.Dir); ok && l.Interface == "br-agent" {
		t.Fatal("the daemon loaded the rules while mage held the sessions lock")
	}
	unlock()
	var l firewall.Loaded
	for range 250 {
		var ok bool
		l, ok, _ = firewall.ReadLoaded(r.ctl.Dir)
		if ok && l.Interface == "br-agent" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l.Interface != "br-agent" {
		t.Fatalf("the daemon did not load the rules for the bridge within 5 s (recorded: %+v)", l)
	}
	if rs := ruleset(); !strings.Contains(rs, `"br-agent"`) {
		t.Errorf("the live rules do not name the bridge:\n%s", rs)
	}
}

func TestADaemonThatCannotServeSaysWhy(t *testing.T) {
	r := newRig(t)
	spec := r.spec
	spec.AllowlistFile = filepath.Join(r.dir, "missing")
	_, err := r.ctl.Ensure(context.Background(), spec)
	if err == nil || !strings.Contains(err.Error(), "mage allowlist") {
		t.Errorf("Ensure with no allowlist file = %v, want the daemon's reason, naming `mage allowlist`", err)
	}
	if _, ok, _ := r.ctl.Running(context.Background()); ok {
		t.Error("a daemon is recorded as running")
	}
}

func TestAStatusFileOfAnotherProcessIsNotOurs(t *testing.T) {
	dir := t.TempDir()
	// This test's own pid: alive, but not a daemon with the token.
	st := fmt.Sprintf(`{"pid": %d, "spec": {"token": "00112233445566778899aabbccddeeff"}}`, os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, "dnsfilter.json"), []byte(st), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &filterd.Control{Dir: dir}
	if _, ok, err := c.Running(context.Background()); ok || err != nil {
		t.Errorf("Running = %v, %v for a pid that is not the daemon", ok, err)
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Errorf("Stop: %v", err)
	}
	// Still here: Stop signalled nothing.
	if err := syscall.Kill(os.Getpid(), 0); err != nil {
		t.Fatal(err)
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for range 250 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			return
		}
		// A zombie is gone for our purposes: its sockets are closed.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d still runs", pid)
}
