//go:build linux

package nft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

// fakeRunner answers the backend's commands from a function and records
// them. The listing it returns by default is testdata/live-dual-stack.json,
// a real `nft -j list table` of nftables 1.0.6 after loading the dual-stack
// golden file and a small allowlist (loadedSet below).
type fakeRunner struct {
	t     *testing.T
	calls []string
	stdin []string
	reply func(argv string, stdin string) (string, error)
}

func (f *fakeRunner) Run(_ context.Context, c proc.Cmd) (proc.Result, error) {
	if !c.Privileged {
		f.t.Errorf("%s runs unprivileged", c)
	}
	argv := strings.Join(append([]string{c.Name}, c.Args...), " ")
	f.calls = append(f.calls, argv)
	f.stdin = append(f.stdin, string(c.Stdin))
	out, err := f.reply(argv, string(c.Stdin))
	return proc.Result{Stdout: []byte(out)}, err
}

func (f *fakeRunner) Interactive(context.Context, proc.Cmd) error {
	f.t.Error("Interactive called")
	return nil
}

func exitErr(argv string, code int, stderr string) error {
	f := strings.Fields(argv)
	return &proc.ExitError{Cmd: proc.Cmd{Name: f[0], Args: f[1:]}, Code: code, Stderr: stderr}
}

func noTable(argv string) error {
	return exitErr(argv, 1, "Error: No such file or directory\nlist table inet claude_firewall\n                ^^^^^^^^^^^^^^^")
}

func liveJSON(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/live-dual-stack.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadedSet is the allowlist testdata/live-dual-stack.json holds.
func loadedSet(t *testing.T) *netipx.IPSet {
	return prefixSet(t, "140.82.112.0/20", "160.79.104.0/23", "34.120.214.181/32",
		"10.0.1.0/24", "10.0.2.0/23", "2606:50c0::/32", "2607:6bc0::/48")
}

func newBackend(t *testing.T, f *fakeRunner) *Backend {
	t.Helper()
	b, err := New(f, Config{SetPrefix: "allowed_destinations", StateDir: filepath.Join(t.TempDir(), "state")})
	if err != nil {
		t.Fatal(err)
	}
	b.now = func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	return b
}

func TestUpReloadsInPlaceInOneTransactionAndRecordsTheState(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) {
		if argv == "nft -j list table inet claude_firewall" {
			return liveJSON(t), nil
		}
		return "", nil
	}}
	b := newBackend(t, f)
	p := goldenPolicies(t)["dual-stack"]
	if err := b.Up(context.Background(), p, loadedSet(t)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"nft -f -", "nft -j list table inet claude_firewall"}, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	script := f.stdin[0]
	golden, _ := os.ReadFile("testdata/dual-stack.golden")
	if !strings.HasPrefix(script, string(golden)) {
		t.Errorf("the script does not start with the rendered table")
	}
	tail := strings.TrimPrefix(script, string(golden))
	want := "flush set inet claude_firewall allowed_destinations_v4\n" +
		"flush set inet claude_firewall allowed_destinations_v6\n" +
		"add element inet claude_firewall allowed_destinations_v4 { 10.0.1.0/24, 10.0.2.0/23, 34.120.214.181/32, 140.82.112.0/20, 160.79.104.0/23 }\n" +
		"add element inet claude_firewall allowed_destinations_v6 { 2606:50c0::/32, 2607:6bc0::/48 }\n"
	if diff := cmp.Diff(want, tail); diff != "" {
		t.Errorf("set statements after the table (-want +got):\n%s", diff)
	}
	st, err := b.ReadState()
	if err != nil {
		t.Fatal(err)
	}
	if st.Table != DefaultTable || st.Policy.Network != p.Network || !st.Loaded.Equal(b.now()) {
		t.Errorf("state: %+v", st)
	}
}

