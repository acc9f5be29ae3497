package allowlist

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"
	"unicode"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/dnsfilter"
	"github.com/VerilyPete/claudecontainer/sources"
)

// The allowlist file is a pf table file that the nftables backend reads
// too: comment lines starting with '#', then one CIDR per line in canonical
// form (masked, IPv4 first, sorted), each line ending in a newline. pfctl
// loads it with `pfctl -T replace -f FILE`, and ParseFile reads it back.
// The DNS filter's names ride in the same file as comments that start with
// namePrefix, one entry a line, so that addresses and names are always
// replaced together; LoadNames reads them.

// namePrefix starts a line that holds one DNS filter entry.
const namePrefix = "#name "

// Render returns the allowlist file for rep. It refuses an empty allowlist.
func Render(rep *Report) ([]byte, error) {
	if rep == nil || rep.Set == nil {
		return nil, errors.New("refusing to write an allowlist that was not built")
	}
	prefixes := rep.Set.Prefixes()
	if len(prefixes) == 0 {
		return nil, errors.New("refusing to write an empty allowlist")
	}
	var b bytes.Buffer
	comment := func(s string) { fmt.Fprintf(&b, "# %s\n", oneLine(s)) }
	comment("claudecontainer allowlist, written by `mage allowlist`: one CIDR per line.")
	comment("Changes here are lost on the next run; add your own entries to the local allowlist file (CLAUDECONTAINER_LOCAL_FILE).")
	comment(fmt.Sprintf("generated %s: %s", rep.Generated.UTC().Format(time.RFC3339), rep.Summary()))
	for _, s := range rep.Sources {
		for _, l := range s.Lines() {
			comment(l)
		}
	}
	for _, n := range rep.Names {
		fmt.Fprintf(&b, "%s%s\n", namePrefix, n)
	}
	for _, p := range prefixes {
		for _, q := range narrow(p) {
			fmt.Fprintln(&b, q)
		}
	}
	return b.Bytes(), nil
}

// narrow returns p as the prefixes of the shortest length ParseFile accepts
// that make it up, or p alone when it is that long already. Merging
// adjacent entries can give a broader prefix than any entry (12.0.0.0/8 and
// 13.0.0.0/8 make 12.0.0.0/7), which the file must still hold in a form it
// reads back; each piece written stands for at least one entry vetted.
func narrow(p netip.Prefix) []netip.Prefix {
	min := minBits(p.Addr())
	if p.Bits() >= min {
		return []netip.Prefix{p}
	}
	var out []netip.Prefix
	last := netipx.PrefixLastIP(p)
	for q := netip.PrefixFrom(p.Addr(), min); ; q = netip.PrefixFrom(netipx.PrefixLastIP(q).Next(), min) {
		out = append(out, q)
		if netipx.PrefixLastIP(q) == last {
			return out
		}
	}
}

// oneLine keeps text from outside (an HTTP status, a DNS error) on one line
// and free of terminal escapes: control characters, C1 ones included,
// become spaces.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// ParseFile reads an allowlist file strictly: every line is a comment
// starting with '#' or one CIDR in canonical form, the last line ends with a
// newline (so a truncated file is refused), and at least one CIDR is
// present. Errors name the line.
func ParseFile(data []byte) (*netipx.IPSet, error) {
	if len(data) == 0 {
		return nil, errors.New("the file is empty")
	}
	if data[len(data)-1] != '\n' {
		return nil, errors.New("the last line has no newline at its end: the file is truncated")
	}
	var b netipx.IPSetBuilder
	n := 0
	for i, line := range strings.Split(string(data[:len(data)-1]), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		p, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		b.AddPrefix(p)
		n++
	}
	if n == 0 {
		return nil, errors.New("the file holds no CIDR")
	}
	return b.IPSet()
}

func parseLine(line string) (netip.Prefix, error) {
	if line == "" {
		return netip.Prefix{}, errors.New("empty line")
	}
	p, err := netip.ParsePrefix(line)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", line)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%s is IPv4-mapped; want %s", line, netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)).Masked())
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has host bits set; want %s", line, p.Masked())
	}
	if p.String() != line {
		return netip.Prefix{}, fmt.Errorf("%q is not written canonically; want %s", line, p)
	}
	if min := minBits(p.Addr()); p.Bits() < min {
		return netip.Prefix{}, fmt.Errorf("%s is too broad (shorter than /%d)", line, min)
	}
	return p, nil
}

// maxReplaceable is the largest file checkReplaceable reads; allowlists are
// a few kilobytes.
const maxReplaceable = 16 << 20

