//go:build !linux

package dnsfilter

import "syscall"

// freeBindControl is nil where the system cannot bind an address it does not
// have.
var freeBindControl func(network, address string, c syscall.RawConn) error
