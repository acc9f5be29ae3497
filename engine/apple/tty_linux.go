package apple

import (
	"os"

	"golang.org/x/sys/unix"
)

// stdinIsTerminal serves the driver where `container` is stood in for by a
// fake (the macOS path exercised on Linux).
func stdinIsTerminal() bool {
	_, err := unix.IoctlGetTermios(int(os.Stdin.Fd()), unix.TCGETS)
	return err == nil
}