func TestUpReplacesTheWholeTableWhenTheReloadInPlaceFails(t *testing.T) {
	f := &fakeRunner{t: t}
	f.reply = func(argv, stdin string) (string, error) {
		switch {
		case argv == "nft -f -" && strings.Contains(stdin, "\nflush table inet claude_firewall\n"):
			return "", exitErr(argv, 1, "Error: Could not process rule: Operation not supported")
		case argv == "nft -f -":
			if !strings.Contains(stdin, "\ndelete table inet claude_firewall\n") {
				t.Errorf("the second script does not delete the table:\n%s", stdin)
			}
			return "", nil
		case argv == "nft -j list table inet claude_firewall":
			return liveJSON(t), nil
		}
		return "", fmt.Errorf("unexpected %s", argv)
	}
	b := newBackend(t, f)
	if err := b.Up(context.Background(), goldenPolicies(t)["dual-stack"], loadedSet(t)); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 3 {
		t.Errorf("calls: %q", f.calls)
	}
}

// withoutIngress returns the live listing of testdata without the ingress
// chain and its rules, as the kernel lists a table loaded without it.
func withoutIngress(t *testing.T) string {
	t.Helper()
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(liveJSON(t)), &doc); err != nil {
		t.Fatal(err)
	}
	var kept []map[string]json.RawMessage
	for _, obj := range doc.Nftables {
		var c struct{ Name, Chain string }
		for _, k := range []string{"chain", "rule"} {
			if raw, ok := obj[k]; ok {
				json.Unmarshal(raw, &c)
			}
		}
		if c.Name == chainIngress || c.Chain == chainIngress {
			continue
		}
		kept = append(kept, obj)
	}
	doc.Nftables = kept
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestUpLoadsWithoutTheIngressChainWhenTheKernelRefusesIt follows a kernel
// that attaches an ingress hook only to a device that exists (before named
// netdev hooks): the bridge of a podman network appears with its first
// container, so the first Up must still succeed, say what it lacks, and
// keep every other rule.
func TestUpLoadsWithoutTheIngressChainWhenTheKernelRefusesIt(t *testing.T) {
	f := &fakeRunner{t: t}
	f.reply = func(argv, stdin string) (string, error) {
		switch {
		case argv == "nft -f -" && strings.Contains(stdin, "hook ingress"):
			return "", exitErr(argv, 1, "/dev/stdin:40:2-15: Error: Could not process rule: No such file or directory\n\tchain ingress {\n\t^^^^^^^^^^^^^^")
		case argv == "nft -f -":
			if !strings.Contains(stdin, "hook prerouting priority -450") {
				t.Errorf("the fallback lost the prerouting chain:\n%s", stdin)
			}
			return "", nil
		case argv == "nft -j list table inet claude_firewall":
			return withoutIngress(t), nil
		case strings.HasPrefix(argv, "nft -t list table"):
			return "", nil
		}
		return "", fmt.Errorf("unexpected %s", argv)
	}
	b := newBackend(t, f)
	if err := b.Up(context.Background(), goldenPolicies(t)["dual-stack"], loadedSet(t)); err != nil {
		t.Fatal(err)
	}
	st, err := b.ReadState()
	if err != nil || !st.NoIngress {
		t.Fatalf("state: %+v, %v", st, err)
	}
	var ingress *firewall.Check
	checks := b.Status(context.Background())
	for i, c := range checks {
		if strings.Contains(c.What, "ingress") {
			ingress = &checks[i]
		} else if !c.OK {
			t.Errorf("status: %+v", c)
		}
	}
	if ingress == nil || ingress.OK || !strings.Contains(ingress.Detail, "hop-by-hop") {
		t.Errorf("status does not report the missing ingress chain: %+v", checks)
	}

	// A load refused for another reason is no cause to drop the chain.
	f.reply = func(argv, stdin string) (string, error) {
		if argv == "nft -f -" {
			return "", exitErr(argv, 1, "Error: Could not process rule: Operation not supported")
		}
		return "", nil
	}
	before := len(f.stdin)
	if err := b.Up(context.Background(), goldenPolicies(t)["dual-stack"], loadedSet(t)); err == nil {
		t.Error("Up succeeded although every load failed")
	}
	for _, script := range f.stdin[before:] {
		if script != "" && !strings.Contains(script, "hook ingress") {
			t.Errorf("after a refusal that was not the ingress chain's, Up tried a script without it:\n%.300s", script)
		}
	}
}

