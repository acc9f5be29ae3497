package allowlist_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/VerilyPete/claudecontainer/resolve"
)

// fakeResolver answers from a table: a host maps to addresses, or to an
// error when its entry is nil. It counts how often each host was asked.
type fakeResolver struct {
	hosts map[string][]string
	mu    sync.Mutex
	asked map[string]int
}

func (f *fakeResolver) LookupAll(ctx context.Context, hosts []string) []resolve.Answer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.asked == nil {
		f.asked = map[string]int{}
	}
	out := make([]resolve.Answer, len(hosts))
	for i, h := range hosts {
		f.asked[h]++
		out[i].Host = h
		addrs := f.hosts[h]
		if addrs == nil {
			out[i].Err = errors.New("resolve " + h + ": " + resolve.ErrNotExist.Error())
			continue
		}
		for _, a := range addrs {
			out[i].Addrs = append(out[i].Addrs, netip.MustParseAddr(a))
		}
	}
	return out
}

// oldContents is what every test's allowlist file holds before the run.
const oldContents = "# an earlier run\n192.30.252.0/22\n"

// oldFile returns the path of an allowlist file holding oldContents.
func oldFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "allowed_destinations")
	if err := os.WriteFile(path, []byte(oldContents), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// assertUnchanged fails the test unless path still holds oldContents, byte
// for byte, and nothing else was left in its directory.
func assertUnchanged(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != oldContents {
		t.Errorf("the allowlist file changed to:\n%s", b)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("the directory holds %d entries, want only the file", len(ents))
	}
}

// cidrs returns the CIDR lines of an allowlist file.
func cidrs(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// comments returns the comment lines of an allowlist file.
func comments(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
