package pf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/firewall"
	fakepfctl "github.com/VerilyPete/claudecontainer/internal/fakes/pfctl"
	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/policy/policytest"
)

// The Opener is driven against the pfctl fake, which follows macOS 26's
// pfctl for tables: `-T add` prints "N/M addresses added." and, when it had
// to make the table, "1 table created."; `-T delete -f -` reads the
// addresses from standard input; `-T show` prints one indented entry per
// line; a missing table is "pfctl: Table does not exist.", exit status 1.

// clock is a time the test moves by hand.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// upWithFilter puts the firewall up with the DNS filter and returns an
// Opener for it that runs on c.
func (r *rig) upWithFilter(c *clock) (policy.Policy, *Opener) {
	r.t.Helper()
	p := withFilter(policytest.DualStack())
	if err := r.fw.Up(context.Background(), p, policytest.Allowlist()); err != nil {
		r.t.Fatal(err)
	}
	return p, r.opener(p, c)
}

func (r *rig) opener(p policy.Policy, c *clock) *Opener {
	r.t.Helper()
	o, err := NewOpener(r.runner, testAnchor, p.Table)
	if err != nil {
		r.t.Fatal(err)
	}
	o.now = c.now
	return o
}

// openedTable returns what the fake kernel's opened table holds, as
// `-T show` lists it; nil when there is no such table.
func (r *rig) openedTable(p policy.Policy) []string {
	r.t.Helper()
	a := r.kernelState().Anchors[anchorPath]
	if a == nil {
		return nil
	}
	return a.Tables[OpenedTable(p.Table)]
}

// verdict is what pf does with a container's HTTPS connection to dst: the
// anchor Up loaded for p, evaluated against the tables the fake kernel holds
// at this moment. It is how a test sees from the container's side whether
// an address is open.
func (r *rig) verdict(p policy.Policy, dst netip.Addr) policy.Verdict {
	r.t.Helper()
	tables := map[string]*netipx.IPSet{}
	for name, entries := range r.kernelState().Anchors[anchorPath].Tables {
		var b netipx.IPSetBuilder
		for _, e := range entries {
			pfx, err := netip.ParsePrefix(e)
			if err != nil {
				a, err := netip.ParseAddr(e)
				if err != nil {
					r.t.Fatalf("table <%s> holds %q", name, e)
				}
				pfx = netip.PrefixFrom(a, a.BitLen())
			}
			b.AddPrefix(pfx)
		}
		set, err := b.IPSet()
		if err != nil {
			r.t.Fatal(err)
		}
		tables[name] = set
	}
	w := worldOpened(p, tables[p.Table], tables[OpenedTable(p.Table)])
	src := netip.MustParseAddr("192.168.64.5")
	if dst.Is6() {
		src = netip.MustParseAddr("fd5e:9a3b:1c2d:4e5f::5")
	}
	v, _ := pfVerdict(render(r.t, p), p, policy.Flow{Src: src, Dst: dst, Proto: policy.TCP, Port: 443}, w)
	return v
}

var (
	addrA = netip.MustParseAddr("198.51.100.1")
	addrB = netip.MustParseAddr("198.51.100.2")
	addrC = netip.MustParseAddr("2001:db8:c::3")
	addrD = netip.MustParseAddr("203.0.113.4")
)

