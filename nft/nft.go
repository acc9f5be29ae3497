package nft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

// Config names what the backend owns.
type Config struct {
	// Table is our nftables table (family inet); DefaultTable when empty.
	Table string
	// SetPrefix names the allowlist sets (<SetPrefix>_v4, <SetPrefix>_v6)
	// that Replace and Add change when no state records the prefix Up
	// loaded. Up itself takes the prefix from the policy (Policy.Table).
	SetPrefix string
	// StateDir holds the record of what was loaded; "" keeps no record.
	StateDir string
}

// Backend is the nftables firewall. It implements firewall.Backend.
type Backend struct {
	run proc.Runner
	cfg Config
	now func() time.Time
}

var _ firewall.Backend = (*Backend)(nil)

// StateFile is the name of the backend's record in the state directory.
const StateFile = "nftables.json"

// New returns the backend that runs nft (and conntrack) through run.
func New(run proc.Runner, cfg Config) (*Backend, error) {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if !policy.ValidIdentifier(cfg.Table) {
		return nil, fmt.Errorf("nftables table name %q: want letters, digits and '_', starting with a letter, at most 31 characters", cfg.Table)
	}
	if cfg.SetPrefix != "" && !policy.ValidIdentifier(cfg.SetPrefix) {
		return nil, fmt.Errorf("nftables set prefix %q: want letters, digits and '_', starting with a letter, at most 31 characters", cfg.SetPrefix)
	}
	return &Backend{run: run, cfg: cfg, now: time.Now}, nil
}

// Name returns the backend's setting value.
func (b *Backend) Name() string { return "nftables" }

// Render returns the script Up loads for p, without the set elements.
func (b *Backend) Render(p policy.Policy) (string, error) { return Render(p, b.cfg.Table) }

// State is what the backend records in the state directory after a
// successful Up: enough for Down, Replace and Status in a later process.
type State struct {
	Table  string        `json:"table"`
	Policy policy.Policy `json:"policy"`
	Loaded time.Time     `json:"loaded"`
	// NoIngress records that the kernel refused the chain on the bridge
	// device's ingress hook, and the table was loaded without it.
	NoIngress bool `json:"no_ingress,omitempty"`
}

func (b *Backend) statePath() string {
	if b.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(b.cfg.StateDir, StateFile)
}

// ReadState returns the recorded state. It returns an error wrapping
// fs.ErrNotExist when nothing is recorded.
func (b *Backend) ReadState() (State, error) {
	var st State
	path := b.statePath()
	if path == "" {
		return st, fmt.Errorf("no state directory: %w", os.ErrNotExist)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("reading %s: %w (delete it; mage reset removes our table by name anyway)", path, err)
	}
	if !policy.ValidIdentifier(st.Table) || !policy.ValidIdentifier(st.Policy.Table) {
		return st, fmt.Errorf("reading %s: names a table %q with sets %q that are not valid nftables names", path, st.Table, st.Policy.Table)
	}
	return st, nil
}

