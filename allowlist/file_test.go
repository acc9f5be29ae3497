package allowlist_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/sources"
)

func report(t *testing.T) *allowlist.Report {
	t.Helper()
	set, err := allowlist.Merge(prefixes("2606:50c0::/32", "192.30.252.0/22", "140.82.112.0/20", "140.82.112.33/32", "160.79.104.10/32"))
	if err != nil {
		t.Fatal(err)
	}
	return &allowlist.Report{
		Sources: []allowlist.SourceReport{
			{Name: "github", Required: true, Prefixes: 4, Elapsed: 412 * time.Millisecond},
			{Name: "anthropic", Required: true, Addrs: 1, Hosts: []allowlist.HostReport{{Host: "api.anthropic.com"}}, Elapsed: 35 * time.Millisecond},
			{Name: "sentry", Warnings: []string{"fetching: HTTP 503\nService Unavailable"}, Elapsed: 1200 * time.Millisecond},
			{Name: "local", Prefixes: 1, Notes: []string{"kept 10.1.0.0/16 (private network, RFC 1918) because you wrote it in /x"}},
		},
		Entries:   6,
		Set:       set,
		Prefixes:  set.Prefixes(),
		Generated: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
	}
}

func TestRenderWritesACommentHeaderAndOneCIDRPerLine(t *testing.T) {
	got, err := allowlist.Render(report(t))
	if err != nil {
		t.Fatal(err)
	}
	want := `# claudecontainer allowlist, written by ` + "`mage allowlist`" + `: one CIDR per line.
# Changes here are lost on the next run; add your own entries to the local allowlist file (CLAUDECONTAINER_LOCAL_FILE).
# generated 2026-03-04T05:06:07Z: 6 entries merged into 4 CIDRs (3 IPv4, 1 IPv6)
# github     4 prefixes (412ms)
# anthropic  1 address from 1 host (35ms)
# sentry     0 prefixes with warnings (1.2s)
#   warning: fetching: HTTP 503 Service Unavailable
# local      1 prefix (0s)
#   note: kept 10.1.0.0/16 (private network, RFC 1918) because you wrote it in /x
140.82.112.0/20
160.79.104.10/32
192.30.252.0/22
2606:50c0::/32
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}
}

func TestAFailedSourceIsShownWithItsErrors(t *testing.T) {
	s := allowlist.SourceReport{Name: "npm", Required: true, Hosts: []allowlist.HostReport{{Host: "registry.npmjs.org"}},
		Err: errors.Join(errors.New("host registry.npmjs.org: name does not exist"), errors.New("gave no usable entry"))}
	want := []string{
		"npm        0 addresses from 1 host FAILED (0s)",
		"  error: host registry.npmjs.org: name does not exist",
		"  error: gave no usable entry",
	}
	if diff := cmp.Diff(want, s.Lines()); diff != "" {
		t.Errorf("Lines (-want +got):\n%s", diff)
	}
}

func TestLinesTurnControlCharactersIntoSpaces(t *testing.T) {
	s := allowlist.SourceReport{Name: "sentry",
		Warnings: []string{"fetching: 503 Service\r\nUnavailable\x1b[2J\u009b2J\x7f"},
		Notes:    []string{"kept\t10.1.0.0/16"}}
	want := []string{
		"sentry     0 prefixes with warnings (0s)",
		"  warning: fetching: 503 Service  Unavailable [2J 2J ",
		"  note: kept 10.1.0.0/16",
	}
	if diff := cmp.Diff(want, s.Lines()); diff != "" {
		t.Errorf("Lines (-want +got):\n%s", diff)
	}
}

func TestRenderRefusesAnEmptyAllowlist(t *testing.T) {
	empty, _ := allowlist.Merge(nil)
	for name, rep := range map[string]*allowlist.Report{
		"no report":    nil,
		"no set":       {},
		"an empty set": {Set: empty},
	} {
		t.Run(name, func(t *testing.T) {
			if b, err := allowlist.Render(rep); err == nil {
				t.Errorf("Render gave %q", b)
			}
		})
	}
}

func TestARenderedFileReadsBackAsTheSameSet(t *testing.T) {
	rep := report(t)
	b, err := allowlist.Render(rep)
	if err != nil {
		t.Fatal(err)
	}
	set, err := allowlist.ParseFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if !set.Equal(rep.Set) {
		t.Errorf("read back %v, want %v", set.Prefixes(), rep.Prefixes)
	}
}

func TestParseFileRefusesAnythingButCommentsAndCanonicalCIDRs(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"an empty file", "", "the file is empty"},
		{"a truncated last line", "# x\n140.82.112.0/20\n192.30.25", "the last line has no newline at its end: the file is truncated"},
		{"only comments", "# x\n# y\n", "the file holds no CIDR"},
		{"an empty line", "# x\n\n140.82.112.0/20\n", "line 2: empty line"},
		{"a bare address", "# x\n140.82.112.0/20\n160.79.104.10\n", `line 3: "160.79.104.10" is not a CIDR`},
		{"a host name", "github.com\n", `line 1: "github.com" is not a CIDR`},
		{"a comment after an entry", "140.82.112.0/20 # github\n", `line 1: "140.82.112.0/20 # github" is not a CIDR`},
		{"leading space", " 140.82.112.0/20\n", `line 1: " 140.82.112.0/20" is not a CIDR`},
		{"a carriage return", "140.82.112.0/20\r\n", `line 1: "140.82.112.0/20\r" is not a CIDR`},
		{"a pf negation", "!140.82.112.0/20\n", `line 1: "!140.82.112.0/20" is not a CIDR`},
		{"host bits", "140.82.112.9/20\n", "line 1: 140.82.112.9/20 has host bits set; want 140.82.112.0/20"},
		{"upper-case IPv6", "2606:50C0::/32\n", `line 1: "2606:50C0::/32" is not written canonically; want 2606:50c0::/32`},
		{"IPv4-mapped", "::ffff:140.82.112.0/116\n", "line 1: ::ffff:140.82.112.0/116 is IPv4-mapped; want 140.82.112.0/20"},
		{"a default route", "0.0.0.0/0\n", "line 1: 0.0.0.0/0 is too broad (shorter than /8)"},
		{"a broad IPv6 prefix", "2000::/3\n", "line 1: 2000::/3 is too broad (shorter than /19)"},
		{"a zone", "fe80::1%en0/128\n", `line 1: "fe80::1%en0/128" is not a CIDR`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := allowlist.ParseFile([]byte(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %s", err, tt.want)
			}
			if set != nil {
				t.Errorf("ParseFile returned a set with an error")
			}
		})
	}
}

func TestFreshReportsAYoungReadableFile(t *testing.T) {
	good, err := allowlist.Render(report(t))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tests := []struct {
		name     string
		contents []byte // nil: no file
		mtime    time.Time
		want     bool
	}{
		{"a file written a minute ago", good, now.Add(-time.Minute), true},
		{"a file written two hours ago", good, now.Add(-2 * time.Hour), false},
		{"no file", nil, now, false},
		{"a young file that does not parse", []byte("# x\n"), now.Add(-time.Minute), false},
		{"a file dated in the future", good, now.Add(time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "allowed")
			if tt.contents != nil {
				if err := os.WriteFile(path, tt.contents, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chtimes(path, tt.mtime, tt.mtime); err != nil {
					t.Fatal(err)
				}
			}
			if got := allowlist.Fresh(path, time.Hour); got != tt.want {
				t.Errorf("Fresh = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLoadReadsTheFileUpdateWrote(t *testing.T) {
	path := oldFile(t)
	srcs := []sources.Source{{Name: "static", Prefixes: []string{"140.82.112.0/20", "2a0a:a440::/29"}}}
	rep, err := allowlist.Update(context.Background(), srcs, options(&fakeResolver{}), path)
	if err != nil {
		t.Fatal(err)
	}
	set, err := allowlist.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !set.Equal(rep.Set) {
		t.Errorf("Load = %v, want %v", set.Prefixes(), rep.Prefixes)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}
}

func TestUpdateRefusesToReplaceAFileThatIsNotAnAllowlist(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string) // creates what stands at path
		want string                          // in the error
	}{
		{"a pf ruleset", writeText("# pf.conf\nset skip on lo0\nanchor \"com.apple/*\"\n"),
			`line 2 ("set skip on lo0") is not an address or CIDR, so it is not an allowlist file; point the allowlist file setting (CLAUDECONTAINER_ALLOWLIST_FILE) elsewhere`},
		{"a hosts file", writeText("127.0.0.1\tlocalhost\n::1 localhost\n"),
			`line 1 ("127.0.0.1 localhost") is not an address or CIDR`},
		{"a directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, "it is not a regular file of an allowlist's size; point the allowlist file setting (CLAUDECONTAINER_ALLOWLIST_FILE) elsewhere or remove it"},
		{"a named pipe, which is refused without being read", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o644); err != nil {
				t.Fatal(err)
			}
		}, "it is not a regular file of an allowlist's size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "allowed_destinations")
			tt.make(t, path)
			before, _ := os.Lstat(path)
			var beforeData []byte
			if before.Mode().IsRegular() {
				beforeData, _ = os.ReadFile(path)
			}
			srcs := []sources.Source{{Name: "feed", Required: true, Fetch: func(context.Context, sources.Env) (sources.Result, error) {
				t.Error("a source was fetched although the file may not be replaced")
				return sources.Result{Prefixes: prefixes("140.82.112.0/20")}, nil
			}}}
			rep, err := allowlist.Update(context.Background(), srcs, options(&fakeResolver{}), path)
			if err == nil || !strings.Contains(err.Error(), "not replacing "+path+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant one containing %s", err, tt.want)
			}
			if rep != nil {
				t.Errorf("a report came back although nothing ran")
			}
			after, _ := os.Lstat(path)
			if after.Mode() != before.Mode() {
				t.Errorf("mode changed from %v to %v", before.Mode(), after.Mode())
			}
			if before.Mode().IsRegular() {
				if b, _ := os.ReadFile(path); !bytes.Equal(b, beforeData) {
					t.Errorf("the file changed to %q", b)
				}
			}
		})
	}
}

func TestUpdateReplacesAnEmptyFileOrAnOldAllowlist(t *testing.T) {
	for name, old := range map[string]string{
		"an empty file":                         "",
		"the old shell tool's file":             "140.82.112.0/20\n192.30.252.0/22\n2606:50c0::/32\n",
		"bare addresses, comments, blank lines": "# old\n160.79.104.10 # api\n\n  2607:6bc0::10\n",
		"a file without a final newline":        "# old\n140.82.112.0/20",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "allowed_destinations")
			writeText(old)(t, path)
			srcs := []sources.Source{{Name: "static", Prefixes: []string{"185.199.108.0/22"}}}
			if _, err := allowlist.Update(context.Background(), srcs, options(&fakeResolver{}), path); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"185.199.108.0/22"}, cidrs(t, path)); diff != "" {
				t.Errorf("file (-want +got):\n%s", diff)
			}
		})
	}
}

func writeText(text string) func(t *testing.T, path string) {
	return func(t *testing.T, path string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
