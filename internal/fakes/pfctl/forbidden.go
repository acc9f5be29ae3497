package pfctl

import (
	"regexp"
	"strings"
)

// childAnchor is the shape of an anchor claudecontainer owns: one direct
// child of com.apple, which the stock main ruleset evaluates.
var childAnchor = regexp.MustCompile(`^com\.apple/[A-Za-z][A-Za-z0-9_]*$`)

// Forbidden reports why claudecontainer must never make the pfctl call, or
// "" when it may. call is argv joined by single spaces, as fakebin.Record
// logs it (so an empty argument shows as two spaces), starting with
// "pfctl"; calls of other programs are allowed. The options are read as
// pfctl's BSD getopt(3) reads them: grouped flags, attached or separate
// option arguments, the first other word ending the options.
//
// It never allows -d (pf off for every program, every reference dropped),
// -e (pf on without a reference), -q (which hides the token -E prints), -F,
// -f or -T without -a naming a direct child of com.apple (they would flush
// or replace the main ruleset, or another program's anchor or table), -k
// beyond a private network (it would cut the Mac's own connections), or an
// argv pfctl would refuse.
func Forbidden(call string) string {
	words := strings.Split(call, " ")
	if words[0] != "pfctl" {
		return ""
	}
	o, err := parseArgs(words[1:])
	if err != nil {
		return "pfctl refuses it: " + err.Error()
	}
	ours := childAnchor.MatchString(o.anchor)
	switch {
	case o.has('d'):
		return "pfctl -d disables pf for every program and drops every reference"
	case o.has('e'):
		return "pfctl -e enables pf without a reference"
	case o.has('q') && o.has('E'):
		return "-q hides the token -E prints"
	case o.has('q'):
		return "-q is never needed"
	case o.has('F') && !ours:
		return "-F without -a com.apple/<name> flushes the main ruleset or another program's anchor"
	case o.has('f') && !ours:
		return "-f without -a com.apple/<name> replaces the main ruleset or another program's anchor"
	case o.has('T') && !ours:
		return "-T without -a com.apple/<name> changes a table of the main ruleset or of another program's anchor"
	}
	for i, k := range o.kill {
		p, err := parseHost(k)
		switch {
		case i == 1 && err == nil && p.IsSingleIP():
			// A second -k names the destination: it only narrows the
			// first, which names the container network.
		case err != nil || !p.Addr().IsPrivate() || p.Bits() < 8 || (p.Addr().Is6() && p.Bits() < 48):
			return "-k " + k + " kills the states of more than a container network"
		}
	}
	return ""
}
