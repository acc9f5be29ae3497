package app

// End-to-end tests of the targets on the macOS path, run through the real
// proc.Exec against fakes of pfctl (macOS 26), Apple's container CLI
// (releases 1.0.0 and 1.2.2; 1.4.1 in e2e_release_test.go) and ifconfig,
// which fakebin puts on PATH. The call log shared by the fakes pins down the
// order of what happens across programs.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/engine/apple"
	"github.com/VerilyPete/claudecontainer/filterd"
	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	fakecontainer "github.com/VerilyPete/claudecontainer/internal/fakes/container"
	fakepfctl "github.com/VerilyPete/claudecontainer/internal/fakes/pfctl"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == filterd.Arg {
		// The DNS filter's daemon, started by a target under test as mage's
		// binary would start itself.
		os.Exit(filterd.Main(os.Args[2:]))
	}
	if t := os.Getenv(helperTargetEnv); t != "" {
		// Started by a test as a stand-in for `mage blocked` or `mage
		// allow` in another network namespace.
		os.Unsetenv(helperTargetEnv)
		var err error
		switch verb, arg, _ := strings.Cut(t, ":"); verb {
		case "blocked":
			err = Blocked(context.Background(), os.Stdout, 0, false)
		case "allow":
			err = Allow(context.Background(), os.Stdout, arg, false, false)
		case "remove":
			err = Allow(context.Background(), os.Stdout, arg, true, false)
		default:
			err = fmt.Errorf("unknown helper target %q", t)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(helperDevEnv) != "" {
		// Started by a test as a stand-in for a `mage dev` process. The
		// fakes it runs are this binary too; they must not take the same turn.
		os.Unsetenv(helperDevEnv)
		err := Dev(context.Background(), os.Stdout, "")
		if err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	fakebin.Main(m, map[string]func() int{
		"pfctl":     pfctlNotingTheSpoofDrop,
		"container": fakecontainer.Main,
		"ifconfig":  fakecontainer.Ifconfig,
	})
}

const helperDevEnv = "CLAUDECONTAINER_TEST_HELPER_DEV"

// helperTargetEnv makes this test binary run one target, named by its
// value: "blocked", "allow:ENTRIES" or "remove:ENTRIES".
const helperTargetEnv = "CLAUDECONTAINER_TEST_HELPER_TARGET"

// spoofDropNote starts the line pfctlNotingTheSpoofDrop adds to the call log.
const spoofDropNote = "pf now holds: "

// pfctlNotingTheSpoofDrop is the fake pfctl, plus one line in the call log
// after each successful load of our anchor that leaves pf holding the rule
// which drops made-up source addresses on the bridge ("deny-spoofed"). The
// log then shows what pf held when each container command ran.
func pfctlNotingTheSpoofDrop() int {
	code := fakepfctl.Main()
	if code != 0 || !strings.HasPrefix(strings.Join(os.Args[1:], " "), "-a com.apple/claude_firewall -f") {
		return code
	}
	st, err := fakepfctl.Load(os.Getenv(fakepfctl.EnvState))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake pfctl:", err)
		return 2
	}
	a := st.Anchors["com.apple/claude_firewall"]
	if a == nil {
		return code
	}
	log := os.Getenv(fakebin.LogEnv)
	for _, r := range a.Rules {
		if log != "" && strings.Contains(r, `label "claude-deny-spoofed"`) {
			f, err := os.OpenFile(log, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				fmt.Fprintln(os.Stderr, "fake pfctl:", err)
				return 2
			}
			fmt.Fprintln(f, spoofDropNote+r)
			f.Close()
		}
	}
	return code
}

// mac is one fake Mac: pf with pfd holding an enable reference, as after
// boot on macOS 26, and the container service running a given release.
type mac struct {
	t        *testing.T
	kernel   string // fake pf state directory
	pfd      string // pfd's token
	calls    func() []string
	stateDir string
}

func newMac(t *testing.T, version string, knobs ...string) *mac {
	t.Helper()
	st := fakepfctl.Stock()
	st.Enabled = true
	pfd := st.AddRef(312, "pfd", time.Now())
	m := &mac{t: t, kernel: fakepfctl.Setup(t, st), pfd: pfd, calls: fakebin.NewLog(t), stateDir: t.TempDir()}
	fakecontainer.Use(t, append([]string{fakecontainer.EnvVersion + "=" + version, fakecontainer.EnvImages + "=claudepine:latest"}, knobs...)...)

	dir := t.TempDir()
	allow := filepath.Join(dir, "allowed_destinations")
	// A fresh allowlist file, so no test reaches for the network.
	if err := os.WriteFile(allow, []byte("# test\n140.82.112.0/20\n160.79.104.0/23\n2606:50c0::/32\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"FIREWALL": "pf", "RUNTIME": "container", "ALLOWLIST_FILE": allow, "STATE_DIR": m.stateDir,
		"CACHE_DIR": filepath.Join(dir, "cache"), "LOCAL_FILE": filepath.Join(dir, "local"), "WORKSPACE": t.TempDir(),
		"DNS_FILTER": "off", // on in TestE2EDevOnAMacWithTheDNSFilter
	} {
		t.Setenv(config.Prefix+k, v)
	}
	return m
}

func (m *mac) pf() fakepfctl.State { return fakepfctl.MustLoad(m.t, m.kernel) }

// ourRefs returns the enable references that are not pfd's.
func (m *mac) ourRefs() []string {
	var out []string
	for _, r := range m.pf().Refs {
		if r.Token != m.pfd {
			out = append(out, r.Token)
		}
	}
	return out
}

func (m *mac) anchorRules() []string {
	if a := m.pf().Anchors["com.apple/claude_firewall"]; a != nil {
		return a.Rules
	}
	return nil
}

func (m *mac) containerState() engine.State {
	m.t.Helper()
	s, err := apple.New(proc.Exec{}).State(context.Background(), "claude-alpine")
	if err != nil {
		m.t.Fatal(err)
	}
	return s
}

// assertDown checks that nothing of ours is left: container stopped, anchor
// empty, our references released, pfd's untouched, pf still on for pfd.
func (m *mac) assertDown() {
	m.t.Helper()
	if s := m.containerState(); s == engine.Running {
		m.t.Errorf("container still running")
	}
	if s, err := apple.New(proc.Exec{}).State(context.Background(), "claude-alpine-gate"); err != nil || s != engine.Absent {
		m.t.Errorf("the gate container is %s (%v), want it gone", s, err)
	}
	if r := m.anchorRules(); len(r) > 0 {
		m.t.Errorf("anchor still holds %d rules", len(r))
	}
	if refs := m.ourRefs(); len(refs) > 0 {
		m.t.Errorf("our references still held: %v", refs)
	}
	st := m.pf()
	if !st.HasToken(m.pfd) || !st.Enabled {
		m.t.Errorf("pfd's reference or pf itself was touched: enabled %v, refs %+v", st.Enabled, st.Refs)
	}
}

// assertNeverUnfirewalled checks, over the whole call log, that no
// container command that starts or enters a container came before the
// firewall was loaded and verified, and that the only pfctl calls are ones
// claudecontainer may make.
func (m *mac) assertCallsSafe() {
	m.t.Helper()
	calls := m.calls()
	verified := -1
	for i, c := range calls {
		if strings.HasPrefix(c, "pfctl ") {
			if why := fakepfctl.Forbidden(c); why != "" {
				m.t.Errorf("forbidden call %q: %s", c, why)
			}
			if c == "pfctl -sr" || c == "pfctl -s rules" {
				verified = i
			}
			continue
		}
		if isStartOrEnter(c) && verified < 0 {
			m.t.Errorf("%q ran before the firewall was verified (calls: %q)", c, calls)
		}
	}
}

func isStartOrEnter(call string) bool {
	f := strings.Fields(call)
	return len(f) > 1 && f[0] == "container" && (f[1] == "run" || f[1] == "start" || f[1] == "exec")
}

func lastIndex(calls []string, prefix string) int {
	for i := len(calls) - 1; i >= 0; i-- {
		if strings.HasPrefix(calls[i], prefix) {
			return i
		}
	}
	return -1
}

func TestE2EDevOnAMacLoadsTheFirewallFirstAndLiftsItLast(t *testing.T) {
	for _, version := range []string{"1.0.0", "1.2.2"} {
		t.Run(version, func(t *testing.T) {
			m := newMac(t, version)
			var out bytes.Buffer
			if err := Dev(context.Background(), &out, ""); err != nil {
				t.Fatalf("dev: %v\n%s", err, out.String())
			}
			calls := m.calls()
			run, exec, stop := slices.IndexFunc(calls, startsAgent), index(calls, "container exec"), slices.Index(calls, "container stop claude-alpine")
			enable, load, release := index(calls, "pfctl -E"), index(calls, "pfctl -a com.apple/claude_firewall -f"), lastIndex(calls, "pfctl -X")
			if run < 0 || exec < 0 || stop < 0 || enable < 0 || load < 0 || release < 0 {
				t.Fatalf("missing calls:\n%s", strings.Join(calls, "\n"))
			}
			if !(enable < run && load < run && run < exec && exec < stop && stop < release) {
				t.Errorf("wrong order:\n%s", strings.Join(calls, "\n"))
			}
			if !strings.Contains(strings.Join(calls, "\n"), "container network create --subnet 192.168.218.0/24 claude") {
				t.Errorf("network not created with a fixed subnet:\n%s", strings.Join(calls, "\n"))
			}
			m.assertCallsSafe()
			m.assertDown()
			for _, want := range []string{"firewall up and verified", "lifting the firewall"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}
}

// assertNoUnguardedStart checks, over calls, that every command that
// starts or creates the agent's container comes after pf was loaded with the
// rule that drops made-up sources on the bridge, and that no load or flush
// of our anchor without it came in between. It returns how many such
// commands there were.
func assertNoUnguardedStart(t *testing.T, calls []string) int {
	t.Helper()
	guarded, starts := false, 0
	for i, c := range calls {
		switch {
		case strings.HasPrefix(c, spoofDropNote):
			guarded = true
		case strings.HasPrefix(c, "pfctl -a com.apple/claude_firewall -f"), strings.HasPrefix(c, "pfctl -a com.apple/claude_firewall -F"):
			guarded = false
		case startsAgent(c):
			starts++
			if !guarded {
				t.Errorf("%q (call %d) ran before pf dropped made-up sources on the bridge:\n%s", c, i, strings.Join(calls, "\n"))
			}
		}
	}
	return starts
}

// startsAgent reports whether call starts or creates the container
// claude-alpine (the container named exactly so, not another).
func startsAgent(call string) bool {
	f := strings.Fields(call)
	if len(f) < 3 || f[0] != "container" {
		return false
	}
	switch f[1] {
	case "start":
		return f[len(f)-1] == "claude-alpine"
	case "run", "create":
		i := slices.Index(f, "--name")
		return i > 0 && i+1 < len(f) && f[i+1] == "claude-alpine"
	}
	return false
}

func TestE2EDevDropsMadeUpSourcesBeforeTheContainerCanSendOne(t *testing.T) {
	// Each `mage dev` here finds no container running on the network, so
	// vmnet has not made the network's bridge yet (the fake, like macOS,
	// adds it with the first running container). The first run creates the
	// container, the second starts it again: code the agent planted in the
	// container's file system runs from the moment it starts, so pf must
	// already drop packets with made-up sources on the bridge then.
	for _, version := range []string{"1.2.2"} {
		t.Run(version, func(t *testing.T) {
			m := newMac(t, version)
			for run, want := range []string{"container run", "container start"} {
				before := len(m.calls())
				var out bytes.Buffer
				if err := Dev(context.Background(), &out, ""); err != nil {
					t.Fatalf("dev %d: %v\n%s", run+1, err, out.String())
				}
				calls := m.calls()[before:]
				if n := assertNoUnguardedStart(t, calls); n != 1 {
					t.Errorf("dev %d started the container %d times, want once:\n%s", run+1, n, strings.Join(calls, "\n"))
				}
				if i := slices.IndexFunc(calls, startsAgent); i < 0 || !strings.HasPrefix(calls[i], want) {
					t.Errorf("dev %d: the container was not started with %q:\n%s", run+1, want, strings.Join(calls, "\n"))
				}
				m.assertCallsSafe()
				m.assertDown()
			}
		})
	}
}

func TestE2EDevScopesIPv6ToTheBridgeOnceItAppears(t *testing.T) {
	m := newMac(t, "1.2.2")
	s := fakecontainer.HoldSessions(t)
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- Dev(context.Background(), &out, "") }()
	s.WaitOpen(t, 1)
	rules := strings.Join(m.anchorRules(), "\n")
	if !strings.Contains(rules, "bridge") {
		t.Errorf("while the shell runs the anchor names no bridge interface:\n%s", rules)
	}
	s.End(t, 1, 0)
	if err := <-done; err != nil {
		t.Fatalf("dev: %v\n%s", err, out.String())
	}
	m.assertDown()
}

// devProc is a `mage dev` stand-in running in its own process.
type devProc struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

// wait waits for the process to end and returns its exit error.
func (d *devProc) wait() error { return <-d.done }

// startSession runs a `mage dev` stand-in in its own process and waits for
// its shell (the n-th exec session) to open.
func startSession(t *testing.T, s *fakecontainer.Sessions, n int) *devProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperDevEnv+"=1")
	d := &devProc{cmd: cmd, out: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = d.out, d.out
	// A killed stand-in leaves its fake exec child behind, holding the
	// output pipe open; do not wait for it.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	open := filepath.Join(s.Dir, fmt.Sprintf("session-%d.open", n))
	for i := 0; ; i++ {
		if _, err := os.Stat(open); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("the dev stand-in ended (%v) before its shell opened:\n%s", err, d.out)
		case <-time.After(20 * time.Millisecond):
		}
		if i > 3000 { // a bound, so a broken test cannot hang
			t.Fatalf("shell %d never opened:\n%s", n, d.out)
		}
	}
	go func() { d.done <- <-exited }()
	return d
}

func TestE2ETheFirstOfTwoShellsToLeaveKeepsTheFirewallUp(t *testing.T) {
	m := newMac(t, "1.2.2")
	s := fakecontainer.HoldSessions(t)
	first := startSession(t, s, 1)
	second := startSession(t, s, 2)

	s.End(t, 1, 0)
	if err := first.wait(); err != nil {
		t.Fatalf("first session: %v\n%s", err, first.out)
	}
	if m.containerState() != engine.Running || len(m.anchorRules()) == 0 || len(m.ourRefs()) == 0 {
		t.Fatalf("after the first shell left: container %s, %d rules, refs %v; want all still up\n%s",
			m.containerState(), len(m.anchorRules()), m.ourRefs(), first.out)
	}
	if got := len(m.ourRefs()); got != 1 {
		t.Errorf("%d enable references held for one firewall, want 1", got)
	}
	s.End(t, 2, 0)
	if err := second.wait(); err != nil {
		t.Fatalf("second session: %v\n%s", err, second.out)
	}
	m.assertDown()
	m.assertCallsSafe()
	// The second session found the container running, its bridge up: no gate.
	gates := 0
	for _, c := range m.calls() {
		if strings.Contains(c, "claude-alpine-gate") && strings.HasPrefix(c, "container run") {
			gates++
		}
	}
	if gates != 1 {
		t.Errorf("the gate was started %d times for two sessions, want once (by the first):\n%s", gates, strings.Join(m.calls(), "\n"))
	}
}

func TestE2EAKilledSessionIsCleanedUpByTheNextRun(t *testing.T) {
	m := newMac(t, "1.2.2")
	s := fakecontainer.HoldSessions(t)
	killed := startSession(t, s, 1)
	if err := killed.cmd.Process.Kill(); err != nil { // SIGKILL: no teardown at all
		t.Fatal(err)
	}
	killed.wait()
	if m.containerState() != engine.Running || len(m.anchorRules()) == 0 {
		t.Fatal("the killed run left nothing behind; the test proves nothing")
	}
	// The next run attaches, and when its shell leaves it is the last one:
	// the dead session does not count.
	next := startSession(t, s, 2)
	s.End(t, 2, 0)
	if err := next.wait(); err != nil {
		t.Fatalf("next session: %v\n%s", err, next.out)
	}
	m.assertDown()
}

func TestE2EResetRepairsWhatAKilledSessionLeft(t *testing.T) {
	m := newMac(t, "1.2.2")
	s := fakecontainer.HoldSessions(t)
	killed := startSession(t, s, 1)
	killed.cmd.Process.Kill()
	killed.wait()

	var out bytes.Buffer
	err := Reset(context.Background(), &out, false)
	if err == nil || !strings.Contains(err.Error(), "mage reset -stop") {
		t.Fatalf("reset without -stop: %v, want a refusal (the container still runs)", err)
	}
	if len(m.anchorRules()) == 0 {
		t.Fatal("reset lifted the firewall under a running container")
	}
	if err := Reset(context.Background(), &out, true); err != nil {
		t.Fatalf("reset -stop: %v\n%s", err, out.String())
	}
	m.assertDown()
	m.assertCallsSafe()
}

func TestE2ESigtermAndSighupTearDownLikeALeavingShell(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			m := newMac(t, "1.2.2")
			s := fakecontainer.HoldSessions(t)
			d := startSession(t, s, 1)
			if err := d.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			d.wait() // its exit status reflects the shell cut short
			if strings.Contains(d.out.String(), "panic") {
				t.Fatalf("dev panicked:\n%s", d.out)
			}
			m.assertDown()
		})
	}
}

