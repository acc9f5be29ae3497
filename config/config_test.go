package config_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/VerilyPete/claudecontainer/config"
)

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestDefaultsOnAMacMatchTheOldScripts(t *testing.T) {
	c, err := config.Load(env(map[string]string{"HOME": "/Users/me"}), "darwin")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"Firewall", c.Firewall, "pf"},
		{"Runtime", c.Runtime, "container"},
		{"Network", c.Network, "claude"},
		{"Image", c.Image, "claudepine:latest"},
		{"Container", c.Container, "claude-alpine"},
		{"AllowlistFile", c.AllowlistFile, "/etc/pf.anchors/allowed_destinations"},
		{"LocalFile", c.LocalFile, "/Users/me/Library/Application Support/claudecontainer/allowlist.local"},
		{"CacheDir", c.CacheDir, "/Users/me/Library/Caches/claudecontainer"},
		{"Anchor", c.Anchor, "claude_firewall"},
		{"Table", c.Table, "allowed_destinations"},
		{"Memory", c.Memory, "8g"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.CPUs != 4 || c.AllowlistMaxAge != time.Hour || c.FetchTimeout != 30*time.Second {
		t.Errorf("CPUs %d, max age %v, fetch timeout %v", c.CPUs, c.AllowlistMaxAge, c.FetchTimeout)
	}
	if c.Subnet != netip.MustParsePrefix("192.168.218.0/24") {
		t.Errorf("Subnet = %v", c.Subnet)
	}
}

func TestDefaultsElsewhereUseNftablesAndXDGDirectories(t *testing.T) {
	c, err := config.Load(env(map[string]string{"HOME": "/home/me", "XDG_CACHE_HOME": "/var/cache/me"}), "linux")
	if err != nil {
		t.Fatal(err)
	}
	if c.Firewall != "nftables" || c.Runtime != "podman" {
		t.Errorf("Firewall %q Runtime %q", c.Firewall, c.Runtime)
	}
	if c.AllowlistFile != "/etc/claudecontainer/allowed_destinations" {
		t.Errorf("AllowlistFile = %q", c.AllowlistFile)
	}
	if c.CacheDir != "/var/cache/me/claudecontainer" || c.StateDir != "/home/me/.config/claudecontainer/state" {
		t.Errorf("CacheDir %q StateDir %q", c.CacheDir, c.StateDir)
	}
}

func TestForcingPfOnLinuxKeepsTheMacPaths(t *testing.T) {
	c, err := config.Load(env(map[string]string{"HOME": "/root", "CLAUDECONTAINER_FIREWALL": "pf", "CLAUDECONTAINER_RUNTIME": "container"}), "linux")
	if err != nil {
		t.Fatal(err)
	}
	if c.AllowlistFile != "/etc/pf.anchors/allowed_destinations" || c.Runtime != "container" {
		t.Errorf("AllowlistFile %q Runtime %q", c.AllowlistFile, c.Runtime)
	}
}

func TestMalformedSettingsAreRefusedByName(t *testing.T) {
	cases := map[string]string{
		"FIREWALL":          "iptables",
		"RUNTIME":           "lxc",
		"NETWORK":           "Claude Net",
		"SUBNET":            "8.8.8.0/24",
		"IMAGE":             "claudepine:latest; rm -rf /",
		"CONTAINER":         "-rm",
		"MEMORY":            "lots",
		"CPUS":              "0",
		"ALLOWLIST_FILE":    "relative/path",
		"ALLOWLIST_MAX_AGE": "-1h",
		"FETCH_TIMEOUT":     "soon",
		"ANCHOR":            "com.apple/x",
		"TABLE":             "a b",
		"DNS":               "192.168.218.1,resolver.example",
	}
	for name, v := range cases {
		_, err := config.Load(env(map[string]string{"HOME": "/h", config.Prefix + name: v}), "darwin")
		if err == nil || !strings.Contains(err.Error(), config.Prefix+name) {
			t.Errorf("%s=%q: err = %v, want one naming the variable", name, v, err)
		}
	}
}

func TestSourceListsAreSplitOnCommas(t *testing.T) {
	c, err := config.Load(env(map[string]string{"HOME": "/h", "CLAUDECONTAINER_SKIP_SOURCES": " statsig, vscode ,,"}), "darwin")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.SkipSources, "|") != "statsig|vscode" {
		t.Errorf("SkipSources = %q", c.SkipSources)
	}
}

func TestEverySettingIsInTheReadmeTableWithItsDefaultAndMeaning(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range config.Settings {
		row := "| `" + config.Prefix + s.Name + "` | " + s.Default + " | " + s.Doc + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no settings row\n%s", row)
		}
	}
}

func TestDNSServersAreParsed(t *testing.T) {
	c, err := config.Load(env(map[string]string{"HOME": "/h", "CLAUDECONTAINER_DNS": "192.168.218.1, ::ffff:9.9.9.9"}), "linux")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("192.168.218.1"), netip.MustParseAddr("9.9.9.9")}
	if len(c.DNS) != 2 || c.DNS[0] != want[0] || c.DNS[1] != want[1] {
		t.Errorf("DNS = %v, want %v", c.DNS, want)
	}
}
