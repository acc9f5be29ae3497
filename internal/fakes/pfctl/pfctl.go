// Package pfctl is a fake of Apple's pfctl(8) for tests, run through
// internal/fakebin. It follows the pfctl of macOS 26 (the Xcode 26 pfctl(8)
// and pf.conf(5) man pages, the strings of Apple's 26.1 pfctl binary, and
// output captured on macOS 26.5 hosts), for the calls claudecontainer makes
// and the ones other programs make behind its back:
//
//   - every call prints "No ALTQ support in kernel" and "ALTQ related
//     functions disabled" on stderr, and -f adds the "Use of -f option"
//     warning, so callers must judge pfctl by its exit status;
//   - -E starts pf if needed, adds an enable reference and prints
//     "pf enabled" and "Token : <n>" on stderr (not with -q); -X releases one,
//     "pf disabled" at zero, "pfctl: pf: token invalid" for an unknown token,
//     "pfctl: pf not enabled" when pf is off; -d stops pf and drops every
//     reference, whoever holds it; -e fails when pf is already on;
//   - -s References, -s info, -s rules (-sr), -s nat (-sn), -s Anchors,
//     -s Tables print the documented formats on stdout (-s nat as captured on
//     macOS 26: `rdr-anchor "com.apple/*" all`, `rdr pass on lo0 inet proto
//     tcp from any to any port = 443 -> 127.0.0.1 port 8443`);
//   - -a A -f file|- loads an anchor after a light syntax check
//     ("stdin:N: syntax error", exit 1, nothing loaded; translation rules
//     after filter rules, with a label, or without a target are refused as
//     pfctl refuses them); -f without -a replaces the main ruleset, filter
//     and translation rules both (what breaks Apple's anchor points);
//   - -T add|delete|replace|show|flush|kill on tables, -F with and without
//     -a, -k with one or two hosts.
//
// The kernel is a JSON file in the directory named by FAKE_PFCTL_STATE;
// FAKE_PFCTL_FAIL makes matching calls fail. Differences from the real
// program: rules are normalised for -s rules only as far as Render's subset
// and common rules need; host names are never resolved; the exit status of
// -s rules on a missing anchor (0, with the DIOCGETRULES warning) follows
// FreeBSD's pfctl, on which Apple's is based, and is not measured.
package pfctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	"github.com/VerilyPete/claudecontainer/internal/flock"
)

// Main runs the fake as the program "pfctl". It records the call first.
func Main() int {
	fakebin.Record()
	return Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}

const (
	altqNoise = "No ALTQ support in kernel\nALTQ related functions disabled\n"
	fWarning  = "pfctl: Use of -f option, could result in flushing of rules\n" +
		"present in the main ruleset added by the system at startup.\n" +
		"See /etc/pf.conf for further details.\n\n"
)

// options is a parsed pfctl command line.
type options struct {
	anchor                        string
	file, flush, show, table, cmd string
	kill, release                 []string
	rest                          []string
	given                         string // every option letter, in order
}

// has reports whether the option letter c was given.
func (o options) has(c byte) bool { return strings.IndexByte(o.given, c) >= 0 }

// Run is the fake with its environment passed in, so it can be tested in
// process.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	o, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "pfctl: %v\nusage: pfctl [-AdeghmNnOqRrvz] [-a anchor] [-D macro=value] [-F modifier] [-f file] [-i interface] [-K host | network] [-k host | network] [-o level] [-p device] [-s modifier] [-t table -T command [address ...]] [-x level]\n", err)
		return 1
	}
	code, err := run(o, args, &kernel{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now()}, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "fake pfctl:", err)
		return 2
	}
	return code
}

