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
	"slices"
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
	// DNSFilter sends the containers' DNS to the DNS filter on the host,
	// which listens on DNSFilterPort and asks DNSUpstream (empty: the
	// host's resolvers in /etc/resolv.conf).
	DNSFilter     bool
	DNSFilterPort uint16
	DNSUpstream   []netip.AddrPort

	Anchor string // pf anchor name (loaded as com.apple/<Anchor>) or nftables table name
	Table  string // allowlist table (pf) or set name prefix (nftables)
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
	{"LOCAL_FILE", "`<config dir>/claudecontainer/allowlist.local`", "Your own additions: host names, `*.domain` and `!name` entries, and CIDRs, one per line, `#` comments."},
	{"CACHE_DIR", "`<cache dir>/claudecontainer`", "Cached source documents (the last good GitHub meta document and its ETag)."},
	{"STATE_DIR", "`<config dir>/claudecontainer/state`", "What the firewall loaded and which sessions are attached, so a crashed run can be repaired."},
	{"SOURCES", "all registered sources", "Comma-separated source names to use."},
	{"SKIP_SOURCES", "none", "Comma-separated source names to leave out (for example `statsig,vscode`)."},
	{"FETCH_TIMEOUT", "`30s`", "Upper bound on the whole allowlist fetch (every source and DNS look-up together)."},
	{"DNS", "the network's gateway", "Comma-separated IP addresses: the DNS servers the containers are given, and with the DNS filter off the only ones they may use. With docker, whose containers ask your upstream servers through docker's own resolver, set it to those servers."},
	{"DNS_FILTER", "`on`", "`on`: the containers' DNS goes to claudecontainer's DNS filter, which answers only allowlisted names and opens the firewall to each answer; `off`: to the DNS servers above, and only the allowlist's addresses are open."},
	{"DNS_FILTER_PORT", "`15353`", "Port the DNS filter listens on, on the network's gateway address (nftables) or on loopback (pf)."},
	{"DNS_UPSTREAM", "the `nameserver` lines of `/etc/resolv.conf`", "Comma-separated `IP` or `IP:port`: the resolvers the DNS filter asks for allowed names."},
	{"ANCHOR", "`claude_firewall`", "pf anchor (loaded as `com.apple/<name>`) or nftables table name."},
	{"TABLE", "`allowed_destinations`", "Name of the allowlist table (pf) or the prefix of the allowlist sets (nftables)."},
}

// Load reads the configuration from getenv (os.Getenv in production) for the
// operating system goos (runtime.GOOS in production). It reads every
// variable and reports every malformed value together, each naming its
// variable.
func Load(getenv func(string) string, goos string) (Config, error) {
	l := &loader{getenv: getenv}
	defFirewall, defRuntime := "nftables", "podman"
	if goos == "darwin" {
		defFirewall, defRuntime = "pf", "container"
	}
	c := Config{
		Firewall:  l.oneOf("FIREWALL", defFirewall, "pf", "nftables"),
		Runtime:   l.oneOf("RUNTIME", defRuntime, "container", "podman", "docker"),
		Network:   l.match("NETWORK", "claude", networkName, "want lower-case letters, digits, '.', '_' or '-', starting and ending with a letter or digit"),
		Subnet:    l.subnet(),
		Image:     l.match("IMAGE", "claudepine:latest", imageRef, "want an image reference such as claudepine:latest"),
		Container: l.match("CONTAINER", "claude-alpine", containerName, "want letters, digits, '.', '_' or '-', starting with a letter or digit"),
		Workspace: l.workspace(),
		Memory:    l.memory(),
		CPUs:      l.cpus(),

		AllowlistMaxAge: l.duration("ALLOWLIST_MAX_AGE", "1h"),
		Sources:         list(l.get("SOURCES", "")),
		SkipSources:     list(l.get("SKIP_SOURCES", "")),
		FetchTimeout:    l.duration("FETCH_TIMEOUT", "30s"),
		DNS:             l.dns(),
		DNSFilter:       l.oneOf("DNS_FILTER", "on", "on", "off") == "on",
		DNSFilterPort:   l.port("DNS_FILTER_PORT", "15353"),
		DNSUpstream:     l.upstreams(),

		Anchor: l.match("ANCHOR", "claude_firewall", identifier, identifierWant),
		Table:  l.match("TABLE", "allowed_destinations", identifier, identifierWant),
	}
	defAllow := "/etc/pf.anchors/allowed_destinations"
	if c.Firewall == "nftables" {
		defAllow = "/etc/claudecontainer/allowed_destinations"
	}
	configDir, cacheDir := userDirs(getenv, goos)
	c.AllowlistFile = l.path("ALLOWLIST_FILE", defAllow)
	c.LocalFile = l.path("LOCAL_FILE", filepath.Join(configDir, "claudecontainer", "allowlist.local"))
	c.CacheDir = l.path("CACHE_DIR", filepath.Join(cacheDir, "claudecontainer"))
	c.StateDir = l.path("STATE_DIR", filepath.Join(configDir, "claudecontainer", "state"))
	return c, errors.Join(l.errs...)
}

