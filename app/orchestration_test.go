package app

// These tests drive the orchestration (dev, up, reset) against in-memory
// stand-ins of the firewall and the runtime, which record every call in one
// shared log, to pin down order and bookkeeping. The end-to-end tests in
// e2e_test.go run the same paths against fake pfctl and container programs.

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/session"
)

type world struct {
	mu        sync.Mutex
	log       []string
	fwUp      bool
	state     engine.State
	image     bool
	fail      map[string]error // call name → error
	execHook  func()           // runs during Exec, while the shell is "open"
	network   policy.Network
	afterRun  policy.Network // the network as seen once a container runs
	otherRuns []string       // other containers running on the network
	gate      engine.State   // the gate container's; "" is absent
	gateSpec  engine.RunSpec // what the gate was created with
}

func (w *world) call(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = append(w.log, name)
	return w.fail[name]
}

func (w *world) calls() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.log)
}

type memFW struct{ w *world }

func (f memFW) Name() string                                 { return "mem" }
func (f memFW) Render(p policy.Policy) (string, error)       { return "rules\n", f.w.call("fw.Render") }
func (f memFW) Add(context.Context, []netip.Prefix) error    { return f.w.call("fw.Add") }
func (f memFW) Status(context.Context) []firewall.Check      { return nil }
func (f memFW) Replace(context.Context, *netipx.IPSet) error { return f.w.call("fw.Replace") }
func (f memFW) Up(_ context.Context, p policy.Policy, _ *netipx.IPSet) error {
	err := f.w.call("fw.Up " + p.Network.Interface)
	f.w.mu.Lock()
	f.w.fwUp = true // even a failed Up may leave something loaded
	f.w.mu.Unlock()
	return err
}
func (f memFW) Down(context.Context) error {
	if err := f.w.call("fw.Down"); err != nil {
		return err
	}
	f.w.mu.Lock()
	f.w.fwUp = false
	f.w.mu.Unlock()
	return nil
}
func (f memFW) IsUp(context.Context) (bool, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	return f.w.fwUp, nil
}

type memEngine struct{ w *world }

func (m memEngine) Name() string { return "mem" }
func (m memEngine) EnsureRunning(context.Context) (bool, error) {
	return false, m.w.call("EnsureRunning")
}
func (m memEngine) ImageExists(context.Context, string) (bool, error) {
	return m.w.image, m.w.call("ImageExists")
}
func (m memEngine) Build(context.Context, engine.BuildSpec) error { return m.w.call("Build") }
func (m memEngine) Network(context.Context, string) (policy.Network, error) {
	if err := m.w.call("Network"); err != nil {
		return policy.Network{}, err
	}
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	if (m.w.state == engine.Running || m.w.gate == engine.Running) && m.w.afterRun.IPv4.IsValid() {
		return m.w.afterRun, nil
	}
	return m.w.network, nil
}
func (m memEngine) CreateNetwork(context.Context, string, netip.Prefix) error {
	return m.w.call("CreateNetwork")
}

// gateName is the name dev gives the gate container with the default
// settings; the in-memory engine logs its calls as "gate.<call>".
const gateName = "claude-alpine-gate"

func (m memEngine) State(_ context.Context, name string) (engine.State, error) {
	if name == gateName {
		err := m.w.call("gate.State")
		m.w.mu.Lock()
		defer m.w.mu.Unlock()
		if m.w.gate == "" {
			return engine.Absent, err
		}
		return m.w.gate, err
	}
	err := m.w.call("State")
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	return m.w.state, err
}
func (m memEngine) RunningOn(context.Context, string) ([]string, error) {
	err := m.w.call("RunningOn")
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	out := slices.Clone(m.w.otherRuns)
	if m.w.state == engine.Running {
		out = append(out, "claude-alpine")
	}
	if m.w.gate == engine.Running {
		out = append(out, gateName)
	}
	return out, err
}

