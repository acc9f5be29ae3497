//go:build !linux && !darwin

package filterd

import (
	"context"
	"errors"
	"io"
)

// watchRefused has no firewall log to read on this system.
func watchRefused(ctx context.Context, anchor string, w io.Writer, names *recent, logf func(string, ...any)) error {
	return errors.New("the log of refused connections is read only on Linux and macOS")
}
