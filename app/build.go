package app

import (
	"context"
	"io"
)

// Build builds the container image.
func Build(ctx context.Context, out io.Writer) error {
	return withEnv(out, func(e *env) error { return e.build(ctx) })
}
