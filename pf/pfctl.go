package pf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

// runPfctl, below, runs every pfctl call of the package; the Opener's are in
// opened.go, the rest here. Every call names our anchor with -a, except the
// read-only ones (-s info, -s References, -sr, -s nat) and the
// ones on our own enable reference (-E, -X <our token>) and on the container
// network's states (-k <subnet>). It never runs `pfctl -d`, `-F` without -a,
// `-f` without -a, or `-q` (which would hide the token -E prints). pfctl
// writes notes to stderr on every call, so it is judged by its exit status.

// ErrAnchorPointMissing means pf's main ruleset no longer evaluates
// anchor "com.apple/*": our rules are loaded but never consulted.
var ErrAnchorPointMissing = errors.New(`pf's main ruleset does not evaluate anchor "com.apple/*"`)

// ErrRedirectAnchorPointMissing means pf's main ruleset no longer evaluates
// rdr-anchor "com.apple/*": the DNS filter's redirect is loaded but never
// consulted, and the containers' DNS queries are refused.
var ErrRedirectAnchorPointMissing = errors.New(`pf's main ruleset does not evaluate rdr-anchor "com.apple/*"`)

// ErrScrubAnchorPointMissing means pf's main ruleset no longer evaluates
// scrub-anchor "com.apple/*": the containers' fragments are not reassembled,
// so a DNS query sent in fragments escapes the rules that name port 53.
var ErrScrubAnchorPointMissing = errors.New(`pf's main ruleset does not evaluate scrub-anchor "com.apple/*"`)

// anchorPointFix says how to restore Apple's anchor points and the NAT of
// the container network.
const anchorPointFix = "Repair it with `sudo pfctl -f /etc/pf.conf`, then restart the container system service " +
	"(`container system stop`, `container system start`) so that it reinstalls its NAT, and try again"

// Config is what the pf backend needs besides the policy.
type Config struct {
	// Anchor is the anchor name below com.apple (config.Config.Anchor).
	Anchor string
	// StateDir is where the backend records what it loaded and the enable
	// references it holds (config.Config.StateDir).
	StateDir string
}

// Firewall is the pf backend. It keeps no state in memory: everything it
// needs is in pf and in the state directory, so any process can take down
// what another one, since crashed, put up.
type Firewall struct {
	run proc.Runner
	cfg Config
	now func() time.Time
}

var _ firewall.Backend = (*Firewall)(nil)

// New returns the pf backend, which runs pfctl through r with root rights.
func New(r proc.Runner, c Config) (*Firewall, error) {
	if !policy.ValidIdentifier(c.Anchor) {
		return nil, fmt.Errorf("pf: anchor name %q: want letters, digits and '_', starting with a letter, at most 31 characters", c.Anchor)
	}
	if !filepath.IsAbs(c.StateDir) {
		return nil, fmt.Errorf("pf: state directory %q is not an absolute path", c.StateDir)
	}
	return &Firewall{run: r, cfg: c, now: time.Now}, nil
}

// Name returns "pf".
func (f *Firewall) Name() string { return "pf" }

// Render returns the anchor text Up would load for p.
func (f *Firewall) Render(p policy.Policy) (string, error) {
	return Render(p, Options{Anchor: f.cfg.Anchor})
}

func (f *Firewall) anchor() string { return AnchorPath(f.cfg.Anchor) }

