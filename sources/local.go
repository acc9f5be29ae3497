package sources

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/VerilyPete/claudecontainer/dnsfilter"
	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/internal/flock"
)

func init() {
	Register(Source{
		Name:  "local",
		Doc:   "your own additions: host names, *.domain and !name entries, IPs/CIDRs, one a line, in CLAUDECONTAINER_LOCAL_FILE (absent file: nothing added)",
		Fetch: fetchLocal,
	})
}

// fetchLocal reads the user's file: one entry a line, a host name, an IP
// address or CIDR, "*.domain" (every name under domain, for the DNS filter)
// or "!name" / "!*.domain" (never answered, whatever else allows it); '#'
// starts a comment, and blank lines are skipped. The
// source is optional in that a missing file adds nothing, but a malformed
// line is returned as an error rather than skipped: the user meant something
// by it, and the error names file:line so it can be fixed.
func fetchLocal(ctx context.Context, env Env) (Result, error) {
	res := Result{Literal: true}
	if env.LocalFile == "" {
		return res, nil
	}
	f, err := os.Open(env.LocalFile)
	if errors.Is(err, fs.ErrNotExist) {
		return res, nil
	}
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if n == 1 {
			text = strings.TrimPrefix(text, "\ufeff") // a byte order mark
		}
		line, _, _ := strings.Cut(text, "#")
		entry := strings.TrimSpace(line)
		if entry == "" {
			continue
		}
		where := fmt.Sprintf("%s:%d", env.LocalFile, n)
		e, err := ParseEntry(entry)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", where, err)
		}
		if e.Warning != "" {
			env.warnf("%s: %s", where, e.Warning)
		}
		switch {
		case e.Prefix.IsValid():
			res.Prefixes = append(res.Prefixes, e.Prefix)
		case e.IsDomain():
			res.Domains = append(res.Domains, e.Name)
		default:
			res.Hosts = append(res.Hosts, e.Name)
		}
	}
	if err := sc.Err(); err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", env.LocalFile, err)
	}
	return res, nil
}

// Entry is one entry of the local file.
type Entry struct {
	// Prefix is an address or CIDR entry, masked; invalid for a name.
	Prefix netip.Prefix
	// Name is a host name, "*.domain", "!name" or "!*.domain", lower
	// case and without a trailing dot; "" for a prefix.
	Name string
	// Warning is something to tell about the entry as written (host bits
	// set), or "".
	Warning string
}

// IsDomain reports whether e is an entry for the DNS filter alone: a
// wildcard or a deny entry, which is not resolved.
func (e Entry) IsDomain() bool {
	return strings.HasPrefix(e.Name, "*.") || strings.HasPrefix(e.Name, "!")
}

// String is e as the file holds it.
func (e Entry) String() string {
	if e.Prefix.IsValid() {
		if e.Prefix.Bits() == e.Prefix.Addr().BitLen() {
			return e.Prefix.Addr().String()
		}
		return e.Prefix.String()
	}
	return e.Name
}

// ParseEntry parses one entry of the local file, its comment taken off: a
// host name, an IP address or CIDR, "*.domain", "!name" or "!*.domain".
func ParseEntry(entry string) (Entry, error) {
	// A byte order mark, which some Windows editors put first in a file.
	entry = strings.TrimSpace(strings.TrimPrefix(entry, "\ufeff"))
	if p, err := ParsePrefix(entry); err == nil {
		if p.Bits() == 0 {
			return Entry{}, fmt.Errorf("%q would allow every address; remove it", entry)
		}
		e := Entry{Prefix: p}
		if raw, err := netip.ParsePrefix(entry); err == nil && raw.Masked() != raw {
			e.Warning = fmt.Sprintf("%q has host bits set; using %s", entry, p)
		}
		return e, nil
	}
	host := strings.TrimSuffix(strings.ToLower(entry), ".")
	if strings.HasPrefix(host, "*.") || strings.HasPrefix(host, "!") {
		if _, err := dnsfilter.ParseNames([]string{host}); err != nil {
			return Entry{}, fmt.Errorf("%q: %v; want *.example.com, !name.example.com or !*.example.com", entry, errors.Unwrap(err))
		}
		return Entry{Name: host}, nil
	}
	if !ValidHost(host) {
		return Entry{}, fmt.Errorf("%q is not a host name, IP address or CIDR; want one entry a line, such as example.com, *.example.com, !gist.github.com, 203.0.113.7 or 203.0.113.0/24 (no ports or URLs)", entry)
	}
	return Entry{Name: host}, nil
}

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
// is replaced atomically (a link is followed to the file it names).
// lockPath is locked for the whole edit, so that
// edits made at once lose nothing. A missing file (or directory) is created.
func EditLocal(ctx context.Context, path, lockPath string, add, remove []Entry) (Edit, error) {
	var ed Edit
	// A local file kept elsewhere (a dotfiles manager's link) is edited
	// where it is, not replaced by a copy.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	} else if target, lerr := os.Readlink(path); lerr == nil {
		// A link to a file not made yet: made where the link points.
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return ed, err
	}
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
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
		before, _, _ := strings.Cut(strings.TrimPrefix(line, "\ufeff"), "#")
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
		if !slices.Contains(ed.Removed, e.String()) {
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
