package app

import (
	"context"
	"io"
)

// Build builds the container image.
func Build(ctx context.Context, out io.Writer) error {
	e, err := newEnv(out)
	if err != nil {
		return err
	}
	return e.build(ctx)
}