// Up loads the anchor for p and the allowlist set, holds a pf enable
// reference and verifies that the rules are live. In order:
//
//  1. record the anchor, table and subnets in the state file;
//  2. load the anchor (pfctl -a com.apple/<anchor> -f -), which replaces its
//     rules atomically; the table's contents survive the reload;
//  3. unless a reference we recorded is still listed by -s References, take
//     one with pfctl -E and record its token at once;
//  4. replace the table's contents (-T replace -f, one atomic ioctl);
//  5. verify: pf enabled, our reference listed, our rules in the anchor, and
//     the main ruleset still evaluating com.apple/*.
//
// Loading the rules before enabling pf means pf never runs without them, and
// the table is filled last, so until then the containers reach nothing. An
// error leaves a state that Down removes.
func (f *Firewall) Up(ctx context.Context, p policy.Policy, set *netipx.IPSet) error {
	text, err := f.Render(p)
	if err != nil {
		return err
	}
	tbl, err := tableText(p.Table, set)
	if err != nil {
		return err
	}
	unlock, err := f.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := f.load()
	if err != nil {
		return err
	}
	anchor := f.anchor()
	if rec != nil && rec.Anchor != anchor {
		return fmt.Errorf("pf: the state file %s records the anchor %s, but the anchor is now set to %s: run `mage reset` with the old setting first",
			f.path(recordFile), rec.Anchor, anchor)
	}
	if rec == nil {
		rec = &record{Anchor: anchor}
	}
	rec.Table, rec.Network4, rec.Interface = p.Table, p.Network.IPv4.String(), p.Network.Interface
	rec.DNSFilterPort = 0
	if p.Filter != nil {
		rec.DNSFilterPort = p.Filter.Port
	}
	rec.Network6 = ""
	if p.Network.IPv6.IsValid() {
		rec.Network6 = p.Network.IPv6.String()
	}
	if err := f.save(rec); err != nil {
		return err
	}

	if err := atomicfile.Write(f.path(anchorFile), []byte(text), 0o644); err != nil {
		return err
	}
	if _, err := f.pfctl(ctx, []byte(text), "-a", anchor, "-f", "-"); err != nil {
		return fmt.Errorf("loading the pf anchor %s: %w", anchor, err)
	}

	if err := f.holdReference(ctx, rec); err != nil {
		return err
	}

	if err := f.replaceTable(ctx, rec, tbl); err != nil {
		return err
	}
	return f.verify(ctx, rec, labels(text), translations(text, p.Network.Interface))
}

// holdReference makes sure rec lists at least one live enable reference,
// taking a new one only when every recorded token has vanished (after a
// reboot, or another program's `pfctl -d`).
func (f *Firewall) holdReference(ctx context.Context, rec *record) error {
	if len(rec.Tokens) > 0 {
		live, err := f.references(ctx)
		if err != nil {
			return err
		}
		var kept []heldToken
		for _, t := range rec.Tokens {
			if live[t.Token] {
				kept = append(kept, t)
			}
		}
		if len(kept) > 0 {
			if len(kept) != len(rec.Tokens) {
				rec.Tokens = kept
				return f.save(rec)
			}
			return nil
		}
		rec.Tokens = nil // released by someone else; nothing left to release
	}
	// Once asked for, the reference is taken: an ended ctx must not kill
	// pfctl between the kernel's answer and the token's line on stderr, or
	// the reference would be held with no record of it.
	res, err := f.pfctl(context.WithoutCancel(ctx), nil, "-E")
	if err != nil {
		return fmt.Errorf("enabling pf: %w", err)
	}
	tok, err := parseToken(res.Stderr)
	if err != nil {
		return fmt.Errorf("enabling pf: %w; pf may now hold an enable reference claudecontainer cannot release: "+
			"see `sudo pfctl -s References`", err)
	}
	rec.Tokens = append(rec.Tokens, heldToken{Token: tok, Taken: f.now().UTC()})
	if err := f.save(rec); err != nil {
		return fmt.Errorf("%w (the pf enable reference %s is held but not recorded: release it with `sudo pfctl -X %s`)", err, tok, tok)
	}
	return nil
}

var tokenLine = regexp.MustCompile(`(?m)^Token : ([0-9]+)\s*$`)

// parseToken finds the token in what `pfctl -E` wrote to stderr.
func parseToken(stderr []byte) (string, error) {
	ms := tokenLine.FindAllSubmatch(stderr, -1)
	if len(ms) != 1 || !validToken(string(ms[0][1])) {
		return "", fmt.Errorf("pfctl -E printed no single \"Token : <number>\" line (stderr: %q)", clean(stderr))
	}
	return string(ms[0][1]), nil
}

