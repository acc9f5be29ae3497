//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package apple

// stdinIsTerminal cannot tell here; asking for a terminal is what an
// interactive shell needs.
func stdinIsTerminal() bool { return true }