// run carries out o on the fake kernel in the state directory. Its errors
// are the fake's own, not pfctl's.
func run(o options, args []string, k *kernel, getenv func(string) string) (int, error) {
	dir := getenv(EnvState)
	if dir == "" {
		return 0, errors.New(EnvState + " is not set")
	}
	if o.file != "" {
		fmt.Fprint(k.stderr, fWarning)
	}
	fmt.Fprint(k.stderr, altqNoise)
	if expr := getenv(EnvFail); expr != "" {
		re, err := regexp.Compile(expr)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", EnvFail, err)
		}
		if re.MatchString(strings.Join(args, " ")) {
			return k.errf("DIOCXCOMMIT: Operation not permitted (failure injected by %s=%q)", EnvFail, expr), nil
		}
	}
	// The lock serialises calls on one fake kernel, as the real kernel
	// serialises pf ioctls, so concurrent pfctl calls never lose an update.
	unlock, err := flock.Lock(context.Background(), filepath.Join(dir, "state.lock"))
	if err != nil {
		return 0, err
	}
	defer unlock()
	st, err := Load(dir)
	if err != nil {
		return 0, err
	}
	k.st = &st
	code := k.apply(o)
	return code, Save(dir, st)
}

// parseArgs parses argv like BSD getopt(3) with pfctl's option string:
// flags may be grouped ("-sr", "-Ef file"), option arguments may be attached
// or separate, and the first non-option word ends the options (the rest are
// -T addresses).
func parseArgs(args []string) (options, error) {
	const withArg = "aDfFikKopstTxX"
	const flags = "AdeEghmnNOqrRvz"
	var o options
	strs := map[byte]*string{'a': &o.anchor, 'f': &o.file, 'F': &o.flush, 's': &o.show, 't': &o.table, 'T': &o.cmd}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.rest = args[i+1:]
			break
		}
		if len(a) < 2 || a[0] != '-' {
			o.rest = args[i:]
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			o.given += string(c)
			if strings.IndexByte(flags, c) >= 0 {
				continue
			}
			if strings.IndexByte(withArg, c) < 0 {
				return o, fmt.Errorf("illegal option -- %c", c)
			}
			val := a[j+1:]
			if val == "" {
				if i+1 >= len(args) {
					return o, fmt.Errorf("option requires an argument -- %c", c)
				}
				i++
				val = args[i]
			}
			switch c {
			case 'k':
				if len(o.kill) == 2 {
					return o, fmt.Errorf("can only specify -k twice")
				}
				o.kill = append(o.kill, val)
			case 'X':
				o.release = append(o.release, val)
			default:
				if p := strs[c]; p != nil {
					*p = val
				}
			}
			break // the rest of the word was the option's argument
		}
	}
	return o, nil
}

type kernel struct {
	st             *State
	stdin          io.Reader
	stdout, stderr io.Writer
	now            time.Time
}

func (k *kernel) errf(format string, args ...any) int {
	fmt.Fprintf(k.stderr, "pfctl: "+format+"\n", args...)
	return 1
}

// note prints a message on stderr unless -q was given.
func (k *kernel) note(o options, format string, args ...any) {
	if !o.has('q') {
		fmt.Fprintf(k.stderr, format, args...)
	}
}

// apply carries out o in the order pfctl's main does: disable and release,
// show, flush, kill, tables, load, enable.
func (k *kernel) apply(o options) int {
	for _, step := range []struct {
		given bool
		run   func(options) int
	}{
		{o.has('d'), k.disable},
		{len(o.release) > 0, k.release},
		{o.show != "", k.showCmd},
		{o.flush != "", k.flushCmd},
		{len(o.kill) > 0, k.killStates},
		{o.cmd != "", k.tableCmd},
		{o.cmd == "" && o.file != "", k.loadCmd},
		{o.has('e'), k.enable},
		{o.has('E'), k.enableRef},
	} {
		if step.given {
			if code := step.run(o); code != 0 {
				return code
			}
		}
	}
	return 0
}

func (k *kernel) disable(o options) int {
	if !k.st.Enabled {
		return k.errf("pf not enabled")
	}
	k.st.Enabled, k.st.Refs = false, nil
	k.note(o, "pf disabled\n")
	return 0
}