// set records call on the container name and moves it to state s.
func (m memEngine) set(name string, s engine.State, call string) error {
	if name == gateName {
		call = "gate." + call
	}
	if err := m.w.call(call); err != nil {
		return err
	}
	m.w.mu.Lock()
	defer m.w.mu.Unlock()
	if name != gateName {
		m.w.state = s
		return nil
	}
	if s == engine.Stopped && m.w.gateSpec.AutoRemove {
		s = "" // --rm: deleted when it stops
	}
	m.w.gate = s
	return nil
}
func (m memEngine) Create(_ context.Context, r engine.RunSpec) error {
	if r.Name == gateName {
		m.w.mu.Lock()
		m.w.gateSpec = r
		m.w.mu.Unlock()
	}
	return m.set(r.Name, engine.Running, "Create")
}
func (m memEngine) Start(_ context.Context, name string) error {
	return m.set(name, engine.Running, "Start")
}
func (m memEngine) Stop(_ context.Context, name string) error {
	return m.set(name, engine.Stopped, "Stop")
}
func (m memEngine) Remove(_ context.Context, name string) error {
	return m.set(name, "", "Remove")
}
func (m memEngine) Exec(context.Context, string, ...string) error {
	if err := m.w.call("Exec"); err != nil {
		return err
	}
	if m.w.execHook != nil {
		m.w.execHook()
	}
	return nil
}

// testNet is a network whose bridge interface is known before any container
// runs, as podman and docker report it, and as on macOS once some container
// runs on the network.
var testNet = policy.Network{
	Name: "claude", IPv4: netip.MustParsePrefix("192.168.218.0/24"), Gateway4: netip.MustParseAddr("192.168.218.1"),
	Interface: "podman1",
}

// vmnetNet is testNet as macOS reports it while no container runs on it:
// vmnet has not made its bridge yet. vmnetBridged is the same once one runs.
var vmnetNet, vmnetBridged = func() (policy.Network, policy.Network) {
	n, b := testNet, testNet
	n.Interface, b.Interface = "", "bridge101"
	return n, b
}()

func newTestEnv(t *testing.T, w *world, pid int) (*env, *bytes.Buffer) {
	t.Helper()
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"HOME": "/home/t", config.Prefix + "WORKSPACE": t.TempDir()}[k]
	}, "linux")
	if err != nil {
		t.Fatal(err)
	}
	return newTestEnvIn(t, w, pid, cfg, t.TempDir())
}

func newTestEnvIn(t *testing.T, w *world, pid int, cfg config.Config, stateDir string) (*env, *bytes.Buffer) {
	t.Helper()
	sessions, err := session.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	sessions.Alive = func(p int) bool { return alivePIDs.has(p) }
	var out bytes.Buffer
	e := &env{cfg: cfg, out: &out, fw: memFW{w}, eng: memEngine{w}, sessions: sessions, pid: pid,
		// The in-memory engine builds nothing; the real build spec needs the
		// Dockerfile of the checkout, which image's own tests cover.
		buildSpec: func(cfg config.Config) (engine.BuildSpec, []string, error) {
			return engine.BuildSpec{Context: ".", Tag: cfg.Image}, nil, nil
		}}
	e.allowlist = func(context.Context, time.Duration) (*netipx.IPSet, error) {
		if err := w.call("allowlist"); err != nil {
			return nil, err
		}
		var b netipx.IPSetBuilder
		b.AddPrefix(netip.MustParsePrefix("140.82.112.0/20"))
		return b.IPSet()
	}
	alivePIDs.add(pid)
	t.Cleanup(func() { alivePIDs.remove(pid) })
	return e, &out
}

// alivePIDs stands in for the process table: the sessions of these test
// "processes" count as alive.
var alivePIDs = pidSet{m: map[int]bool{}}

type pidSet struct {
	mu sync.Mutex
	m  map[int]bool
}

func (s *pidSet) add(p int)    { s.mu.Lock(); s.m[p] = true; s.mu.Unlock() }
func (s *pidSet) remove(p int) { s.mu.Lock(); delete(s.m, p); s.mu.Unlock() }
func (s *pidSet) has(p int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[p]
}

// index returns the position of the first call that starts with prefix, or -1.
func index(calls []string, prefix string) int {
	return slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}

