//go:build unix

package pfctl

import (
	"os"
	"path/filepath"
	"syscall"
)

// lockKernel serialises calls on one fake kernel, as the real kernel
// serialises pf ioctls, so concurrent pfctl calls never lose an update.
func lockKernel(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "state.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