func (k *kernel) release(o options) int {
	st := k.st
	for _, tok := range o.release {
		if !st.Enabled {
			return k.errf("pf not enabled") // ENOENT from DIOCSTOPREF
		}
		i := slices.IndexFunc(st.Refs, func(r Ref) bool { return r.Token == tok })
		if i < 0 {
			return k.errf("pf: token invalid") // EINVAL
		}
		st.Refs = slices.Delete(st.Refs, i, i+1)
		if len(st.Refs) == 0 {
			st.Enabled = false
			k.note(o, "pf disabled\n")
		} else {
			k.note(o, "disable request successful. %d more pf enable reference(s) remaining, pf still enabled.\n", len(st.Refs))
		}
	}
	return 0
}

func (k *kernel) enable(o options) int {
	if k.st.Enabled {
		return k.errf("pf already enabled")
	}
	k.st.Enabled, k.st.Since = true, k.now
	k.note(o, "pf enabled\n")
	return 0
}

func (k *kernel) enableRef(o options) int {
	tok := k.st.AddRef(os.Getpid(), "pfctl", k.now)
	k.note(o, "pf enabled\nToken : %s\n", tok)
	return 0
}

func (k *kernel) showCmd(o options) int {
	st := k.st
	out := k.stdout
	switch o.show[0] {
	case 'R':
		if len(st.Refs) == 0 {
			fmt.Fprintln(out, "No pf starter references held")
			return 0
		}
		fmt.Fprintln(out, "TOKENS:")
		fmt.Fprintf(out, "%-8s %-28s %-24s %-s\n", "PID", "Process Name", "TOKEN", "TIMESTAMP")
		for _, r := range st.Refs {
			fmt.Fprintf(out, "%-8d %-28s %-24s %s\n", r.PID, r.Name, r.Token, age(k.now.Sub(r.Taken)))
		}
	case 'i':
		status := "Status: Disabled"
		if st.Enabled {
			status = "Status: Enabled for " + age(k.now.Sub(st.Since))
		}
		fmt.Fprintf(out, "%-46sDebug: Urgent\n\n", status)
		fmt.Fprintf(out, "%-37s%-18s%s\n", "State Table", "Total", "Rate")
		fmt.Fprintf(out, "  %-25s%14d\n", "current entries", len(st.Conns))
		for _, c := range []string{"searches", "inserts", "removals"} {
			fmt.Fprintf(out, "  %-25s%14d\n", c, 0)
		}
		fmt.Fprintln(out, "Counters")
		for _, c := range []string{"match", "bad-offset", "fragment", "short", "normalize", "memory",
			"bad-timestamp", "congestion", "ip-option", "proto-cksum", "state-mismatch", "state-insert",
			"state-limit", "src-limit", "synproxy", "dummynet", "invalid-port"} {
			fmt.Fprintf(out, "  %-25s%14d\n", c, 0)
		}
	case 'r', 'n':
		rules := st.rules(o.anchor, o.show[0] == 'n')
		if rules == nil || strings.HasSuffix(o.anchor, "/*") {
			// pf_find_ruleset fails: EINVAL. pfctl warns and carries on.
			// Apple's pfctl cannot list a wildcard anchor either
			// (osquery#1521).
			fmt.Fprintln(k.stderr, "pfctl: DIOCGETRULES: Invalid argument")
			return 0
		}
		for _, r := range *rules {
			fmt.Fprintln(out, r)
		}
	case 'A':
		seen := map[string]bool{}
		prefix := ""
		if o.anchor != "" {
			prefix = o.anchor + "/"
		}
		for path := range st.Anchors {
			if rest, ok := strings.CutPrefix(path, prefix); ok && path != "" {
				child, _, _ := strings.Cut(rest, "/")
				seen[prefix+child] = true
			}
		}
		for _, name := range slices.Sorted(maps.Keys(seen)) {
			fmt.Fprintf(out, "  %s\n", name)
		}
	case 'T':
		if a, ok := st.Anchors[o.anchor]; ok {
			for _, name := range slices.Sorted(maps.Keys(a.Tables)) {
				fmt.Fprintln(out, name)
			}
		}
	case 'q', 's', 'S', 't', 'm', 'l', 'a', 'o', 'I':
		fmt.Fprintf(k.stderr, "fake pfctl: -s %s is not implemented\n", o.show)
		return 2
	default:
		return k.errf("Unknown show modifier '%s'", o.show)
	}
	return 0
}

