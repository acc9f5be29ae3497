package pf

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	fakepfctl "github.com/VerilyPete/claudecontainer/internal/fakes/pfctl"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/policy/policytest"
)

func TestMain(m *testing.M) {
	fakebin.Main(m, map[string]func() int{"pfctl": fakepfctl.Main})
}

const anchorPath = "com.apple/" + testAnchor

// rig is one Mac: a fake kernel where pfd already holds an enable reference
// (as on macOS 26 from boot), a state directory, and the backend.
type rig struct {
	t        *testing.T
	kernel   string
	stateDir string
	calls    func() []string
	fw       *Firewall
	pfd      string // pfd's token
	runner   *recordingRunner
}

// check returns the check of Status named what; the test fails when there
// is none.
func (r *rig) check(what string) firewall.Check {
	r.t.Helper()
	for _, c := range r.fw.Status(context.Background()) {
		if c.What == what {
			return c
		}
	}
	r.t.Errorf("status has no check %q", what)
	return firewall.Check{OK: true}
}

func newRig(t *testing.T) *rig {
	t.Helper()
	st := fakepfctl.Stock()
	pfd := st.AddRef(312, "pfd", time.Now())
	r := &rig{t: t, kernel: fakepfctl.Setup(t, st), calls: fakebin.NewLog(t), stateDir: t.TempDir(), pfd: pfd}
	r.runner = &recordingRunner{Runner: proc.Exec{Euid: func() int { return 0 }}}
	r.fw = r.newFirewall()
	t.Setenv(fakepfctl.EnvFail, "")
	t.Cleanup(func() {
		for _, line := range r.calls() {
			if why := fakepfctl.Forbidden(line); why != "" {
				t.Errorf("forbidden pfctl call %q: %s", line, why)
			}
		}
		for _, c := range r.runner.cmds {
			if !c.Privileged {
				t.Errorf("%s ran without root rights", c)
			}
		}
	})
	return r
}

// newFirewall is a fresh backend on the same Mac: what a later process sees.
func (r *rig) newFirewall() *Firewall {
	fw, err := New(r.runner, Config{Anchor: testAnchor, StateDir: r.stateDir})
	if err != nil {
		r.t.Fatal(err)
	}
	return fw
}

func (r *rig) kernelState() fakepfctl.State { return fakepfctl.MustLoad(r.t, r.kernel) }

// other runs pfctl as another program would, behind the backend's back; it
// does not appear in the call log.
func (r *rig) other(stdin string, args ...string) {
	r.t.Helper()
	var out, errb strings.Builder
	if code := fakepfctl.Run(args, strings.NewReader(stdin), &out, &errb, os.Getenv); code != 0 {
		r.t.Fatalf("pfctl %q: exit %d: %s", args, code, errb.String())
	}
}

// since returns the calls logged after the first n.
func (r *rig) since(n int) []string { return r.calls()[n:] }

func (r *rig) ourToken() string {
	r.t.Helper()
	rec, err := r.fw.load()
	if err != nil || rec == nil || len(rec.Tokens) != 1 {
		r.t.Fatalf("record: %+v, %v", rec, err)
	}
	return rec.Tokens[0].Token
}

// assertDown checks that nothing of ours is left in the kernel or the state
// directory, and that pfd's reference is untouched.
func (r *rig) assertDown() {
	r.t.Helper()
	st := r.kernelState()
	if a, ok := st.Anchors[anchorPath]; ok {
		r.t.Errorf("our anchor is still loaded: %+v", a)
	}
	if len(st.Refs) != 1 || st.Refs[0].Token != r.pfd || st.Refs[0].Name != "pfd" {
		r.t.Errorf("references after Down: %+v, want only pfd's %s", st.Refs, r.pfd)
	}
	if !st.Enabled {
		r.t.Errorf("pf was disabled although pfd still holds a reference")
	}
	if diff := cmp.Diff(fakepfctl.StockMain, st.Main); diff != "" {
		r.t.Errorf("the main ruleset changed:\n%s", diff)
	}
	if diff := cmp.Diff(fakepfctl.StockMainNAT, st.MainNAT); diff != "" {
		r.t.Errorf("the main ruleset's translation rules changed:\n%s", diff)
	}
	entries, _ := os.ReadDir(r.stateDir)
	for _, e := range entries {
		if e.Name() != lockFile {
			r.t.Errorf("file left in the state directory: %s", e.Name())
		}
	}
}