func TestUpFailsWhenTheLiveTableDiffersFromWhatItLoaded(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) {
		if argv == "nft -j list table inet claude_firewall" {
			return liveJSON(t), nil
		}
		return "", nil
	}}
	b := newBackend(t, f)
	err := b.Up(context.Background(), goldenPolicies(t)["dual-stack"], prefixSet(t, "198.18.0.0/15"))
	if err == nil || !strings.Contains(err.Error(), "set allowed_destinations_v4 holds 4 ranges that differ") {
		t.Errorf("Up: %v", err)
	}
	if _, err := b.ReadState(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed Up recorded a state: %v", err)
	}
}

func TestReplaceAndAddReturnErrNotUpWithoutOurTable(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) {
		switch argv {
		case "nft -f -":
			return "", exitErr(argv, 1, "Error: Could not process rule: No such file or directory")
		case "nft -t list table inet claude_firewall":
			return "", noTable(argv)
		}
		return "", fmt.Errorf("unexpected %s", argv)
	}}
	b := newBackend(t, f)
	ctx := context.Background()
	if err := b.Replace(ctx, loadedSet(t)); err != firewall.ErrNotUp {
		t.Errorf("Replace: %v, want ErrNotUp", err)
	}
	if err := b.Add(ctx, []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15")}); err != firewall.ErrNotUp {
		t.Errorf("Add: %v, want ErrNotUp", err)
	}
}

func TestReplaceFlushesAndRefillsBothSetsInOneTransaction(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) {
		if argv == "nft -j list table inet claude_firewall" {
			return liveJSON(t), nil
		}
		return "", nil
	}}
	b := newBackend(t, f)
	if err := b.Replace(context.Background(), loadedSet(t)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(f.stdin[0]), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "flush set inet claude_firewall allowed_destinations_v4") ||
		!strings.HasPrefix(lines[1], "flush set inet claude_firewall allowed_destinations_v6") {
		t.Errorf("script:\n%s", f.stdin[0])
	}
}

func TestAddRefusesInvalidPrefixesAndSkipsEmptyWork(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) { return "", nil }}
	b := newBackend(t, f)
	ctx := context.Background()
	if err := b.Add(ctx, []netip.Prefix{{}}); err == nil {
		t.Error("Add of an invalid prefix passed")
	}
	if err := b.Add(ctx, nil); err != nil {
		t.Errorf("Add of nothing: %v", err)
	}
	if err := b.Add(ctx, []netip.Prefix{netip.MustParsePrefix("203.0.113.7/24")}); err != nil {
		t.Fatal(err)
	}
	want := "add element inet claude_firewall allowed_destinations_v4 { 203.0.113.0/24 }\n"
	if diff := cmp.Diff([]string{want}, f.stdin); diff != "" {
		t.Errorf("scripts (-want +got):\n%s", diff)
	}
}

func TestNoChangeAllowlistsEveryAddress(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) { return "", nil }}
	b := newBackend(t, f)
	ctx := context.Background()
	halves := prefixSet(t, "0.0.0.0/1", "128.0.0.0/1") // together every IPv4 address
	if err := b.Up(ctx, propertyPolicy(t), halves); err == nil {
		t.Error("Up with every IPv4 address passed")
	}
	if err := b.Replace(ctx, prefixSet(t, "198.18.0.0/15", "::/0")); err == nil {
		t.Error("Replace with every IPv6 address passed")
	}
	if err := b.Add(ctx, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/1"), netip.MustParsePrefix("128.0.0.0/1")}); err == nil {
		t.Error("Add of every IPv4 address passed")
	}
	if len(f.calls) != 0 {
		t.Errorf("ran %q", f.calls)
	}
}