func (k *kernel) flushCmd(o options) int {
	st := k.st
	w := k.stderr
	rules := func(nat bool, what string) {
		if r := st.rules(o.anchor, nat); r != nil {
			*r = nil
		}
		fmt.Fprintln(w, what+" cleared")
	}
	tables := func() {
		n := 0
		if a := st.Anchors[o.anchor]; a != nil {
			n = len(a.Tables)
			a.Tables = map[string][]string{}
		}
		fmt.Fprintf(w, "%d tables deleted.\n", n)
	}
	states := func() {
		fmt.Fprintf(w, "%d states cleared\n", len(st.Conns))
		st.Conns = nil
	}
	switch o.flush[0] {
	case 'r':
		rules(false, "rules")
	case 'n':
		rules(true, "nat")
	case 'T':
		tables()
	case 's':
		states()
	case 'a':
		rules(false, "rules")
		rules(true, "nat")
		fmt.Fprintln(w, "dummynet cleared")
		tables()
		if o.anchor == "" {
			states()
			fmt.Fprintln(w, "source tracking entries cleared")
			fmt.Fprintln(w, "pf: statistics cleared")
			fmt.Fprintln(w, "pf: interface flags reset")
		}
	default:
		return k.errf("Unknown flush modifier '%s'", o.flush)
	}
	st.prune(o.anchor)
	return 0
}

func (k *kernel) killStates(o options) int {
	var hosts []netip.Prefix
	for _, h := range o.kill {
		p, err := parseHost(h)
		if err != nil {
			return k.errf("%s: hostname nor servname provided, or not known", h)
		}
		hosts = append(hosts, p)
	}
	before := len(k.st.Conns)
	k.st.Conns = slices.DeleteFunc(k.st.Conns, func(c Conn) bool {
		src, err1 := netip.ParseAddr(c.Src)
		dst, err2 := netip.ParseAddr(c.Dst)
		return err1 == nil && err2 == nil && hosts[0].Contains(src) && (len(hosts) == 1 || hosts[1].Contains(dst))
	})
	killed := before - len(k.st.Conns)
	k.note(o, "killed %d states from 1 sources and %d destinations\n", killed, len(hosts)-1)
	return 0
}

func (k *kernel) tableCmd(o options) int {
	if o.table == "" {
		return k.errf("-T requires -t")
	}
	a := k.st.Anchors[o.anchor]
	var tbl []string
	exists := false
	if a != nil {
		tbl, exists = a.Tables[o.table]
	}
	if !exists && (o.cmd == "show" || o.cmd == "kill" || o.cmd == "flush") {
		return k.errf("Table does not exist.")
	}
	switch o.cmd {
	case "show":
		for _, e := range tbl {
			fmt.Fprintf(k.stdout, "   %s\n", e)
		}
	case "kill":
		delete(a.Tables, o.table)
		k.st.prune(o.anchor)
		fmt.Fprintln(k.stderr, "1 table deleted.")
	case "flush":
		fmt.Fprintf(k.stderr, "%d addresses deleted.\n", len(tbl))
		a.Tables[o.table] = []string{}
	case "add", "delete", "replace":
		return k.changeTable(o, tbl, exists)
	default:
		return k.errf("Unknown table command '%s'", o.cmd)
	}
	return 0
}

