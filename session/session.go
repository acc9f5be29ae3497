// Package session keeps count of the `mage dev` shells attached to the
// container, so that the firewall stays up while any of them runs and comes
// down only when the last one leaves.
//
// Each session is a file named after its process id in the sessions
// directory. A session whose process has died no longer counts: Live prunes
// it. A stale file can only keep the firewall up longer than needed (if its
// process id was reused), never bring it down early, so the bookkeeping errs
// on the closed side. Changes to the set of sessions, and the firewall and
// container decisions that follow from it, happen under an exclusive lock.
package session

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/internal/flock"
)

// Hold is the name of the marker that `mage up` leaves: the firewall was
// brought up by hand and stays up until `mage reset`, whatever the sessions do.
const Hold = "hold"

// Dir is a sessions directory.
type Dir struct {
	path string
	// Alive reports whether a process exists; nil means the real check.
	Alive func(pid int) bool
}

// Open returns the sessions directory under stateDir, creating it (0700).
func Open(stateDir string) (*Dir, error) {
	p := filepath.Join(stateDir, "sessions")
	if err := os.MkdirAll(p, 0o700); err != nil {
		return nil, fmt.Errorf("creating the sessions directory: %w", err)
	}
	return &Dir{path: p}, nil
}

// Lock takes the directory's exclusive lock, waiting for it until ctx is
// done. The lock is released by the returned function, and by the kernel
// when the process dies.
func (d *Dir) Lock(ctx context.Context) (unlock func(), err error) {
	path := filepath.Join(d.path, ".lock")
	unlock, err = flock.Lock(ctx, path)
	switch {
	case err == nil:
		return unlock, nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil, fmt.Errorf("waiting for another claudecontainer run to finish (%s): %w", path, err)
	default:
		return nil, fmt.Errorf("taking the session lock: %w", err)
	}
}

// Join records the session of process pid.
func (d *Dir) Join(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("invalid process id %d", pid)
	}
	body := fmt.Sprintf("%d %s\n", pid, time.Now().UTC().Format(time.RFC3339))
	return atomicfile.Write(filepath.Join(d.path, strconv.Itoa(pid)), []byte(body), 0o600)
}

// Leave removes the session of process pid. Leaving twice is not an error.
func (d *Dir) Leave(pid int) error {
	err := os.Remove(filepath.Join(d.path, strconv.Itoa(pid)))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Live returns the process ids of the sessions whose processes still run,
// sorted, and removes the files of the others.
func (d *Dir) Live() ([]int, error) {
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return nil, err
	}
	alive := d.Alive
	if alive == nil {
		alive = processAlive
	}
	var live []int
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || name == Hold {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil || pid <= 0 {
			continue // not ours; leave it alone
		}
		if alive(pid) {
			live = append(live, pid)
			continue
		}
		if err := d.Leave(pid); err != nil {
			return nil, err
		}
	}
	sort.Ints(live)
	return live, nil
}

// SetHold records (on) or clears (off) the hand-made hold of `mage up`.
func (d *Dir) SetHold(on bool) error {
	p := filepath.Join(d.path, Hold)
	if on {
		return atomicfile.Write(p, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Held reports whether `mage up` holds the firewall.
func (d *Dir) Held() bool {
	_, err := os.Stat(filepath.Join(d.path, Hold))
	return err == nil
}

// processAlive reports whether a process with this id exists. EPERM means it
// exists but belongs to someone else.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
