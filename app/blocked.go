package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/dnsfilter"
	"github.com/VerilyPete/claudecontainer/filterd"
	"github.com/VerilyPete/claudecontainer/sources"
)

// Blocked lists what the DNS filter refused and what the firewall refused,
// grouped, newest first, each with the command that would allow it. since,
// when not zero, leaves out what is older; asJSON prints JSON.
func Blocked(ctx context.Context, out io.Writer, since time.Duration, asJSON bool) error {
	return withEnv(out, func(e *env) error { return e.blocked(ctx, since, asJSON, time.Now()) })
}

// BlockedGroup is one line of `mage blocked`: a name or an address, and how
// often and when it was refused.
type BlockedGroup struct {
	Kind   string    `json:"kind"` // "name" or "address"
	Name   string    `json:"name,omitempty"`
	Addr   string    `json:"address,omitempty"`
	Detail string    `json:"detail"` // query types, or protocols and ports
	Count  int       `json:"count"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	Reason string    `json:"reason,omitempty"`
	// Names are what the filter answered with the address lately.
	Names []string `json:"names,omitempty"`
	// Allow is the command that would allow it, when there is one.
	Allow string `json:"allow,omitempty"`
}

func (e *env) blocked(ctx context.Context, since time.Duration, asJSON bool, now time.Time) error {
	warn := func(err error) { fmt.Fprintf(e.out, "    warning: %v (skipped)\n", err) }
	if asJSON {
		warn = func(error) {}
	}
	names, err := dnsfilter.ReadLog(e.stateFile(filterd.RefusedFile), warn)
	if err != nil {
		return err
	}
	conns, err := filterd.ReadConns(e.stateFile(filterd.ConnsFile), warn)
	if err != nil {
		return err
	}
	var from time.Time
	if since > 0 {
		from = now.Add(-since)
	}
	groups := groupBlocked(names, conns, from)
	if asJSON {
		enc := json.NewEncoder(e.out)
		enc.SetIndent("", "  ")
		return enc.Encode(groups)
	}
	if e.filter != nil {
		if _, running, err := e.filter.Running(ctx); err == nil && !running {
			if e.cfg.DNSFilter {
				e.note("the DNS filter is not running (the firewall is down?): this is what it logged before")
			} else {
				e.note("the DNS filter is off (%sDNS_FILTER=off): nothing new is logged", "CLAUDECONTAINER_")
			}
		}
	}
	if len(groups) == 0 {
		e.step("nothing refused%s", sinceText(from))
		return nil
	}
	e.step("refused%s, newest first:", sinceText(from))
	for _, g := range groups {
		e.note("%-40s %-14s %4d× %s – %s", cmp.Or(g.Name, g.Addr), g.Detail, g.Count, g.First.Local().Format("Jan 2 15:04:05"), g.Last.Local().Format("15:04:05"))
		if len(g.Names) > 0 {
			fmt.Fprintf(e.out, "        answered lately for %s\n", strings.Join(g.Names, ", "))
		}
		switch {
		case g.Allow != "":
			fmt.Fprintf(e.out, "        allow: %s\n", g.Allow)
		case g.Reason != "":
			fmt.Fprintf(e.out, "        %s\n", g.Reason)
		}
	}
	return nil
}

func sinceText(from time.Time) string {
	if from.IsZero() {
		return ""
	}
	return " since " + from.Local().Format("Jan 2 15:04:05")
}

// groupBlocked groups the records from from on by name and by address,
// newest last seen first. It returns an empty slice, not nil, when there
// are none, so that -json prints [].
func groupBlocked(names []dnsfilter.Record, conns []filterd.ConnRecord, from time.Time) []BlockedGroup {
	byKey := map[string]*BlockedGroup{}
	details := map[string][]string{}
	touch := func(key string, g BlockedGroup, t time.Time, detail string) *BlockedGroup {
		cur := byKey[key]
		if cur == nil {
			g.First, g.Last = t, t
			cur = &g
			byKey[key] = cur
		}
		cur.Count++
		if t.Before(cur.First) {
			cur.First = t
		}
		if t.After(cur.Last) {
			cur.Last = t
		}
		if !slices.Contains(details[key], detail) {
			details[key] = append(details[key], detail)
		}
		return cur
	}
	for _, r := range names {
		name := strings.ToLower(strings.TrimSuffix(r.Name, "."))
		if r.Time.Before(from) || name == statusProbeName { // statusProbeName: `mage status` asking
			continue
		}
		// The name is what the container asked, so whatever it holds is the
		// agent's choice: a command is offered only for a name the local
		// file would take, whose characters are letters, digits, '-' and
		// '.', so that pasting it runs nothing else.
		g := BlockedGroup{Kind: "name", Name: name}
		en, err := sources.ParseEntry(name)
		switch {
		case err != nil || en.Prefix.IsValid() || en.IsDomain():
			g.Reason = "not a name the allowlist can hold"
		case r.Reason == "not on the allowlist":
			g.Allow = "mage allow " + en.Name
		case strings.HasPrefix(r.Reason, "denied by "):
			g.Reason = r.Reason
			if d, err := sources.ParseEntry(strings.TrimPrefix(r.Reason, "denied by ")); err == nil && d.IsDomain() {
				g.Reason += "; to answer it, take the deny entry out of your local file, if it is there: mage allow '" + d.Name + "' -remove"
			}
		default:
			g.Reason = r.Reason
		}
		touch("name "+name+" "+g.Reason, g, r.Time, r.Type)
	}
	for _, r := range conns {
		if r.Time.Before(from) {
			continue
		}
		addr := r.Addr.String()
		detail := r.Proto
		if r.Port != 0 {
			detail += " " + strconv.Itoa(int(r.Port))
		}
		g := BlockedGroup{Kind: "address", Addr: addr, Allow: "mage allow " + addr}
		if err := allowlist.VetAddr(r.Addr); err != nil {
			// An address the agent chose to knock on, such as the LAN's
			// router: not something to suggest opening.
			g.Allow, g.Reason = "", fmt.Sprintf("%s: not an address to open (%v)", addr, err)
		}
		cur := touch("addr "+addr, g, r.Time, detail)
		for _, n := range r.Names {
			if !slices.Contains(cur.Names, n) {
				cur.Names = append(cur.Names, n)
			}
		}
	}
	out := make([]BlockedGroup, 0, len(byKey))
	for key, g := range byKey {
		d := details[key]
		slices.Sort(d)
		g.Detail = strings.Join(d, ", ")
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b BlockedGroup) int {
		return cmp.Or(b.Last.Compare(a.Last), cmp.Compare(a.Name+a.Addr, b.Name+b.Addr))
	})
	return out
}