func TestDevBringsTheFirewallUpBeforeTheContainerAndDownAfterIt(t *testing.T) {
	w := &world{network: testNet, state: engine.Absent, image: true}
	e, _ := newTestEnv(t, w, 1001)
	if err := e.dev(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := w.calls()
	up, create, exec, stop, down := index(calls, "fw.Up"), index(calls, "Create"), index(calls, "Exec"), index(calls, "Stop"), index(calls, "fw.Down")
	if up < 0 || create < 0 || exec < 0 || stop < 0 || down < 0 {
		t.Fatalf("missing calls: %q", calls)
	}
	if !(up < create && create < exec && exec < stop && stop < down) {
		t.Errorf("order wrong, want Up < Create < Exec < Stop < Down: %q", calls)
	}
	if w.fwUp || w.state != engine.Stopped {
		t.Errorf("after dev: firewall up %v, container %s", w.fwUp, w.state)
	}
}

func TestDevStartsAStoppedContainerAndAttachesToARunningOne(t *testing.T) {
	for _, st := range []engine.State{engine.Stopped, engine.Running} {
		w := &world{network: testNet, state: st, image: true}
		e, _ := newTestEnv(t, w, 1002)
		if err := e.dev(context.Background()); err != nil {
			t.Fatal(err)
		}
		calls := w.calls()
		if index(calls, "Create") >= 0 {
			t.Errorf("%s: created a container: %q", st, calls)
		}
		started := index(calls, "Start") >= 0
		if started != (st == engine.Stopped) {
			t.Errorf("%s: Start called = %v: %q", st, started, calls)
		}
	}
}

func TestDevBuildsAMissingImageFirst(t *testing.T) {
	w := &world{network: testNet, state: engine.Absent, image: false}
	e, out := newTestEnv(t, w, 1003)
	if err := e.dev(context.Background()); err != nil {
		t.Fatal(err)
	}
	calls := w.calls()
	if b, up := index(calls, "Build"), index(calls, "fw.Up"); b < 0 || b > up {
		t.Errorf("image not built before the firewall came up: %q", calls)
	}
	if !strings.Contains(out.String(), "missing: building it") {
		t.Errorf("output does not say the image is being built:\n%s", out)
	}
}

func TestTheFirstOfTwoSessionsToLeaveDoesNotLiftTheFirewall(t *testing.T) {
	w := &world{network: testNet, state: engine.Absent, image: true}
	stateDir := t.TempDir()
	a, _ := newTestEnv(t, w, 2001)
	b, bout := newTestEnvIn(t, w, 2002, a.cfg, stateDir)
	a2, _ := newTestEnvIn(t, w, 2001, a.cfg, stateDir)
	a = a2

	bInShell := make(chan struct{})
	aLeft := make(chan struct{})
	w.execHook = func() {
		// The first Exec is b's shell: hold it open until a has come and gone.
		select {
		case <-bInShell:
		default:
			close(bInShell)
			<-aLeft
		}
	}
	var bErr error
	done := make(chan struct{})
	go func() { bErr = b.dev(context.Background()); close(done) }()
	<-bInShell
	if err := a.dev(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !w.fwUp || w.state != engine.Running {
		t.Errorf("after the first session left: firewall up %v, container %s; want both up", w.fwUp, w.state)
	}
	close(aLeft)
	<-done
	if bErr != nil {
		t.Fatal(bErr)
	}
	if w.fwUp || w.state != engine.Stopped {
		t.Errorf("after the last session left: firewall up %v, container %s; want both down", w.fwUp, w.state)
	}
	if n := strings.Count(strings.Join(w.calls(), "\n"), "fw.Down"); n != 1 {
		t.Errorf("fw.Down called %d times, want once: %q\n%s", n, w.calls(), bout)
	}
}

func TestAKilledSessionIsCleanedUpByTheNextRun(t *testing.T) {
	w := &world{network: testNet, state: engine.Absent, image: true}
	stateDir := t.TempDir()
	dead, _ := newTestEnv(t, w, 3001)
	// The dead session: it joined, brought everything up, then was killed.
	if err := dead.sessions.Join(3001); err != nil {
		t.Fatal(err)
	}
	alivePIDs.remove(3001)
	next, _ := newTestEnvIn(t, w, 3002, dead.cfg, stateDir)
	dead2, _ := newTestEnvIn(t, w, 3001, dead.cfg, stateDir)
	dead2.sessions.Join(3001)
	alivePIDs.remove(3001)
	w.fwUp, w.state = true, engine.Running

	if err := next.dev(context.Background()); err != nil {
		t.Fatal(err)
	}
	if w.fwUp || w.state != engine.Stopped {
		t.Errorf("after the next run: firewall up %v, container %s; the dead session must not count", w.fwUp, w.state)
	}
}

func TestAFailureAtAnyStepLeavesNothingRunningUnfirewalled(t *testing.T) {
	steps := []string{"EnsureRunning", "ImageExists", "Network", "allowlist", "fw.Up podman1", "State", "Create", "Exec"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			w := &world{network: testNet, state: engine.Absent, image: true, fail: map[string]error{step: errors.New("injected")}}
			e, out := newTestEnv(t, w, 4001)
			err := e.dev(context.Background())
			if err == nil {
				t.Fatalf("dev succeeded with %s failing", step)
			}
			if w.state == engine.Running {
				t.Errorf("container left running: %q\n%s", w.calls(), out)
			}
			if w.fwUp {
				t.Errorf("firewall left up with nothing attached: %q\n%s", w.calls(), out)
			}
			// The container must never be started before the firewall is up.
			calls := w.calls()
			if c := index(calls, "Create"); c >= 0 && (index(calls, "fw.Up") < 0 || index(calls, "fw.Up") > c) {
				t.Errorf("container created before the firewall: %q", calls)
			}
		})
	}
}

