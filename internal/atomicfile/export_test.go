package atomicfile

import "testing"

// SetCanWrite replaces the "may this process write here" decision for the
// duration of t.
func SetCanWrite(t *testing.T, f func(dir string) bool) {
	old := canWrite
	canWrite = f
	t.Cleanup(func() { canWrite = old })
}
