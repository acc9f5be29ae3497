package pf

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

// The fuzz targets below feed the readers of pfctl's output and of the state
// file arbitrary input. The seeds are the outputs parse_test.go quotes
// (macOS 26.5) and those of the pfctl fake. Tokens that come out are what
// `pfctl -X` is later given, so each must be a 64-bit decimal number.

func FuzzParseToken(f *testing.F) {
	for _, s := range []string{
		"pf enabled\nToken : 11012949885072952621\n",
		"No ALTQ support in kernel\nALTQ related functions disabled\npf enabled\nToken : 15053025338191571182\n",
		"No ALTQ support in kernel\nALTQ related functions disabled\n",
		"pf enabled\nToken : 99999999999999999999\n",
		"Token : 1\nToken : 2\n",
		"pf enabled\nToken : 12; rm\n",
		"pf enabled\r\nToken : 18446744073709551615\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stderr []byte) {
		tok, err := parseToken(stderr)
		if err != nil {
			if tok != "" {
				t.Fatalf("error %v came with token %q", err, tok)
			}
			return
		}
		if !validToken(tok) || !strings.Contains(string(stderr), "Token : "+tok) {
			t.Fatalf("parseToken(%q) = %q", stderr, tok)
		}
	})
}

func FuzzParseReferences(f *testing.F) {
	for _, s := range []string{
		"TOKENS:\n" +
			"PID      Process Name                 TOKEN                    TIMESTAMP\n" +
			"4077     pfctl                        9084387343160548126      0 days 00:00:00\n" +
			"4063     pfctl                        15053025338191571182     0 days 00:00:00\n",
		"No pf starter references held\n",
		"TOKENS:\nPID      Process Name                 TOKEN                    TIMESTAMP\n" +
			"618      Some Helper                  9813589183660731843      0 days 00:03:31\n",
		"",
		"pfctl: DIOCGETSTARTERS: Operation not permitted\n",
		"TOKENS:\n",
		"TOKENS:\nPID\n618 pfd x 0 days 00:00:00\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		live, err := parseReferences(out)
		if err != nil {
			if live != nil {
				t.Fatalf("error %v came with %v", err, live)
			}
			return
		}
		if live == nil {
			t.Fatal("no error and no map")
		}
		for tok := range live {
			if !validToken(tok) || !strings.Contains(out, tok) {
				t.Fatalf("parseReferences(%q) lists token %q", out, tok)
			}
		}
		if len(live) == 0 && strings.TrimSpace(out) != "No pf starter references held" && strings.Count(strings.TrimSpace(out), "\n") > 1 {
			t.Fatalf("parseReferences(%q) reads rows as no references held", out)
		}
	})
}

// stdout is a runner whose every program prints the same standard output.
type stdout []byte

func (s stdout) Run(context.Context, proc.Cmd) (proc.Result, error) {
	return proc.Result{Stdout: s}, nil
}

func (s stdout) Interactive(context.Context, proc.Cmd) error { return nil }

// FuzzShowOutput reads `pfctl -s info` and `pfctl -s rules` output: the
// status line, whether the main ruleset evaluates com.apple/*, and how many
// of our rules an anchor holds.
func FuzzShowOutput(f *testing.F) {
	for _, s := range []string{
		"Status: Enabled for 0 days 00:00:00           Debug: Urgent\n\nState Table                          Total             Rate\n",
		"Status: Disabled                              Debug: Urgent\n",
		"No ALTQ support in kernel\nStatus: Enabled\n",
		`scrub-anchor "com.apple/*" all fragment reassemble` + "\n" + `anchor "com.apple/*" all` + "\n",
		`pass out quick on ! lo0 inet from any to 192.168.64.0/24 flags S/SA keep state label "claude-a"` + "\n" +
			`block return in quick on ! lo0 inet from 192.168.64.0/24 to any label "claude-deny"` + "\n",
		"  anchor \"com.apple/*\" all\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		fw := &Firewall{run: stdout(out), cfg: Config{Anchor: testAnchor}}
		ctx := context.Background()
		enabled, line, err := fw.info(ctx)
		switch {
		case err != nil:
			if enabled || line != "" {
				t.Fatalf("error %v came with %v, %q", err, enabled, line)
			}
		case strings.ContainsAny(line, "\r\n\t"):
			t.Fatalf("status line %q is not one line", line)
		case enabled != strings.HasPrefix(line, "Status: Enabled"):
			t.Fatalf("status line %q read as enabled %v", line, enabled)
		case !enabled && !strings.HasPrefix(line, "Status: Disabled"):
			t.Fatalf("status line %q read as disabled", line)
		}
		ok, scrub, err := fw.anchorPoints(ctx)
		if err != nil || ok && !strings.Contains(string(out), `anchor "`+Parent+`/*"`) || scrub && !strings.Contains(string(out), `scrub-anchor "`+Parent+`/*"`) {
			t.Fatalf("anchorPoints = %v, %v, %v", ok, scrub, err)
		}
		n, err := fw.ourRules(ctx, anchorPath)
		if err != nil || n < 0 || n > strings.Count(string(out), "label") {
			t.Fatalf("ourRules = %d, %v", n, err)
		}
	})
}

// FuzzLoadRecord reads the state file: a record it accepts holds nothing that
// could not go on a pfctl command line.
func FuzzLoadRecord(f *testing.F) {
	f.Add([]byte(`{"anchor":"com.apple/claude_firewall","table":"claude_allowed","network4":"192.168.64.0/24",` +
		`"network6":"fd00:1::/64","interface":"bridge100","tokens":[{"token":"11012949885072952621","taken":"2026-01-02T03:04:05Z"}],"updated":"2026-01-02T03:04:05Z"}`))
	f.Add([]byte(`{"anchor":"com.apple/x","table":"t","network4":"10.0.0.0/8","tokens":null,"updated":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"anchor":"com.apple/x; pfctl -d","table":"t","network4":"10.0.0.1/8","tokens":[{"token":"-1"}]}`))
	f.Add([]byte(`{"anchor":"com.apple/x","table":"t","network4":"10.0.0.0/8","extra":1}`))
	dir := f.TempDir()
	fw := &Firewall{cfg: Config{Anchor: testAnchor, StateDir: dir}}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, recordFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		rec, err := fw.load()
		if err != nil {
			if rec != nil {
				t.Fatalf("error %v came with %+v", err, rec)
			}
			return
		}
		if rec == nil {
			t.Fatal("no error and no record for a file that exists")
		}
		if !anchorPathRE.MatchString(rec.Anchor) || !policy.ValidIdentifier(rec.Table) ||
			(rec.Interface != "" && !policy.ValidInterface(rec.Interface)) {
			t.Fatalf("record %+v", rec)
		}
		if p, err := netip.ParsePrefix(rec.Network4); err != nil || !p.Addr().Is4() || p != p.Masked() {
			t.Fatalf("record network4 %q", rec.Network4)
		}
		if rec.Network6 != "" {
			if p, err := netip.ParsePrefix(rec.Network6); err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p != p.Masked() || p.Addr().Zone() != "" {
				t.Fatalf("record network6 %q", rec.Network6)
			}
		}
		for _, tok := range rec.Tokens {
			if !validToken(tok.Token) {
				t.Fatalf("record token %q", tok.Token)
			}
		}
	})
}