func TestAddUsesTheSetPrefixUpRecorded(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) {
		if argv == "nft -j list table inet claude_firewall" {
			return strings.ReplaceAll(liveJSON(t), "allowed_destinations", "claude_allow"), nil
		}
		return "", nil
	}}
	b := newBackend(t, f)
	p := goldenPolicies(t)["dual-stack"]
	p.Table = "claude_allow"
	if err := b.Up(context.Background(), p, loadedSet(t)); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(context.Background(), []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}); err != nil {
		t.Fatal(err)
	}
	if got := f.stdin[len(f.stdin)-1]; got != "add element inet claude_firewall claude_allow_v6 { 2001:db8::/32 }\n" {
		t.Errorf("Add script: %q", got)
	}
}

func writeState(t *testing.T, b *Backend, st State) {
	t.Helper()
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(b.cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.cfg.StateDir, StateFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDownDeletesOurTablesForgetsConnectionsAndTheState(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) {
		if strings.HasPrefix(argv, "conntrack") {
			return "", exitErr(argv, 1, "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.")
		}
		return "", nil
	}}
	b := newBackend(t, f)
	p := goldenPolicies(t)["dual-stack"]
	writeState(t, b, State{Table: "old_firewall", Policy: p})
	if err := b.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"nft delete table inet claude_firewall",
		"nft delete table inet old_firewall",
		"conntrack -D -f ipv4 -s 192.168.218.0/24",
		"conntrack -D -f ipv6 -s fd00:c1a0:de::/64",
	}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if _, err := b.ReadState(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state after Down: %v", err)
	}
}

func TestDownSucceedsWhenNothingIsLoadedAndConntrackIsMissing(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) {
		switch {
		case strings.HasPrefix(argv, "nft delete"):
			return "", exitErr(argv, 1, "Error: Could not process rule: No such file or directory")
		case strings.HasPrefix(argv, "nft -t list"):
			return "", noTable(argv)
		case strings.HasPrefix(argv, "conntrack"):
			return "", fmt.Errorf("%s: %w (is it installed and on PATH?)", argv, exec.ErrNotFound)
		}
		return "", fmt.Errorf("unexpected %s", argv)
	}}
	b := newBackend(t, f)
	writeState(t, b, State{Table: DefaultTable, Policy: goldenPolicies(t)["ipv4-only"]})
	if err := b.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Down(context.Background()); err != nil {
		t.Fatalf("a second Down: %v", err)
	}
}

// TestForgetTellsAMissingConntrackFromAFailure feeds forget the ways a
// conntrack run ends. Those that mean the tool is not installed, run
// directly (as root) or through sudo (as a user), make it do nothing; the
// messages are those of sudo 1.9.13p3 (Debian 12) and sudo-rs 0.2
// (src/common/error.rs) with LC_ALL=C, as proc runs them.
func TestForgetTellsAMissingConntrackFromAFailure(t *testing.T) {
	const argv = "conntrack -D -f ipv4 -s 192.168.218.0/24"
	for _, c := range []struct {
		name    string
		err     error
		calls   int // conntrack runs: one per family unless it is missing
		wantErr bool
	}{
		{"deleted", nil, 2, false},
		{"nothing to delete", exitErr(argv, 1, "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted."), 2, false},
		{"missing, run directly", fmt.Errorf("%s: %w (is it installed and on PATH?)", argv, exec.ErrNotFound), 1, false},
		{"missing, run through sudo", exitErr(argv, 1, "sudo: conntrack: command not found"), 1, false},
		{"missing, run through sudo-rs", exitErr(argv, 1, "sudo: 'conntrack': command not found"), 1, false},
		{"sudo wants a password", exitErr(argv, 1, "sudo: a password is required"), 2, true},
		{"sudo cannot find another program", exitErr(argv, 1, "sudo: nft: command not found"), 2, true},
		{"conntrack fails", exitErr(argv, 1, "conntrack v1.4.7 (conntrack-tools): Operation failed: Operation not permitted"), 2, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeRunner{t: t, reply: func(string, string) (string, error) { return "", c.err }}
			err := newBackend(t, f).forget(context.Background(), goldenPolicies(t)["dual-stack"].Network)
			if (err != nil) != c.wantErr {
				t.Errorf("forget: %v, want an error: %v", err, c.wantErr)
			}
			if len(f.calls) != c.calls {
				t.Errorf("conntrack ran %d times, want %d: %q", len(f.calls), c.calls, f.calls)
			}
		})
	}
}