func TestE2EAFailureAtAnyStepLeavesNothingUnfirewalledAndResetRepairsTheRest(t *testing.T) {
	steps := []struct{ name, knob string }{
		{"pfctl -E", fakepfctl.EnvFail + "=^-E$"},
		{"anchor load", fakepfctl.EnvFail + "=-f -$"},
		{"table replace", fakepfctl.EnvFail + "=-T replace"},
		{"references check", fakepfctl.EnvFail + "=^-s References$"},
		{"main ruleset check", fakepfctl.EnvFail + "=^-s rules$"},
		{"container system status", fakecontainer.EnvFail + "=system status"},
		{"network create", fakecontainer.EnvFail + "=network create"},
		{"container run", fakecontainer.EnvFail + "=run"},
		{"container exec", fakecontainer.EnvFail + "=exec"},
		{"container stop", fakecontainer.EnvFail + "=stop"},
		{"pfctl -X", fakepfctl.EnvFail + "=^-X "},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			m := newMac(t, "1.2.2")
			k, v, _ := strings.Cut(step.knob, "=")
			t.Setenv(k, v)
			var out bytes.Buffer
			err := Dev(context.Background(), &out, "")
			// The invariant at every moment: a running container has the
			// firewall in place.
			if m.containerState() == engine.Running && (len(m.anchorRules()) == 0 || len(m.ourRefs()) == 0) {
				t.Errorf("container running without the firewall\n%s", out.String())
			}
			m.assertCallsSafe()
			if step.name == "container exec" {
				// An exec that fails looks like a shell that exited with
				// a status: it is reported, and everything is torn down.
				if !strings.Contains(out.String(), "exited with status 1") {
					t.Errorf("the failed exec is not reported:\n%s", out.String())
				}
				m.assertDown()
				return
			}
			if err == nil {
				t.Fatalf("dev succeeded with %s failing\n%s", step.name, out.String())
			}
			// Whatever is left, reset repairs once the fault is gone.
			t.Setenv(k, "")
			var rout bytes.Buffer
			if err := Reset(context.Background(), &rout, true); err != nil {
				t.Fatalf("reset after the failure: %v\n%s", err, rout.String())
			}
			m.assertDown()
		})
	}
}