// lockedRecord takes the state directory's lock and reads the record. The
// error is firewall.ErrNotUp when nothing is recorded; unlock is nil when
// the error is not.
func (f *Firewall) lockedRecord(ctx context.Context) (rec *record, unlock func(), err error) {
	unlock, err = f.lock(ctx)
	if err != nil {
		return nil, nil, err
	}
	rec, err = f.load()
	if err == nil && rec == nil {
		err = firewall.ErrNotUp
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return rec, unlock, nil
}

// Replace swaps the live allowlist for set in one atomic ioctl.
func (f *Firewall) Replace(ctx context.Context, set *netipx.IPSet) error {
	rec, unlock, err := f.lockedRecord(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tbl, err := tableText(rec.Table, set)
	if err != nil {
		return err
	}
	return f.replaceTable(ctx, rec, tbl)
}

func (f *Firewall) replaceTable(ctx context.Context, rec *record, tbl []byte) error {
	path := f.path(tableFile)
	if err := atomicfile.Write(path, tbl, 0o644); err != nil {
		return err
	}
	if _, err := f.pfctl(ctx, nil, "-a", rec.Anchor, "-t", rec.Table, "-T", "replace", "-f", path); err != nil {
		return fmt.Errorf("loading the allowlist into the pf table <%s>: %w", rec.Table, err)
	}
	return nil
}

// addBatch bounds the addresses passed on one pfctl command line.
const addBatch = 256

// Add adds prefixes to the live allowlist table.
func (f *Firewall) Add(ctx context.Context, prefixes []netip.Prefix) error {
	var words []string
	for _, p := range prefixes {
		w, err := tableEntry(p)
		if err != nil {
			return err
		}
		words = append(words, w)
	}
	if len(words) == 0 {
		return nil
	}
	rec, unlock, err := f.lockedRecord(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	for len(words) > 0 {
		n := min(len(words), addBatch)
		args := append([]string{"-a", rec.Anchor, "-t", rec.Table, "-T", "add"}, words[:n]...)
		if _, err := f.pfctl(ctx, nil, args...); err != nil {
			return fmt.Errorf("adding to the pf table <%s>: %w", rec.Table, err)
		}
		words = words[n:]
	}
	return nil
}

// Down flushes our anchor, kills the container network's states and
// releases every enable reference the state file records, then forgets the
// state. A reference pf no longer knows ("token invalid", or pf already
// disabled) counts as released. It works from the state file alone, so it
// also repairs what a crashed run left behind; with no state file it only
// flushes the configured anchor.
func (f *Firewall) Down(ctx context.Context) error {
	unlock, err := f.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	rec, recErr := f.load()
	anchor := f.anchor()
	if rec != nil {
		anchor = rec.Anchor
	}
	var errs []error
	if recErr != nil {
		errs = append(errs, recErr)
	}
	if _, err := f.pfctl(ctx, nil, "-a", anchor, "-F", "all"); err != nil {
		errs = append(errs, fmt.Errorf("flushing the pf anchor %s: %w", anchor, err))
	}
	if rec == nil {
		return errors.Join(errs...)
	}
	for _, net := range []string{rec.Network4, rec.Network6} {
		if net == "" {
			continue
		}
		// States whose source is in the container network, to any
		// destination (pfctl -k names the source; a second -k would
		// narrow the destination).
		if _, err := f.pfctl(ctx, nil, "-k", net); err != nil {
			errs = append(errs, fmt.Errorf("killing the states of %s: %w", net, err))
		}
	}
	var kept []heldToken
	for _, t := range rec.Tokens {
		if _, err := f.pfctl(ctx, nil, "-X", t.Token); err != nil && !alreadyReleased(err) {
			kept = append(kept, t)
			errs = append(errs, fmt.Errorf("releasing the pf enable reference %s: %w", t.Token, err))
		}
	}
	if len(errs) > 0 {
		rec.Tokens = kept
		if err := f.save(rec); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	return f.forget()
}

// alreadyReleased reports whether a failed `pfctl -X` says the token is gone
// already: "pf: token invalid" (EINVAL, pf running) or "pf not enabled"
// (ENOENT, pf stopped, which drops every token).
func alreadyReleased(err error) bool {
	var pe *pfctlError
	if !errors.As(err, &pe) || proc.ExitCode(err) != 1 {
		return false
	}
	return strings.Contains(pe.stderr, "token invalid") || strings.Contains(pe.stderr, "pf not enabled")
}

// IsUp reports whether our rules are loaded in the anchor.
func (f *Firewall) IsUp(ctx context.Context) (bool, error) {
	anchor := f.anchor()
	if rec, err := f.load(); err == nil && rec != nil {
		anchor = rec.Anchor
	}
	n, err := f.ourRules(ctx, anchor)
	return n > 0, err
}

// ourRules counts the rules in anchor that carry our label prefix. A missing
// anchor has none: pfctl then warns "DIOCGETRULES: Invalid argument".
func (f *Firewall) ourRules(ctx context.Context, anchor string) (int, error) {
	res, err := f.pfctl(ctx, nil, "-a", anchor, "-s", "rules")
	if err != nil {
		var pe *pfctlError
		if errors.As(err, &pe) && strings.Contains(pe.stderr, "DIOCGETRULES") {
			return 0, nil
		}
		return 0, err
	}
	return strings.Count(string(res.Stdout), `label "`+LabelPrefix), nil
}

// verify checks that what Up loaded is live: the filter rules labelled want
// and the translation rules that begin with wantNAT.
func (f *Firewall) verify(ctx context.Context, rec *record, want, wantNAT []string) error {
	enabled, _, err := f.info(ctx)
	if err != nil {
		return err
	}
	if !enabled {
		return fmt.Errorf("pf is not enabled even though claudecontainer holds the enable reference %s: another program may have run `pfctl -d`; run `mage up` again", tokens(rec))
	}
	live, err := f.references(ctx)
	if err != nil {
		return err
	}
	if !holds(rec, live) {
		return fmt.Errorf("pf does not list claudecontainer's enable reference %s: another program may have run `pfctl -d`; run `mage up` again", tokens(rec))
	}
	res, err := f.pfctl(ctx, nil, "-a", rec.Anchor, "-s", "rules")
	if err != nil {
		return fmt.Errorf("reading back the pf anchor %s: %w", rec.Anchor, err)
	}
	for _, l := range want {
		if !bytes.Contains(res.Stdout, []byte(`label "`+l+`"`)) {
			return fmt.Errorf("the pf anchor %s does not show the rule labelled %q after loading; pf holds:\n%s", rec.Anchor, l, res.Stdout)
		}
	}
	if len(wantNAT) > 0 {
		res, err := f.pfctl(ctx, nil, "-a", rec.Anchor, "-s", "nat")
		if err != nil {
			return fmt.Errorf("reading back the translation rules of the pf anchor %s: %w", rec.Anchor, err)
		}
		for _, w := range wantNAT {
			if !bytes.Contains(res.Stdout, []byte("\n"+w)) && !bytes.HasPrefix(res.Stdout, []byte(w)) {
				return fmt.Errorf("the pf anchor %s does not show the translation rule %q after loading; pf holds:\n%s", rec.Anchor, w+"...", res.Stdout)
			}
		}
	}
	ok, scrub, err := f.anchorPoints(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: a program loaded its own main ruleset without Apple's anchors (with `pfctl -f <file>` or `pfctl -F all`), "+
			"so the rules in %s are loaded but never evaluated and the containers would not be filtered. "+anchorPointFix,
			ErrAnchorPointMissing, rec.Anchor)
	}
	if !scrub {
		return fmt.Errorf("%w: the main ruleset (a program's own, or an edited /etc/pf.conf) lacks Apple's scrub anchor, "+
			"so the containers' fragmented packets would not be reassembled and a DNS query sent in fragments would escape the rules for DNS. "+
			"If /etc/pf.conf lacks the line `scrub-anchor \"com.apple/*\"`, put it back first. "+anchorPointFix,
			ErrScrubAnchorPointMissing)
	}
	if rec.DNSFilterPort == 0 {
		return nil
	}
	ok, err = f.redirectAnchorPoint(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: a program loaded its own main ruleset without Apple's anchors (with `pfctl -f <file>` or `pfctl -F all`), "+
			"so the DNS filter's redirect in %s is loaded but never evaluated and the containers' DNS queries would be refused. "+anchorPointFix,
			ErrRedirectAnchorPointMissing, rec.Anchor)
	}
	return nil
}

// info reports whether pf is enabled, and the status line.
func (f *Firewall) info(ctx context.Context) (bool, string, error) {
	res, err := f.pfctl(ctx, nil, "-s", "info")
	if err != nil {
		return false, "", fmt.Errorf("reading the pf status: %w", err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), "\n")
	line = strings.Join(strings.Fields(line), " ")
	switch {
	case strings.HasPrefix(line, "Status: Enabled"):
		return true, line, nil
	case strings.HasPrefix(line, "Status: Disabled"):
		return false, line, nil
	}
	return false, "", fmt.Errorf("pfctl -s info printed no status line: %q", line)
}

// references returns the tokens `pfctl -s References` lists.
func (f *Firewall) references(ctx context.Context) (map[string]bool, error) {
	res, err := f.pfctl(ctx, nil, "-s", "References")
	if err != nil {
		return nil, fmt.Errorf("listing the pf enable references: %w", err)
	}
	return parseReferences(string(res.Stdout))
}

// parseReferences reads the output of `pfctl -s References`: either
// "No pf starter references held", or "TOKENS:", a header and one row per
// reference, "PID  Process Name  TOKEN  D days HH:MM:SS". Anything else is
// an error, so that unreadable output is never taken for "none held".
func parseReferences(out string) (map[string]bool, error) {
	live := map[string]bool{}
	text := strings.TrimSpace(out)
	if text == "No pf starter references held" {
		return live, nil
	}
	lines := strings.Split(text, "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "TOKENS:" || !strings.HasPrefix(strings.TrimSpace(lines[1]), "PID") {
		return nil, fmt.Errorf("pfctl -s References printed something unexpected: %q", out)
	}
	for _, line := range lines[2:] {
		fields := strings.Fields(line)
		// The token precedes the three words of the timestamp; the process
		// name before it may contain spaces.
		if len(fields) < 6 || fields[len(fields)-2] != "days" || !validToken(fields[len(fields)-4]) {
			return nil, fmt.Errorf("pfctl -s References printed an unexpected row: %q", line)
		}
		live[fields[len(fields)-4]] = true
	}
	return live, nil
}

// anchorPoints reports whether the main ruleset evaluates anchor
// "com.apple/*" and scrub-anchor "com.apple/*"; `pfctl -s rules` lists both.
func (f *Firewall) anchorPoints(ctx context.Context) (anchor, scrub bool, err error) {
	res, err := f.pfctl(ctx, nil, "-s", "rules")
	if err != nil {
		return false, false, fmt.Errorf("reading pf's main ruleset: %w", err)
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		line = strings.TrimSpace(line)
		anchor = anchor || strings.HasPrefix(line, `anchor "`+Parent+`/*"`)
		scrub = scrub || strings.HasPrefix(line, `scrub-anchor "`+Parent+`/*"`)
	}
	return anchor, scrub, nil
}

// redirectAnchorPoint reports whether the main ruleset evaluates
// rdr-anchor "com.apple/*", which `pfctl -s nat` lists with the other
// translation rules (`pfctl -s rules` shows none of them).
func (f *Firewall) redirectAnchorPoint(ctx context.Context) (bool, error) {
	res, err := f.pfctl(ctx, nil, "-s", "nat")
	if err != nil {
		return false, fmt.Errorf("reading the translation rules of pf's main ruleset: %w", err)
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), `rdr-anchor "`+Parent+`/*"`) {
			return true, nil
		}
	}
	return false, nil
}