func TestOpenerOpensEachAnswerInOneCallAndClosesItInOne(t *testing.T) {
	r := newRig(t)
	c := newClock()
	p, o := r.upWithFilter(c)
	ctx := context.Background()
	table := "pfctl -a " + anchorPath + " -t allowed_destinations_dns -T "
	for _, a := range []netip.Addr{addrA, addrB, addrC, addrD} {
		if v := r.verdict(p, a); v != policy.Refuse {
			t.Fatalf("%v before it is opened: %s", a, v)
		}
	}

	n := len(r.calls())
	if err := o.Open(ctx, []netip.Addr{addrA, addrB, addrC}, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{table + "add 198.51.100.1 198.51.100.2 2001:db8:c::3"}, r.since(n)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	for _, a := range []netip.Addr{addrA, addrB, addrC} {
		if v := r.verdict(p, a); v != policy.Pass {
			t.Errorf("%v once opened: %s", a, v)
		}
	}
	if v := r.verdict(p, addrD); v != policy.Refuse {
		t.Errorf("%v, never opened: %s", addrD, v)
	}

	// Open long enough already, or given a later expiry: no call.
	n = len(r.calls())
	if err := o.Open(ctx, []netip.Addr{addrA}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := o.Open(ctx, []netip.Addr{addrA}, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := r.since(n); len(got) != 0 {
		t.Errorf("opening addresses already open ran %q", got)
	}
	// Only what is not open yet is added.
	if err := o.Open(ctx, []netip.Addr{addrB, netip.MustParseAddr("::ffff:203.0.113.4"), addrD}, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{table + "add 203.0.113.4"}, r.since(n)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}

	// Nothing has expired yet: Expire only looks.
	c.advance(4 * time.Minute)
	n = len(r.calls())
	if err := o.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{table + "show"}, r.since(n)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// Past five minutes: everything but addrA, which asked for ten, goes
	// in one call.
	c.advance(90 * time.Second)
	n = len(r.calls())
	if err := o.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{table + "show", table + "delete -f -"}, r.since(n)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"198.51.100.1"}, r.openedTable(p)); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	for a, want := range map[netip.Addr]policy.Verdict{addrA: policy.Pass, addrB: policy.Refuse, addrC: policy.Refuse, addrD: policy.Refuse} {
		if v := r.verdict(p, a); v != want {
			t.Errorf("%v after its time: %s, want %s", a, v, want)
		}
	}
	// An address Expire took out is added again.
	n = len(r.calls())
	if err := o.Open(ctx, []netip.Addr{addrB}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{table + "add 198.51.100.2"}, r.since(n)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// One whose time is up but that Expire has not taken out yet is still
	// in the table: it only gets a new expiry, which the next Expire keeps.
	c.advance(2 * time.Minute)
	n = len(r.calls())
	if err := o.Open(ctx, []netip.Addr{addrB}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := r.since(n); len(got) != 0 {
		t.Errorf("renewing an address still in the table ran %q", got)
	}
	if err := o.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if v := r.verdict(p, addrB); v != policy.Pass {
		t.Errorf("%v, renewed before Expire: %s", addrB, v)
	}
	c.advance(5 * time.Minute)
	if err := o.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.openedTable(p); len(got) != 0 {
		t.Errorf("left in the table: %q", got)
	}
	if v := r.verdict(p, addrA); v != policy.Refuse {
		t.Errorf("%v after its ten minutes: %s", addrA, v)
	}
}

func TestOpenerRefusesWhatIsNotPublicUnicast(t *testing.T) {
	r := newRig(t)
	_, o := r.upWithFilter(newClock())
	n := len(r.calls())
	for _, bad := range []struct {
		addrs []netip.Addr
		ttl   time.Duration
	}{
		{[]netip.Addr{netip.MustParseAddr("10.1.2.3")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("192.168.64.1")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("127.0.0.1")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("::1")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("fe80::1")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("fe80::1%bridge100")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("fd5e:9a3b:1c2d:4e5f::9")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("ff02::1")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("224.0.0.1")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("0.0.0.0")}, time.Minute},
		{[]netip.Addr{netip.MustParseAddr("255.255.255.255")}, time.Minute},
		{[]netip.Addr{{}}, time.Minute},
		{[]netip.Addr{addrA, netip.MustParseAddr("10.1.2.3")}, time.Minute},
		{[]netip.Addr{addrA}, 0},
		{[]netip.Addr{addrA}, -time.Second},
		{[]netip.Addr{addrA}, firewall.MaxOpen + time.Second},
	} {
		if err := o.Open(context.Background(), bad.addrs, bad.ttl); err == nil {
			t.Errorf("Open(%v, %v) succeeded", bad.addrs, bad.ttl)
		}
	}
	if got := r.since(n); len(got) != 0 {
		t.Errorf("refused opens ran %q", got)
	}
	for _, c := range []struct{ anchor, table string }{
		{"com.apple/x", "t"}, {"x", "t -T flush"}, {"", "t"}, {"x", "a2345678901234567890123456789"},
	} {
		if _, err := NewOpener(r.runner, c.anchor, c.table); err == nil {
			t.Errorf("NewOpener(%q, %q) succeeded", c.anchor, c.table)
		}
	}
}

func TestOpenerFailsWhenTheFirewallIsNotUpWithTheFilter(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c := newClock()
	p := withFilter(policytest.DualStack())
	o := r.opener(p, c)
	if err := o.Expire(ctx); err != nil {
		t.Errorf("Expire with no table: %v", err)
	}
	err := o.Open(ctx, []netip.Addr{addrA}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "not up with the DNS filter") {
		t.Errorf("Open with the firewall down: %v", err)
	}
	if a := r.kernelState().Anchors[anchorPath]; a != nil {
		t.Errorf("Open left an anchor behind: %+v", a)
	}
	// Up without the filter: the anchor has no opened table either.
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	if err := o.Open(ctx, []netip.Addr{addrA}, time.Minute); err == nil {
		t.Error("Open with a firewall without the filter succeeded")
	}
	if tbl, ok := r.kernelState().Anchors[anchorPath].Tables[OpenedTable(p.Table)]; ok {
		t.Errorf("Open left the table behind: %q", tbl)
	}
	// Once it is up with the filter, the same address opens: the failures
	// recorded nothing.
	if err := r.fw.Up(ctx, p, policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	if err := o.Open(ctx, []netip.Addr{addrA}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if v := r.verdict(p, addrA); v != policy.Pass {
		t.Errorf("%v: %s", addrA, v)
	}
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	r.assertDown()
}

func TestExpireClosesWhatAnEarlierRunLeftAndForgetsWhatAFlushTook(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c := newClock()
	p, o := r.upWithFilter(c)
	// An earlier run of the DNS filter opened addresses, and ended.
	r.other("", "-a", anchorPath, "-t", OpenedTable(p.Table), "-T", "add", addrA.String(), addrC.String(), "192.0.2.0/24")
	if err := o.Open(ctx, []netip.Addr{addrB}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := o.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{addrB.String()}, r.openedTable(p)); diff != "" {
		t.Errorf("table after the first Expire (-want +got):\n%s", diff)
	}
	if v := r.verdict(p, addrA); v != policy.Refuse {
		t.Errorf("%v, left by an earlier run: %s", addrA, v)
	}
	// The firewall is taken down and put up again: the table is empty, and
	// the next Expire makes the Opener forget what it held, so that the
	// next answer opens it again.
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.fw.Up(ctx, p, policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	if err := o.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o.Open(ctx, []netip.Addr{addrB}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if v := r.verdict(p, addrB); v != policy.Pass {
		t.Errorf("%v after the firewall came back: %s", addrB, v)
	}
}

func TestAFailedCallOpensNothingAndIsTriedAgain(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c := newClock()
	p, o := r.upWithFilter(c)
	t.Setenv(fakepfctl.EnvFail, "-T add")
	if err := o.Open(ctx, []netip.Addr{addrA}, time.Minute); err == nil || !strings.Contains(err.Error(), "failure injected") {
		t.Errorf("Open: %v", err)
	}
	t.Setenv(fakepfctl.EnvFail, "")
	n := len(r.calls())
	if err := o.Open(ctx, []netip.Addr{addrA}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := r.since(n); len(got) != 1 {
		t.Errorf("the second Open ran %q, want one add", got)
	}
	// A failed delete leaves the address in the table until the next
	// Expire takes it out.
	c.advance(2 * time.Minute)
	t.Setenv(fakepfctl.EnvFail, "-T delete")
	if err := o.Expire(ctx); err == nil {
		t.Error("Expire succeeded")
	}
	t.Setenv(fakepfctl.EnvFail, "")
	if err := o.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if v := r.verdict(p, addrA); v != policy.Refuse {
		t.Errorf("%v after its time: %s", addrA, v)
	}
	// Unreadable output is never handed back to pfctl.
	if _, err := parseShow("   198.51.100.1\n   -a com.apple/x\n"); err == nil {
		t.Error("parseShow read an option as an address")
	}
	got, err := parseShow("   198.51.100.1\n   !198.51.100.2\n   192.0.2.0/24\n   2001:db8::/32\n")
	if err != nil || len(got) != 4 || !got[0].single || got[1].single || got[1].text != "!198.51.100.2" || got[2].single {
		t.Errorf("parseShow: %+v, %v", got, err)
	}
}

func TestAWaitingOpenGivesUpWhenItsContextEnds(t *testing.T) {
	r := newRig(t)
	_, o := r.upWithFilter(newClock())
	release, err := o.hold(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r.runner.mu.Lock()
	n := len(r.runner.cmds)
	r.runner.mu.Unlock()
	if err := o.Open(ctx, []netip.Addr{addrA}, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open: %v", err)
	}
	if err := o.Expire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Expire: %v", err)
	}
	r.runner.mu.Lock()
	defer r.runner.mu.Unlock()
	if got := r.runner.cmds[n:]; len(got) != 0 {
		t.Errorf("ran %v while another call held the table", got)
	}
}

// TestOpensAndExpiresAtOnceKeepTheTableAndTheirRecordTogether runs answers
// and expiries from many goroutines, as the DNS filter does: every address
// an Open returned for is in the table while its time lasts, and nothing
// else is.
func TestOpensAndExpiresAtOnceKeepTheTableAndTheirRecordTogether(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c := newClock()
	p, o := r.upWithFilter(c)
	// A short-lived address that every round re-opens after its time.
	if err := o.Open(ctx, []netip.Addr{addrD}, time.Second); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 {
				a := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + g*3 + i)})
				if err := o.Open(ctx, []netip.Addr{a, addrD}, time.Hour); err != nil {
					errs <- fmt.Errorf("open %v: %w", a, err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 4 {
			c.advance(time.Second)
			if err := o.Expire(ctx); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Whatever the interleaving, every address is open now: addrD was last
	// opened for an hour, or re-added after an Expire took it out.
	if err := o.Open(ctx, []netip.Addr{addrD}, time.Hour); err != nil {
		t.Fatal(err)
	}
	for g := range 8 {
		for i := range 3 {
			a := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + g*3 + i)})
			if v := r.verdict(p, a); v != policy.Pass {
				t.Errorf("%v: %s", a, v)
			}
		}
	}
	if v := r.verdict(p, addrD); v != policy.Pass {
		t.Errorf("%v: %s", addrD, v)
	}
	c.advance(2 * time.Hour)
	if err := o.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.openedTable(p); len(got) != 0 {
		t.Errorf("left after every time is up: %q", got)
	}
}

func TestReopenPutsBackWhatTheFirewallLostComingDownAndUp(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c := newClock()
	p, o := r.upWithFilter(c)
	if err := o.Open(ctx, []netip.Addr{addrA}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := o.Open(ctx, []netip.Addr{addrB}, time.Minute); err != nil {
		t.Fatal(err)
	}
	// A reload keeps the table, as pfctl does for `table <x> persist`.
	if err := r.fw.Up(ctx, p, policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	if got := r.openedTable(p); len(got) != 2 {
		t.Fatalf("opened table after a reload = %q, want both addresses", got)
	}
	// The firewall comes down and up while the filter runs.
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.fw.Up(ctx, p, policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	if got := r.openedTable(p); len(got) != 0 {
		t.Fatalf("opened table after Down and Up = %q, want it empty", got)
	}
	c.advance(2 * time.Minute)
	if err := o.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{addrA.String()}, r.openedTable(p)); diff != "" {
		t.Errorf("table after Reopen (-want +got):\n%s", diff)
	}
	if v := r.verdict(p, addrA); v != policy.Pass {
		t.Errorf("%v after Reopen: %s", addrA, v)
	}
}

func TestRevokeClosesAtOnce(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	p, o := r.upWithFilter(newClock())
	if err := o.Open(ctx, []netip.Addr{addrA, addrB}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := o.Revoke(ctx, []netip.Addr{addrA}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{addrB.String()}, r.openedTable(p)); diff != "" {
		t.Errorf("table after Revoke (-want +got):\n%s", diff)
	}
	if v := r.verdict(p, addrA); v != policy.Refuse {
		t.Errorf("%v after Revoke: %s", addrA, v)
	}
}

func TestEndStatesEndsOnlyTheConnectionsToWhatWasClosed(t *testing.T) {
	r := newRig(t)
	p, _ := r.upWithFilter(newClock())
	st := r.kernelState()
	st.Conns = []fakepfctl.Conn{
		{Src: "192.168.64.5", Dst: addrA.String(), Proto: "tcp"},
		{Src: "192.168.64.5", Dst: addrB.String(), Proto: "tcp"},
		{Src: "fd5e:9a3b:1c2d:4e5f::5", Dst: addrC.String(), Proto: "tcp"},
		{Src: "192.168.1.20", Dst: addrA.String(), Proto: "tcp"}, // the host's own
	}
	fakepfctl.Save(r.kernel, st)
	if err := EndStates(context.Background(), r.runner, p.Network, []netip.Addr{addrA, addrC}); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, c := range r.kernelState().Conns {
		left = append(left, c.Src+">"+c.Dst)
	}
	if diff := cmp.Diff([]string{"192.168.64.5>" + addrB.String(), "192.168.1.20>" + addrA.String()}, left); diff != "" {
		t.Errorf("states left (-want +got):\n%s", diff)
	}
}