// changeTable carries out -T add, delete and replace with the addresses of
// -f and the command line, and reports what changed as pfctl does.
func (k *kernel) changeTable(o options, tbl []string, exists bool) int {
	var words []string
	if o.file != "" {
		text, err := k.readInput(o.file)
		if err != nil {
			return k.errf("cannot open the file %s: %v", o.file, err)
		}
		words = tableWords(text)
	}
	addrs, err := parseTableAddrs(append(words, o.rest...))
	if err != nil {
		return k.errf("%v", err)
	}
	if !exists && o.cmd == "delete" {
		return k.errf("Table does not exist.")
	}
	if !exists {
		fmt.Fprintln(k.stderr, "1 table created.")
	}
	was, given := set(tbl), set(addrs)
	now := given // replace
	switch o.cmd {
	case "add":
		now = set(append(slices.Clone(tbl), addrs...))
	case "delete":
		now = set(slices.DeleteFunc(slices.Clone(tbl), func(e string) bool { return given[e] }))
	}
	added, deleted := missing(now, was), missing(was, now)
	switch {
	case o.cmd == "add":
		fmt.Fprintf(k.stderr, "%d/%d addresses added.\n", added, len(addrs))
	case o.cmd == "delete":
		fmt.Fprintf(k.stderr, "%d/%d addresses deleted.\n", deleted, len(addrs))
	case added == 0 && deleted == 0:
		fmt.Fprintln(k.stderr, "no changes.")
	default:
		if added > 0 {
			fmt.Fprintf(k.stderr, "%d addresses added.\n", added)
		}
		if deleted > 0 {
			fmt.Fprintf(k.stderr, "%d addresses deleted.\n", deleted)
		}
	}
	k.st.anchor(o.anchor).Tables[o.table] = slices.Sorted(maps.Keys(now))
	return 0
}

// set returns the members of list as a set.
func set(list []string) map[string]bool {
	m := map[string]bool{}
	for _, e := range list {
		m[e] = true
	}
	return m
}

// missing counts the members of a that b lacks.
func missing(a, b map[string]bool) int {
	n := 0
	for e := range a {
		if !b[e] {
			n++
		}
	}
	return n
}

func (k *kernel) loadCmd(o options) int {
	text, err := k.readInput(o.file)
	if err != nil {
		return k.errf("cannot open the file %s: %v", o.file, err)
	}
	name := o.file
	if name == "-" {
		name = "stdin"
	}
	rs, errs := parseRules(string(text), name)
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(k.stderr, e)
		}
		return k.errf("Syntax error in config file: pf rules not loaded")
	}
	if o.has('n') {
		return 0
	}
	st := k.st
	a := st.anchor(o.anchor)
	*st.rules(o.anchor, false), *st.rules(o.anchor, true) = rs.rules, rs.nat
	for _, t := range rs.tables {
		// A list replaces the table's contents ("{ }" clears them); a
		// table declared without one keeps what it held.
		if _, exists := a.Tables[t.name]; t.list != nil || !exists {
			a.Tables[t.name] = append([]string{}, t.list...)
		}
	}
	if o.anchor == "" {
		st.prune("") // the main ruleset's rules are not in Anchors
	}
	return 0
}

func (k *kernel) readInput(name string) ([]byte, error) {
	if name == "-" || name == "/dev/stdin" {
		return io.ReadAll(k.stdin)
	}
	return os.ReadFile(name)
}

// tableWords splits a table file like pfctl's pfr_buf_load: tokens separated
// by white space; a token that starts with '#' comments out the rest of its
// line.
func tableWords(b []byte) []string {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		for _, w := range strings.Fields(line) {
			if strings.HasPrefix(w, "#") {
				break
			}
			out = append(out, w)
		}
	}
	return out
}

// parseTableAddrs parses table entries ([!]address[/mask]) into the form
// `-T show` prints. The fake never resolves host names.
func parseTableAddrs(words []string) ([]string, error) {
	var out []string
	for _, w := range words {
		neg := strings.HasPrefix(w, "!")
		p, err := parseHost(strings.TrimPrefix(w, "!"))
		if err != nil {
			return nil, fmt.Errorf("no IP address found for %s", w)
		}
		s := p.String()
		if p.IsSingleIP() {
			s = p.Addr().String()
		}
		if neg {
			s = "!" + s
		}
		out = append(out, s)
	}
	return out, nil
}

func parseHost(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// age formats a duration as pfctl does in -s info and -s References.
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	return fmt.Sprintf("%d days %02d:%02d:%02d", s/86400, s/3600%24, s/60%60, s%60)
}