// translations returns how each translation rule of an anchor text begins
// once pfctl has loaded it, for each protocol it expands to: "rdr pass on
// bridge100 inet proto tcp from ", with the bridge macro ifname expanded.
func translations(text, ifname string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "rdr ") && !strings.HasPrefix(line, "no rdr ") {
			continue
		}
		head, rest, ok := strings.Cut(line, " proto { ")
		if !ok {
			continue
		}
		head = strings.Replace(head, "$ctr_if", ifname, 1)
		protos, _, _ := strings.Cut(rest, " }")
		for _, p := range strings.Fields(protos) {
			out = append(out, head+" proto "+p+" from ")
		}
	}
	return out
}

func holds(rec *record, live map[string]bool) bool {
	for _, t := range rec.Tokens {
		if live[t.Token] {
			return true
		}
	}
	return false
}

func tokens(rec *record) string {
	var ts []string
	for _, t := range rec.Tokens {
		ts = append(ts, t.Token)
	}
	if len(ts) == 0 {
		return "(none recorded)"
	}
	return strings.Join(ts, ", ")
}

// Status checks the live pf against the state file. Each failed check says
// what to do.
func (f *Firewall) Status(ctx context.Context) []firewall.Check {
	var checks []firewall.Check
	add := func(what string, ok bool, detail, fix string) {
		c := firewall.Check{What: what, OK: ok, Detail: detail}
		if !ok {
			c.Fix = fix
		}
		checks = append(checks, c)
	}
	const upFix = "run `mage up`"
	rec, recErr := f.load()
	anchor := f.anchor()
	switch {
	case recErr != nil:
		add("pf state recorded", false, recErr.Error(), "follow the advice above, then run `mage up`")
	case rec == nil:
		add("pf state recorded", false, "no state file "+f.path(recordFile), upFix)
	default:
		anchor = rec.Anchor
		add("pf state recorded", true, fmt.Sprintf("anchor %s, table <%s>, network %s", rec.Anchor, rec.Table, rec.Network4), "")
	}

	if enabled, line, err := f.info(ctx); err != nil {
		add("pf enabled", false, err.Error(), "check that pfctl runs with `sudo pfctl -s info`")
	} else {
		add("pf enabled", enabled, line, upFix+"; if another program ran `pfctl -d`, `mage up` takes a new reference")
	}

	switch live, err := f.references(ctx); {
	case err != nil:
		add("pf enable reference held", false, err.Error(), "check `sudo pfctl -s References`")
	case rec == nil:
		add("pf enable reference held", false, "no reference recorded", upFix)
	default:
		add("pf enable reference held", holds(rec, live), "recorded: "+tokens(rec),
			"pf no longer lists it (another program ran `pfctl -d`, or the Mac restarted): "+upFix)
	}

	if n, err := f.ourRules(ctx, anchor); err != nil {
		add("anchor loaded", false, err.Error(), upFix)
	} else {
		add("anchor loaded", n > 0, fmt.Sprintf("%d rules labelled %s* in %s", n, LabelPrefix, anchor), upFix)
	}

	if ok, scrub, err := f.anchorPoints(ctx); err != nil {
		add(`main ruleset evaluates "com.apple/*"`, false, err.Error(), "check `sudo pfctl -sr`")
	} else {
		add(`main ruleset evaluates "com.apple/*"`, ok, "pfctl -sr",
			"a program replaced pf's main ruleset, so our anchor is not evaluated: run `sudo pfctl -f /etc/pf.conf`, "+
				"then `container system stop` and `container system start`, then `mage up`")
		add(`main ruleset evaluates scrub-anchor "com.apple/*"`, scrub, "pfctl -sr",
			"a program replaced pf's main ruleset, so the containers' fragments are not reassembled and escape the rules for DNS: "+
				"run `sudo pfctl -f /etc/pf.conf`, then `container system stop` and `container system start`, then `mage up`")
	}

	if rec != nil && rec.DNSFilterPort != 0 {
		if ok, err := f.redirectAnchorPoint(ctx); err != nil {
			add(`main ruleset evaluates rdr-anchor "com.apple/*"`, false, err.Error(), "check `sudo pfctl -s nat`")
		} else {
			add(`main ruleset evaluates rdr-anchor "com.apple/*"`, ok, "pfctl -s nat",
				"a program replaced pf's main ruleset, so the DNS filter's redirect is not evaluated and the containers' DNS is refused: "+
					"run `sudo pfctl -f /etc/pf.conf`, then `container system stop` and `container system start`, then `mage up`")
		}
		res, err := f.pfctl(ctx, nil, "-a", rec.Anchor, "-s", "nat")
		n := 0
		for _, line := range strings.Split(string(res.Stdout), "\n") {
			if strings.HasPrefix(line, "rdr pass ") && strings.HasSuffix(line, fmt.Sprintf(" port %d", rec.DNSFilterPort)) {
				n++
			}
		}
		detail := fmt.Sprintf("%d rules in %s redirect DNS to the filter on loopback port %d", n, rec.Anchor, rec.DNSFilterPort)
		if err != nil {
			detail = err.Error()
		}
		add("DNS filter redirect loaded", err == nil && n > 0, detail, upFix)
	}

	if rec != nil {
		res, err := f.pfctl(ctx, nil, "-a", rec.Anchor, "-t", rec.Table, "-T", "show")
		if err != nil {
			add("allowlist table", false, err.Error(), upFix)
		} else {
			n := len(strings.Fields(string(res.Stdout)))
			add("allowlist table", n > 0, fmt.Sprintf("<%s> holds %d entries", rec.Table, n), "run `mage allowlist`, then `mage up`")
		}
		switch {
		case rec.Interface != "":
			add("IPv6 from the containers filtered", true, "all IPv6 arriving on "+rec.Interface+" is refused unless allowlisted; packets with a source outside the subnets are dropped", "")
		case rec.Network6 != "":
			add("IPv6 from the containers filtered", false,
				"only the subnet "+rec.Network6+" is filtered; link-local IPv6, and packets whose source a container made up, are not, because the bridge interface is unknown",
				"let claudecontainer find the network's bridge interface (start the container first), then `mage up`")
		default:
			add("IPv6 from the containers filtered", false,
				"the network reports no IPv6 subnet and no bridge interface, so IPv6 is not filtered (right on macOS 15, whose containers have no IPv6 but link-local), "+
					"nor are packets whose source a container made up",
				"start the container so that its bridge interface exists, then `mage up`; on macOS 26, use apple/container 0.8 or later, which reports the network's IPv6 subnet")
		}
	}
	return checks
}

