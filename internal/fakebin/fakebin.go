// Package fakebin stands in for host programs in tests. A test package's
// TestMain calls Main with the fakes it wants; Main links each name to the
// test binary in a temporary directory put first on PATH, so that code under
// test runs them exactly as it would run the real programs (through
// exec.LookPath and proc.Exec). When the test binary is started under one of
// those names, Main runs the fake instead of the tests.
//
// Every fake appends its argv to the file named by $FAKEBIN_LOG (when set),
// one line per call, so a test can assert the order of calls across programs.
package fakebin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// LogEnv names the environment variable that holds the call log's path.
const LogEnv = "FAKEBIN_LOG"

// Main runs the fake named by os.Args[0] when there is one; otherwise it
// installs the fakes on PATH and runs the tests.
func Main(m *testing.M, fakes map[string]func() int) {
	if fake, ok := fakes[filepath.Base(os.Args[0])]; ok {
		os.Exit(fake())
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakebin:", err)
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "fakebin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakebin:", err)
		os.Exit(2)
	}
	for name := range fakes {
		if err := os.Symlink(exe, filepath.Join(dir, name)); err != nil {
			fmt.Fprintln(os.Stderr, "fakebin:", err)
			os.Exit(2)
		}
	}
	os.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	// A race-enabled binary sleeps a second before exiting; fakes are that
	// binary, so without this every fake call would cost a second.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Record appends one line, the program's name and arguments, to the call log.
// Fakes call it first thing.
func Record() {
	path := os.Getenv(LogEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	words := append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...)
	fmt.Fprintln(f, strings.Join(words, " "))
}

// NewLog points $FAKEBIN_LOG at a fresh file for the test and returns a
// function that reads the calls logged so far, one string per call.
func NewLog(t *testing.T) func() []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "calls.log")
	t.Setenv(LogEnv, path)
	return func() []string {
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	}
}
