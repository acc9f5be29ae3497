//go:build unix

package pf

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/VerilyPete/claudecontainer/internal/flock"
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
	unlock, err := flock.Lock(ctx, f.path(lockFile))
	switch {
	case err == nil:
		return unlock, nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil, fmt.Errorf("waiting for another claudecontainer to finish with pf: %w", err)
	default:
		return nil, fmt.Errorf("taking the pf lock: %w", err)
	}
}