// loader reads the settings one by one, gathering every malformed value.
type loader struct {
	getenv func(string) string
	errs   []error
}

// get returns the setting name (without Prefix), or def when it is unset or
// blank.
func (l *loader) get(name, def string) string {
	if v := strings.TrimSpace(l.getenv(Prefix + name)); v != "" {
		return v
	}
	return def
}

// bad records that the setting name has the malformed value v.
func (l *loader) bad(name, v, want string) {
	l.errs = append(l.errs, fmt.Errorf("%s%s=%q: %s", Prefix, name, v, want))
}

func (l *loader) oneOf(name, def string, allowed ...string) string {
	v := l.get(name, def)
	if !slices.Contains(allowed, v) {
		last := len(allowed) - 1
		l.bad(name, v, "want "+strings.Join(allowed[:last], ", ")+" or "+allowed[last])
	}
	return v
}

func (l *loader) match(name, def string, re *regexp.Regexp, want string) string {
	v := l.get(name, def)
	if !re.MatchString(v) {
		l.bad(name, v, want)
	}
	return v
}

func (l *loader) duration(name, def string) time.Duration {
	v := l.get(name, def)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		l.bad(name, v, "want a positive duration such as 30s or 1h")
		return 0
	}
	return d
}

func (l *loader) subnet() netip.Prefix {
	v := l.get("SUBNET", "192.168.218.0/24")
	p, err := netip.ParsePrefix(v)
	if err != nil || !p.Addr().Is4() || !p.Addr().IsPrivate() || p.Bits() > 29 {
		l.bad("SUBNET", v, "want a private IPv4 CIDR of /29 or larger, such as 192.168.218.0/24")
		return netip.Prefix{}
	}
	return p.Masked()
}

// workspace defaults to workspace/ in the working directory: not the
// checkout itself, so that the agent cannot edit the code that runs on the
// host with root rights.
func (l *loader) workspace() string {
	w := l.get("WORKSPACE", "")
	if w == "" {
		wd, err := os.Getwd()
		if err != nil {
			l.errs = append(l.errs, fmt.Errorf("finding the workspace: %w", err))
		}
		w = filepath.Join(wd, "workspace")
	}
	if abs, err := filepath.Abs(w); err == nil {
		w = abs
	}
	return w
}

func (l *loader) memory() string {
	v := l.get("MEMORY", "8g")
	switch {
	case bareNumber.MatchString(v):
		// Apple's container reads a size without a unit as bytes
		// (1.2.2:Sources/ContainerPersistence/Measurement+Parse.swift,
		// parseUnit defaults to "b"), and so do podman and docker.
		l.bad("MEMORY", v, fmt.Sprintf("a size needs a unit: the container runtimes read a bare number as bytes, so this would be %s bytes; "+
			"write %sm for MiB or %sg for GiB", v, v, v))
	case !memory.MatchString(v):
		l.bad("MEMORY", v, "want a whole number with a unit k, m or g, such as 8g or 4096m")
	}
	return v
}

func (l *loader) cpus() int {
	v := l.get("CPUS", "4")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 256 {
		l.bad("CPUS", v, "want a whole number from 1 to 256")
		return 0
	}
	return n
}

func (l *loader) dns() []netip.Addr {
	var out []netip.Addr
	for _, s := range list(l.get("DNS", "")) {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || a.IsUnspecified() || a.IsMulticast() {
			l.bad("DNS", s, "want IP addresses such as 192.168.218.1,9.9.9.9")
			continue
		}
		out = append(out, a.Unmap())
	}
	return out
}

func (l *loader) port(name, def string) uint16 {
	v := l.get(name, def)
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil || n == 0 || n == 53 {
		l.bad(name, v, "want a port number from 1 to 65535, not 53")
		return 0
	}
	return uint16(n)
}

func (l *loader) upstreams() []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range list(l.get("DNS_UPSTREAM", "")) {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			ap, err = netip.AddrPortFrom(a, 53), aerr
		}
		if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" || ap.Addr().IsUnspecified() || ap.Addr().IsMulticast() {
			l.bad("DNS_UPSTREAM", s, "want IP addresses or IP:port, such as 9.9.9.9 or [2620:fe::fe]:53")
			continue
		}
		out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	}
	return out
}

func (l *loader) path(name, def string) string {
	p := l.get(name, def)
	if !filepath.IsAbs(p) {
		l.bad(name, p, "want an absolute path")
	}
	return p
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

const identifierWant = "want letters, digits and '_', starting with a letter, at most 31 characters"

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