// tableText renders set as a pfctl table file.
func tableText(table string, set *netipx.IPSet) ([]byte, error) {
	if set == nil {
		return nil, errors.New("pf: no allowlist given")
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# claudecontainer allowlist for the pf table <%s>; loaded with pfctl -T replace -f\n", table)
	for _, p := range set.Prefixes() {
		w, err := tableEntry(p)
		if err != nil {
			return nil, err
		}
		b.WriteString(w)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// tableEntry renders one allowlist prefix for pfctl, refusing what would
// open the firewall to everything.
func tableEntry(p netip.Prefix) (string, error) {
	if !p.IsValid() {
		return "", fmt.Errorf("pf: invalid allowlist prefix %v", p)
	}
	if p.Bits() == 0 {
		return "", fmt.Errorf("pf: refusing to allowlist every address (%s)", p)
	}
	return p.Masked().String(), nil
}

// pfctlError is a failed pfctl call. Its message leaves out the notes pfctl
// prints on every call; Unwrap gives the proc error with the exit status.
type pfctlError struct {
	args   []string
	stderr string // cleaned
	err    error
}

func (e *pfctlError) Error() string {
	msg := e.stderr
	if msg == "" {
		msg = e.err.Error()
	} else if code := proc.ExitCode(e.err); code > 0 {
		msg += " (exit status " + strconv.Itoa(code) + ")"
	}
	return "pfctl " + strings.Join(e.args, " ") + ": " + msg
}

func (e *pfctlError) Unwrap() error { return e.err }

// pfctl runs pfctl with root rights.
func (f *Firewall) pfctl(ctx context.Context, stdin []byte, args ...string) (proc.Result, error) {
	return runPfctl(ctx, f.run, stdin, args...)
}

// runPfctl runs pfctl through r with root rights (directly when this process
// is root). A failure is a *pfctlError.
func runPfctl(ctx context.Context, r proc.Runner, stdin []byte, args ...string) (proc.Result, error) {
	res, err := r.Run(ctx, proc.Cmd{Name: "pfctl", Args: args, Stdin: stdin, Privileged: true})
	if err != nil {
		return res, &pfctlError{args: args, stderr: clean(res.Stderr), err: err}
	}
	return res, nil
}

// noise is what pfctl writes to stderr whether or not anything went wrong.
var noise = []string{
	"No ALTQ support in kernel",
	"ALTQ related functions disabled",
	"pfctl: Use of -f option, could result in flushing of rules",
	"present in the main ruleset added by the system at startup.",
	"See /etc/pf.conf for further details.",
}

// clean returns stderr without pfctl's notes, one line per "; ".
func clean(stderr []byte) string {
	var keep []string
	for _, line := range strings.Split(string(stderr), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || slices.Contains(noise, line) {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "; ")
}
