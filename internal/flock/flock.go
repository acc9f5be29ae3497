//go:build unix

// Package flock takes exclusive flock(2) locks on files, waiting for them no
// longer than a context allows. The kernel releases such a lock when its
// holder dies, so a crashed run never leaves a lock behind.
package flock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// poll is how long Lock sleeps between tries while another process holds
// the lock: flock(2) cannot wait and be cancelled at once.
const poll = 20 * time.Millisecond

// Lock opens the file at path (creating it, 0600) and takes an exclusive
// lock on it, waiting until the lock is free or ctx is done. When ctx ends
// first the error is ctx.Err() itself, so callers can tell waiting too long
// from failing. The returned function releases the lock and closes the file.
func Lock(ctx context.Context, path string) (unlock func(), err error) {
	return lock(ctx, path, func(fd int) error { return syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB) })
}

// lock is Lock with the non-blocking flock call passed in, so that tests can
// make it return what the real one seldom does (EINTR).
func lock(ctx context.Context, path string, try func(fd int) error) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file: %w", err)
	}
	for {
		err := try(int(f.Fd()))
		switch {
		case err == nil:
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		case errors.Is(err, syscall.EINTR):
			continue // a signal came in: the call did not run, so it is repeated at once
		case !errors.Is(err, syscall.EWOULDBLOCK):
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}
