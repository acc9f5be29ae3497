package atomicfile_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// failEnv names a program the fake sudo refuses to run (exit status 1), to
// make one step of a privileged install fail.
const failEnv = "FAKESUDO_FAIL"

func TestMain(m *testing.M) {
	// Under -race a Go program that exits with status 0 sleeps a second
	// first; the fakes are Go programs, and need not.
	os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	fakebin.Main(m, map[string]func() int{
		// sudo as `sudo -- PROGRAM ARGS...` (the form proc.Exec uses, which
		// sudo 1.9 accepts): records the call, then runs the program.
		"sudo": func() int {
			fakebin.Record()
			args := os.Args[1:]
			if len(args) == 0 || args[0] != "--" {
				os.Stderr.WriteString("fake sudo: want -- before the program\n")
				return 1
			}
			args = args[1:]
			if args[0] == os.Getenv(failEnv) {
				os.Stderr.WriteString("sudo: a password is required\n")
				return 1
			}
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					return ee.ExitCode()
				}
				return 1
			}
			return 0
		},
	})
}

// unprivileged makes Install believe it may not write anywhere and makes
// proc.Exec use sudo, as it would for a user other than root.
func unprivileged(t *testing.T) proc.Runner {
	atomicfile.SetCanWrite(t, func(string) bool { return false })
	return proc.Exec{Euid: func() int { return 501 }}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestInstallWritesDirectlyAndCreatesTheDirectoryWhereTheProcessMayWrite(t *testing.T) {
	calls := fakebin.NewLog(t)
	atomicfile.SetCanWrite(t, func(string) bool { return true })
	dir := filepath.Join(t.TempDir(), "etc", "claudecontainer")
	path := filepath.Join(dir, "allowed")

	if err := atomicfile.Install(context.Background(), proc.Exec{}, path, []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new\n" {
		t.Errorf("contents = %q", b)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
		t.Errorf("directory mode = %v, want 0755", fi.Mode().Perm())
	}
	if got := calls(); got != nil {
		t.Errorf("ran %q, want no program", got)
	}
}

func TestInstallGoesThroughSudoWhereTheProcessMayNotWrite(t *testing.T) {
	for _, perm := range []os.FileMode{0o644, 0o600} {
		t.Run(perm.String(), func(t *testing.T) {
			calls := fakebin.NewLog(t)
			run := unprivileged(t)
			tmpdir := t.TempDir()
			t.Setenv("TMPDIR", tmpdir)
			dir := filepath.Join(t.TempDir(), "pf.anchors")
			path := filepath.Join(dir, "allowed")

			if err := atomicfile.Install(context.Background(), run, path, []byte("new\n"), perm); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(path); string(b) != "new\n" {
				t.Errorf("contents = %q", b)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != perm {
				t.Errorf("mode = %v, want %v", fi.Mode().Perm(), perm)
			}
			if diff := cmp.Diff([]string{"allowed"}, entries(t, dir)); diff != "" {
				t.Errorf("directory (-want +got):\n%s", diff)
			}
			if got := entries(t, tmpdir); got != nil {
				t.Errorf("files left in TMPDIR: %q", got)
			}
			got := calls()
			if len(got) != 6 {
				t.Fatalf("calls = %q, want 6", got)
			}
			staged := stagedName(t, got[1])
			if !strings.HasPrefix(staged, dir+"/.allowed.tmp-") {
				t.Fatalf("staged file %s: want a hidden name next to the target", staged)
			}
			// The mode is set while the file is empty, before the data is
			// written, and the data is flushed before the rename.
			want := []string{
				"sudo -- mkdir -p " + dir,
				"sudo -- touch " + staged,
				"sudo -- chmod " + fmt.Sprintf("%04o", perm) + " " + staged,
				"sudo -- tee " + staged,
				"sudo -- sync",
				"sudo -- mv -f " + staged + " " + path,
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAFailedPrivilegedInstallLeavesTheOldFileAndNoTemporaryFiles(t *testing.T) {
	for _, step := range []string{"mkdir", "touch", "chmod", "tee", "sync", "mv"} {
		t.Run(step, func(t *testing.T) {
			calls := fakebin.NewLog(t)
			run := unprivileged(t)
			t.Setenv(failEnv, step)
			dir := t.TempDir()
			path := filepath.Join(dir, "allowed")
			old := []byte("# old\n192.30.252.0/22\n")
			if err := os.WriteFile(path, old, 0o644); err != nil {
				t.Fatal(err)
			}

			err := atomicfile.Install(context.Background(), run, path, []byte("new\n"), 0o644)
			if err == nil || !strings.Contains(err.Error(), "sudo: a password is required") {
				t.Fatalf("err = %v, want the failing step's message", err)
			}
			if b, _ := os.ReadFile(path); string(b) != string(old) {
				t.Errorf("the file changed to %q", b)
			}
			if diff := cmp.Diff([]string{"allowed"}, entries(t, dir)); diff != "" {
				t.Errorf("directory (-want +got):\n%s", diff)
			}
			got := calls()
			last := strings.Fields(got[len(got)-1])
			if step == "mkdir" {
				if len(got) != 1 {
					t.Errorf("calls = %q, want only mkdir", got)
				}
				return
			}
			if len(last) != 5 || last[2] != "rm" || last[3] != "-f" || !strings.HasPrefix(last[4], dir+"/.allowed.tmp-") {
				t.Errorf("last call = %q, want sudo -- rm -f of the staged file", got[len(got)-1])
			}
		})
	}
}

func TestInstallRefusesToReplaceADirectory(t *testing.T) {
	for name, privileged := range map[string]bool{"directly": false, "through sudo": true} {
		t.Run(name, func(t *testing.T) {
			calls := fakebin.NewLog(t)
			var run proc.Runner = proc.Exec{}
			if privileged {
				run = unprivileged(t)
			} else {
				atomicfile.SetCanWrite(t, func(string) bool { return true })
			}
			path := filepath.Join(t.TempDir(), "allowed")
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
			err := atomicfile.Install(context.Background(), run, path, []byte("new\n"), 0o644)
			if err == nil || err.Error() != "writing "+path+": it is a directory; remove it or choose another file name" {
				t.Errorf("err = %v, want one saying the path is a directory", err)
			}
			if got := entries(t, path); got != nil {
				t.Errorf("the directory now holds %q", got)
			}
			if got := calls(); got != nil {
				t.Errorf("ran %q, want no program", got)
			}
		})
	}
}

// stagedName returns the file of a logged `sudo -- touch FILE`.
func stagedName(t *testing.T, call string) string {
	t.Helper()
	f := strings.Fields(call)
	if len(f) != 4 || f[2] != "touch" {
		t.Fatalf("call %q is not sudo -- touch FILE", call)
	}
	return f[3]
}
