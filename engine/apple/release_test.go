package apple

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// count returns how many of calls are exactly call.
func count(calls []string, call string) int {
	n := 0
	for _, c := range calls {
		if c == call {
			n++
		}
	}
	return n
}

func TestTheReleaseIsAskedOnceAndThenTakenFromTheRecord(t *testing.T) {
	record := filepath.Join(t.TempDir(), "state", "container-version.json")
	e, calls := mac(t, "1.2.2")
	e.VersionFile = record
	if v, err := e.release(context.Background()); err != nil || v.Raw != "1.2.2" {
		t.Fatalf("release = %v, %v", v, err)
	}
	if n := count(calls(), "container --version"); n != 1 {
		t.Fatalf("asked %d times, want once", n)
	}
	// A later run, as long as PATH finds the same program file.
	later := New(quiet{})
	later.VersionFile = record
	if v, err := later.release(context.Background()); err != nil || v.Raw != "1.2.2" {
		t.Fatalf("release from the record = %v, %v", v, err)
	}
	if n := count(calls(), "container --version"); n != 1 {
		t.Errorf("asked %d times with a record for the same program, want once in all", n)
	}
}

func TestARecordOfAnotherProgramFileIsNotUsed(t *testing.T) {
	// fakebin put the fake on PATH for the whole test binary.
	for name, record := range map[string]string{
		"another file":   `{"program":"/opt/old/container size=1 mtime=2","output":"container CLI version 1.4.1 (build: release, commit: 3c4c59c)\n"}`,
		"not JSON":       `container CLI version 1.4.1`,
		"no version":     `{"program":"` + programID(Program) + `","output":"hello"}`,
		"an old release": `{"program":"` + programID(Program) + `","output":"container CLI version 0.9.0 (build: release, commit: 3c4c59c)\n"}`,
	} {
		t.Run(name, func(t *testing.T) {
			e, calls := mac(t, "1.2.2")
			e.VersionFile = filepath.Join(t.TempDir(), "container-version.json")
			if err := os.WriteFile(e.VersionFile, []byte(record), 0o600); err != nil {
				t.Fatal(err)
			}
			if v, err := e.release(context.Background()); err != nil || v.Raw != "1.2.2" {
				t.Fatalf("release = %v, %v; want 1.2.2, asked of the program", v, err)
			}
			if n := count(calls(), "container --version"); n != 1 {
				t.Errorf("asked %d times, want once", n)
			}
			b, _ := os.ReadFile(e.VersionFile)
			if !strings.Contains(string(b), "version 1.2.2") {
				t.Errorf("the record was not replaced by the answer: %s", b)
			}
		})
	}
}

func TestAnUnsupportedReleaseIsAskedOnceAndNeverRecorded(t *testing.T) {
	e, calls := mac(t, "0.9.0")
	e.VersionFile = filepath.Join(t.TempDir(), "container-version.json")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, err := e.release(context.Background()); err == nil || !strings.Contains(err.Error(), "needs 1.0 or later") {
				t.Errorf("release = %v, want the refusal", err)
			}
		})
	}
	wg.Wait()
	if n := count(calls(), "container --version"); n != 1 {
		t.Errorf("asked %d times by four callers, want once", n)
	}
	if _, err := os.Stat(e.VersionFile); !os.IsNotExist(err) {
		t.Errorf("the refused release was recorded: %v", err)
	}
}

func TestTheProgramsIdentityChangesWhenItsFileDoes(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	prog := filepath.Join(dir, Program)
	write := func(text string) {
		t.Helper()
		tmp := prog + ".new"
		if err := os.WriteFile(tmp, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, prog); err != nil { // a new file, as an installer puts it
			t.Fatal(err)
		}
	}
	if id := programID(Program); id != "" {
		t.Fatalf("programID of a missing program = %q, want empty", id)
	}
	write("#!/bin/sh\necho 1\n")
	first := programID(Program)
	if first == "" || !strings.Contains(first, prog) {
		t.Fatalf("programID = %q", first)
	}
	if again := programID(Program); again != first {
		t.Errorf("programID changed with the file unchanged: %q, then %q", first, again)
	}
	fi, err := os.Stat(prog)
	if err != nil {
		t.Fatal(err)
	}
	write("#!/bin/sh\necho 2\n") // same size
	if err := os.Chtimes(prog, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if replaced := programID(Program); replaced == first {
		t.Errorf("programID stayed %q for a replaced file of the same size and time", first)
	}
	touched := programID(Program)
	if err := os.Chtimes(prog, time.Now(), fi.ModTime().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if programID(Program) == touched {
		t.Errorf("programID stayed %q for a file with another modification time", touched)
	}
	// Through a symbolic link, as Homebrew installs it, the target counts.
	link := filepath.Join(t.TempDir(), Program)
	if err := os.Symlink(prog, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Dir(link))
	if programID(Program) != programID(prog) {
		t.Errorf("programID through a link = %q, want the target's %q", programID(Program), programID(prog))
	}
}
