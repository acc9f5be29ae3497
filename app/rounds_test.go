package app

// How many `container` calls `mage dev` makes one after another before the
// shell opens, counted against the fake container CLI (release 1.2.2) on the
// macOS path.
//
// How calls are counted: every program runs through depthRunner, which
// gives each call a depth, the length of the longest chain of `container`
// calls that ends with it, where each call in the chain began after the one
// before it had returned. Calls made at the same time do not chain, so a
// round of concurrent calls counts once; pfctl and ifconfig calls carry the
// depth of what came before them but add nothing. The count before the
// shell is the depth of `container exec` less one.
//
// Every `container` call is held 100 ms before it returns, so that calls
// launched together overlap even on a loaded machine. A call begun after
// another returned always chains, so a count can only come out too high,
// never too low.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fakecontainer "github.com/VerilyPete/claudecontainer/internal/fakes/container"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// depthRunner runs programs with proc.Exec and records each call's depth.
type depthRunner struct {
	hold time.Duration

	mu    sync.Mutex
	done  int // the greatest depth among the calls that have returned
	calls []depthCall
}

type depthCall struct {
	line  string
	depth int
}

func (r *depthRunner) begin(c proc.Cmd) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.done
	if c.Name == "container" {
		d++
	}
	r.calls = append(r.calls, depthCall{strings.Join(append([]string{c.Name}, c.Args...), " "), d})
	return d
}

func (r *depthRunner) end(d int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = max(r.done, d)
}

func (r *depthRunner) Run(ctx context.Context, c proc.Cmd) (proc.Result, error) {
	d := r.begin(c)
	defer r.end(d)
	res, err := proc.Exec{}.Run(ctx, c)
	if c.Name == "container" {
		time.Sleep(r.hold)
	}
	return res, err
}

func (r *depthRunner) Interactive(ctx context.Context, c proc.Cmd) error {
	d := r.begin(c)
	defer r.end(d)
	return proc.Exec{}.Interactive(ctx, c)
}

// beforeShell returns how many `container` calls ran one after another
// before `container exec`, and the calls before it, one line per depth.
func (r *depthRunner) beforeShell() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byDepth := map[int][]string{}
	for _, c := range r.calls {
		if strings.HasPrefix(c.line, "container exec") {
			var b strings.Builder
			for d := 1; d < c.depth; d++ {
				fmt.Fprintf(&b, "  %d: %s\n", d, strings.Join(byDepth[d], " | "))
			}
			return c.depth - 1, b.String()
		}
		if strings.HasPrefix(c.line, "container ") {
			byDepth[c.depth] = append(byDepth[c.depth], strings.TrimPrefix(c.line, "container "))
		}
	}
	return -1, "no `container exec`"
}

// countedDev runs `mage dev` in this process through a depthRunner until its
// shell, exec session n, opens; then it runs during, ends the shell, and
// returns the runner and what dev returned.
func countedDev(t *testing.T, s *fakecontainer.Sessions, n int, during func()) (*depthRunner, error) {
	t.Helper()
	var out bytes.Buffer
	e, err := newEnv(&out)
	if err != nil {
		t.Fatal(err)
	}
	r := &depthRunner{hold: 100 * time.Millisecond}
	e.runner = r
	if err := e.wire(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.dev(context.Background()) }()
	open := filepath.Join(s.Dir, fmt.Sprintf("session-%d.open", n))
	for {
		if _, err := os.Stat(open); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("dev ended (%v) before its shell opened:\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if during != nil {
		during()
	}
	s.End(t, n, 0)
	if err = <-done; err != nil {
		t.Logf("dev's output:\n%s", out.String())
	}
	return r, err
}

func TestE2EDevMakesFewContainerCallsOneAfterAnother(t *testing.T) {
	m := newMac(t, "1.2.2")
	s := fakecontainer.HoldSessions(t)
	container := func(args ...string) {
		t.Helper()
		if _, err := (proc.Exec{}).Run(context.Background(), proc.Cmd{Name: "container", Args: args}); err != nil {
			t.Fatal(err)
		}
	}
	report := func(what string, r *depthRunner, err error, limit int) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: dev: %v", what, err)
		}
		n, calls := r.beforeShell()
		t.Logf("%s: %d container calls one after another before the shell:\n%s", what, n, calls)
		if n < 0 || limit > 0 && n > limit {
			t.Errorf("%s: %d container calls one after another before the shell, want at most %d:\n%s", what, n, limit, calls)
		}
	}

	// Nothing exists yet: no record of the release, no network, no container.
	r, err := countedDev(t, s, 1, nil)
	report("first run", r, err, 0)
	// The container is stopped and nothing runs on the network, so vmnet has
	// no bridge for it: a gate container brings the bridge up first.
	r, err = countedDev(t, s, 2, nil)
	report("stopped, no bridge", r, err, 0)
	// Another container runs on the network, so its bridge is up; ours is
	// stopped. It is stopped while our shell runs, so that the firewall comes
	// down at the end.
	container("run", "-d", "--name", "other", "--network", "claude", "claudepine:latest", "sleep", "999")
	r, err = countedDev(t, s, 3, func() { container("stop", "other") })
	report("stopped, bridge up", r, err, 4)
	// The container runs, with the shell of another `mage dev` attached.
	first := startSession(t, s, 4)
	r, err = countedDev(t, s, 5, nil)
	report("running", r, err, 2)
	s.End(t, 4, 0)
	if err := first.wait(); err != nil {
		t.Fatalf("the other session: %v\n%s", err, first.out)
	}
	m.assertCallsSafe()
	m.assertDown()
}