// recordingRunner records every command, and runs after (when set) once a
// command has finished, so a test can act as another program between two of
// the backend's calls.
type recordingRunner struct {
	proc.Runner
	mu            sync.Mutex
	cmds          []proc.Cmd
	before, after func(proc.Cmd)
}

func (r *recordingRunner) Run(ctx context.Context, c proc.Cmd) (proc.Result, error) {
	r.mu.Lock()
	r.cmds = append(r.cmds, c)
	r.mu.Unlock()
	if r.before != nil {
		r.before(c)
	}
	res, err := r.Runner.Run(ctx, c)
	if r.after != nil {
		r.after(c)
	}
	return res, err
}

func TestUpRunsTheDocumentedSequence(t *testing.T) {
	r := newRig(t)
	p := policytest.DualStack()
	if err := r.fw.Up(context.Background(), p, policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	tok := r.ourToken()
	table := filepath.Join(r.stateDir, "pf.table")
	want := []string{
		"pfctl -a " + anchorPath + " -f -",
		"pfctl -E",
		"pfctl -a " + anchorPath + " -t allowed_destinations -T replace -f " + table,
		"pfctl -s info",
		"pfctl -s References",
		"pfctl -a " + anchorPath + " -s rules",
		"pfctl -s rules",
	}
	if diff := cmp.Diff(want, r.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	st := r.kernelState()
	if !st.HasToken(tok) || !st.HasToken(r.pfd) || len(st.Refs) != 2 {
		t.Errorf("references: %+v, want ours (%s) and pfd's", st.Refs, tok)
	}
	wantTable := []string{"140.82.112.0/20", "160.79.104.0/23", "2606:50c0::/32", "2607:6bc0::/48", "34.120.214.181"}
	if diff := cmp.Diff(wantTable, st.Anchors[anchorPath].Tables["allowed_destinations"]); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	text, _ := Render(p, Options{Anchor: testAnchor})
	if b, err := os.ReadFile(filepath.Join(r.stateDir, "pf.anchor")); err != nil || string(b) != text {
		t.Errorf("the anchor file is not the rendered text: %v", err)
	}
	rec, _ := r.fw.load()
	if rec.Network4 != "192.168.64.0/24" || rec.Network6 != "fd5e:9a3b:1c2d:4e5f::/64" || rec.Interface != "bridge100" || rec.Anchor != anchorPath || rec.Table != "allowed_destinations" {
		t.Errorf("record: %+v", rec)
	}
}

func TestEveryExamplePolicyLoadsAndVerifies(t *testing.T) {
	for name, p := range policytest.Policies() {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			if err := r.fw.Up(context.Background(), p, policytest.Allowlist()); err != nil {
				t.Fatal(err)
			}
			if err := r.fw.Down(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.assertDown()
		})
	}
}

func TestUpWhenAlreadyUpReloadsInPlaceWithoutASecondReference(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	tok, n := r.ourToken(), len(r.calls())
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pfctl -a " + anchorPath + " -f -",
		"pfctl -s References",
		"pfctl -a " + anchorPath + " -t allowed_destinations -T replace -f " + filepath.Join(r.stateDir, "pf.table"),
		"pfctl -s info",
		"pfctl -s References",
		"pfctl -a " + anchorPath + " -s rules",
		"pfctl -s rules",
	}
	if diff := cmp.Diff(want, r.since(n)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if st := r.kernelState(); len(st.Refs) != 2 || !st.HasToken(tok) {
		t.Errorf("references: %+v", st.Refs)
	}
	if got := r.ourToken(); got != tok {
		t.Errorf("token changed from %s to %s", tok, got)
	}
}

func TestUpTakesANewReferenceAfterAnotherProgramDisablesPf(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	old := r.ourToken()
	r.other("", "-d") // another tool: pf off, every reference gone

	checks := map[string]firewall.Check{}
	for _, c := range r.fw.Status(ctx) {
		checks[c.What] = c
	}
	for _, what := range []string{"pf enabled", "pf enable reference held"} {
		if c := checks[what]; c.OK || c.Fix == "" {
			t.Errorf("%s after pfctl -d: %+v", what, c)
		}
	}
	if c := checks["anchor loaded"]; !c.OK {
		t.Errorf("anchor loaded: %+v", c)
	}

	n := len(r.calls())
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	got := r.since(n)
	if len(got) < 3 || got[1] != "pfctl -s References" || got[2] != "pfctl -E" {
		t.Errorf("calls: %q", got)
	}
	tok := r.ourToken()
	if tok == old {
		t.Errorf("kept the vanished token %s", old)
	}
	if st := r.kernelState(); !st.Enabled || len(st.Refs) != 1 || st.Refs[0].Token != tok {
		t.Errorf("kernel: %+v", st)
	}
}

func TestReplaceSwapsTheTableInOneCall(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	set := func(ps ...string) *netipx.IPSet {
		var b netipx.IPSetBuilder
		for _, p := range ps {
			b.AddPrefix(netip.MustParsePrefix(p))
		}
		s, _ := b.IPSet()
		return s
	}
	if err := r.fw.Replace(ctx, set("1.2.3.0/24")); !errors.Is(err, firewall.ErrNotUp) {
		t.Errorf("Replace before Up: %v", err)
	}
	if calls := r.calls(); len(calls) != 0 {
		t.Errorf("Replace before Up ran %q", calls)
	}
	if err := r.fw.Up(ctx, policytest.IPv4Only(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	n := len(r.calls())
	if err := r.newFirewall().Replace(ctx, set("1.2.3.0/24", "2001:db8::/32")); err != nil {
		t.Fatal(err)
	}
	want := []string{"pfctl -a " + anchorPath + " -t allowed_destinations -T replace -f " + filepath.Join(r.stateDir, "pf.table")}
	if diff := cmp.Diff(want, r.since(n)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"1.2.3.0/24", "2001:db8::/32"}, r.kernelState().Anchors[anchorPath].Tables["allowed_destinations"]); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	if err := r.fw.Replace(ctx, nil); err == nil {
		t.Errorf("Replace with no set succeeded")
	}
	if err := r.fw.Replace(ctx, set("0.0.0.0/0")); err == nil {
		t.Errorf("Replace with every address succeeded")
	}
}

func TestAddAppendsAddresses(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	add := []netip.Prefix{netip.MustParsePrefix("198.51.100.7/32"), netip.MustParsePrefix("2001:db8::/48")}
	if err := r.fw.Add(ctx, add); !errors.Is(err, firewall.ErrNotUp) {
		t.Errorf("Add before Up: %v", err)
	}
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	n := len(r.calls())
	if err := r.fw.Add(ctx, add); err != nil {
		t.Fatal(err)
	}
	want := []string{"pfctl -a " + anchorPath + " -t allowed_destinations -T add 198.51.100.7/32 2001:db8::/48"}
	if diff := cmp.Diff(want, r.since(n)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	tbl := r.kernelState().Anchors[anchorPath].Tables["allowed_destinations"]
	for _, e := range []string{"198.51.100.7", "2001:db8::/48", "140.82.112.0/20"} {
		if !strings.Contains(strings.Join(tbl, " "), e) {
			t.Errorf("%s missing from %q", e, tbl)
		}
	}
	if err := r.fw.Add(ctx, nil); err != nil {
		t.Errorf("Add of nothing: %v", err)
	}
	if err := r.fw.Add(ctx, []netip.Prefix{netip.MustParsePrefix("::/0")}); err == nil {
		t.Errorf("Add of every IPv6 address succeeded")
	}
	if got := r.since(n + 1); len(got) != 0 {
		t.Errorf("refused or empty adds ran %q", got)
	}
}

func TestAddSplitsLongListsIntoBatches(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := r.fw.Up(ctx, policytest.IPv4Only(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	var many []netip.Prefix
	a := netip.MustParseAddr("198.18.0.0")
	for range addBatch + 10 {
		many = append(many, netip.PrefixFrom(a, 32))
		a = a.Next()
	}
	n := len(r.calls())
	if err := r.fw.Add(ctx, many); err != nil {
		t.Fatal(err)
	}
	if got := r.since(n); len(got) != 2 {
		t.Errorf("%d calls, want 2", len(got))
	}
	if got := len(r.kernelState().Anchors[anchorPath].Tables["allowed_destinations"]); got != 5+addBatch+10 {
		t.Errorf("table holds %d entries", got)
	}
}

func TestDownReleasesOnlyWhatWeHold(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	st := r.kernelState()
	st.Conns = []fakepfctl.Conn{
		{Src: "192.168.64.5", Dst: "140.82.113.4", Proto: "tcp"},
		{Src: "fd5e:9a3b:1c2d:4e5f::5", Dst: "2606:50c0::1", Proto: "tcp"},
		{Src: "192.168.1.20", Dst: "93.184.216.34", Proto: "tcp"}, // the host's own
	}
	fakepfctl.Save(r.kernel, st)
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	tok, n := r.ourToken(), len(r.calls())
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pfctl -a " + anchorPath + " -F all",
		"pfctl -k 192.168.64.0/24",
		"pfctl -k fd5e:9a3b:1c2d:4e5f::/64",
		"pfctl -X " + tok,
	}
	if diff := cmp.Diff(want, r.since(n)); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	r.assertDown()
	if conns := r.kernelState().Conns; len(conns) != 1 || conns[0].Src != "192.168.1.20" {
		t.Errorf("states left: %+v", conns)
	}

	n = len(r.calls())
	if err := r.fw.Down(ctx); err != nil {
		t.Errorf("a second Down: %v", err)
	}
	if diff := cmp.Diff([]string{"pfctl -a " + anchorPath + " -F all"}, r.since(n)); diff != "" {
		t.Errorf("a second Down (-want +got):\n%s", diff)
	}
	r.assertDown()
}

func TestDownReleasesTheLastReferenceAndPfStops(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.other("", "-X", r.pfd) // nobody else holds pf
	if err := r.fw.Up(ctx, policytest.IPv4Only(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.kernelState(); st.Enabled || len(st.Refs) != 0 {
		t.Errorf("kernel after Down: %+v", st)
	}
}

func TestALaterProcessReleasesWhatACrashedRunLeftBehind(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	tok := r.ourToken()
	r.fw = nil // the process is killed; nothing of it survives but pf and the state file

	later := r.newFirewall()
	if up, err := later.IsUp(ctx); err != nil || !up {
		t.Errorf("IsUp in the later process: %v, %v", up, err)
	}
	n := len(r.calls())
	if err := later.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.since(n); len(got) == 0 || got[len(got)-1] != "pfctl -X "+tok {
		t.Errorf("calls: %q, want the release of %s last", got, tok)
	}
	r.assertDown()
}

func TestDownTreatsAVanishedTokenAsReleased(t *testing.T) {
	for _, c := range []struct {
		name  string
		other [][]string
	}{
		{"pf disabled by another program", [][]string{{"-d"}}},
		{"pf re-enabled by another program after it disabled it", [][]string{{"-d"}, {"-E"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			if err := r.fw.Up(ctx, policytest.IPv4Only(), policytest.Allowlist()); err != nil {
				t.Fatal(err)
			}
			for _, args := range c.other {
				r.other("", args...)
			}
			if err := r.fw.Down(ctx); err != nil {
				t.Fatalf("Down: %v", err)
			}
			if _, err := os.Stat(filepath.Join(r.stateDir, "pf.json")); !os.IsNotExist(err) {
				t.Errorf("the state file is still there: %v", err)
			}
		})
	}
}

// TestAFailureAtEachStepOfUpLeavesAStateDownRepairs fails every pfctl call
// Up makes, one at a time, and checks that Down then leaves the Mac as it
// was: our anchor gone, our reference released, pfd's untouched.
func TestAFailureAtEachStepOfUpLeavesAStateDownRepairs(t *testing.T) {
	for name, p := range map[string]policy.Policy{"": policytest.DualStack(), "dns-filter/": withFilter(policytest.DualStack())} {
		failEachStepOfUp(t, name, p)
	}
}

func failEachStepOfUp(t *testing.T, name string, p policy.Policy) {
	// The steps are the calls of a successful Up, so that a step added to Up
	// is failed here too.
	ref := newRig(t)
	if err := ref.fw.Up(context.Background(), p, policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, call := range ref.calls() {
		args := regexp.QuoteMeta(strings.TrimPrefix(call, "pfctl "))
		steps = append(steps, "^"+strings.ReplaceAll(args, regexp.QuoteMeta(ref.stateDir), ".*")+"$")
	}
	if len(steps) < 7 {
		t.Fatalf("a successful Up made only these calls: %q", ref.calls())
	}
	for _, fail := range steps {
		t.Run(name+fail, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			t.Setenv(fakepfctl.EnvFail, fail)
			err := r.fw.Up(ctx, p, policytest.Allowlist())
			if err == nil {
				t.Fatal("Up succeeded")
			}
			if !strings.Contains(err.Error(), "failure injected") {
				t.Errorf("the error does not carry pfctl's message: %v", err)
			}
			if strings.Contains(err.Error(), "ALTQ") {
				t.Errorf("the error carries pfctl's notes: %v", err)
			}
			t.Setenv(fakepfctl.EnvFail, "")
			if err := r.newFirewall().Down(ctx); err != nil {
				t.Fatalf("Down: %v", err)
			}
			r.assertDown()
		})
	}
}

func TestAFailureDuringDownKeepsWhatIsLeftForTheNextTry(t *testing.T) {
	for _, fail := range []string{`^-a com\.apple/claude_firewall -F all$`, `^-k `, `^-X `} {
		t.Run(fail, func(t *testing.T) {
			r := newRig(t)
			ctx := context.Background()
			if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
				t.Fatal(err)
			}
			t.Setenv(fakepfctl.EnvFail, fail)
			if err := r.fw.Down(ctx); err == nil {
				t.Fatal("Down succeeded")
			}
			if rec, err := r.fw.load(); err != nil || rec == nil {
				t.Fatalf("the record is gone after a failed Down: %v", err)
			}
			t.Setenv(fakepfctl.EnvFail, "")
			if err := r.fw.Down(ctx); err != nil {
				t.Fatal(err)
			}
			r.assertDown()
		})
	}
}

func TestUpRefusesWhenTheMainRulesetNoLongerEvaluatesComApple(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	// Someone loaded a main ruleset of their own: Apple's anchor point is gone.
	r.other("pass in all\n", "-f", "-")
	err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist())
	if !errors.Is(err, ErrAnchorPointMissing) {
		t.Fatalf("Up: %v", err)
	}
	for _, s := range []string{"sudo pfctl -f /etc/pf.conf", "container system stop", anchorPath} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the error does not mention %q: %v", s, err)
		}
	}
	if c := r.check(`main ruleset evaluates "com.apple/*"`); c.OK || !strings.Contains(c.Fix, "/etc/pf.conf") {
		t.Errorf("status: %+v", c)
	}
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.kernelState(); st.HasToken(r.pfd) == false || len(st.Refs) != 1 || st.Anchors[anchorPath] != nil {
		t.Errorf("kernel after Down: %+v", st)
	}
}

func TestUpWithTheDNSFilterLoadsAndChecksTheRedirect(t *testing.T) {
	r := newRig(t)
	p := withFilter(policytest.DualStack())
	ctx := context.Background()
	if err := r.fw.Up(ctx, p, policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pfctl -a " + anchorPath + " -f -",
		"pfctl -E",
		"pfctl -a " + anchorPath + " -t allowed_destinations -T replace -f " + filepath.Join(r.stateDir, "pf.table"),
		"pfctl -s info",
		"pfctl -s References",
		"pfctl -a " + anchorPath + " -s rules",
		"pfctl -a " + anchorPath + " -s nat",
		"pfctl -s rules",
		"pfctl -s nat",
	}
	if diff := cmp.Diff(want, r.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	a := r.kernelState().Anchors[anchorPath]
	wantNAT := []string{
		"no rdr on bridge100 inet proto tcp from 192.168.64.1 to any port = 53",
		"no rdr on bridge100 inet proto tcp from 192.168.64.0 to any port = 53",
		"no rdr on bridge100 inet proto tcp from 192.168.64.255 to any port = 53",
		"no rdr on bridge100 inet proto udp from 192.168.64.1 to any port = 53",
		"no rdr on bridge100 inet proto udp from 192.168.64.0 to any port = 53",
		"no rdr on bridge100 inet proto udp from 192.168.64.255 to any port = 53",
		"rdr pass on bridge100 inet proto tcp from 192.168.64.0/24 to any port = 53 -> 127.0.0.1 port 5380",
		"rdr pass on bridge100 inet proto udp from 192.168.64.0/24 to any port = 53 -> 127.0.0.1 port 5380",
		"rdr pass on bridge100 inet6 proto tcp from fd5e:9a3b:1c2d:4e5f::/64 to any port = 53 -> ::1 port 5380",
		"rdr pass on bridge100 inet6 proto udp from fd5e:9a3b:1c2d:4e5f::/64 to any port = 53 -> ::1 port 5380",
	}
	if diff := cmp.Diff(wantNAT, a.NAT); diff != "" {
		t.Errorf("translation rules (-want +got):\n%s", diff)
	}
	if tbl, ok := a.Tables["allowed_destinations_dns"]; !ok || len(tbl) != 0 {
		t.Errorf("the opened table: %q, %v", tbl, ok)
	}
	if rec, _ := r.fw.load(); rec.DNSFilterPort != filterPort {
		t.Errorf("record: %+v", rec)
	}
	var whats []string
	for _, c := range r.fw.Status(ctx) {
		whats = append(whats, c.What)
		if !c.OK || c.Fix != "" || c.Detail == "" {
			t.Errorf("%+v", c)
		}
	}
	wantChecks := []string{"pf state recorded", "pf enabled", "pf enable reference held", "anchor loaded",
		`main ruleset evaluates "com.apple/*"`, `main ruleset evaluates scrub-anchor "com.apple/*"`, `main ruleset evaluates rdr-anchor "com.apple/*"`, "DNS filter redirect loaded",
		"allowlist table", "IPv6 from the containers filtered"}
	if diff := cmp.Diff(wantChecks, whats); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
	// Without the filter, the same Up drops the redirect and forgets it.
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	if a := r.kernelState().Anchors[anchorPath]; len(a.NAT) != 0 {
		t.Errorf("translation rules left: %q", a.NAT)
	}
	if rec, _ := r.fw.load(); rec.DNSFilterPort != 0 {
		t.Errorf("record: %+v", rec)
	}
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	r.assertDown()
}

func TestEveryExamplePolicyLoadsAndVerifiesWithTheDNSFilter(t *testing.T) {
	for name, p := range policytest.Policies() {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			if err := r.fw.Up(context.Background(), withFilter(p), policytest.Allowlist()); err != nil {
				t.Fatal(err)
			}
			if n := len(r.kernelState().Anchors[anchorPath].NAT); n < 2 {
				t.Errorf("%d translation rules loaded", n)
			}
			if err := r.fw.Down(context.Background()); err != nil {
				t.Fatal(err)
			}
			r.assertDown()
		})
	}
}

func TestUpWithTheDNSFilterRefusesWhenTheMainRulesetNoLongerEvaluatesRdrAnchor(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	// Someone loaded a main ruleset of their own that keeps Apple's filter
	// anchor point but not the translation one.
	r.other("scrub-anchor \"com.apple/*\"\nanchor \"com.apple/*\"\n", "-f", "-")
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatalf("without the DNS filter the redirect's anchor point is not needed: %v", err)
	}
	err := r.fw.Up(ctx, withFilter(policytest.DualStack()), policytest.Allowlist())
	if !errors.Is(err, ErrRedirectAnchorPointMissing) {
		t.Fatalf("Up: %v", err)
	}
	for _, s := range []string{"sudo pfctl -f /etc/pf.conf", "container system stop", anchorPath, "DNS"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("the error does not mention %q: %v", s, err)
		}
	}
	if c := r.check(`main ruleset evaluates rdr-anchor "com.apple/*"`); c.OK || !strings.Contains(c.Fix, "/etc/pf.conf") {
		t.Errorf("status: %+v", c)
	}
	// The repair the error names brings it back.
	r.other("scrub-anchor \"com.apple/*\"\nnat-anchor \"com.apple/*\"\nrdr-anchor \"com.apple/*\"\nanchor \"com.apple/*\"\n", "-f", "-")
	if err := r.fw.Up(ctx, withFilter(policytest.DualStack()), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestUpRefusesWhenTheMainRulesetNoLongerEvaluatesScrubAnchor(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	// A main ruleset of someone else's that keeps Apple's filter and
	// translation anchor points but not the normalization one: our scrub
	// rule would be loaded and never read, and fragments not reassembled.
	r.other("nat-anchor \"com.apple/*\"\nrdr-anchor \"com.apple/*\"\nanchor \"com.apple/*\"\n", "-f", "-")
	err := r.fw.Up(ctx, withFilter(policytest.DualStack()), policytest.Allowlist())
	if !errors.Is(err, ErrScrubAnchorPointMissing) {
		t.Fatalf("Up: %v", err)
	}
	if !strings.Contains(err.Error(), "sudo pfctl -f /etc/pf.conf") {
		t.Errorf("the error does not say how to repair it: %v", err)
	}
	if c := r.check(`main ruleset evaluates scrub-anchor "com.apple/*"`); c.OK || !strings.Contains(c.Fix, "/etc/pf.conf") {
		t.Errorf("status: %+v", c)
	}
	r.other("scrub-anchor \"com.apple/*\"\nnat-anchor \"com.apple/*\"\nrdr-anchor \"com.apple/*\"\nanchor \"com.apple/*\"\n", "-f", "-")
	if err := r.fw.Up(ctx, withFilter(policytest.DualStack()), policytest.Allowlist()); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
	if c := r.check(`main ruleset evaluates scrub-anchor "com.apple/*"`); !c.OK {
		t.Errorf("after the repair, status: %+v", c)
	}
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestUpWithTheDNSFilterNoticesARedirectThatDidNotLoad(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	// Another program flushes the anchor's translation rules between the
	// load and the check.
	r.runner.after = func(c proc.Cmd) {
		if slices.Equal(c.Args, []string{"-a", anchorPath, "-s", "rules"}) {
			r.other("", "-a", anchorPath, "-F", "nat")
		}
	}
	err := r.fw.Up(ctx, withFilter(policytest.DualStack()), policytest.Allowlist())
	if err == nil || !strings.Contains(err.Error(), "translation rule") {
		t.Fatalf("Up: %v", err)
	}
	r.runner.after = nil
	if c := r.check("DNS filter redirect loaded"); c.OK {
		t.Errorf("status: %+v", c)
	}
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	r.assertDown()
}

func TestStatusWhenAllIsWell(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	checks := r.fw.Status(ctx)
	if len(checks) == 0 || checks[0].OK {
		t.Errorf("status before Up: %+v", checks)
	}
	if err := r.fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, c := range r.fw.Status(ctx) {
		whats = append(whats, c.What)
		if !c.OK || c.Fix != "" || c.Detail == "" {
			t.Errorf("%+v", c)
		}
	}
	want := []string{"pf state recorded", "pf enabled", "pf enable reference held", "anchor loaded",
		`main ruleset evaluates "com.apple/*"`, `main ruleset evaluates scrub-anchor "com.apple/*"`, "allowlist table", "IPv6 from the containers filtered"}
	if diff := cmp.Diff(want, whats); diff != "" {
		t.Errorf("checks (-want +got):\n%s", diff)
	}
}

func TestStatusSaysWhenIPv6IsNotFullyFiltered(t *testing.T) {
	for name, p := range map[string]policy.Policy{
		"no interface": policytest.DualStackNoInterface(),
		"macOS 15":     policytest.MacOS15(),
	} {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			if err := r.fw.Up(context.Background(), p, policytest.Allowlist()); err != nil {
				t.Fatal(err)
			}
			checks := r.fw.Status(context.Background())
			last := checks[len(checks)-1]
			if last.What != "IPv6 from the containers filtered" || last.OK || last.Fix == "" {
				t.Errorf("%+v", last)
			}
		})
	}
}

func TestIsUpFollowsTheAnchor(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if up, err := r.fw.IsUp(ctx); err != nil || up {
		t.Errorf("before Up: %v, %v", up, err)
	}
	if err := r.fw.Up(ctx, policytest.IPv4Only(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	if up, err := r.fw.IsUp(ctx); err != nil || !up {
		t.Errorf("after Up: %v, %v", up, err)
	}
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	if up, err := r.fw.IsUp(ctx); err != nil || up {
		t.Errorf("after Down: %v, %v", up, err)
	}
}

func TestUpRefusesAStateFileForAnotherAnchor(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if err := r.fw.Up(ctx, policytest.IPv4Only(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	other, err := New(r.runner, Config{Anchor: "other_anchor", StateDir: r.stateDir})
	if err != nil {
		t.Fatal(err)
	}
	n := len(r.calls())
	if err := other.Up(ctx, policytest.IPv4Only(), policytest.Allowlist()); err == nil || !strings.Contains(err.Error(), "mage reset") {
		t.Errorf("Up: %v", err)
	}
	if got := r.since(n); len(got) != 0 {
		t.Errorf("ran %q", got)
	}
	// Down with the new setting still takes down what the record names.
	if err := other.Down(ctx); err != nil {
		t.Fatal(err)
	}
	r.assertDown()
}

func TestADamagedStateFileIsNeverTrusted(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	bad := `{"anchor":"com.apple/claude_firewall","table":"allowed_destinations","network4":"192.168.64.0/24",` +
		`"tokens":[{"token":"1; pfctl -d"}],"updated":"2026-01-01T00:00:00Z"}`
	os.WriteFile(filepath.Join(r.stateDir, "pf.json"), []byte(bad), 0o600)
	err := r.fw.Down(ctx)
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), "pfctl -s References") {
		t.Errorf("Down: %v", err)
	}
	if diff := cmp.Diff([]string{"pfctl -a " + anchorPath + " -F all"}, r.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if err := r.fw.Up(ctx, policytest.IPv4Only(), policytest.Allowlist()); err == nil {
		t.Errorf("Up over a damaged state file succeeded")
	}
}

func TestUpRefusesBadInputBeforeRunningAnything(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	bad := policytest.IPv4Only()
	bad.Network.Interface = "en0"
	if err := r.fw.Up(ctx, bad, policytest.Allowlist()); err == nil {
		t.Errorf("Up with the uplink as the bridge succeeded")
	}
	if err := r.fw.Up(ctx, policytest.IPv4Only(), nil); err == nil {
		t.Errorf("Up with no allowlist succeeded")
	}
	if calls := r.calls(); len(calls) != 0 {
		t.Errorf("ran %q", calls)
	}
	if _, err := New(r.runner, Config{Anchor: "com.apple/x", StateDir: r.stateDir}); err == nil {
		t.Errorf("New accepted an anchor path as a name")
	}
	if _, err := New(r.runner, Config{Anchor: testAnchor, StateDir: "state"}); err == nil {
		t.Errorf("New accepted a relative state directory")
	}
}

func TestTheStateFileHoldsWhatDownNeeds(t *testing.T) {
	r := newRig(t)
	if err := r.fw.Up(context.Background(), policytest.DualStack(), policytest.Allowlist()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(r.stateDir, "pf.json"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)^\{\n  "anchor": "com.apple/claude_firewall",\n  "table": "allowed_destinations",\n` +
		`  "network4": "192.168.64.0/24",\n  "network6": "fd5e:9a3b:1c2d:4e5f::/64",\n  "interface": "bridge100",\n` +
		`  "tokens": \[\n    \{\n      "token": "[0-9]+",\n      "taken": "[^"]+Z"\n    \}\n  \],\n  "updated": "[^"]+Z"\n\}\n$`)
	if !re.Match(b) {
		t.Errorf("state file:\n%s", b)
	}
	if info, _ := os.Stat(filepath.Join(r.stateDir, "pf.json")); info.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v", info.Mode())
	}
}

// TestUpNoticesAnotherProgramActingWhileItRuns has other programs change pf
// right after Up fills the table, before it verifies.
func TestUpNoticesAnotherProgramActingWhileItRuns(t *testing.T) {
	cases := []struct {
		name  string
		other [][]string
		want  string
	}{
		{"pfctl -d", [][]string{{"-d"}}, "pf is not enabled"},
		{"pfctl -d then another program's pfctl -E", [][]string{{"-d"}, {"-E"}}, "does not list claudecontainer's enable reference"},
		{"our anchor's rules flushed", [][]string{{"-a", anchorPath, "-F", "rules"}}, "does not show the rule labelled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t)
			r.runner.after = func(cmd proc.Cmd) {
				if slices.Contains(cmd.Args, "replace") {
					for _, args := range c.other {
						r.other("", args...)
					}
				}
			}
			err := r.fw.Up(context.Background(), policytest.DualStack(), policytest.Allowlist())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Up: %v, want an error saying %q", err, c.want)
			}
			r.runner.after = nil
			if err := r.fw.Down(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAReferenceAskedForIsRecordedEvenWhenTheContextEndsMeanwhile(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.runner.before = func(c proc.Cmd) {
		if slices.Equal(c.Args, []string{"-E"}) {
			cancel() // the user presses Ctrl-C while pfctl -E runs
		}
	}
	if err := r.fw.Up(ctx, policytest.IPv4Only(), policytest.Allowlist()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Up: %v, want the context's end after -E", err)
	}
	r.runner.before = nil
	tok := r.ourToken()
	if !r.kernelState().HasToken(tok) {
		t.Errorf("the recorded token %s is not the one pf holds: %+v", tok, r.kernelState().Refs)
	}
	if err := r.fw.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.assertDown()
}

func TestProcessesStartingTogetherShareOneReference(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		fw := r.newFirewall() // one per process
		wg.Go(func() { errs[i] = fw.Up(ctx, policytest.DualStack(), policytest.Allowlist()) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	tok := r.ourToken()
	if st := r.kernelState(); len(st.Refs) != 2 || !st.HasToken(tok) || !st.HasToken(r.pfd) {
		t.Errorf("references: %+v, want pfd's and ours (%s)", st.Refs, tok)
	}
	if err := r.fw.Down(ctx); err != nil {
		t.Fatal(err)
	}
	r.assertDown()
}

func TestAWaitingProcessGivesUpWhenItsContextEnds(t *testing.T) {
	r := newRig(t)
	unlock, err := r.fw.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.newFirewall().Down(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Down while another process holds the lock: %v", err)
	}
	if calls := r.calls(); len(calls) != 0 {
		t.Errorf("ran %q", calls)
	}
}