// TestDownAsAUserSucceedsWhenSudoCannotFindConntrack runs Down as a user
// would (proc.Exec with a non-zero effective uid, so every command goes
// through sudo) on a machine without the conntrack tool. A script named sudo
// stands in for sudo 1.9.13p3 (Debian 12): it deletes nothing, runs no
// program, and prints for conntrack what the real one prints when no
// directory of its secure_path holds the program, with exit status 1.
// Not parallel: it puts the script first on PATH.
func TestDownAsAUserSucceedsWhenSudoCannotFindConntrack(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh for the sudo stand-in")
	}
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	sudo := `#!/bin/sh
[ "$1" = -- ] && shift
echo "$*" >>"$SUDO_CALLS"
case "$1" in
conntrack) echo "sudo: $1: command not found" >&2; exit 1 ;;
nft) exit 0 ;;
esac
echo "sudo stand-in: unexpected $*" >&2
exit 2
`
	if err := os.WriteFile(filepath.Join(dir, "sudo"), []byte(sudo), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("SUDO_CALLS", calls)

	b, err := New(proc.Exec{Euid: func() int { return 1000 }}, Config{StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	writeState(t, b, State{Table: DefaultTable, Policy: goldenPolicies(t)["dual-stack"]})
	if err := b.Down(context.Background()); err != nil {
		t.Fatalf("Down: %v", err)
	}
	if _, err := b.ReadState(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state after Down: %v", err)
	}
	got, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"nft delete table inet claude_firewall",
		"conntrack -D -f ipv4 -s 192.168.218.0/24",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(string(got)), "\n")); diff != "" {
		t.Errorf("commands run through sudo (-want +got):\n%s", diff)
	}
}

func TestDownKeepsTheStateWhenOurTableCannotBeDeleted(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) {
		if strings.HasPrefix(argv, "nft delete") {
			return "", exitErr(argv, 1, "Error: Could not process rule: Operation not permitted")
		}
		return "", nil // the table is still listed
	}}
	b := newBackend(t, f)
	writeState(t, b, State{Table: DefaultTable, Policy: goldenPolicies(t)["ipv4-only"]})
	err := b.Down(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Errorf("Down: %v", err)
	}
	if _, err := b.ReadState(); err != nil {
		t.Errorf("the state is gone after a failed Down: %v", err)
	}
	for _, c := range f.calls {
		if strings.HasPrefix(c, "conntrack") {
			t.Errorf("Down forgot connections although the table is still there: %s", c)
		}
	}
}

func TestIsUpTellsAMissingTableFromAFailure(t *testing.T) {
	for _, c := range []struct {
		name    string
		err     error
		up      bool
		wantErr bool
	}{
		{"loaded", nil, true, false},
		{"not loaded", noTable("nft -t list table inet claude_firewall"), false, false},
		{"no permission", exitErr("nft -t list table inet claude_firewall", 1, "Error: Operation not permitted"), false, true},
		{"nft missing", fmt.Errorf("nft: %w", exec.ErrNotFound), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeRunner{t: t, reply: func(string, string) (string, error) { return "", c.err }}
			up, err := newBackend(t, f).IsUp(context.Background())
			if up != c.up || (err != nil) != c.wantErr {
				t.Errorf("IsUp: %v, %v", up, err)
			}
		})
	}
}

func TestStatusChecksTheLiveTableAgainstTheRecord(t *testing.T) {
	p := goldenPolicies(t)["dual-stack"]
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) {
		if argv == "nft -j list table inet claude_firewall" {
			return liveJSON(t), nil
		}
		return "", nil
	}}
	b := newBackend(t, f)
	writeState(t, b, State{Table: DefaultTable, Policy: p, Loaded: b.now()})
	var got []string
	for _, c := range b.Status(context.Background()) {
		got = append(got, fmt.Sprintf("%v %s: %s", c.OK, c.What, c.Detail))
	}
	want := []string{
		"true nftables table inet claude_firewall loaded: loaded",
		"true state recorded: network claude (192.168.218.0/24) loaded at 2026-03-01T12:00:00Z",
		"true rules present: chains as rendered",
		"true made-up sources dropped on podman1's ingress: before the host parses the packet",
		"true allowlist set allowed_destinations_v4: 4 ranges",
		"true allowlist set allowed_destinations_v6: 2 ranges",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}

	// The record says IPv4 only: the live table has an IPv6 rule too many.
	writeState(t, b, State{Table: DefaultTable, Policy: goldenPolicies(t)["ipv4-only"]})
	for _, c := range b.Status(context.Background()) {
		if c.What == "rules present" && (c.OK || c.Fix == "") {
			t.Errorf("rules present for another policy: %+v", c)
		}
	}
}

