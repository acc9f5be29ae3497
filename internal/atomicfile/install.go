package atomicfile

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// Install replaces path with data like Write, creating the directory (0755)
// when it is missing, also where this process may not write: then, through
// run with Privileged set (sudo), it creates the directory, creates an empty
// file under a hidden temporary name next to path, gives it perm, fills it
// from standard input, flushes it to disk and renames it over path (a
// rename within one directory, so readers see the old file or the new one,
// even after a crash). The data never passes through a file this process's
// user could swap before root reads it, and it is never readable with a
// wider mode than perm. A directory at path is refused. On error path is
// unchanged and the temporary file is removed.
func Install(ctx context.Context, run proc.Runner, path string, data []byte, perm os.FileMode) error {
	// mv onto a directory would move the file into it and succeed.
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("writing %s: it is a directory; remove it or choose another file name", path)
	}
	dir := filepath.Dir(path)
	if canWrite(dir) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return Write(path, data, perm)
	}
	return installPrivileged(ctx, run, path, data, perm)
}

func installPrivileged(ctx context.Context, run proc.Runner, path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Dir(path), filepath.Base(path)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	staged := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(rnd[:]))
	sudo := func(ctx context.Context, stdin []byte, name string, args ...string) error {
		_, err := run.Run(ctx, proc.Cmd{Name: name, Args: args, Stdin: stdin, Privileged: true})
		return err
	}
	if err := sudo(ctx, nil, "mkdir", "-p", dir); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			// Best effort, even when ctx was cancelled; should it fail
			// too, the hidden name keeps the leftover out of the way.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			sudo(ctx, nil, "rm", "-f", staged)
		}
	}()
	for _, c := range []struct {
		stdin []byte
		argv  []string
	}{
		{nil, []string{"touch", staged}},
		{nil, []string{"chmod", fmt.Sprintf("%04o", perm.Perm()), staged}},
		// tee copies its standard input into the file (and to its
		// standard output, which Run captures and this drops).
		{data, []string{"tee", staged}},
		// sync takes no file operand on macOS; it flushes every file
		// system, this file's data included, before the rename.
		{nil, []string{"sync"}},
		{nil, []string{"mv", "-f", staged, path}},
	} {
		if err := sudo(ctx, c.stdin, c.argv[0], c.argv[1:]...); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// canWrite reports whether this process may create files in dir, or in
// the nearest existing directory above it when dir does not exist yet.
// Tests replace it, because they run as root.
var canWrite = func(dir string) bool {
	if os.Geteuid() == 0 {
		return true
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return true // let Write fail and say why
			}
			f, err := os.CreateTemp(d, ".claudecontainer-probe-*")
			if err != nil {
				return false
			}
			f.Close()
			os.Remove(f.Name())
			return true
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(d) == d {
			return false
		}
	}
}
