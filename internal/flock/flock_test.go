//go:build unix

package flock

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waiting returns a flock call that tells on busy each time the lock was
// found held, so a test knows the caller is waiting rather than guessing
// with a sleep.
func waiting(busy chan<- struct{}) func(int) error {
	return func(fd int) error {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			select {
			case busy <- struct{}{}:
			default:
			}
		}
		return err
	}
}

func mustLock(t *testing.T, ctx context.Context, path string) func() {
	t.Helper()
	unlock, err := Lock(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	return unlock
}

func TestLockCreatesAFilePrivateToTheOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	mustLock(t, context.Background(), path)()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode %v, want 0600", perm)
	}
}

func TestAWaiterGetsTheLockOnceTheHolderReleasesIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock := mustLock(t, context.Background(), path)
	busy := make(chan struct{}, 1)
	type result struct {
		unlock func()
		err    error
	}
	got := make(chan result, 1)
	go func() {
		unlock, err := lock(context.Background(), path, waiting(busy))
		got <- result{unlock, err}
	}()
	<-busy
	unlock()
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.unlock()
	// The waiter holds it now: a third caller must not get it.
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ended, path); err != context.Canceled {
		t.Errorf("a third caller while the waiter holds the lock: err = %v, want context.Canceled", err)
	}
}

func TestAWaiterGivesUpWithTheContextsErrorWhenItEndsWhileWaiting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock := mustLock(t, context.Background(), path)
	ctx, cancel := context.WithCancel(context.Background())
	busy := make(chan struct{}, 1)
	got := make(chan error, 1)
	go func() {
		_, err := lock(ctx, path, waiting(busy))
		got <- err
	}()
	<-busy
	cancel()
	if err := <-got; err != context.Canceled {
		t.Fatalf("err = %v, want context.Canceled itself", err)
	}
	// The waiter that gave up holds nothing: once released, the lock is
	// free at once.
	unlock()
	done, stop := context.WithCancel(context.Background())
	stop()
	mustLock(t, done, path)()
}

func TestAnInterruptedCallIsRepeatedAtOnceNotTakenAsBusyOrAsAFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	calls := 0
	try := func(fd int) error {
		if calls++; calls <= 2 {
			return syscall.EINTR
		}
		return syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
	}
	// An ended context: had EINTR been taken for a held lock, the wait
	// would end at once with the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	unlock, err := lock(ctx, path, try)
	if err != nil {
		t.Fatalf("err = %v, want the lock", err)
	}
	unlock()
	if calls != 3 {
		t.Errorf("flock called %d times, want 3", calls)
	}
}

func TestOtherFailuresAreErrorsNamingTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	_, err := lock(context.Background(), path, func(int) error { return syscall.ENOLCK })
	if !errors.Is(err, syscall.ENOLCK) || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want ENOLCK naming %s", err, path)
	}
	if _, err := Lock(context.Background(), filepath.Join(path, "under-a-file")); err == nil {
		t.Error("Lock succeeded on a path that cannot be created")
	}
}

// TestHelperHolder is the other process of the next test: it takes the lock
// named by FLOCK_TEST_HOLD, says so, and keeps it until it is killed.
func TestHelperHolder(t *testing.T) {
	path := os.Getenv("FLOCK_TEST_HOLD")
	if path == "" {
		t.Skip("the helper process of TestTheKernelReleasesTheLockWhenItsHolderDies")
	}
	if _, err := Lock(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	select {}
}

func TestTheKernelReleasesTheLockWhenItsHolderDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHolder$")
	cmd.Env = append(os.Environ(), "FLOCK_TEST_HOLD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("helper said %q (%v)", line, err)
	}

	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ended, path); err != context.Canceled {
		t.Fatalf("with the other process holding the lock: err = %v, want context.Canceled", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	// Bounded only so that a lock the kernel kept fails the test instead
	// of hanging it.
	ctx, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	mustLock(t, ctx, path)()
}