// checkReplaceable refuses to replace anything at path but an allowlist, so
// that a mistaken setting cannot make Update overwrite another file (through
// sudo, a system file such as /etc/pf.conf or /etc/hosts). A missing file may
// be written; an existing one must be a regular file in which every line is
// blank, a '#' comment, or an address or CIDR (this tool's files and the old
// shell tool's alike).
func checkReplaceable(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && (!fi.Mode().IsRegular() || fi.Size() > maxReplaceable) {
		err = errors.New("it is not a regular file of an allowlist's size")
	}
	var data []byte
	if err == nil {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return fmt.Errorf("not replacing %s: %w; point the allowlist file setting (%sALLOWLIST_FILE) elsewhere or remove it", path, err, config.Prefix)
	}
	for i, line := range strings.Split(string(data), "\n") {
		entry, _, _ := strings.Cut(line, "#")
		if entry = strings.TrimSpace(entry); entry == "" {
			continue
		}
		if _, err := sources.ParsePrefix(entry); err != nil {
			return fmt.Errorf("not replacing %s: line %d (%q) is not an address or CIDR, so it is not an allowlist file; "+
				"point the allowlist file setting (%sALLOWLIST_FILE) elsewhere, or remove the file if it is an old allowlist", path, i+1, oneLine(line), config.Prefix)
		}
	}
	return nil
}

// Load reads and parses the allowlist file at path.
func Load(path string) (*netipx.IPSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the allowlist: %w (run `mage allowlist`)", err)
	}
	set, err := ParseFile(data)
	if err != nil {
		return nil, fmt.Errorf("reading the allowlist %s: %w (run `mage allowlist` to rewrite it)", path, err)
	}
	return set, nil
}

// LoadNames reads the DNS filter's entries from the allowlist file at path
// and parses them. The file must be a whole allowlist (ParseFile).
func LoadNames(path string) (*dnsfilter.Names, []string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the allowlist: %w (run `mage allowlist`)", err)
	}
	if _, err := ParseFile(data); err != nil {
		return nil, nil, fmt.Errorf("reading the allowlist %s: %w (run `mage allowlist` to rewrite it)", path, err)
	}
	var entries []string
	for line := range strings.Lines(string(data)) {
		if e, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), namePrefix); ok {
			entries = append(entries, e)
		}
	}
	names, err := dnsfilter.ParseNames(entries)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the allowlist %s: %w (run `mage allowlist` to rewrite it)", path, err)
	}
	return names, entries, nil
}

// Fresh reports whether the allowlist file at path was written less than
// maxAge ago and reads back cleanly, so `mage dev` can use it without
// fetching. A file dated in the future is not fresh.
func Fresh(path string, maxAge time.Duration) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	age := time.Since(fi.ModTime())
	if age < 0 || age >= maxAge {
		return false
	}
	_, err = Load(path)
	return err == nil
}

// Lines describes the source for people: a summary line, then one indented
// line per error, warning and note.
func (s SourceReport) Lines() []string {
	var what []string
	if s.Prefixes > 0 || len(s.Hosts) == 0 {
		what = append(what, plural(s.Prefixes, "prefix", "prefixes"))
	}
	if len(s.Hosts) > 0 {
		what = append(what, fmt.Sprintf("%s from %s", plural(s.Addrs, "address", "addresses"), plural(len(s.Hosts), "host", "hosts")))
	}
	status := ""
	switch {
	case s.Err != nil:
		status = " FAILED"
	case len(s.Warnings) > 0:
		status = " with warnings"
	}
	lines := []string{fmt.Sprintf("%-10s %s%s (%s)", s.Name, strings.Join(what, ", "), status, s.Elapsed.Round(time.Millisecond))}
	if s.Err != nil {
		for _, e := range unjoin(s.Err) {
			lines = append(lines, "  error: "+oneLine(e.Error()))
		}
	}
	for _, w := range s.Warnings {
		lines = append(lines, "  warning: "+oneLine(w))
	}
	for _, n := range s.Notes {
		lines = append(lines, "  note: "+oneLine(n))
	}
	return lines
}

// Summary says how many entries were merged into how many CIDRs.
func (r *Report) Summary() string {
	v4, v6 := 0, 0
	for _, p := range r.Prefixes {
		if p.Addr().Is4() {
			v4++
		} else {
			v6++
		}
	}
	return fmt.Sprintf("%s merged into %s (%d IPv4, %d IPv6)",
		plural(r.Entries, "entry", "entries"), plural(len(r.Prefixes), "CIDR", "CIDRs"), v4, v6)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// unjoin splits an errors.Join result back into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
