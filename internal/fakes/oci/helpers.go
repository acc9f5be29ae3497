package oci

import (
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/internal/fakes/execsession"
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

// Sessions holds exec sessions open until the test ends them.
type Sessions = execsession.Sessions

// HoldSessions sets ExecDirEnv for the test: from then on every exec waits for
// End.
func HoldSessions(t testing.TB) *Sessions {
	t.Helper()
	return execsession.Hold(t, ExecDirEnv, "oci")
}
