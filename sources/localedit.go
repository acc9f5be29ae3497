package sources

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/internal/flock"
)

// Edit is what EditLocal did.
type Edit struct {
	Added   []string // entries appended
	Removed []string // entries whose lines were taken out (a removal, or an allow and a deny of the same name replacing each other)
	Already []string // entries to add that the file held already
	Missing []string // entries to remove that the file did not hold
}

// Changed reports whether the file was rewritten.
func (e Edit) Changed() bool { return len(e.Added) > 0 || len(e.Removed) > 0 }

// EditLocal changes the local file at path: it appends a line for each
// entry of add the file does not hold, and takes out the lines of the
// entries of remove. Lines are compared by their entry (ParseEntry), so
// "Example.com." and "example.com # note" are the same entry. An allow and a
// deny of the same name replace each other: adding "x" takes out "!x", and
// adding "!x" takes out "x". Everything else (comments, blank lines, lines
// that do not parse, the order, Windows line endings) is kept, and the file
// is replaced atomically. lockPath is locked for the whole edit, so that
// edits made at once lose nothing. A missing file (or directory) is created.
func EditLocal(ctx context.Context, path, lockPath string, add, remove []Entry) (Edit, error) {
	var ed Edit
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return ed, err
	}
	unlock, err := flock.Lock(ctx, lockPath)
	if err != nil {
		return ed, fmt.Errorf("waiting for another edit of %s: %w", path, err)
	}
	defer unlock()
	data, err := os.ReadFile(path)
	perm := fs.FileMode(0o644)
	if err == nil {
		if fi, err := os.Stat(path); err == nil {
			perm = fi.Mode().Perm()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return ed, err
	}
	text := string(data)
	eol := "\n"
	if strings.Contains(text, "\r\n") {
		eol = "\r\n"
	}
	lines := strings.SplitAfter(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	entryOf := func(line string) string {
		before, _, _ := strings.Cut(line, "#")
		e, err := ParseEntry(strings.TrimSpace(before))
		if err != nil || strings.TrimSpace(before) == "" {
			return ""
		}
		return e.String()
	}

	drop := map[string]bool{} // entries whose lines go
	for _, e := range remove {
		drop[e.String()] = true
	}
	for _, e := range add {
		if opposite := oppositeOf(e); opposite != "" {
			drop[opposite] = true
		}
	}
	held := map[string]bool{}
	kept := lines[:0:0]
	for _, l := range lines {
		e := entryOf(l)
		if e != "" && drop[e] {
			ed.Removed = append(ed.Removed, e)
			continue
		}
		if e != "" {
			held[e] = true
		}
		kept = append(kept, l)
	}
	for _, e := range remove {
		if !contains(ed.Removed, e.String()) {
			ed.Missing = append(ed.Missing, e.String())
		}
	}
	for _, e := range add {
		s := e.String()
		if held[s] {
			ed.Already = append(ed.Already, s)
			continue
		}
		if n := len(kept); n > 0 && !strings.HasSuffix(kept[n-1], "\n") {
			kept[n-1] += eol
		}
		kept = append(kept, s+eol)
		held[s] = true
		ed.Added = append(ed.Added, s)
	}
	if !ed.Changed() {
		return ed, nil
	}
	if err := atomicfile.Write(path, []byte(strings.Join(kept, "")), perm); err != nil {
		return Edit{}, fmt.Errorf("writing %s: %w", path, err)
	}
	return ed, nil
}

// oppositeOf returns the entry that e replaces: the deny entry of a name,
// the name of a deny entry; "" for a prefix.
func oppositeOf(e Entry) string {
	switch {
	case e.Prefix.IsValid():
		return ""
	case strings.HasPrefix(e.Name, "!"):
		return e.Name[1:]
	}
	return "!" + e.Name
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
