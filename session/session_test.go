package session_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/session"
)

func TestLiveCountsRunningProcessesAndPrunesDeadOnes(t *testing.T) {
	state := t.TempDir()
	d, err := session.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	// A process that has exited: its id is dead (until reused, which a
	// freshly reaped id practically is not within the test).
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1):", err)
	}
	dead := cmd.Process.Pid
	for _, pid := range []int{os.Getpid(), dead} {
		if err := d.Join(pid); err != nil {
			t.Fatal(err)
		}
	}
	live, err := d.Live()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{os.Getpid()}, live); diff != "" {
		t.Errorf("live sessions (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(filepath.Join(state, "sessions", strconv.Itoa(dead))); !os.IsNotExist(err) {
		t.Errorf("the dead session's file is still there: %v", err)
	}
}

func TestLeaveRemovesOnlyThatSessionAndMayBeRepeated(t *testing.T) {
	d, _ := session.Open(t.TempDir())
	d.Alive = func(int) bool { return true }
	d.Join(101)
	d.Join(102)
	if err := d.Leave(101); err != nil {
		t.Fatal(err)
	}
	if err := d.Leave(101); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	live, _ := d.Live()
	if diff := cmp.Diff([]int{102}, live); diff != "" {
		t.Errorf("live (-want +got):\n%s", diff)
	}
}

func TestHoldIsNotASession(t *testing.T) {
	d, _ := session.Open(t.TempDir())
	if err := d.SetHold(true); err != nil {
		t.Fatal(err)
	}
	if !d.Held() {
		t.Error("Held() = false after SetHold(true)")
	}
	live, _ := d.Live()
	if len(live) != 0 {
		t.Errorf("live = %v", live)
	}
	d.SetHold(false)
	if d.Held() {
		t.Error("Held() = true after SetHold(false)")
	}
}

func TestLockExcludesASecondHolderUntilReleased(t *testing.T) {
	d, _ := session.Open(t.TempDir())
	unlock, err := d.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = d.Lock(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for another claudecontainer run to finish") {
		t.Fatalf("a second Lock while the first was held: %v", err)
	}
	unlock()
	unlock2, err := d.Lock(context.Background())
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	unlock2()
}
