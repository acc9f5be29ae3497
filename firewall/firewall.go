// Package firewall is the contract between claudecontainer's targets and a
// firewall backend (pf on macOS, nftables on Linux). A backend owns exactly
// one anchor or table of the host's firewall and never touches anything else.
package firewall

import (
	"context"
	"errors"
	"net/netip"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/policy"
)

// ErrNotUp is returned by Replace and Add when the firewall is not loaded, so
// there is no live table to change. Callers treat it as "nothing to do".
var ErrNotUp = errors.New("the firewall is not up")

// Backend is one firewall implementation.
type Backend interface {
	// Name is the backend's setting value: "pf" or "nftables".
	Name() string
	// Render returns the rule text Up would load for p, for review.
	Render(p policy.Policy) (string, error)
	// Up loads the rules for p with set as the allowlist, holds whatever
	// reference keeps the firewall enabled, records what it did in the state
	// directory, and verifies the result. It is idempotent: when the
	// firewall is already up it reloads the rules and table in place
	// without lifting them in between. On error it leaves either the
	// previous working state or a state that Down removes.
	Up(ctx context.Context, p policy.Policy, set *netipx.IPSet) error
	// Replace swaps the live allowlist for set atomically (no instant with
	// an empty or partial table). ErrNotUp when the firewall is not up.
	Replace(ctx context.Context, set *netipx.IPSet) error
	// Add adds prefixes to the live allowlist without touching the rest:
	// cheap and incremental, for a DNS forwarder that allows each answer
	// before it replies. ErrNotUp when the firewall is not up.
	Add(ctx context.Context, prefixes []netip.Prefix) error
	// Down removes our rules and tables, kills the states of the container
	// network, and releases only our own enable references, including those
	// recorded by earlier runs that crashed. Down on a firewall that is not
	// up succeeds.
	Down(ctx context.Context) error
	// IsUp reports whether our rules are loaded.
	IsUp(ctx context.Context) (bool, error)
	// Status checks the live firewall against the recorded state.
	Status(ctx context.Context) []Check
}

// Check is one line of `mage status`.
type Check struct {
	What   string // "pf enabled", "anchor loaded", ...
	OK     bool
	Detail string // what was found
	Fix    string // what to do when !OK
}
