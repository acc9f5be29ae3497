package pfctl

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

type tableDecl struct {
	name string
	list []string // nil: no address list; empty: "{ }"
}

type ruleset struct {
	rules  []string // filter and scrub rules, as -s rules prints them
	nat    []string // translation rules, as -s nat prints them
	tables []tableDecl
}

var (
	macroDef = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*)\s*=\s*(.*)$`)
	macroUse = regexp.MustCompile(`\$([A-Za-z][A-Za-z0-9_]*)`)
)

// Statements the fake accepts. "match" is OpenBSD 4.6+ and a syntax error in
// Apple's dialect; "set" is accepted and, in an anchor, ignored.
var (
	shownStatements       = []string{"pass", "block", "anchor", "scrub", "scrub-anchor", "antispoof"}
	translationStatements = []string{"nat", "no", "rdr", "binat", "nat-anchor", "rdr-anchor", "binat-anchor"}
	silentStatements      = []string{"set", "dummynet", "dummynet-anchor", "load", "altq", "queue"}
	// Words pfctl's grammar has no place for in a translation rule.
	notInTranslation = []string{"label", "quick", "keep", "state", "flags", "in", "out", "return", "drop"}
)

// orderError is pfctl's message for a translation rule after a filter rule.
const orderError = "Rules must be in order: options, normalization, queueing, translation, filtering"

// parseRules does a light syntax check of a pf.conf text and returns its
// filter rules as `pfctl -s rules` prints them. Errors are reported as pfctl
// does, "<file>:<line>: <message>", and mean nothing is loaded.
func parseRules(text, file string) (ruleset, []string) {
	var rs ruleset
	var errs []string
	fail := func(line int, msg string) { errs = append(errs, fmt.Sprintf("%s:%d: %s", file, line, msg)) }
	macros := map[string]string{}
	filtering := false // a filter rule was seen

	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := lines[i]
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) { // continuation lines
			i++
			line = strings.TrimSuffix(line, `\`) + " " + lines[i]
		}
		line = strings.TrimSpace(stripComment(line))
		if line == "" {
			continue
		}
		if strings.Count(line, `"`)%2 != 0 {
			fail(lineNo, "syntax error")
			continue
		}
		if m := macroDef.FindStringSubmatch(line); m != nil && !strings.HasPrefix(line, "table") {
			v := strings.TrimSpace(m[2])
			if strings.HasPrefix(v, `"`) {
				v = strings.Trim(v, `"`)
			} else if strings.ContainsAny(v, " \t") {
				fail(lineNo, "syntax error")
				continue
			}
			macros[m[1]] = v
			continue
		}
		bad := false
		line = macroUse.ReplaceAllStringFunc(line, func(s string) string {
			v, ok := macros[s[1:]]
			if !ok {
				fail(lineNo, fmt.Sprintf("macro '%s' not defined", s[1:]))
				bad = true
			}
			return v
		})
		toks, ok := tokens(line)
		if bad || !ok {
			fail(lineNo, "syntax error")
			continue
		}
		switch kw := toks[0]; {
		case kw == "table":
			t, msg := parseTable(toks)
			if msg != "" {
				fail(lineNo, msg)
				continue
			}
			if slices.ContainsFunc(rs.tables, func(d tableDecl) bool { return d.name == t.name }) {
				fail(lineNo, fmt.Sprintf("cannot define table %s: Resource busy", t.name))
				continue
			}
			rs.tables = append(rs.tables, t)
		case slices.Contains(shownStatements, kw):
			expanded, msg := normalise(toks)
			if msg != "" {
				fail(lineNo, msg)
				continue
			}
			filtering = filtering || kw != "scrub" && kw != "scrub-anchor"
			rs.rules = append(rs.rules, expanded...)
		case slices.Contains(translationStatements, kw) && filtering:
			fail(lineNo, orderError)
		case slices.Contains(translationStatements, kw):
			expanded, msg := normaliseTranslation(toks)
			if msg != "" {
				fail(lineNo, msg)
				continue
			}
			rs.nat = append(rs.nat, expanded...)
		case slices.Contains(silentStatements, kw):
		default:
			fail(lineNo, "syntax error")
		}
	}
	return rs, errs
}

func stripComment(line string) string {
	inQuote := false
	for i, c := range line {
		if c == '"' {
			inQuote = !inQuote
		} else if c == '#' && !inQuote {
			return line[:i]
		}
	}
	return line
}

// tokens splits a statement into words; braces and "!" are words of their
// own, commas separate list items, quoted strings keep their quotes. It
// reports false for unbalanced or nested braces.
func tokens(line string) ([]string, bool) {
	var out []string
	depth := 0
	for i := 0; i < len(line); {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == ',':
			i++
		case c == '{' || c == '}' || c == '!':
			depth += map[byte]int{'{': 1, '}': -1}[c]
			if depth < 0 || depth > 1 {
				return nil, false
			}
			out = append(out, string(c))
			i++
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			out = append(out, line[i:i+j+2])
			i += j + 2
		default:
			j := i
			for j < len(line) && !strings.ContainsRune(" \t,{}!\"", rune(line[j])) {
				j++
			}
			out = append(out, line[i:j])
			i = j
		}
	}
	return out, depth == 0 && len(out) > 0
}

var tableName = regexp.MustCompile(`^<[A-Za-z0-9_.-]{1,31}>$`)

