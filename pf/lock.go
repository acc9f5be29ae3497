//go:build unix

package pf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

const lockFile = "pf.lock"

// lock takes the state directory's lock, so that two processes changing pf
// at once (two `mage dev` sessions starting together) cannot both take an
// enable reference and then overwrite each other's record of it. It waits
// until the lock is free or ctx ends; the returned function releases it.
func (f *Firewall) lock(ctx context.Context) (func(), error) {
	if err := os.MkdirAll(f.cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}
	file, err := os.OpenFile(f.path(lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the pf lock: %w", err)
	}
	for {
		err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(file.Fd()), syscall.LOCK_UN)
				file.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			file.Close()
			return nil, fmt.Errorf("locking %s: %w", f.path(lockFile), err)
		}
		select {
		case <-ctx.Done():
			file.Close()
			return nil, fmt.Errorf("waiting for another claudecontainer to finish with pf: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
