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
// when it is missing, also where this process may not write: then it stages
// the data in a temporary file and, through run with Privileged set (sudo),
// creates the directory, copies the file next to path under a hidden
// temporary name, sets its mode and renames it over path (a rename within
// one directory, so readers see the old file or the new one). On error path
// is unchanged and the temporary files are removed.
func Install(ctx context.Context, run proc.Runner, path string, data []byte, perm os.FileMode) error {
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
	f, err := os.CreateTemp("", "claudecontainer-"+base+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: staging: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: staging: %w", path, err)
	}

	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	staged := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(rnd[:]))
	sudo := func(ctx context.Context, name string, args ...string) error {
		_, err := run.Run(ctx, proc.Cmd{Name: name, Args: args, Privileged: true})
		return err
	}
	if err := sudo(ctx, "mkdir", "-p", dir); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			// Best effort, even when ctx was cancelled; should it fail
			// too, the hidden name keeps the leftover out of the way.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			sudo(ctx, "rm", "-f", staged)
		}
	}()
	for _, c := range [][]string{
		{"cp", tmp, staged},
		{"chmod", fmt.Sprintf("%04o", perm.Perm()), staged},
		{"mv", "-f", staged, path},
	} {
		if err := sudo(ctx, c[0], c[1:]...); err != nil {
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