func TestNotKnowingWhatRunsKeepsTheFirewallUp(t *testing.T) {
	w := &world{network: testNet, state: engine.Absent, image: true, fail: map[string]error{"RunningOn": errors.New("injected")}}
	e, _ := newTestEnv(t, w, 4201)
	err := e.dev(context.Background())
	if err == nil || !strings.Contains(err.Error(), "firewall stays up") {
		t.Fatalf("err = %v, want one saying the firewall stays up", err)
	}
	if !w.fwUp {
		t.Error("the firewall came down although nobody could tell whether the container runs")
	}
}

func TestAStopThatFailsKeepsTheFirewallUp(t *testing.T) {
	w := &world{network: testNet, state: engine.Absent, image: true, fail: map[string]error{"Stop": errors.New("injected")}}
	e, _ := newTestEnv(t, w, 4101)
	err := e.dev(context.Background())
	if err == nil || !strings.Contains(err.Error(), "firewall stays up") {
		t.Fatalf("err = %v, want one saying the firewall stays up", err)
	}
	if !w.fwUp {
		t.Error("the firewall came down while the container may still run")
	}
}

func TestDevLoadsTheBridgeRulesBeforeTheContainerCanSend(t *testing.T) {
	// On macOS the bridge appears with the first container on the network;
	// until pf knows it, made-up source addresses pass. The agent's container
	// must start only after the rules name the bridge.
	for _, st := range []engine.State{engine.Absent, engine.Stopped} {
		t.Run(string(st), func(t *testing.T) {
			w := &world{network: vmnetNet, afterRun: vmnetBridged, state: st, image: true}
			e, out := newTestEnv(t, w, 5001)
			if err := e.dev(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			calls := w.calls()
			start := index(calls, "Create")
			if st == engine.Stopped {
				start = index(calls, "Start")
			}
			gate, bridged, gateStop, exec := index(calls, "gate.Create"), index(calls, "fw.Up bridge101"), index(calls, "gate.Stop"), index(calls, "Exec")
			if gate < 0 || bridged < 0 || start < 0 || gateStop < 0 || exec < 0 {
				t.Fatalf("missing calls: %q", calls)
			}
			if !(index(calls, "fw.Up ") < gate && gate < bridged && bridged < start && start < gateStop && gateStop < exec) {
				t.Errorf("want firewall up < gate created < rules for the bridge < container started < gate stopped < shell: %q", calls)
			}
			want := engine.RunSpec{Name: gateName, Image: e.cfg.Image, Network: e.cfg.Network, AutoRemove: true}
			if d := cmp.Diff(want, w.gateSpec); d != "" {
				t.Errorf("gate created otherwise than fresh, without volumes or environment, deleted when stopped (-want +got):\n%s", d)
			}
			if w.gate != "" || w.fwUp || w.state != engine.Stopped {
				t.Errorf("after dev: gate %q, firewall up %v, container %s", w.gate, w.fwUp, w.state)
			}
		})
	}
}

func TestDevStartsNoGateWhenTheBridgeIsKnownOrTheContainerRuns(t *testing.T) {
	for name, w := range map[string]*world{
		"interface known up front": {network: testNet, state: engine.Stopped, image: true},
		"container running":        {network: vmnetBridged, state: engine.Running, image: true},
	} {
		t.Run(name, func(t *testing.T) {
			e, out := newTestEnv(t, w, 5101)
			if err := e.dev(context.Background()); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, c := range w.calls() {
				if strings.HasPrefix(c, "gate.") {
					t.Errorf("the gate was touched: %q", w.calls())
					break
				}
			}
		})
	}
}

func TestDevFailsClosedWhenTheBridgeNeverAppears(t *testing.T) {
	w := &world{network: vmnetNet, state: engine.Stopped, image: true} // no afterRun: no bridge, ever
	e, out := newTestEnv(t, w, 5201)
	err := e.dev(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no bridge interface") || !strings.Contains(err.Error(), "container system stop") {
		t.Fatalf("err = %v, want one that says the bridge is missing and what to do\n%s", err, out)
	}
	calls := w.calls()
	if index(calls, "Start") >= 0 || index(calls, "Create") >= 0 || index(calls, "Exec") >= 0 {
		t.Errorf("the container was started without the bridge rules: %q", calls)
	}
	if w.gate != "" || w.fwUp {
		t.Errorf("after the failure: gate %q, firewall up %v; want both gone: %q", w.gate, w.fwUp, calls)
	}
}

func TestAGateThatWillNotStopKeepsTheFirewallUpUntilReset(t *testing.T) {
	w := &world{network: vmnetNet, afterRun: vmnetBridged, state: engine.Absent, image: true,
		fail: map[string]error{"gate.Stop": errors.New("injected")}}
	e, out := newTestEnv(t, w, 5301)
	err := e.dev(context.Background())
	if err == nil || !strings.Contains(err.Error(), gateName) || !strings.Contains(err.Error(), "mage reset") {
		t.Fatalf("err = %v, want one naming the gate and `mage reset`\n%s", err, out)
	}
	if index(w.calls(), "Exec") >= 0 {
		t.Errorf("the shell started although the gate could not be stopped: %q", w.calls())
	}
	if w.gate != engine.Running || !w.fwUp {
		t.Fatalf("gate %q, firewall up %v: want the firewall up while the gate runs", w.gate, w.fwUp)
	}
	delete(w.fail, "gate.Stop")
	if err := e.reset(context.Background(), false); err != nil {
		t.Fatalf("reset without -stop: %v (the gate holds nothing of the user's)", err)
	}
	if w.gate != "" || w.fwUp {
		t.Errorf("after reset: gate %q, firewall up %v", w.gate, w.fwUp)
	}
}

func TestAGateLeftBehindIsReplacedByAFreshOne(t *testing.T) {
	w := &world{network: vmnetNet, afterRun: vmnetBridged, state: engine.Stopped, image: true, gate: engine.Stopped}
	e, out := newTestEnv(t, w, 5401)
	if err := e.dev(context.Background()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	calls := w.calls()
	if r, c := index(calls, "gate.Remove"), index(calls, "gate.Create"); r < 0 || c < r {
		t.Errorf("the old gate was not removed before a new one was created: %q", calls)
	}
}

func TestResetRefusesWhileAContainerRunsUnlessToldToStopIt(t *testing.T) {
	w := &world{network: testNet, state: engine.Running, fwUp: true}
	e, _ := newTestEnv(t, w, 6001)
	err := e.reset(context.Background(), false)
	if err == nil || !strings.Contains(err.Error(), "mage reset -stop") {
		t.Fatalf("err = %v, want a refusal naming `mage reset -stop`", err)
	}
	if !w.fwUp {
		t.Fatal("reset lifted the firewall under a running container")
	}
	if err := e.reset(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if w.fwUp || w.state != engine.Stopped {
		t.Errorf("after reset -stop: firewall up %v, container %s", w.fwUp, w.state)
	}
	calls := w.calls()
	if index(calls, "Stop") > index(calls, "fw.Down") {
		t.Errorf("firewall lifted before the container stopped: %q", calls)
	}
}

func TestUpHoldsTheFirewallAcrossDevSessions(t *testing.T) {
	w := &world{network: testNet, state: engine.Absent, image: true}
	e, out := newTestEnv(t, w, 7001)
	if err := e.up(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.dev(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !w.fwUp {
		t.Errorf("dev lifted a firewall that `mage up` holds:\n%s", out)
	}
	if err := e.reset(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if w.fwUp {
		t.Error("reset did not lift the held firewall")
	}
}

func TestAFailedUpLeavesNothingLoaded(t *testing.T) {
	w := &world{network: testNet, fail: map[string]error{"fw.Up podman1": errors.New("injected")}}
	e, _ := newTestEnv(t, w, 7101)
	if err := e.up(context.Background()); err == nil {
		t.Fatal("up succeeded")
	}
	if w.fwUp || e.sessions.Held() {
		t.Errorf("after a failed up: firewall up %v, held %v", w.fwUp, e.sessions.Held())
	}
}

func TestAFailedUpNeverLiftsTheFirewallUnderARunningContainer(t *testing.T) {
	w := &world{network: testNet, otherRuns: []string{"by-hand"}, fail: map[string]error{"fw.Up podman1": errors.New("injected")}}
	e, _ := newTestEnv(t, w, 7102)
	err := e.up(context.Background())
	if err == nil || !strings.Contains(err.Error(), "by-hand") || !strings.Contains(err.Error(), "mage reset") {
		t.Fatalf("up: %v, want the injected error and why the firewall stays", err)
	}
	if !w.fwUp || slices.Contains(w.calls(), "fw.Down") {
		t.Errorf("a failed up lifted the firewall while %q runs on the network: %q", w.otherRuns, w.calls())
	}
}

func TestTheWorkspaceMayNotContainClaudecontainerItself(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, ws := range []string{wd, filepath.Dir(wd), filepath.Dir(filepath.Dir(wd))} {
		if err := checkWorkspace(ws); err == nil || !strings.Contains(err.Error(), "contains claudecontainer itself") {
			t.Errorf("workspace %s: %v, want a refusal", ws, err)
		}
	}
	beside := filepath.Join(t.TempDir(), "new", "workspace")
	if err := checkWorkspace(beside); err != nil {
		t.Errorf("workspace %s: %v", beside, err)
	}
	if fi, err := os.Stat(beside); err != nil || !fi.IsDir() {
		t.Errorf("the missing workspace was not created: %v", err)
	}
}

func TestTheDNSSettingReplacesTheGatewayInThePolicyAndTheContainer(t *testing.T) {
	w := &world{network: testNet}
	e, _ := newTestEnv(t, w, 8001)
	e.cfg.DNS = []netip.Addr{netip.MustParseAddr("9.9.9.9")}
	p, err := e.policyFor(testNet)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.DNS) != 1 || p.DNS[0] != e.cfg.DNS[0] {
		t.Errorf("policy DNS = %v", p.DNS)
	}
	if spec := e.runSpec(p); len(spec.DNS) != 1 || spec.DNS[0] != e.cfg.DNS[0] {
		t.Errorf("container DNS = %v", spec.DNS)
	}
}
