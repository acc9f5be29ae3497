// Package execsession is the protocol by which the fakes of container
// runtimes (Apple's container, podman, docker) hold an interactive `exec`
// open until a test ends it, so that a test can keep several shells attached
// at once. Both sides live here: Serve for the fakes, Sessions for the tests.
//
// In the sessions directory, each exec claims the next number N (1, 2, … in
// order of arrival), creates session-N.open holding its argv and pid, waits
// until session-N.exit exists, exits with the number written in it (empty:
// 0) and creates session-N.closed holding that status. A session whose
// container stops meanwhile ends with 137, as a shell killed with its
// container does.
package execsession

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
)

func path(dir string, n int, what string) string {
	return filepath.Join(dir, fmt.Sprintf("session-%d.%s", n, what))
}

// Serve runs one session in dir for argv and returns its exit status.
// running reports whether the session's container still runs; it is asked
// every 50 ms.
func Serve(dir string, argv []string, running func() bool) (int, error) {
	// Claim the next number with an exclusive create, then publish the
	// session's files whole, so a test never reads one half written.
	var n int
	for n = 1; ; n++ {
		f, err := os.OpenFile(path(dir, n, "claim"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			break
		}
		if !os.IsExist(err) {
			return 0, err
		}
	}
	publish := func(what, text string) {
		atomicfile.Write(path(dir, n, what), []byte(text), 0o644)
	}
	publish("open", fmt.Sprintf("%s\n%d\n", strings.Join(argv, " "), os.Getpid()))
	closed := func(code int) (int, error) {
		publish("closed", strconv.Itoa(code)+"\n")
		return code, nil
	}
	for tick := 0; ; tick++ {
		if b, err := os.ReadFile(path(dir, n, "exit")); err == nil {
			code, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				code = 0
			}
			return closed(code)
		}
		if tick%5 == 4 && !running() {
			return closed(137)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Sessions is the test's side: it holds exec sessions open until the test
// ends them.
type Sessions struct {
	Dir string
	who string // the fake's name, for messages
}

// Hold points the environment variable env (the fake's sessions-directory
// knob) at a fresh directory for the test: from then on every exec waits
// for End. who names the fake in failure messages.
func Hold(t testing.TB, env, who string) *Sessions {
	t.Helper()
	s := &Sessions{Dir: t.TempDir(), who: who}
	t.Setenv(env, s.Dir)
	return s
}

// wait polls for a file; the bound only keeps a broken test from hanging.
func (s *Sessions) wait(t testing.TB, p string) {
	t.Helper()
	for i := 0; i < 3000; i++ {
		if _, err := os.Stat(p); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fake %s: %s never appeared", s.who, p)
}

// WaitOpen waits until session n (1 for the first exec, 2 for the next, …)
// has started, and returns its argv as one line.
func (s *Sessions) WaitOpen(t testing.TB, n int) string {
	t.Helper()
	s.wait(t, path(s.Dir, n, "open"))
	b, err := os.ReadFile(path(s.Dir, n, "open"))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}

// End lets session n exit with code.
func (s *Sessions) End(t testing.TB, n, code int) {
	t.Helper()
	if err := atomicfile.Write(path(s.Dir, n, "exit"), []byte(strconv.Itoa(code)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// WaitClosed waits until session n has ended and returns its exit status.
func (s *Sessions) WaitClosed(t testing.TB, n int) int {
	t.Helper()
	s.wait(t, path(s.Dir, n, "closed"))
	b, err := os.ReadFile(path(s.Dir, n, "closed"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("fake %s: session %d closed with %q", s.who, n, b)
	}
	return code
}

// Open counts the sessions that have started and not ended.
func (s *Sessions) Open() int {
	n := 0
	for i := 1; ; i++ {
		if _, err := os.Stat(path(s.Dir, i, "open")); err != nil {
			return n
		}
		if _, err := os.Stat(path(s.Dir, i, "closed")); err != nil {
			n++
		}
	}
}
