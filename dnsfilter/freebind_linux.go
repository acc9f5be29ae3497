package dnsfilter

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// freeBindControl sets IP_FREEBIND (IPV6_FREEBIND for IPv6) on a socket
// before it binds.
var freeBindControl = func(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if network == "udp6" || network == "tcp6" {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
