package pfctl_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	pfctl "github.com/VerilyPete/claudecontainer/internal/fakes/pfctl"
)

// host is one fake kernel that tests call pfctl against in process.
type host struct {
	t    *testing.T
	dir  string
	fail string
}

func newHost(t *testing.T, st pfctl.State) *host {
	t.Helper()
	dir := t.TempDir()
	if err := pfctl.Save(dir, st); err != nil {
		t.Fatal(err)
	}
	return &host{t: t, dir: dir}
}

type result struct {
	code           int
	stdout, stderr string
}

func (h *host) run(stdin string, args ...string) result {
	var out, errb bytes.Buffer
	env := map[string]string{pfctl.EnvState: h.dir, pfctl.EnvFail: h.fail}
	code := pfctl.Run(args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

func (h *host) state() pfctl.State { return pfctl.MustLoad(h.t, h.dir) }

const (
	altq = "No ALTQ support in kernel\nALTQ related functions disabled\n"
	// pfctl prints this on any -f, table files included.
	fWarning = "pfctl: Use of -f option, could result in flushing of rules\n" +
		"present in the main ruleset added by the system at startup.\n" +
		"See /etc/pf.conf for further details.\n\n"
)

func TestEveryCallPrintsTheALTQNoiseOnStderr(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	for _, args := range [][]string{{"-s", "info"}, {"-s", "References"}, {"-sr"}, {"-E"}} {
		if r := h.run("", args...); !strings.HasPrefix(r.stderr, altq) {
			t.Errorf("%q: stderr %q", args, r.stderr)
		}
	}
}

func TestEnableWithAReferencePrintsTheTokenOnStderr(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	r := h.run("", "-E")
	want := altq + "pf enabled\nToken : " + pfctl.Token(1) + "\n"
	if r.code != 0 || r.stdout != "" || r.stderr != want {
		t.Errorf("got %+v, want stderr %q", r, want)
	}
	st := h.state()
	if !st.Enabled || len(st.Refs) != 1 || st.Refs[0].Token != pfctl.Token(1) || st.Refs[0].Name != "pfctl" {
		t.Errorf("state after -E: %+v", st)
	}
	if r := h.run("", "-E"); r.code != 0 || len(h.state().Refs) != 2 {
		t.Errorf("a second -E did not add a reference: %+v", r)
	}
}

func TestQuietHidesTheToken(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	if r := h.run("", "-q", "-E"); r.code != 0 || strings.Contains(r.stderr, "Token") {
		t.Errorf("-q -E printed %q", r.stderr)
	}
	if len(h.state().Refs) != 1 {
		t.Errorf("-q -E took no reference")
	}
}

func TestReleasingReferences(t *testing.T) {
	now := time.Now()
	st := pfctl.Stock()
	pfd := st.AddRef(312, "pfd", now)
	h := newHost(t, st)
	mine := strings.TrimSpace(strings.TrimPrefix(h.run("", "-E").stderr, altq+"pf enabled\nToken : "))

	r := h.run("", "-X", mine)
	if r.code != 0 || r.stderr != altq+"disable request successful. 1 more pf enable reference(s) remaining, pf still enabled.\n" {
		t.Errorf("releasing one of two: %+v", r)
	}
	r = h.run("", "-X", mine)
	if r.code != 1 || r.stderr != altq+"pfctl: pf: token invalid\n" {
		t.Errorf("releasing an unknown token: %+v", r)
	}
	r = h.run("", "-X", pfd)
	if r.code != 0 || r.stderr != altq+"pf disabled\n" || h.state().Enabled {
		t.Errorf("releasing the last: %+v", r)
	}
	r = h.run("", "-X", pfd)
	if r.code != 1 || r.stderr != altq+"pfctl: pf not enabled\n" {
		t.Errorf("releasing while pf is off: %+v", r)
	}
}

func TestDisableDropsEveryReference(t *testing.T) {
	st := pfctl.Stock()
	st.AddRef(312, "pfd", time.Now())
	h := newHost(t, st)
	h.run("", "-E")
	if r := h.run("", "-d"); r.code != 0 || r.stderr != altq+"pf disabled\n" {
		t.Errorf("-d: %+v", r)
	}
	if st := h.state(); st.Enabled || len(st.Refs) != 0 {
		t.Errorf("after -d: %+v", st)
	}
	if r := h.run("", "-s", "References"); r.stdout != "No pf starter references held\n" {
		t.Errorf("references after -d: %q", r.stdout)
	}
	if r := h.run("", "-d"); r.code != 1 || !strings.HasSuffix(r.stderr, "pfctl: pf not enabled\n") {
		t.Errorf("-d twice: %+v", r)
	}
	if r := h.run("", "-e"); r.code != 0 || !h.state().Enabled || len(h.state().Refs) != 0 {
		t.Errorf("-e: %+v", r)
	}
	if r := h.run("", "-e"); r.code != 1 || !strings.HasSuffix(r.stderr, "pfctl: pf already enabled\n") {
		t.Errorf("-e twice: %+v", r)
	}
}

func TestReferencesAreListedInPfctlsColumns(t *testing.T) {
	now := time.Now()
	st := pfctl.Stock()
	st.Refs = []pfctl.Ref{
		{PID: 4077, Name: "pfctl", Token: "9084387343160548126", Taken: now},
		{PID: 618, Name: "socketfilterfw", Token: "9813589183660731843", Taken: now.Add(-(3*time.Minute + 31*time.Second))},
	}
	st.Enabled = true
	h := newHost(t, st)
	want := "TOKENS:\n" +
		"PID      Process Name                 TOKEN                    TIMESTAMP\n" +
		"4077     pfctl                        9084387343160548126      0 days 00:00:00\n" +
		"618      socketfilterfw               9813589183660731843      0 days 00:03:31\n"
	for _, args := range [][]string{{"-s", "References"}, {"-sR"}} {
		r := h.run("", args...)
		if diff := cmp.Diff(want, r.stdout); diff != "" || r.code != 0 {
			t.Errorf("%q (-want +got):\n%s", args, diff)
		}
	}
}

func TestInfoShowsTheStatusLine(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	first := func() string { return strings.SplitN(h.run("", "-s", "info").stdout, "\n", 2)[0] }
	if got := first(); got != "Status: Disabled                              Debug: Urgent" {
		t.Errorf("disabled: %q", got)
	}
	h.run("", "-E")
	if got := first(); got != "Status: Enabled for 0 days 00:00:00           Debug: Urgent" {
		t.Errorf("enabled: %q", got)
	}
}

const anchorText = `# a comment
net = "192.168.64.0/24"
table <allow> persist
pass out quick on ! lo0 inet from any to $net keep state label "a"
pass in quick inet proto { udp tcp } from $net to { 192.168.64.1 } port 53 keep state label "dns"
pass in quick on bridge100 inet6 proto ipv6-icmp all icmp6-type { neighbrsol neighbradv } no state label "nd"
block return in quick on ! lo0 inet from $net to any label "deny"
`

func TestAnAnchorIsLoadedFromStdinAndListedAsPfctlPrintsIt(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	r := h.run(anchorText, "-a", "com.apple/claude", "-f", "-")
	if r.code != 0 {
		t.Fatalf("load: %+v", r)
	}
	if !strings.HasPrefix(r.stderr, "pfctl: Use of -f option, could result in flushing of rules\n") {
		t.Errorf("no -f warning: %q", r.stderr)
	}
	want := `pass out quick on ! lo0 inet from any to 192.168.64.0/24 flags S/SA keep state label "a"
pass in quick inet proto udp from 192.168.64.0/24 to 192.168.64.1 port = 53 keep state label "dns"
pass in quick inet proto tcp from 192.168.64.0/24 to 192.168.64.1 port = 53 flags S/SA keep state label "dns"
pass in quick on bridge100 inet6 proto ipv6-icmp all icmp6-type neighbrsol no state label "nd"
pass in quick on bridge100 inet6 proto ipv6-icmp all icmp6-type neighbradv no state label "nd"
block return in quick on ! lo0 inet from 192.168.64.0/24 to any label "deny"
`
	r = h.run("", "-a", "com.apple/claude", "-s", "rules")
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("-s rules (-want +got):\n%s", diff)
	}
	if tables := h.state().Anchors["com.apple/claude"].Tables; tables["allow"] == nil {
		t.Errorf("table <allow> not created: %v", tables)
	}
	if r := h.run("", "-a", "com.apple", "-s", "Anchors"); !strings.Contains(r.stdout, "  com.apple/claude\n") {
		t.Errorf("-s Anchors: %q", r.stdout)
	}
}

func TestABrokenAnchorIsRefusedAndTheOldOneStays(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	if r := h.run(anchorText, "-a", "com.apple/claude", "-f", "-"); r.code != 0 {
		t.Fatal(r)
	}
	before := h.state().Anchors["com.apple/claude"].Rules
	for _, c := range []struct{ text, msg string }{
		{"pass in all\npass in proto { tcp udp from any to any\n", "stdin:2: syntax error"},
		{"pass in from $nosuch to any\n", "stdin:1: macro 'nosuch' not defined"},
		{"match in all\n", "stdin:1: syntax error"},
		{"pass in label \"unterminated\n", "stdin:1: syntax error"},
		{"pass in quick from any to any port 53\n", "stdin:1: port only applies to tcp/udp"},
		{"table <t> persist\ntable <t> persist\n", "stdin:2: cannot define table t: Resource busy"},
	} {
		r := h.run(c.text, "-a", "com.apple/claude", "-f", "-")
		if r.code != 1 || !strings.Contains(r.stderr, c.msg+"\n") || !strings.HasSuffix(r.stderr, "pfctl: Syntax error in config file: pf rules not loaded\n") {
			t.Errorf("%q: %+v", c.text, r)
		}
		if diff := cmp.Diff(before, h.state().Anchors["com.apple/claude"].Rules); diff != "" {
			t.Errorf("%q changed the anchor:\n%s", c.text, diff)
		}
	}
}

func TestAFileIsReadAndNamedInErrors(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	path := filepath.Join(t.TempDir(), "anchor.pf")
	os.WriteFile(path, []byte("pass in all\n}\n"), 0o644)
	r := h.run("", "-a", "com.apple/claude", "-f", path)
	if r.code != 1 || !strings.Contains(r.stderr, path+":2: syntax error") {
		t.Errorf("%+v", r)
	}
}

func TestTheMainRulesetEvaluatesComApple(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	if r := h.run("", "-sr"); !strings.Contains(r.stdout, "anchor \"com.apple/*\" all\n") {
		t.Errorf("stock -sr: %q", r.stdout)
	}
	// Another tool loads its own main ruleset without Apple's anchors.
	if r := h.run("pass in all\n", "-f", "-"); r.code != 0 {
		t.Fatal(r)
	}
	if r := h.run("", "-s", "rules"); r.stdout != "pass in all flags S/SA keep state\n" {
		t.Errorf("-sr after a main ruleset load: %q", r.stdout)
	}
}

func TestAMissingAnchorWarnsOnShowRules(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	r := h.run("", "-a", "com.apple/nosuch", "-s", "rules")
	if r.stdout != "" || !strings.HasSuffix(r.stderr, "pfctl: DIOCGETRULES: Invalid argument\n") {
		t.Errorf("%+v", r)
	}
}

func TestTables(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	a := []string{"-a", "com.apple/claude", "-t", "allow"}
	file := filepath.Join(t.TempDir(), "allow.txt")
	os.WriteFile(file, []byte("# GitHub\n140.82.112.0/20 192.30.252.0/22   # web\n2606:50c0::/32\n!140.82.113.5\n10.0.0.5/8\n"), 0o644)

	r := h.run("", append(a, "-T", "replace", "-f", file)...)
	if r.code != 0 || r.stderr != fWarning+altq+"1 table created.\n5 addresses added.\n" {
		t.Errorf("replace: %+v", r)
	}
	want := "   !140.82.113.5\n   10.0.0.0/8\n   140.82.112.0/20\n   192.30.252.0/22\n   2606:50c0::/32\n"
	if r := h.run("", append(a, "-T", "show")...); r.stdout != want {
		t.Errorf("show:\n%s", r.stdout)
	}
	r = h.run("", append(a, "-T", "add", "1.2.3.4", "140.82.112.0/20")...)
	if r.code != 0 || r.stderr != altq+"1/2 addresses added.\n" {
		t.Errorf("add: %+v", r)
	}
	os.WriteFile(file, []byte("1.2.3.4\n"), 0o644)
	r = h.run("", append(a, "-T", "replace", "-f", file)...)
	if r.code != 0 || r.stderr != fWarning+altq+"5 addresses deleted.\n" {
		t.Errorf("replace with fewer: %+v", r)
	}
	// The table survives a reload of its anchor.
	h.run(anchorText, "-a", "com.apple/claude", "-f", "-")
	if r := h.run("", append(a, "-T", "show")...); r.stdout != "   1.2.3.4\n" {
		t.Errorf("after reloading the anchor: %q", r.stdout)
	}
	if r := h.run("", append(a, "-T", "add", "example.com")...); r.code != 1 {
		t.Errorf("a host name was accepted: %+v", r)
	}
	if r := h.run("", "-a", "com.apple/claude", "-t", "nosuch", "-T", "show"); r.code != 1 || !strings.HasSuffix(r.stderr, "pfctl: Table does not exist.\n") {
		t.Errorf("show of a missing table: %+v", r)
	}
}

func TestFlushingAnAnchorLeavesEverythingElse(t *testing.T) {
	st := pfctl.Stock()
	st.Anchors["com.apple/other"] = &pfctl.Anchor{Rules: []string{"pass in all"}, Tables: map[string][]string{}}
	h := newHost(t, st)
	h.run(anchorText, "-a", "com.apple/claude", "-f", "-")
	r := h.run("", "-a", "com.apple/claude", "-F", "all")
	if r.code != 0 || r.stderr != altq+"rules cleared\nnat cleared\ndummynet cleared\n1 tables deleted.\n" {
		t.Errorf("-F all: %+v", r)
	}
	after := h.state()
	if _, ok := after.Anchors["com.apple/claude"]; ok {
		t.Errorf("the flushed anchor is still there")
	}
	if after.Anchors["com.apple/other"] == nil || len(after.Main) != 2 {
		t.Errorf("flushing one anchor touched others: %+v", after)
	}
}

// redirectText is an anchor with translation rules in the shape Render
// writes for the DNS filter.
const redirectText = `net = "192.168.64.0/24"
table <opened> persist
no rdr on bridge100 inet proto { tcp udp } from { 192.168.64.1 192.168.64.255 } to any port 53
rdr pass on ! lo0 inet proto { tcp udp } from $net to any port 53 -> 127.0.0.1 port 5380
rdr pass on bridge100 inet6 proto tcp from fd00::/64 to any port 53 -> ::1 port 5380
pass in quick on ! lo0 inet proto tcp from $net to <opened> keep state label "opened"
`

func TestTranslationRulesAreListedByShowNatAsPfctlPrintsThem(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	// The stock main ruleset, as `pfctl -s nat` printed it on macOS 26.
	if r := h.run("", "-s", "nat"); r.code != 0 || r.stdout != "nat-anchor \"com.apple/*\" all\nrdr-anchor \"com.apple/*\" all\n" {
		t.Errorf("stock -s nat: %+v", r)
	}
	if r := h.run(redirectText, "-a", "com.apple/claude", "-f", "-"); r.code != 0 {
		t.Fatalf("load: %+v", r)
	}
	want := `no rdr on bridge100 inet proto tcp from 192.168.64.1 to any port = 53
no rdr on bridge100 inet proto tcp from 192.168.64.255 to any port = 53
no rdr on bridge100 inet proto udp from 192.168.64.1 to any port = 53
no rdr on bridge100 inet proto udp from 192.168.64.255 to any port = 53
rdr pass on ! lo0 inet proto tcp from 192.168.64.0/24 to any port = 53 -> 127.0.0.1 port 5380
rdr pass on ! lo0 inet proto udp from 192.168.64.0/24 to any port = 53 -> 127.0.0.1 port 5380
rdr pass on bridge100 inet6 proto tcp from fd00::/64 to any port = 53 -> ::1 port 5380
`
	if r := h.run("", "-a", "com.apple/claude", "-sn"); r.code != 0 || r.stdout != want {
		t.Errorf("-s nat of the anchor (exit %d):\n%s", r.code, cmp.Diff(want, r.stdout))
	}
	if r := h.run("", "-a", "com.apple/claude", "-s", "rules"); strings.Contains(r.stdout, "rdr") || !strings.Contains(r.stdout, `label "opened"`) {
		t.Errorf("-s rules lists translation rules, or not the filter rule: %q", r.stdout)
	}
	if r := h.run("", "-a", "com.apple/nosuch", "-s", "nat"); r.stdout != "" || !strings.HasSuffix(r.stderr, "pfctl: DIOCGETRULES: Invalid argument\n") {
		t.Errorf("-s nat of a missing anchor: %+v", r)
	}
	if r := h.run("", "-a", "com.apple/claude", "-F", "nat"); r.code != 0 || len(h.state().Anchors["com.apple/claude"].NAT) != 0 {
		t.Errorf("-F nat: %+v", r)
	}
	// Another tool loads a main ruleset of its own: the translation
	// anchors go with the filter anchors.
	if r := h.run("pass in all\n", "-f", "-"); r.code != 0 {
		t.Fatal(r)
	}
	if r := h.run("", "-s", "nat"); r.code != 0 || r.stdout != "" {
		t.Errorf("-s nat after a main ruleset load: %+v", r)
	}
	if r := h.run("rdr-anchor \"com.apple/*\"\nanchor \"com.apple/*\"\n", "-f", "-"); r.code != 0 {
		t.Fatal(r)
	}
	if r := h.run("", "-s", "nat"); r.stdout != "rdr-anchor \"com.apple/*\" all\n" {
		t.Errorf("-s nat after loading an rdr-anchor: %q", r.stdout)
	}
}

func TestTranslationRulesArePfctlsGrammar(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	for _, c := range []struct{ text, msg string }{
		{"pass in all\nrdr pass proto udp from any to any port 53 -> 127.0.0.1 port 5380\n", "stdin:2: " + "Rules must be in order: options, normalization, queueing, translation, filtering"},
		{"rdr pass proto udp from any to any port 53 -> 127.0.0.1 port 5380 label \"x\"\n", "stdin:1: syntax error"},
		{"rdr pass quick proto udp from any to any port 53 -> 127.0.0.1 port 5380\n", "stdin:1: syntax error"},
		{"rdr pass proto udp from any to any port 53\n", "stdin:1: translation rule requires '-> address'"},
		{"no rdr proto udp from any to any port 53 -> 127.0.0.1\n", "stdin:1: translation rule with 'no' does not need '->'"},
		{"rdr pass from any to any port 53 -> 127.0.0.1 port 5380\n", "stdin:1: port only applies to tcp/udp"},
	} {
		r := h.run(c.text, "-a", "com.apple/claude", "-f", "-")
		if r.code != 1 || !strings.Contains(r.stderr, c.msg+"\n") {
			t.Errorf("%q: %+v", c.text, r)
		}
	}
	if a := h.state().Anchors["com.apple/claude"]; a != nil {
		t.Errorf("a refused anchor was loaded: %+v", a)
	}
}

func TestTableAddressesAreDeletedFromStdin(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	a := []string{"-a", "com.apple/claude", "-t", "opened"}
	if r := h.run("", append(a, "-T", "delete", "-f", "-")...); r.code != 1 || !strings.HasSuffix(r.stderr, "pfctl: Table does not exist.\n") {
		t.Errorf("delete from a missing table: %+v", r)
	}
	if r := h.run("", append(a, "-T", "add", "198.51.100.7", "2001:db8::7", "203.0.113.9")...); r.code != 0 || r.stderr != altq+"1 table created.\n3/3 addresses added.\n" {
		t.Errorf("add: %+v", r)
	}
	r := h.run("198.51.100.7\n2001:db8::7\n192.0.2.1\n", append(a, "-T", "delete", "-f", "-")...)
	if r.code != 0 || r.stderr != fWarning+altq+"2/3 addresses deleted.\n" {
		t.Errorf("delete: %+v", r)
	}
	if r := h.run("", append(a, "-T", "show")...); r.stdout != "   203.0.113.9\n" {
		t.Errorf("show: %q", r.stdout)
	}
	// The anchor held nothing but the table: killing it removes the anchor.
	if r := h.run("", append(a, "-T", "kill")...); r.code != 0 || r.stderr != altq+"1 table deleted.\n" {
		t.Errorf("kill: %+v", r)
	}
	if _, ok := h.state().Anchors["com.apple/claude"]; ok {
		t.Error("an empty anchor is left")
	}
}

func TestKillingStatesFromANetwork(t *testing.T) {
	st := pfctl.Stock()
	st.Conns = []pfctl.Conn{
		{Src: "192.168.64.5", Dst: "140.82.113.4", Proto: "tcp"},
		{Src: "192.168.64.6", Dst: "192.168.64.1", Proto: "udp"},
		{Src: "192.168.1.20", Dst: "93.184.216.34", Proto: "tcp"},
	}
	h := newHost(t, st)
	r := h.run("", "-k", "192.168.64.0/24", "-k", "192.168.64.1")
	if r.code != 0 || r.stderr != altq+"killed 1 states from 1 sources and 1 destinations\n" {
		t.Errorf("two-host kill: %+v", r)
	}
	r = h.run("", "-k", "192.168.64.0/24")
	if r.code != 0 || r.stderr != altq+"killed 1 states from 1 sources and 0 destinations\n" {
		t.Errorf("network kill: %+v", r)
	}
	if conns := h.state().Conns; len(conns) != 1 || conns[0].Src != "192.168.1.20" {
		t.Errorf("left: %+v", conns)
	}
}

func TestAnInjectedFailureChangesNothing(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	h.fail = "^-E$"
	r := h.run("", "-E")
	if r.code != 1 || !strings.HasPrefix(r.stderr, altq+"pfctl: ") || h.state().Enabled {
		t.Errorf("%+v", r)
	}
	if r := h.run("", "-s", "info"); r.code != 0 {
		t.Errorf("a call the expression does not match failed: %+v", r)
	}
}

func TestOptionsGroupLikeGetopt(t *testing.T) {
	h := newHost(t, pfctl.Stock())
	if r := h.run("pass in all\n", "-Ef", "-"); r.code != 0 || !strings.Contains(r.stderr, "Token : ") {
		t.Errorf("-Ef -: %+v", r)
	}
	if r := h.run("", "-c"); r.code != 1 || !strings.Contains(r.stderr, "illegal option -- c") {
		t.Errorf("-c: %+v", r)
	}
	if r := h.run("", "-a"); r.code != 1 || !strings.Contains(r.stderr, "option requires an argument -- a") {
		t.Errorf("-a: %+v", r)
	}
}

func TestTheStateDirectoryIsRequired(t *testing.T) {
	var out, errb bytes.Buffer
	if code := pfctl.Run([]string{"-s", "info"}, nil, &out, &errb, func(string) string { return "" }); code != 2 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
