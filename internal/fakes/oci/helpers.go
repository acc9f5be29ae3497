package oci

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

// Use points the fakes at a fresh state directory holding w, clears every
// knob, then sets the given ones, each "NAME=value" (for example
// FailEnv+"=run"), with t.Setenv. It returns the state directory. The
// test's TestMain must have registered the fakes with fakebin.Main:
//
//	fakebin.Main(m, map[string]func() int{"podman": oci.PodmanMain, "docker": oci.DockerMain})
func Use(t testing.TB, w World, knobs ...string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv(StateEnv, dir)
	for _, k := range []string{FailEnv, ExecCodeEnv, ExecDirEnv} {
		t.Setenv(k, "")
	}
	for _, kv := range knobs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("oci.Use: knob %q is not NAME=value", kv)
		}
		t.Setenv(k, v)
	}
	if err := Save(dir, w); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Sessions holds `exec` sessions open until the test ends them, so that a
// test can keep several shells attached at once.
type Sessions struct {
	Dir string
}

// HoldSessions sets ExecDirEnv for the test: from then on every exec waits
// for End.
func HoldSessions(t testing.TB) *Sessions {
	t.Helper()
	s := &Sessions{Dir: t.TempDir()}
	t.Setenv(ExecDirEnv, s.Dir)
	return s
}

func (s *Sessions) path(n int, what string) string {
	return filepath.Join(s.Dir, fmt.Sprintf("session-%d.%s", n, what))
}

// wait polls for a file; the bound only keeps a broken test from hanging.
func (s *Sessions) wait(t testing.TB, path string) {
	t.Helper()
	for i := 0; i < 3000; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fake oci: %s never appeared", path)
}

// WaitOpen waits until session n (1 for the first exec, 2 for the next, …)
// has started, and returns its command as one line.
func (s *Sessions) WaitOpen(t testing.TB, n int) string {
	t.Helper()
	s.wait(t, s.path(n, "open"))
	b, err := os.ReadFile(s.path(n, "open"))
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}

// End lets session n exit with code.
func (s *Sessions) End(t testing.TB, n, code int) {
	t.Helper()
	if err := atomicfile.Write(s.path(n, "exit"), []byte(strconv.Itoa(code)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// WaitClosed waits until session n has ended and returns its exit status.
func (s *Sessions) WaitClosed(t testing.TB, n int) int {
	t.Helper()
	s.wait(t, s.path(n, "closed"))
	b, err := os.ReadFile(s.path(n, "closed"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("fake oci: session %d closed with %q", n, b)
	}
	return code
}

// Open counts the sessions that have started and not ended.
func (s *Sessions) Open() int {
	n := 0
	for i := 1; ; i++ {
		if _, err := os.Stat(s.path(i, "open")); err != nil {
			return n
		}
		if _, err := os.Stat(s.path(i, "closed")); err != nil {
			n++
		}
	}
}
