package app

// End-to-end runs of `mage dev` against the releases of Apple's container
// CLI at the edges of what claudecontainer supports: 1.4.1, whose `system
// status --format json` nests the service's details under client, server,
// host, paths and resources and prints the status alone while the service
// is down (apple/container PR #1769), and whose JSON leaves '/' unescaped
// (PR #2205); and a release before 1.0.0, which is refused.

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	fakecontainer "github.com/VerilyPete/claudecontainer/internal/fakes/container"
)

func TestE2EDevOnContainer1_4_1StartsTheServiceAndRunsGuarded(t *testing.T) {
	m := newMac(t, "1.4.1", fakecontainer.EnvService+"=unregistered")
	var out bytes.Buffer
	if err := Dev(context.Background(), &out, ""); err != nil {
		t.Fatalf("dev: %v\n%s", err, out.String())
	}
	calls := m.calls()
	status, start := index(calls, "container system status --format json"), index(calls, "container system start")
	run, exec, stop := slices.IndexFunc(calls, startsAgent), index(calls, "container exec"), slices.Index(calls, "container stop claude-alpine")
	load, release := index(calls, "pfctl -a com.apple/claude_firewall -f"), lastIndex(calls, "pfctl -X")
	if status < 0 || start < 0 || run < 0 || exec < 0 || stop < 0 || load < 0 || release < 0 {
		t.Fatalf("missing calls:\n%s", strings.Join(calls, "\n"))
	}
	// The service was down ({"status":"unregistered"} alone): it was started,
	// and the firewall was up before the container.
	if !(status < start && start < load && load < run && run < exec && exec < stop && stop < release) {
		t.Errorf("wrong order:\n%s", strings.Join(calls, "\n"))
	}
	m.assertCallsSafe()
	m.assertDown()
}

func TestE2EDevRefusesAReleaseBefore1_0BeforeTouchingPf(t *testing.T) {
	m := newMac(t, "0.12.3")
	var out bytes.Buffer
	err := Dev(context.Background(), &out, "")
	if err == nil || !strings.Contains(err.Error(), "container 0.12.3 is installed; claudecontainer needs 1.0 or later") {
		t.Fatalf("dev: %v, want a refusal that says to upgrade\n%s", err, out.String())
	}
	for _, c := range m.calls() {
		if strings.HasPrefix(c, "pfctl") || strings.HasPrefix(c, "container") && c != "container --version" {
			t.Errorf("%q ran against an unsupported release", c)
		}
	}
	if len(m.anchorRules()) > 0 || len(m.ourRefs()) > 0 {
		t.Errorf("pf was changed: %d rules, references %v", len(m.anchorRules()), m.ourRefs())
	}
}
