//go:build !unix

package pf

import "context"

// lock is a no-op where flock(2) does not exist; pf itself exists only on
// macOS and the BSDs.
func (f *Firewall) lock(ctx context.Context) (func(), error) { return func() {}, nil }
