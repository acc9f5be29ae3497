// Package filterd runs the DNS filter (package dnsfilter) as a daemon on the
// host, and starts, signals and stops that daemon for the mage targets.
//
// The daemon is the mage binary itself, run again as root with Arg as its
// first argument (magefiles/ hands such a run to Main before mage parses
// anything): the same code, built by the same `go run magefile.go`, so
// nothing is installed beside it. Its settings are a Spec, written by mage
// into the state directory; what it runs with is its Status, written by the
// daemon into the same directory once it serves. Both are JSON files
// replaced atomically.
//
// The daemon is identified by a token that mage makes for each start and
// passes on its command line: a pid whose command line does not carry the
// token is never signalled, so a recycled pid is never mistaken for it.
package filterd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/policy"
)

// Arg, as the first argument of a claudecontainer binary, makes it run the
// daemon: `<binary> Arg STATEDIR TOKEN`.
const Arg = "__claudecontainer-dnsfilter"

// Files in the state directory.
const (
	specFile   = "dnsfilter-spec.json"
	statusFile = "dnsfilter.json"
	// LogFile is where the daemon's own messages go (its standard error).
	LogFile = "dnsfilter.log"
	// RefusedFile is the log of refused queries, JSON lines
	// (dnsfilter.Record); RefusedFile+".1" holds the lines before.
	RefusedFile = "dnsfilter-refused.log"
	// refusedLimit bounds RefusedFile; with the rotated file, the refusals
	// take at most twice this.
	refusedLimit = 4 << 20
)

// Spec is what the daemon runs with.
type Spec struct {
	// Token identifies this daemon; see the package comment.
	Token string `json:"token"`
	// Backend is the firewall: "nftables" or "pf".
	Backend string `json:"backend"`
	// Table is the nftables table or the pf anchor (config.Config.Anchor),
	// Set the allowlist's set prefix or table (policy.Policy.Table): the
	// opened addresses go into the sets or table made from it.
	Table string `json:"table"`
	Set   string `json:"set"`
	// Listen are the addresses served, over UDP and TCP. FreeBind binds
	// them before the host has them (the bridge's address on Linux).
	Listen   []netip.AddrPort `json:"listen"`
	FreeBind bool             `json:"free_bind,omitempty"`
	// Clients are the networks whose queries are answered.
	Clients []netip.Prefix `json:"clients"`
	// Upstreams are the resolvers asked for allowed names.
	Upstreams []netip.AddrPort `json:"upstreams"`
	// AllowlistFile holds the names (allowlist.LoadNames); the daemon
	// reads it at start and on SIGHUP.
	AllowlistFile string `json:"allowlist_file"`
	// IPv6 says whether IPv6 addresses may be handed out: the firewall
	// enforces IPv6 for the network. Without it AAAA answers come back
	// empty.
	IPv6 bool `json:"ipv6,omitempty"`
	// Watch, when set, is the policy the firewall was last loaded for:
	// the daemon watches the host's interfaces and loads the rules again
	// when the network's bridge appears (or appears under another name),
	// since until then pf cannot tell the bridge's packets apart, and an
	// nftables ingress chain may not attach. Changing only Watch does not
	// restart a running daemon: it reads Watch again on SIGHUP.
	Watch *policy.Policy `json:"watch,omitempty"`
}

// Validate checks everything the daemon will act on.
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(s.Token) < 16 || !isHex(s.Token) {
		bad("token %q: want at least 16 hex digits", s.Token)
	}
	if s.Backend != "nftables" && s.Backend != "pf" {
		bad("backend %q: want nftables or pf", s.Backend)
	}
	if !policy.ValidIdentifier(s.Table) || !policy.ValidIdentifier(s.Set) {
		bad("table %q or set %q: want letters, digits and '_', starting with a letter", s.Table, s.Set)
	}
	if len(s.Listen) == 0 {
		bad("no address to listen on")
	}
	for _, ap := range s.Listen {
		if !ap.IsValid() || ap.Port() == 0 || ap.Port() == 53 || ap.Addr().IsUnspecified() {
			bad("listen address %s: want a given address and a port other than 0 and 53", ap)
		}
	}
	if len(s.Clients) == 0 {
		bad("no client network")
	}
	for _, p := range s.Clients {
		if !p.IsValid() || p.Bits() == 0 {
			bad("client network %s: want a subnet", p)
		}
	}
	if len(s.Upstreams) == 0 {
		bad("no upstream resolver (set CLAUDECONTAINER_DNS_UPSTREAM, or add a nameserver to /etc/resolv.conf)")
	}
	for _, ap := range s.Upstreams {
		if !ap.IsValid() || ap.Port() == 0 || ap.Addr().IsUnspecified() {
			bad("upstream %s: want an address and a port", ap)
		}
		if slices.Contains(s.Listen, ap) {
			bad("upstream %s is the filter itself", ap)
		}
	}
	if s.Watch != nil {
		if err := s.Watch.Validate(); err != nil {
			bad("the policy to watch for: %v", err)
		}
	}
	if !filepath.IsAbs(s.AllowlistFile) {
		bad("allowlist file %q: want an absolute path", s.AllowlistFile)
	}
	if len(errs) > 0 {
		return fmt.Errorf("DNS filter settings: %w", errors.Join(errs...))
	}
	return nil
}

func isHex(s string) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Status is what a running daemon writes once it serves, and again after
// each reload.
type Status struct {
	Pid   int  `json:"pid"`
	Spec  Spec `json:"spec"`
	Names int  `json:"names"` // entries in the name policy
	// Reloads counts the SIGHUPs handled, so that a caller can tell that
	// its signal was.
	Reloads int `json:"reloads"`
	// ReloadError is why the last reload failed (the policy before it
	// stays), or empty.
	ReloadError string `json:"reload_error,omitempty"`
}

func writeJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'), perm)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// ReadSpec reads and validates the spec in dir.
func ReadSpec(dir string) (Spec, error) {
	var s Spec
	if err := readJSON(filepath.Join(dir, specFile), &s); err != nil {
		return Spec{}, err
	}
	return s, s.Validate()
}
