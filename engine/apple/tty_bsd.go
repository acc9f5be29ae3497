//go:build darwin || freebsd || netbsd || openbsd

package apple

import (
	"os"

	"golang.org/x/sys/unix"
)

func stdinIsTerminal() bool {
	_, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TIOCGETA)
	return err == nil
}
