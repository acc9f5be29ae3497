package pf

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The outputs below were captured on macOS 26.5 (arm64) hosts and published
// with the measurements the reference pages cite.

func TestParseTokenReadsPfctlsStderr(t *testing.T) {
	cases := []struct {
		stderr, want string
	}{
		{"pf enabled\nToken : 11012949885072952621\n", "11012949885072952621"},
		{"No ALTQ support in kernel\nALTQ related functions disabled\npf enabled\nToken : 15053025338191571182\n", "15053025338191571182"},
	}
	for _, c := range cases {
		got, err := parseToken([]byte(c.stderr))
		if err != nil || got != c.want {
			t.Errorf("%q: %q, %v", c.stderr, got, err)
		}
	}
	for _, bad := range []string{
		"No ALTQ support in kernel\nALTQ related functions disabled\n", // -q, or not Apple's pfctl
		"pf enabled\nToken : 99999999999999999999\n",                   // beyond 64 bits
		"Token : 1\nToken : 2\n",
		"pf enabled\nToken : 12; rm\n",
	} {
		if tok, err := parseToken([]byte(bad)); err == nil {
			t.Errorf("%q gave %q", bad, tok)
		}
	}
}

func TestParseReferencesReadsPfctlsTable(t *testing.T) {
	two := "TOKENS:\n" +
		"PID      Process Name                 TOKEN                    TIMESTAMP\n" +
		"4077     pfctl                        9084387343160548126      0 days 00:00:00\n" +
		"4063     pfctl                        15053025338191571182     0 days 00:00:00\n"
	got, err := parseReferences(two)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]bool{"9084387343160548126": true, "15053025338191571182": true}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got, err = parseReferences("No pf starter references held\n")
	if err != nil || len(got) != 0 {
		t.Errorf("none held: %v, %v", got, err)
	}
	spaced := "TOKENS:\nPID      Process Name                 TOKEN                    TIMESTAMP\n" +
		"618      Some Helper                  9813589183660731843      0 days 00:03:31\n"
	if got, err := parseReferences(spaced); err != nil || !got["9813589183660731843"] {
		t.Errorf("a process name with a space: %v, %v", got, err)
	}
	for _, bad := range []string{"", "pfctl: DIOCGETSTARTERS: Operation not permitted\n", "TOKENS:\n", "TOKENS:\nPID\n618 pfd x 0 days 00:00:00\n"} {
		if got, err := parseReferences(bad); err == nil {
			t.Errorf("%q gave %v", bad, got)
		}
	}
}

func TestCleanDropsPfctlsNotes(t *testing.T) {
	stderr := "pfctl: Use of -f option, could result in flushing of rules\n" +
		"present in the main ruleset added by the system at startup.\n" +
		"See /etc/pf.conf for further details.\n\n" +
		"No ALTQ support in kernel\nALTQ related functions disabled\n" +
		"stdin:3: syntax error\npfctl: Syntax error in config file: pf rules not loaded\n"
	want := "stdin:3: syntax error; pfctl: Syntax error in config file: pf rules not loaded"
	if got := clean([]byte(stderr)); got != want {
		t.Errorf("got %q", got)
	}
}