func parseTable(toks []string) (tableDecl, string) {
	if len(toks) < 2 || !tableName.MatchString(toks[1]) {
		return tableDecl{}, "syntax error"
	}
	t := tableDecl{name: strings.Trim(toks[1], "<>")}
	for i := 2; i < len(toks); i++ {
		var words []string
		switch toks[i] {
		case "persist", "const", "counters":
			continue
		case "file":
			if i+1 >= len(toks) || !strings.HasPrefix(toks[i+1], `"`) {
				return t, "syntax error"
			}
			i++
			name := strings.Trim(toks[i], `"`)
			b, err := os.ReadFile(name)
			if err != nil {
				return t, fmt.Sprintf("cannot load \"%s\": %v", name, err)
			}
			words = tableWords(b)
		case "{":
			end := i + slices.Index(toks[i:], "}")
			words = toks[i+1 : end]
			i = end
		default:
			return t, "syntax error"
		}
		addrs, err := parseTableAddrs(words)
		if err != nil {
			return t, err.Error()
		}
		t.list = append(append([]string{}, t.list...), addrs...)
	}
	return t, ""
}

// normalise expands every "{ ... }" list of a rule into one rule per
// combination (as pfctl does when it loads a rule) and spells each one the
// way `pfctl -s rules` prints it: "port = N", "all" for "from any to any",
// and the implicit "flags S/SA keep state" of pass rules.
func normalise(toks []string) ([]string, string) {
	if i := slices.Index(toks, "label"); i >= 0 && (i+1 >= len(toks) || !strings.HasPrefix(toks[i+1], `"`)) {
		return nil, "syntax error"
	}
	return spellAll(toks, false)
}

// normaliseTranslation checks a translation rule as far as pfctl's grammar
// for them goes (no label, no quick, state or filter options; a target
// unless "no") and spells each expanded rule as `pfctl -s nat` prints it:
// "port = N", "all" for "from any to any" without a port, and "all" after
// an anchor call that names no addresses.
func normaliseTranslation(toks []string) ([]string, string) {
	anchorCall := strings.HasSuffix(toks[0], "-anchor")
	no := toks[0] == "no"
	arrow := slices.Contains(toks, "->")
	switch {
	case no && (len(toks) < 2 || !slices.Contains([]string{"nat", "rdr", "binat"}, toks[1])),
		anchorCall && (arrow || len(toks) < 2 || !strings.HasPrefix(toks[1], `"`)),
		slices.ContainsFunc(toks, func(w string) bool { return slices.Contains(notInTranslation, w) }):
		return nil, "syntax error"
	case no && arrow:
		return nil, "translation rule with 'no' does not need '->'"
	case !no && !anchorCall && !arrow:
		return nil, "translation rule requires '-> address'"
	}
	return spellAll(toks, anchorCall)
}

// spellAll expands a rule's lists and spells each rule it stands for;
// anchorCall adds the "all" pfctl prints after a translation anchor call
// that names no addresses.
func spellAll(toks []string, anchorCall bool) ([]string, string) {
	var out []string
	for _, r := range expand(toks) {
		if msg := checkPorts(r); msg != "" {
			return nil, msg
		}
		if anchorCall && !slices.Contains(r, "all") && !slices.Contains(r, "from") {
			r = append(r, "all")
		}
		out = append(out, spell(r))
	}
	return out, ""
}

func expand(toks []string) [][]string {
	open := slices.Index(toks, "{")
	if open < 0 {
		return [][]string{toks}
	}
	end := open + slices.Index(toks[open:], "}")
	var out [][]string
	items := toks[open+1 : end]
	for i := 0; i < len(items); i++ {
		item := []string{items[i]}
		if items[i] == "!" && i+1 < len(items) {
			item = []string{"!", items[i+1]}
			i++
		}
		out = append(out, expand(slices.Concat(toks[:open], item, toks[end+1:]))...)
	}
	return out
}

func checkPorts(r []string) string {
	// A translation target's port ("-> addr port N") is no match on the
	// packet's port.
	if i := slices.Index(r, "->"); i >= 0 && r[0] != "pass" && r[0] != "block" {
		r = r[:i]
	}
	if !slices.Contains(r, "port") || !slices.Contains([]string{"pass", "block", "rdr", "nat", "binat", "no"}, r[0]) {
		return ""
	}
	i := slices.Index(r, "proto")
	if i < 0 || i+1 >= len(r) || (r[i+1] != "tcp" && r[i+1] != "udp") {
		return "port only applies to tcp/udp"
	}
	return ""
}

func spell(r []string) string {
	var out []string
	for i := 0; i < len(r); i++ {
		w := r[i]
		if w == "from" && i+3 < len(r) && r[i+1] == "any" && r[i+2] == "to" && r[i+3] == "any" && (i+4 >= len(r) || r[i+4] != "port") {
			out = append(out, "all")
			i += 3
			continue
		}
		out = append(out, w)
		target := i >= 2 && r[i-2] == "->" // "-> addr port N" is printed as written
		if w == "port" && i+1 < len(r) && !target && !strings.ContainsAny(r[i+1][:1], "=<>!") {
			out = append(out, "=")
		}
	}
	if out[0] == "pass" && !slices.Contains(out, "state") {
		out = insertBefore(out, "label", "keep", "state")
	}
	if out[0] == "pass" && slices.Contains(out, "keep") && !slices.Contains(out, "flags") {
		i := slices.Index(out, "proto")
		if i < 0 || out[i+1] == "tcp" {
			out = insertBefore(out, "keep", "flags", "S/SA")
		}
	}
	return strings.Join(out, " ")
}

// insertBefore inserts words before the first occurrence of at, or at the
// end when at does not occur.
func insertBefore(r []string, at string, words ...string) []string {
	i := slices.Index(r, at)
	if i < 0 {
		return append(r, words...)
	}
	return slices.Insert(slices.Clone(r), i, words...)
}
