//go:build !linux

package nft

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Opener is the netlink opener of Linux; elsewhere there is no nftables.
type Opener struct{}

// NewOpener fails outside Linux.
func NewOpener(table, prefix string, netnsFd int) (*Opener, error) {
	return nil, errors.New("nftables exists only on Linux")
}

// Close does nothing.
func (o *Opener) Close() error { return nil }

// Open fails outside Linux.
func (o *Opener) Open(ctx context.Context, addrs []netip.Addr, ttl time.Duration) error {
	return errors.New("nftables exists only on Linux")
}

// Revoke fails outside Linux.
func (o *Opener) Revoke(ctx context.Context, addrs []netip.Addr) error {
	return errors.New("nftables exists only on Linux")
}
