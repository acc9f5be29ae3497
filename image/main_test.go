package image_test

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/internal/fakebin"
)

// The image's shell scripts run here against fakes of the programs they call
// inside the container. Each fake takes its behaviour from FAKE_* variables
// that a test sets for one run only (through env(1)), so tests can run in
// parallel.
func TestMain(m *testing.M) {
	fakebin.Main(m, map[string]func() int{
		"id":    fakeID,
		"sudo":  fakeSudo,
		"chown": fakeChown,
		"curl":  fakeCurl,
	})
}

// fakeID answers `id -u` and `id -g` with $FAKE_UID and $FAKE_GID.
func fakeID() int {
	fakebin.Record()
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "fake id: want -u or -g, got", os.Args[1:])
		return 2
	}
	switch os.Args[1] {
	case "-u":
		fmt.Println(os.Getenv("FAKE_UID"))
	case "-g":
		fmt.Println(os.Getenv("FAKE_GID"))
	default:
		fmt.Fprintln(os.Stderr, "fake id: want -u or -g, got", os.Args[1])
		return 2
	}
	return 0
}

// fakeSudo refuses with $FAKE_SUDO_EXIT, as sudo -n does when it would need a
// password; otherwise it runs the command after its options, as sudo does.
func fakeSudo() int {
	fakebin.Record()
	if code, _ := strconv.Atoi(os.Getenv("FAKE_SUDO_EXIT")); code != 0 {
		fmt.Fprintln(os.Stderr, "sudo: a password is required")
		return code
	}
	args := os.Args[1:]
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		done := args[0] == "--"
		args = args[1:]
		if done {
			break
		}
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: sudo command")
		return 1
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "sudo:", err)
		return 1
	}
	return 0
}

// fakeChown only records its arguments; it exits with $FAKE_CHOWN_EXIT.
func fakeChown() int {
	fakebin.Record()
	code, _ := strconv.Atoi(os.Getenv("FAKE_CHOWN_EXIT"))
	if code != 0 {
		fmt.Fprintln(os.Stderr, "chown: Operation not permitted")
	}
	return code
}

// fakeCurl answers the way curl 8 does for
//
//	curl -sS -g -o /dev/null -w '%{http_code}' --max-time N URL
//
// according to $FAKE_CURL, a list of host=answer words: an answer of three
// digits is an HTTP status (exit status 0), and exitN makes curl fail with
// exit status N after printing 000 as its write-out, as curl does for a
// connection that never got an HTTP answer. A host not in the list cannot be
// resolved (exit status 6). Any other command line is a usage error (2).
func fakeCurl() int {
	fakebin.Record()
	args := os.Args[1:]
	var rawURL string
	sawWriteOut, sawMaxTime, sawNull := false, false, false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-sS" || a == "-g":
		case a == "-o" && i+1 < len(args) && args[i+1] == "/dev/null":
			sawNull = true
			i++
		case a == "-w" && i+1 < len(args) && args[i+1] == "%{http_code}":
			sawWriteOut = true
			i++
		case a == "--max-time" && i+1 < len(args):
			if _, err := strconv.Atoi(args[i+1]); err != nil {
				fmt.Fprintln(os.Stderr, "curl: (2) bad --max-time")
				return 2
			}
			sawMaxTime = true
			i++
		case !strings.HasPrefix(a, "-") && rawURL == "":
			rawURL = a
		default:
			fmt.Fprintf(os.Stderr, "fake curl: unexpected argument %q\n", a)
			return 2
		}
	}
	if !sawWriteOut || !sawMaxTime || !sawNull || rawURL == "" {
		fmt.Fprintln(os.Stderr, "fake curl: want -o /dev/null -w %{http_code} --max-time N URL, got", args)
		return 2
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		fmt.Fprintln(os.Stderr, "curl: (3) URL rejected: Malformed input to a URL function")
		return 3
	}
	answer := ""
	for _, word := range strings.Fields(os.Getenv("FAKE_CURL")) {
		if host, a, ok := strings.Cut(word, "="); ok && host == u.Hostname() {
			answer = a
		}
	}
	if answer == "" {
		answer = "exit6"
	}
	if code, ok := strings.CutPrefix(answer, "exit"); ok {
		fmt.Print("000")
		fmt.Fprintf(os.Stderr, "curl: (%s) failed\n", code)
		n, _ := strconv.Atoi(code)
		return n
	}
	fmt.Print(answer)
	return 0
}
