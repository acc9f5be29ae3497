//go:build !linux

package filterd

import (
	"context"
	"errors"
	"io"
)

// watchRefused is not there yet outside Linux: pf logs to pflog0, which
// needs a BPF reader.
func watchRefused(ctx context.Context, w io.Writer, names *recent, logf func(string, ...any)) error {
	return errors.New("the log of refused connections is read only on Linux (nftables) so far")
}
