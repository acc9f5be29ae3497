package app

import (
	"context"
	"io"
)

// Dev brings the firewall up, starts or attaches to the container, and lifts
// the firewall when the last session leaves.
func Dev(ctx context.Context, out io.Writer, workspace string) error {
	return notYet("dev", "the dev issue")
}
