package pfctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The environment variables the fake reads.
const (
	// EnvState names the directory that holds the fake kernel's state
	// (state.json). Required.
	EnvState = "FAKE_PFCTL_STATE"
	// EnvFail is a regular expression matched against the call's arguments
	// joined by single spaces (without the program name). A matching call
	// prints an error and exits 1 without changing anything, so a test can
	// fail any one step: "^-E$", "-T replace", "^-s References$".
	EnvFail = "FAKE_PFCTL_FAIL"
)

// Ref is one pf enable reference, as `pfctl -s References` lists it.
type Ref struct {
	PID   int       `json:"pid"`
	Name  string    `json:"name"`
	Token string    `json:"token"` // decimal, as printed
	Taken time.Time `json:"taken"`
}

// Anchor is one anchor's ruleset.
type Anchor struct {
	// Rules are the filter rules, one per line as `pfctl -s rules` prints
	// them (macros expanded, lists expanded, state options made explicit).
	Rules []string `json:"rules"`
	// NAT are the translation rules, one per line as `pfctl -s nat` prints
	// them.
	NAT []string `json:"nat,omitempty"`
	// Tables maps a table name to its addresses as `-T show` prints them.
	Tables map[string][]string `json:"tables"`
}

// Conn is one entry of pf's state table, for `pfctl -k`.
type Conn struct {
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Proto string `json:"proto"`
}

// State is the fake kernel: what pf holds between pfctl calls.
type State struct {
	Enabled bool      `json:"enabled"`
	Since   time.Time `json:"since"`
	// Refs are the enable references, newest first (the order pfctl lists
	// them in).
	Refs []Ref `json:"refs"`
	// Seq counts the tokens handed out; tokens are derived from it so that
	// runs are reproducible.
	Seq uint64 `json:"seq"`
	// Main is the main ruleset's filter and scrub rules as `pfctl -sr`
	// prints them.
	Main []string `json:"main"`
	// MainNAT is the main ruleset's translation rules as `pfctl -s nat`
	// prints them.
	MainNAT []string `json:"main_nat"`
	// Anchors maps an anchor path (e.g. "com.apple/claude_firewall") to its
	// ruleset; "" is the main ruleset's own tables.
	Anchors map[string]*Anchor `json:"anchors"`
	// Conns is the state table.
	Conns []Conn `json:"conns"`
}

// StockMain is what `pfctl -sr` prints for the main ruleset of a stock
// /etc/pf.conf (scrub-anchor, nat-anchor, rdr-anchor, dummynet-anchor and
// anchor on "com.apple/*"; only scrub and filter rules are shown by -sr).
var StockMain = []string{
	`scrub-anchor "com.apple/*" all fragment reassemble`,
	`anchor "com.apple/*" all`,
}

// StockMainNAT is what `pfctl -s nat` prints for the main ruleset of a stock
// /etc/pf.conf, as captured on macOS 26 hosts: the translation anchors on
// "com.apple/*".
var StockMainNAT = []string{
	`nat-anchor "com.apple/*" all`,
	`rdr-anchor "com.apple/*" all`,
}

// Stock returns the state of a Mac just after boot: pf disabled, no
// references, the stock main ruleset and Apple's anchors.
func Stock() State {
	return State{
		Main:    append([]string(nil), StockMain...),
		MainNAT: append([]string(nil), StockMainNAT...),
		Anchors: map[string]*Anchor{
			"com.apple/250.ApplicationFirewall": {Tables: map[string][]string{}},
		},
	}
}

// rules returns the filter rules of the ruleset at path, or with nat its
// translation rules: the main ruleset's for "", nil for an anchor that does
// not exist.
func (st *State) rules(path string, nat bool) *[]string {
	a := st.Anchors[path]
	switch {
	case path == "" && nat:
		return &st.MainNAT
	case path == "":
		return &st.Main
	case a == nil:
		return nil
	case nat:
		return &a.NAT
	}
	return &a.Rules
}

// anchor returns the ruleset at path, making an empty one if there is none.
func (st *State) anchor(path string) *Anchor {
	a := st.Anchors[path]
	if a == nil {
		a = &Anchor{}
		st.Anchors[path] = a
	}
	if a.Tables == nil {
		a.Tables = map[string][]string{}
	}
	return a
}

// prune removes the ruleset at path when it holds nothing, as pf removes an
// empty ruleset.
func (st *State) prune(path string) {
	if a := st.Anchors[path]; a != nil && len(a.Rules) == 0 && len(a.NAT) == 0 && len(a.Tables) == 0 {
		delete(st.Anchors, path)
	}
}

const stateFile = "state.json"

// Load reads the fake kernel state from dir; a missing file is Stock().
func Load(dir string) (State, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return Stock(), nil
	}
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, fmt.Errorf("fake pfctl state %s: %w", dir, err)
	}
	if st.Anchors == nil {
		st.Anchors = map[string]*Anchor{}
	}
	return st, nil
}

// Save writes the fake kernel state to dir.
func Save(dir string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, stateFile))
}

// Setup gives the test a fresh fake kernel holding st and points
// FAKE_PFCTL_STATE at it (so the test cannot run in parallel). It returns
// the state directory.
func Setup(t testing.TB, st State) string {
	t.Helper()
	dir := t.TempDir()
	if err := Save(dir, st); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvState, dir)
	return dir
}

// MustLoad is Load for tests.
func MustLoad(t testing.TB, dir string) State {
	t.Helper()
	st, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// AddRef records an enable reference taken by another program (pfd,
// socketfilterfw) and enables pf, as that program's `pfctl -E` would.
func (st *State) AddRef(pid int, name string, now time.Time) string {
	st.Seq++
	tok := Token(st.Seq)
	st.Refs = append([]Ref{{PID: pid, Name: name, Token: tok, Taken: now}}, st.Refs...)
	if !st.Enabled {
		st.Enabled, st.Since = true, now
	}
	return tok
}

// HasToken reports whether tok is a live enable reference.
func (st State) HasToken(tok string) bool {
	return slices.ContainsFunc(st.Refs, func(r Ref) bool { return r.Token == tok })
}

// Token returns the n-th token the fake hands out: a 64-bit number like the
// kernel's (which hashes a kernel address), derived with splitmix64 so runs
// are reproducible.
func Token(n uint64) string {
	z := n*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return fmt.Sprint(z)
}
