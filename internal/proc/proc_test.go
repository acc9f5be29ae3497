package proc_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/internal/proc"
)

func needSh(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh on PATH")
	}
}

func TestRunSeparatesStdoutFromStderr(t *testing.T) {
	needSh(t)
	res, err := proc.Exec{}.Run(context.Background(), proc.Cmd{Name: "sh", Args: []string{"-c", "echo out; echo err >&2"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "out\n" {
		t.Errorf("stdout = %q, want %q", got, "out\n")
	}
	if got := string(res.Stderr); got != "err\n" {
		t.Errorf("stderr = %q, want %q", got, "err\n")
	}
}

func TestRunFeedsStdin(t *testing.T) {
	needSh(t)
	res, err := proc.Exec{}.Run(context.Background(), proc.Cmd{Name: "sh", Args: []string{"-c", "tr a-z A-Z"}, Stdin: []byte("hello\n")})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "HELLO\n" {
		t.Errorf("stdout = %q", got)
	}
}

func TestRunReportsExitCodeAndStderr(t *testing.T) {
	needSh(t)
	_, err := proc.Exec{}.Run(context.Background(), proc.Cmd{Name: "sh", Args: []string{"-c", "echo boom >&2; exit 3"}})
	var ee *proc.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *ExitError", err)
	}
	if ee.Code != 3 || ee.Stderr != "boom" {
		t.Errorf("got code %d stderr %q, want 3 and %q", ee.Code, ee.Stderr, "boom")
	}
	if proc.ExitCode(err) != 3 {
		t.Errorf("ExitCode = %d", proc.ExitCode(err))
	}
}

func TestRunSetsCLocale(t *testing.T) {
	needSh(t)
	t.Setenv("LC_ALL", "de_DE.UTF-8")
	res, err := proc.Exec{}.Run(context.Background(), proc.Cmd{Name: "sh", Args: []string{"-c", "echo $LC_ALL"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(res.Stdout)); got != "C" {
		t.Errorf("LC_ALL = %q, want C", got)
	}
}

func TestRunNamesAMissingProgram(t *testing.T) {
	_, err := proc.Exec{}.Run(context.Background(), proc.Cmd{Name: "no-such-program-claudecontainer"})
	if err == nil || !strings.Contains(err.Error(), "no-such-program-claudecontainer") || !strings.Contains(err.Error(), "PATH") {
		t.Errorf("err = %v, want one naming the program and PATH", err)
	}
}

func TestPrivilegedUsesSudoOnlyWhenNotRoot(t *testing.T) {
	needSh(t)
	dir := t.TempDir()
	// A stand-in sudo that prints its arguments.
	writeScript(t, dir+"/sudo", "#!/bin/sh\necho sudo \"$@\"\n")
	t.Setenv("PATH", dir+":"+getenvPath())
	c := proc.Cmd{Name: "echo", Args: []string{"hi"}, Privileged: true}

	res, err := proc.Exec{Euid: func() int { return 501 }}.Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "sudo -- echo hi\n" {
		t.Errorf("as a user: stdout = %q, want the command run through sudo", got)
	}
	res, err = proc.Exec{Euid: func() int { return 0 }}.Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "hi\n" {
		t.Errorf("as root: stdout = %q, want the command run directly", got)
	}
}

func TestCmdStringQuotesAwkwardWords(t *testing.T) {
	c := proc.Cmd{Name: "pfctl", Args: []string{"-a", "com.apple/claude", "-f", "a b"}}
	if got, want := c.String(), `pfctl -a com.apple/claude -f "a b"`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}