func (b *Backend) writeState(p policy.Policy, ingress bool) error {
	path := b.statePath()
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(State{Table: b.cfg.Table, Policy: p, Loaded: b.now().UTC(), NoIngress: !ingress}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(b.cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("recording the firewall state: %w", err)
	}
	return atomicfile.Write(path, append(data, '\n'), 0o600)
}

// setPrefix returns the allowlist set prefix of the live table: the one Up
// recorded, else the configured one.
func (b *Backend) setPrefix() (string, error) {
	if st, err := b.ReadState(); err == nil && st.Table == b.cfg.Table {
		return st.Policy.Table, nil
	}
	if b.cfg.SetPrefix == "" {
		return "", errors.New("no recorded state and no configured set prefix: cannot tell which nftables sets hold the allowlist")
	}
	return b.cfg.SetPrefix, nil
}

func (b *Backend) nft(ctx context.Context, stdin []byte, args ...string) (proc.Result, error) {
	return b.run.Run(ctx, proc.Cmd{Name: "nft", Args: args, Stdin: stdin, Privileged: true})
}

// load runs script as one nft transaction.
func (b *Backend) load(ctx context.Context, script string) error {
	_, err := b.nft(ctx, []byte(script), "-f", "-")
	return err
}

// Up loads our table for p with set as the allowlist, checks the live
// table against what it loaded and records the state.
//
// It first reloads in place: one transaction that empties the chains of an
// existing table, adds the rules again and flushes and refills the sets, so
// that no packet ever meets a missing rule or an empty set. When the table
// there has another shape (an older claudecontainer, another set prefix),
// that fails or leaves stray chains or sets, and Up replaces the whole table
// in one transaction instead. A table replacement is atomic too, but on
// Linux 6.18 packets that cross it can miss the allowlist and be refused for
// a moment (never let through), which the reload in place avoids.
func (b *Backend) Up(ctx context.Context, p policy.Policy, set *netipx.IPSet) error {
	if err := checkAllowlist(set); err != nil {
		return err
	}
	var errs []error
	ingressRefused := false
	for _, ingress := range []bool{true, false} {
		if !ingress && !ingressRefused {
			break
		}
		for _, how := range []string{"flush", "delete"} {
			script, err := render(p, b.cfg.Table, how, ingress)
			if err != nil {
				return err
			}
			var s strings.Builder
			s.WriteString(script)
			fill(&s, b.cfg.Table, p.Table, set, true)
			if err := b.load(ctx, s.String()); err != nil {
				// Kernels before named netdev hooks refuse an ingress
				// chain for a device that does not exist yet (a podman
				// bridge appears with the first container).
				ingressRefused = ingressRefused || strings.Contains(err.Error(), "ingress")
				errs = append(errs, fmt.Errorf("loading nftables table %s %s (%s): %w", Family, b.cfg.Table, how, err))
				continue
			}
			if err := b.verify(ctx, p, set, ingress); err != nil {
				errs = append(errs, fmt.Errorf("checking nftables table %s %s just loaded (%s): %w", Family, b.cfg.Table, how, err))
				continue
			}
			return b.writeState(p, ingress)
		}
	}
	return fmt.Errorf("%w (the previous rules, if any, are still in place; mage reset removes them)", errors.Join(errs...))
}

// Replace swaps the contents of both allowlist sets for set in one
// transaction: flush and refill are committed together, so no packet ever
// sees an empty or partial set.
func (b *Backend) Replace(ctx context.Context, set *netipx.IPSet) error {
	if err := checkAllowlist(set); err != nil {
		return err
	}
	prefix, err := b.setPrefix()
	if err != nil {
		return err
	}
	var s strings.Builder
	fill(&s, b.cfg.Table, prefix, set, true)
	if err := b.load(ctx, s.String()); err != nil {
		return b.notUp(ctx, fmt.Errorf("replacing the allowlist in nftables table %s: %w", b.cfg.Table, err))
	}
	lt, err := b.live(ctx)
	if err != nil {
		return err
	}
	return lt.checkSets(prefix, set)
}

// Add adds prefixes to the live allowlist sets. The sets merge overlapping
// and adjacent elements (auto-merge), so a prefix already covered is fine.
func (b *Backend) Add(ctx context.Context, prefixes []netip.Prefix) error {
	var sb netipx.IPSetBuilder
	for _, p := range prefixes {
		if !p.IsValid() {
			return fmt.Errorf("adding to the allowlist: %v is not a valid prefix", p)
		}
		sb.AddPrefix(p.Masked())
	}
	set, err := sb.IPSet()
	if err == nil {
		err = checkAllowlist(set)
	}
	if err != nil {
		return fmt.Errorf("adding to the allowlist: %w", err)
	}
	prefix, err := b.setPrefix()
	if err != nil {
		return err
	}
	var s strings.Builder
	fill(&s, b.cfg.Table, prefix, set, false)
	if s.Len() == 0 {
		return nil
	}
	if err := b.load(ctx, s.String()); err != nil {
		return b.notUp(ctx, fmt.Errorf("adding to the allowlist in nftables table %s: %w", b.cfg.Table, err))
	}
	return nil
}

// notUp returns firewall.ErrNotUp when our table is not loaded, else err.
func (b *Backend) notUp(ctx context.Context, err error) error {
	if up, uerr := b.exists(ctx, b.cfg.Table); uerr == nil && !up {
		return firewall.ErrNotUp
	}
	return err
}

// Down deletes our table (and the one a recorded state names, if the
// configuration changed since), removes the connection tracking entries of
// the recorded network when the conntrack tool is installed, and forgets
// the state. It succeeds when nothing is loaded.
func (b *Backend) Down(ctx context.Context) error {
	tables := []string{b.cfg.Table}
	st, stErr := b.ReadState()
	if stErr == nil && st.Table != b.cfg.Table {
		tables = append(tables, st.Table)
	}
	var errs []error
	for _, t := range tables {
		if _, err := b.nft(ctx, nil, "delete", "table", Family, t); err != nil {
			if up, uerr := b.exists(ctx, t); uerr != nil || up {
				errs = append(errs, fmt.Errorf("deleting nftables table %s %s: %w", Family, t, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err // keep the record, so that another Down can finish the job
	}
	if stErr == nil {
		if err := b.forget(ctx, st.Policy.Network); err != nil {
			return err
		}
	}
	if path := b.statePath(); path != "" {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("forgetting the firewall state: %w", err)
		}
	}
	return nil
}

// forget deletes the connection tracking entries of connections the
// network's containers opened, so nothing allowed before survives into the
// next Up. Without the conntrack tool it does nothing: with our table gone
// the entries no longer matter, and they expire on their own.
//
// Whether the tool is there is learnt by running it, not by looking it up
// on this process's PATH: run through sudo it is looked up on sudo's
// secure_path, which has /usr/sbin where a user's PATH often does not.
func (b *Backend) forget(ctx context.Context, n policy.Network) error {
	var flows []flowFilter
	for _, p := range []netip.Prefix{n.IPv4, n.IPv6} {
		if p.IsValid() {
			flows = append(flows, flowFilter{src: p})
		}
	}
	return deleteFlows(ctx, b.run, flows)
}

// EndFlows deletes the connection tracking entries from the container
// network n to addrs, so that connections open to addresses the DNS filter
// closed end too (`ct state established` would keep passing them). Without
// the conntrack tool it does nothing.
func EndFlows(ctx context.Context, run proc.Runner, n policy.Network, addrs []netip.Addr) error {
	var flows []flowFilter
	for _, a := range addrs {
		if net := n.Subnet(a); net.IsValid() {
			flows = append(flows, flowFilter{src: net, dst: a.Unmap()})
		}
	}
	return deleteFlows(ctx, run, flows)
}

// flowFilter names connection tracking entries: those from src, and to dst
// when it is valid.
type flowFilter struct {
	src netip.Prefix
	dst netip.Addr
}

// deleteFlows runs `conntrack -D` once per filter. Finding nothing to
// delete is no error, and a missing conntrack tool makes it do nothing.
func deleteFlows(ctx context.Context, run proc.Runner, flows []flowFilter) error {
	var errs []error
	for _, f := range flows {
		fam := "ipv4"
		if f.src.Addr().Is6() {
			fam = "ipv6"
		}
		args := []string{"-D", "-f", fam, "-s", f.src.String()}
		what := "from " + f.src.String()
		if f.dst.IsValid() {
			args = append(args, "-d", f.dst.String())
			what += " to " + f.dst.String()
		}
		_, err := run.Run(ctx, proc.Cmd{Name: "conntrack", Args: args, Privileged: true})
		var ee *proc.ExitError
		switch {
		case err == nil:
		case notInstalled(err, "conntrack"):
			return nil
		case errors.As(err, &ee) && strings.Contains(ee.Stderr, " 0 flow entries"):
			// nothing to delete
		default:
			errs = append(errs, fmt.Errorf("deleting connection tracking entries %s: %w", what, err))
		}
	}
	return errors.Join(errs...)
}

// notInstalled reports whether err says that the program name could not be
// found: exec.ErrNotFound when it was run directly, or sudo's complaint,
// which comes with exit status 1 like a failure of the program itself, when
// it was run through sudo:
//
//	sudo: conntrack: command not found      (sudo 1.9.13p3, Debian 12)
//	sudo: 'conntrack': command not found    (sudo-rs 0.2, src/common/error.rs)
//
// proc runs every program with LC_ALL=C, so the message is not translated.
func notInstalled(err error, name string) bool {
	if errors.Is(err, exec.ErrNotFound) {
		return true
	}
	var ee *proc.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	for _, line := range strings.Split(ee.Stderr, "\n") {
		line = strings.TrimSpace(line)
		if line == "sudo: "+name+": command not found" || line == "sudo: '"+name+"': command not found" {
			return true
		}
	}
	return false
}

// IsUp reports whether our table is loaded.
func (b *Backend) IsUp(ctx context.Context) (bool, error) { return b.exists(ctx, b.cfg.Table) }

func (b *Backend) exists(ctx context.Context, table string) (bool, error) {
	_, err := b.nft(ctx, nil, "-t", "list", "table", Family, table)
	if err == nil {
		return true, nil
	}
	var ee *proc.ExitError
	if errors.As(err, &ee) && strings.Contains(ee.Stderr, "No such file or directory") {
		return false, nil
	}
	return false, fmt.Errorf("looking for nftables table %s %s: %w", Family, table, err)
}

// verify checks the live table against the rules and allowlist of p.
func (b *Backend) verify(ctx context.Context, p policy.Policy, set *netipx.IPSet, ingress bool) error {
	lt, err := b.live(ctx)
	if err != nil {
		return err
	}
	want, err := chains(p, ingress)
	if err != nil {
		return err
	}
	if err := lt.checkChains(want, setCount(p)); err != nil {
		return err
	}
	return lt.checkSets(p.Table, set)
}

// Status checks the live table against the recorded state.
func (b *Backend) Status(ctx context.Context) []firewall.Check {
	table := fmt.Sprintf("nftables table %s %s", Family, b.cfg.Table)
	up, err := b.IsUp(ctx)
	if err != nil {
		return []firewall.Check{{What: table + " loaded", Detail: err.Error(), Fix: "install nftables (apt-get install nftables) and run as root or with sudo"}}
	}
	if !up {
		return []firewall.Check{{What: table + " loaded", Detail: "not loaded: containers on the network are not firewalled", Fix: "run mage up"}}
	}
	checks := []firewall.Check{{What: table + " loaded", OK: true, Detail: "loaded"}}
	st, stErr := b.ReadState()
	switch {
	case stErr != nil:
		checks = append(checks, firewall.Check{What: "state recorded", Detail: stErr.Error(), Fix: "run mage up to reload and record the firewall"})
	case st.Table != b.cfg.Table:
		checks = append(checks, firewall.Check{What: "state recorded", Detail: fmt.Sprintf("the record names table %s", st.Table), Fix: "run mage reset, then mage up"})
		stErr = errors.New("state of another table")
	default:
		checks = append(checks, firewall.Check{What: "state recorded", OK: true,
			Detail: fmt.Sprintf("network %s (%s) loaded at %s", st.Policy.Network.Name, st.Policy.Network.IPv4, st.Loaded.Format(time.RFC3339))})
	}
	lt, err := b.live(ctx)
	if err != nil {
		return append(checks, firewall.Check{What: "rules present", Detail: err.Error(), Fix: "run mage up"})
	}
	if stErr == nil {
		c := firewall.Check{What: "rules present", OK: true, Detail: "chains as rendered"}
		if want, err := chains(st.Policy, !st.NoIngress); err != nil {
			c.OK, c.Detail, c.Fix = false, err.Error(), "run mage reset, then mage up"
		} else if err := lt.checkChains(want, setCount(st.Policy)); err != nil {
			c.OK, c.Detail, c.Fix = false, err.Error(), "run mage up to reload the rules"
		}
		checks = append(checks, c)
		if n := st.Policy.Network; n.Interface != "" {
			c := firewall.Check{What: "made-up sources dropped on " + n.Interface + "'s ingress", OK: !st.NoIngress, Detail: "before the host parses the packet"}
			if st.NoIngress {
				c.Detail = "the kernel refused the ingress chain (the bridge did not exist yet): an IPv6 packet with a made-up source and an unknown hop-by-hop option is answered by the host on a bridge without br_netfilter"
				c.Fix = "run mage up again now that a container runs (the bridge exists), or use a newer kernel, which attaches ingress hooks by device name"
			}
			checks = append(checks, c)
		}
	}
	prefix, err := b.setPrefix()
	if err != nil {
		return append(checks, firewall.Check{What: "allowlist sets", Detail: err.Error(), Fix: "run mage up"})
	}
	set4, set6 := SetNames(prefix)
	for _, name := range []string{set4, set6} {
		s, ok := lt.sets[name]
		c := firewall.Check{What: "allowlist set " + name, OK: ok}
		switch {
		case !ok:
			c.Detail, c.Fix = "missing", "run mage up"
		case s.ranges == 0 && name == set4:
			c.OK, c.Detail, c.Fix = false, "empty: containers can reach nothing outside the network", "run mage allowlist, then mage up"
		default:
			c.Detail = fmt.Sprintf("%d ranges", s.ranges)
		}
		checks = append(checks, c)
	}
	return checks
}
