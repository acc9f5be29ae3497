package pf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/policy"
)

// The files the backend keeps in the state directory.
const (
	recordFile = "pf.json"   // what is loaded and which enable references we hold
	anchorFile = "pf.anchor" // the anchor text last loaded, for review
	tableFile  = "pf.table"  // the allowlist last loaded into the table
)

// record is the state file: everything Down needs to undo what Up did, even
// in a later process after a crash. It is written before each step that
// changes pf, so it never holds less than pf does.
type record struct {
	// Anchor is the full anchor path, e.g. "com.apple/claude_firewall".
	Anchor string `json:"anchor"`
	// Table is the allowlist table's name inside the anchor.
	Table string `json:"table"`
	// Network4 and Network6 are the container subnets the anchor was
	// rendered for; Down kills the states from them. Network6 is empty when
	// the network has no IPv6 subnet.
	Network4 string `json:"network4"`
	Network6 string `json:"network6,omitempty"`
	// Interface is the bridge the IPv6 rules were scoped to, if known.
	Interface string `json:"interface,omitempty"`
	// DNSFilterPort is the loopback port the anchor redirects the
	// containers' DNS to; 0 when it has no DNS filter.
	DNSFilterPort uint16 `json:"dns_filter_port,omitempty"`
	// Tokens are the pf enable references we hold, as pfctl -E printed them.
	Tokens []heldToken `json:"tokens"`
	// Updated is when the record was last written.
	Updated time.Time `json:"updated"`
}

type heldToken struct {
	Token string    `json:"token"` // decimal 64-bit number
	Taken time.Time `json:"taken"`
}

var (
	tokenRE      = regexp.MustCompile(`^[0-9]{1,20}$`)
	anchorPathRE = regexp.MustCompile(`^` + regexp.QuoteMeta(Parent) + `/[A-Za-z][A-Za-z0-9_]{0,30}$`)
)

// validToken reports whether s is a token as pfctl prints it.
func validToken(s string) bool {
	if !tokenRE.MatchString(s) {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

// validate checks a record read from disk: every value in it ends up on a
// pfctl command line.
func (r *record) validate() error {
	var errs []error
	if !anchorPathRE.MatchString(r.Anchor) {
		errs = append(errs, fmt.Errorf("anchor %q is not %s/<name>", r.Anchor, Parent))
	}
	if !policy.ValidIdentifier(r.Table) {
		errs = append(errs, fmt.Errorf("table %q is not a valid name", r.Table))
	}
	if p, err := netip.ParsePrefix(r.Network4); err != nil || !p.Addr().Is4() || p != p.Masked() {
		errs = append(errs, fmt.Errorf("network4 %q is not a masked IPv4 prefix", r.Network4))
	}
	if r.Network6 != "" {
		if p, err := netip.ParsePrefix(r.Network6); err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p != p.Masked() {
			errs = append(errs, fmt.Errorf("network6 %q is not a masked IPv6 prefix", r.Network6))
		}
	}
	if r.Interface != "" && !bridgeName.MatchString(r.Interface) {
		errs = append(errs, fmt.Errorf("interface %q is not a bridge", r.Interface))
	}
	for _, t := range r.Tokens {
		if !validToken(t.Token) {
			errs = append(errs, fmt.Errorf("token %q is not a 64-bit decimal number", t.Token))
		}
	}
	return errors.Join(errs...)
}

func (f *Firewall) path(name string) string { return filepath.Join(f.cfg.StateDir, name) }

// load reads the record; (nil, nil) when there is none.
func (f *Firewall) load() (*record, error) {
	path := f.path(recordFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the pf state file: %w", err)
	}
	var r record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err = dec.Decode(&r)
	if err == nil {
		err = r.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("the pf state file %s is damaged (%v): check `sudo pfctl -s References` "+
			"for enable references claudecontainer took and release them with `sudo pfctl -X <token>`, "+
			"then remove the file", path, err)
	}
	return &r, nil
}

// save writes the record atomically.
func (f *Firewall) save(r *record) error {
	r.Updated = f.now().UTC()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("creating the state directory: %w", err)
	}
	if err := atomicfile.Write(f.path(recordFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("recording the pf state: %w", err)
	}
	return nil
}

// forget removes the record and the files written with it.
func (f *Firewall) forget() error {
	var errs []error
	// The lock file stays: removing it while another process waits on it
	// would let a third take a different lock.
	for _, name := range []string{anchorFile, tableFile, recordFile} {
		if err := os.Remove(f.path(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