func TestE2EMainRulesetWithoutApplesAnchorPointRefusesToStartTheContainer(t *testing.T) {
	m := newMac(t, "1.2.2")
	st := m.pf()
	st.Main = []string{"pass all"} // someone ran `pfctl -f` with a file of their own
	if err := fakepfctl.Save(m.kernel, st); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := Dev(context.Background(), &out, "")
	if err == nil || !strings.Contains(err.Error(), "/etc/pf.conf") {
		t.Fatalf("dev: %v, want an error that says how to repair pf\n%s", err, out.String())
	}
	if index(m.calls(), "container run") >= 0 {
		t.Errorf("the container was started although pf does not evaluate our anchor")
	}
	m.assertDown()
}

func TestE2EStatusSaysWhatIsWrong(t *testing.T) {
	m := newMac(t, "1.2.2")
	var out bytes.Buffer
	if err := Up(context.Background(), &out); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	// The manual flow: a container started by hand makes the bridge
	// appear, which status reports until `mage up` runs again.
	if err := apple.New(proc.Exec{}).Create(context.Background(), engine.RunSpec{Name: "claude-alpine", Image: "claudepine:latest", Network: "claude"}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Status(context.Background(), &out); err == nil || !strings.Contains(out.String(), "then `mage up`") {
		t.Errorf("status with the bridge unknown to the rules: %v\n%s", err, out.String())
	}
	if err := Up(context.Background(), &out); err != nil {
		t.Fatalf("up again: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := Status(context.Background(), &out); err != nil {
		t.Errorf("status after up: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "ok    rules match the network") {
		t.Errorf("status does not compare the rules with the network:\n%s", out.String())
	}
	// The network drifts to another subnet (as vmnet may after a reboot).
	nets := filepath.Join(os.Getenv(fakecontainer.EnvState), "state.json")
	b, err := os.ReadFile(nets)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nets, bytes.ReplaceAll(b, []byte("192.168.218."), []byte("192.168.219.")), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := Status(context.Background(), &out); err == nil || !strings.Contains(out.String(), "but the network is now 192.168.219.0/24") {
		t.Errorf("status after the subnet drifted: %v\n%s", err, out.String())
	}
	// Someone disables pf behind our back.
	st := m.pf()
	st.Enabled, st.Refs = false, nil
	fakepfctl.Save(m.kernel, st)
	out.Reset()
	if err := Status(context.Background(), &out); err == nil {
		t.Errorf("status passed with pf disabled:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "FAIL") || !strings.Contains(out.String(), "fix:") {
		t.Errorf("status does not name the problem and its fix:\n%s", out.String())
	}
}

func TestE2EDevRefusesAContainerThatStopsAsSoonAsItStarts(t *testing.T) {
	m := newMac(t, "1.2.2")
	// A container as the old claude-dev.sh made it: its command is the
	// image's interactive shell, which ends at once without a terminal.
	for _, args := range [][]string{
		{"network", "create", "--subnet", "192.168.218.0/24", "claude"},
		{"create", "--name", "claude-alpine", "--network", "claude", "claudepine:latest"},
	} {
		if _, err := (proc.Exec{}).Run(context.Background(), proc.Cmd{Name: "container", Args: args}); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	err := Dev(context.Background(), &out, "")
	if err == nil || !strings.Contains(err.Error(), "stopped as soon as it started") || !strings.Contains(err.Error(), "`container rm claude-alpine`") {
		t.Fatalf("dev: %v, want an error that says the container stopped and what to do\n%s", err, out.String())
	}
	if index(m.calls(), "container exec") >= 0 {
		t.Errorf("a shell was attached to a stopped container:\n%s", strings.Join(m.calls(), "\n"))
	}
	m.assertCallsSafe()
	m.assertDown()
}
