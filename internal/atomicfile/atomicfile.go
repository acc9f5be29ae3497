// Package atomicfile replaces files so that a reader sees either the old
// contents or the new, never a mix, and a crash leaves one of the two.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Write replaces path with data: it writes a temporary file in the same
// directory, syncs it, renames it over path and syncs the directory. The
// directory must exist. On error path is unchanged.
//
// Written by root, the new file gets the owner of the file it replaces, or
// of the directory when there is none: the DNS filter's daemon, root,
// rewrites records in the user's state directory that mage, run as the
// user, must go on reading and replacing.
func Write(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if os.Geteuid() == 0 {
		if uid, gid, ok := owner(path, dir); ok && uid != 0 {
			if err = f.Chown(uid, gid); err != nil {
				return fmt.Errorf("writing %s: %w", path, err)
			}
		}
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync() // best effort: the rename is already visible
		d.Close()
	}
	return nil
}

// owner returns the owner of path, or of dir when path does not exist.
func owner(path, dir string) (uid, gid int, ok bool) {
	fi, err := os.Stat(path)
	if err != nil {
		if fi, err = os.Stat(dir); err != nil {
			return 0, 0, false
		}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
