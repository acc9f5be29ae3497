// Package config reads claudecontainer's settings. Every setting is an
// environment variable named CLAUDECONTAINER_<NAME>; Settings lists them all
// with their defaults, and the README's settings table is checked against it.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Prefix starts the name of every environment variable read here.
const Prefix = "CLAUDECONTAINER_"

// Config is the resolved set of settings for one run.
type Config struct {
	Firewall  string // "pf" or "nftables"
	Runtime   string // "container", "podman" or "docker"
	Network   string // container network name
	Subnet    netip.Prefix
	Image     string
	Container string
	Workspace string
	Memory    string
	CPUs      int

	AllowlistFile   string
	AllowlistMaxAge time.Duration
	LocalFile       string
	CacheDir        string
	StateDir        string
	Sources         []string // names to use; empty means every registered source
	SkipSources     []string
	FetchTimeout    time.Duration

	// DNS lists the only servers the containers may send DNS queries to;
	// empty means the network's gateway.
	DNS []netip.Addr

	Anchor string // pf anchor name (loaded as com.apple/<Anchor>) or nftables table name
	Table  string // allowlist table (pf) or set name prefix (nftables)

	GitHubToken string // from GITHUB_TOKEN, the variable GitHub's own tools read
}

// Setting describes one environment variable.
type Setting struct {
	Name    string // without the prefix
	Default string // as documented; may describe a computed value
	Doc     string
}

// Settings lists every setting, in the order the README shows them.
var Settings = []Setting{
	{"FIREWALL", "`pf` on macOS, `nftables` elsewhere", "Firewall backend: `pf` or `nftables`."},
	{"RUNTIME", "`container` on macOS; `podman`, else `docker`, elsewhere", "Container runtime: `container`, `podman` or `docker`."},
	{"NETWORK", "`claude`", "Name of the container network the firewall guards."},
	{"SUBNET", "`192.168.218.0/24`", "IPv4 subnet given to the network when claudecontainer creates it (a fixed subnet keeps the firewall rules valid across reboots)."},
	{"IMAGE", "`claudepine:latest`", "Image tag that `mage build` builds and `mage dev` runs."},
	{"CONTAINER", "`claude-alpine`", "Name of the container."},
	{"WORKSPACE", "`workspace/` in this checkout", "Host directory mounted at `/workspace` (created when missing). It may not contain this checkout; `mage dev -workspace=DIR` overrides it for one run."},
	{"MEMORY", "`8g`", "Memory limit of the container: a whole number with a unit, `k`, `m` or `g` (`4096m`, `8g`). A bare number is refused: the runtimes would read it as bytes."},
	{"CPUS", "`4`", "CPU limit of the container."},
	{"ALLOWLIST_FILE", "`/etc/pf.anchors/allowed_destinations` with pf, `/etc/claudecontainer/allowed_destinations` with nftables", "Where the merged allowlist is written."},
	{"ALLOWLIST_MAX_AGE", "`1h`", "`mage dev` refetches the allowlist only when the file is older than this (`mage allowlist` always refetches)."},
	{"LOCAL_FILE", "`<config dir>/claudecontainer/allowlist.local`", "Your own additions: host names and CIDRs, one per line, `#` comments."},
	{"CACHE_DIR", "`<cache dir>/claudecontainer`", "Cached source documents (the last good GitHub meta document and its ETag)."},
	{"STATE_DIR", "`<config dir>/claudecontainer/state`", "What the firewall loaded and which sessions are attached, so a crashed run can be repaired."},
	{"SOURCES", "all registered sources", "Comma-separated source names to use."},
	{"SKIP_SOURCES", "none", "Comma-separated source names to leave out (for example `statsig,vscode`)."},
	{"FETCH_TIMEOUT", "`30s`", "Upper bound on the whole allowlist fetch (every source and DNS look-up together)."},
	{"DNS", "the network's gateway", "Comma-separated IP addresses: the only DNS servers the containers may use (and are given). With docker, whose containers ask your upstream servers through docker's own resolver, set it to those servers."},
	{"ANCHOR", "`claude_firewall`", "pf anchor (loaded as `com.apple/<name>`) or nftables table name."},
	{"TABLE", "`allowed_destinations`", "Name of the allowlist table (pf) or the prefix of the allowlist sets (nftables)."},
}

