package sources

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func entries(t *testing.T, ss ...string) []Entry {
	t.Helper()
	var out []Entry
	for _, s := range ss {
		e, err := ParseEntry(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestEditLocalKeepsEverythingElse(t *testing.T) {
	dir := t.TempDir()
	path, lock := filepath.Join(dir, "allowlist.local"), filepath.Join(dir, "lock")
	// Windows line endings, a comment, a bad line, no final newline.
	before := "# mine\r\nExample.com. # docs\r\n\r\nnot a host!\r\n10.1.0.0/16\r\n!gist.github.com"
	if err := os.WriteFile(path, []byte(before), 0o640); err != nil {
		t.Fatal(err)
	}
	ed, err := EditLocal(context.Background(), path, lock,
		entries(t, "example.com", "pypi.org", "*.pythonhosted.org", "gist.github.com"), entries(t, "10.1.0.0/16", "192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# mine\r\nExample.com. # docs\r\n\r\nnot a host!\r\npypi.org\r\n*.pythonhosted.org\r\ngist.github.com\r\n"
	if string(got) != want {
		t.Errorf("file:\n%q\nwant\n%q", got, want)
	}
	if !slices.Equal(ed.Added, []string{"pypi.org", "*.pythonhosted.org", "gist.github.com"}) ||
		!slices.Equal(ed.Already, []string{"example.com"}) ||
		!slices.Equal(ed.Removed, []string{"10.1.0.0/16", "!gist.github.com"}) ||
		!slices.Equal(ed.Missing, []string{"192.0.2.1"}) {
		t.Errorf("edit = %+v", ed)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
	// Nothing to do: the file is not rewritten.
	ed, err = EditLocal(context.Background(), path, lock, entries(t, "pypi.org"), nil)
	if err != nil || ed.Changed() {
		t.Errorf("a second add of the same entry: %+v, %v", ed, err)
	}
}

func TestEditLocalDenyReplacesTheAllow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "allowlist.local") // directory created
	if _, err := EditLocal(context.Background(), path, filepath.Join(dir, "lock"), entries(t, "gist.github.com"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := EditLocal(context.Background(), path, filepath.Join(dir, "lock"), entries(t, "!gist.github.com"), nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "!gist.github.com\n" {
		t.Errorf("file = %q", got)
	}
}

func TestEditLocalAtOnceLosesNoLine(t *testing.T) {
	dir := t.TempDir()
	path, lock := filepath.Join(dir, "allowlist.local"), filepath.Join(dir, "lock")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			e, _ := ParseEntry(fmt.Sprintf("h%d.example.com", i))
			if _, err := EditLocal(context.Background(), path, lock, []Entry{e}, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ := os.ReadFile(path)
	for i := range 20 {
		if !slices.Contains(splitLines(string(got)), fmt.Sprintf("h%d.example.com", i)) {
			t.Errorf("line h%d.example.com lost:\n%s", i, got)
		}
	}
}

func splitLines(s string) []string { return strings.Split(s, "\n") }

func TestEditLocalFollowsALinkAndToleratesAByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", "allowlist.local")
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(real, []byte("\ufeffpypi.org\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "allowlist.local")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	ed, err := EditLocal(context.Background(), link, filepath.Join(dir, "lock"), entries(t, "pypi.org", "files.pythonhosted.org"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ed.Already, []string{"pypi.org"}) {
		t.Errorf("edit = %+v: the first entry, after a byte order mark, was not recognised", ed)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file (%v)", err)
	}
	if got, _ := os.ReadFile(real); string(got) != "\ufeffpypi.org\nfiles.pythonhosted.org\n" {
		t.Errorf("the linked file = %q", got)
	}
}

func TestLocalFileWithAByteOrderMarkBeforeAComment(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "allowlist.local")
	if err := os.WriteFile(path, []byte("\ufeff# my list\r\npypi.org\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := fetchLocal(context.Background(), Env{LocalFile: path})
	if err != nil || !slices.Equal(res.Hosts, []string{"pypi.org"}) {
		t.Errorf("fetchLocal = %+v, %v", res, err)
	}
}
