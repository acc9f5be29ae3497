package container

import (
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/internal/fakes/execsession"
)

// Use points the fakes at a fresh state directory for the test and sets the
// given knobs, each "NAME=value" (for example EnvVersion+"=0.7.1"), with
// t.Setenv. It returns the state directory. The test's TestMain must have
// registered the fakes with fakebin.Main:
//
//	fakebin.Main(m, map[string]func() int{"container": container.Main, "ifconfig": container.Ifconfig})
func Use(t testing.TB, knobs ...string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv(EnvState, dir)
	for _, kv := range knobs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("container.Use: knob %q is not NAME=value", kv)
		}
		t.Setenv(k, v)
	}
	return dir
}

// Sessions holds exec sessions open until the test ends them.
type Sessions = execsession.Sessions

// HoldSessions sets EnvExecDir for the test: from then on every exec waits for
// End.
func HoldSessions(t testing.TB) *Sessions {
	t.Helper()
	return execsession.Hold(t, EnvExecDir, "container")
}