// Load reads the configuration from getenv (os.Getenv in production) for the
// operating system goos (runtime.GOOS in production). It reads every
// variable and reports every malformed value together, each naming its
// variable.
func Load(getenv func(string) string, goos string) (Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(Prefix + name)); v != "" {
			return v
		}
		return def
	}
	var errs []error
	bad := func(name, v, want string) {
		errs = append(errs, fmt.Errorf("%s%s=%q: %s", Prefix, name, v, want))
	}

	c := Config{GitHubToken: strings.TrimSpace(getenv("GITHUB_TOKEN"))}

	defFirewall, defRuntime := "nftables", "podman"
	if goos == "darwin" {
		defFirewall, defRuntime = "pf", "container"
	}
	c.Firewall = get("FIREWALL", defFirewall)
	if c.Firewall != "pf" && c.Firewall != "nftables" {
		bad("FIREWALL", c.Firewall, "want pf or nftables")
	}
	c.Runtime = get("RUNTIME", defRuntime)
	switch c.Runtime {
	case "container", "podman", "docker":
	default:
		bad("RUNTIME", c.Runtime, "want container, podman or docker")
	}

	c.Network = get("NETWORK", "claude")
	if !networkName.MatchString(c.Network) {
		bad("NETWORK", c.Network, "want lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
	}
	subnet := get("SUBNET", "192.168.218.0/24")
	if p, err := netip.ParsePrefix(subnet); err != nil || !p.Addr().Is4() || !p.Addr().IsPrivate() || p.Bits() > 29 {
		bad("SUBNET", subnet, "want a private IPv4 CIDR of /29 or larger, such as 192.168.218.0/24")
	} else {
		c.Subnet = p.Masked()
	}
	c.Image = get("IMAGE", "claudepine:latest")
	if !imageRef.MatchString(c.Image) {
		bad("IMAGE", c.Image, "want an image reference such as claudepine:latest")
	}
	c.Container = get("CONTAINER", "claude-alpine")
	if !containerName.MatchString(c.Container) {
		bad("CONTAINER", c.Container, "want letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	c.Workspace = get("WORKSPACE", "")
	if c.Workspace == "" {
		// Not the checkout itself: the agent must not be able to edit the
		// code that runs on the host with root rights.
		wd, err := os.Getwd()
		if err != nil {
			errs = append(errs, fmt.Errorf("finding the workspace: %w", err))
		}
		c.Workspace = filepath.Join(wd, "workspace")
	}
	if abs, err := filepath.Abs(c.Workspace); err == nil {
		c.Workspace = abs
	}
	c.Memory = get("MEMORY", "8g")
	switch {
	case bareNumber.MatchString(c.Memory):
		// Apple's container reads a size without a unit as bytes
		// (1.2.2:Sources/ContainerPersistence/Measurement+Parse.swift,
		// parseUnit defaults to "b"), and so do podman and docker.
		bad("MEMORY", c.Memory, fmt.Sprintf("a size needs a unit: the container runtimes read a bare number as bytes, so this would be %s bytes; "+
			"write %sm for MiB or %sg for GiB", c.Memory, c.Memory, c.Memory))
	case !memory.MatchString(c.Memory):
		bad("MEMORY", c.Memory, "want a whole number with a unit k, m or g, such as 8g or 4096m")
	}
	cpus := get("CPUS", "4")
	if n, err := strconv.Atoi(cpus); err != nil || n < 1 || n > 256 {
		bad("CPUS", cpus, "want a whole number from 1 to 256")
	} else {
		c.CPUs = n
	}

	defAllow := "/etc/pf.anchors/allowed_destinations"
	if c.Firewall == "nftables" {
		defAllow = "/etc/claudecontainer/allowed_destinations"
	}
	c.AllowlistFile = get("ALLOWLIST_FILE", defAllow)
	c.AllowlistMaxAge = duration(get, bad, "ALLOWLIST_MAX_AGE", "1h")
	c.FetchTimeout = duration(get, bad, "FETCH_TIMEOUT", "30s")

	configDir, cacheDir := userDirs(getenv, goos)
	c.LocalFile = get("LOCAL_FILE", filepath.Join(configDir, "claudecontainer", "allowlist.local"))
	c.CacheDir = get("CACHE_DIR", filepath.Join(cacheDir, "claudecontainer"))
	c.StateDir = get("STATE_DIR", filepath.Join(configDir, "claudecontainer", "state"))
	for name, p := range map[string]string{"ALLOWLIST_FILE": c.AllowlistFile, "LOCAL_FILE": c.LocalFile, "CACHE_DIR": c.CacheDir, "STATE_DIR": c.StateDir} {
		if !filepath.IsAbs(p) {
			bad(name, p, "want an absolute path")
		}
	}

	c.Sources = list(get("SOURCES", ""))
	c.SkipSources = list(get("SKIP_SOURCES", ""))

	for _, s := range list(get("DNS", "")) {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			bad("DNS", s, "want IP addresses such as 192.168.218.1,9.9.9.9")
			continue
		}
		c.DNS = append(c.DNS, a.Unmap())
	}

	c.Anchor = get("ANCHOR", "claude_firewall")
	if !identifier.MatchString(c.Anchor) {
		bad("ANCHOR", c.Anchor, "want letters, digits and '_', starting with a letter, at most 31 characters")
	}
	c.Table = get("TABLE", "allowed_destinations")
	if !identifier.MatchString(c.Table) {
		bad("TABLE", c.Table, "want letters, digits and '_', starting with a letter, at most 31 characters")
	}
	return c, errors.Join(errs...)
}

// FromEnv loads the configuration of this process.
func FromEnv() (Config, error) { return Load(os.Getenv, runtime.GOOS) }

var (
	// apple/container's network name rule, which podman and docker also accept.
	networkName   = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$`)
	containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	imageRef      = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]{0,200}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$`)
	memory        = regexp.MustCompile(`^[1-9][0-9]{0,6}[kmgKMG]$`)
	bareNumber    = regexp.MustCompile(`^[0-9]+$`)
	identifier    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,30}$`)
)

func duration(get func(string, string) string, bad func(string, string, string), name, def string) time.Duration {
	v := get(name, def)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		bad(name, v, "want a positive duration such as 30s or 1h")
		return 0
	}
	return d
}

func list(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// userDirs returns the per-user configuration and cache directories,
// following os.UserConfigDir and os.UserCacheDir but reading the environment
// through getenv so tests can set it.
func userDirs(getenv func(string) string, goos string) (configDir, cacheDir string) {
	home := getenv("HOME")
	if home == "" {
		home = "/"
	}
	if goos == "darwin" {
		return filepath.Join(home, "Library", "Application Support"), filepath.Join(home, "Library", "Caches")
	}
	configDir, cacheDir = getenv("XDG_CONFIG_HOME"), getenv("XDG_CACHE_HOME")
	if !filepath.IsAbs(configDir) {
		configDir = filepath.Join(home, ".config")
	}
	if !filepath.IsAbs(cacheDir) {
		cacheDir = filepath.Join(home, ".cache")
	}
	return configDir, cacheDir
}