func TestStatusSaysWhatToDoWhenTheTableIsNotLoaded(t *testing.T) {
	f := &fakeRunner{t: t, reply: func(argv, stdin string) (string, error) { return "", noTable(argv) }}
	checks := newBackend(t, f).Status(context.Background())
	if len(checks) != 1 || checks[0].OK || checks[0].Fix != "run mage up" {
		t.Errorf("status: %+v", checks)
	}
}

func TestParseTableReadsTheRealListing(t *testing.T) {
	lt, err := parseTable([]byte(liveJSON(t)), DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := chains(goldenPolicies(t)["dual-stack"], true)
	if err := lt.checkChains(want, 2); err != nil {
		t.Error(err)
	}
	if err := lt.checkSets("allowed_destinations", loadedSet(t)); err != nil {
		t.Error(err)
	}
	if err := lt.checkSets("allowed_destinations", prefixSet(t, "140.82.112.0/20")); err == nil {
		t.Error("checkSets passed for a different allowlist")
	}
}

func TestParseElemAcceptsEveryFormAndRefusesGarbage(t *testing.T) {
	good := map[string]string{
		`"192.0.2.1"`: "192.0.2.1-192.0.2.1",
		`{"prefix": {"addr": "10.0.0.0", "len": 8}}`:     "10.0.0.0-10.255.255.255",
		`{"range": ["10.0.1.0", "10.0.3.255"]}`:          "10.0.1.0-10.0.3.255",
		`{"elem": {"val": "2001:db8::1", "expires": 5}}`: "2001:db8::1-2001:db8::1",
	}
	for in, want := range good {
		r, err := parseElem(json.RawMessage(in))
		if err != nil || r.String() != want {
			t.Errorf("parseElem(%s) = %v, %v; want %s", in, r, err, want)
		}
	}
	for _, in := range []string{
		`"192.0.2.1; flush ruleset"`,
		`{"prefix": {"addr": "10.0.0.1", "len": 8}}`,
		`{"prefix": {"addr": "10.0.0.0", "len": 33}}`,
		`{"range": ["10.0.3.255", "10.0.1.0"]}`,
		`{"range": ["10.0.0.0", "2001:db8::"]}`,
		`{"concat": ["10.0.0.0", "tcp"]}`,
		`42`,
	} {
		if r, err := parseElem(json.RawMessage(in)); err == nil {
			t.Errorf("parseElem(%s) = %v, want an error", in, r)
		}
	}
}

func TestNewRefusesNamesThatCannotBeRendered(t *testing.T) {
	for _, cfg := range []Config{{Table: "claude firewall"}, {Table: "x", SetPrefix: "a;b"}} {
		if _, err := New(&fakeRunner{t: t}, cfg); err == nil {
			t.Errorf("New(%+v) passed", cfg)
		}
	}
	b, err := New(&fakeRunner{t: t}, Config{})
	if err != nil || b.cfg.Table != DefaultTable || b.Name() != "nftables" {
		t.Errorf("New with defaults: %+v, %v", b, err)
	}
}

func TestReadStateRefusesARecordWithUnsafeNames(t *testing.T) {
	b := newBackend(t, &fakeRunner{t: t})
	p := policy.Policy{Table: "ok"}
	writeState(t, b, State{Table: "bad name", Policy: p})
	if _, err := b.ReadState(); err == nil {
		t.Error("ReadState accepted a table name with a space")
	}
}
