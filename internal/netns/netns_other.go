//go:build !linux

package netns

import "errors"

// Do fails: network namespaces exist only on Linux.
func Do(ns string, fn func() error) error {
	return errors.New("network namespaces exist only on Linux")
}
