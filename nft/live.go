package nft

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// liveTable is our table as the kernel reports it (`nft -j list table`).
type liveTable struct {
	chains map[string]liveChain
	sets   map[string]liveSet
}

type liveChain struct {
	hook   string // "" for a regular chain
	policy string
	rules  int
}

type liveSet struct {
	set    *netipx.IPSet
	ranges int // elements as the kernel holds them (after merging)
}

// live lists our table as JSON and parses it.
func (b *Backend) live(ctx context.Context) (liveTable, error) {
	res, err := b.nft(ctx, nil, "-j", "list", "table", Family, b.cfg.Table)
	if err != nil {
		return liveTable{}, b.notUp(ctx, fmt.Errorf("listing nftables table %s %s: %w", Family, b.cfg.Table, err))
	}
	lt, err := parseTable(res.Stdout, b.cfg.Table)
	if err != nil {
		return liveTable{}, fmt.Errorf("reading `nft -j list table %s %s`: %w", Family, b.cfg.Table, err)
	}
	return lt, nil
}

// parseTable parses the JSON listing of one table. It accepts only the
// objects it knows; every address goes through netip.
func parseTable(data []byte, table string) (liveTable, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return liveTable{}, err
	}
	lt := liveTable{chains: map[string]liveChain{}, sets: map[string]liveSet{}}
	var rules []string
	for _, obj := range doc.Nftables {
		if raw, ok := obj["chain"]; ok {
			var c struct {
				Table, Name, Hook, Policy string
			}
			if err := json.Unmarshal(raw, &c); err != nil {
				return lt, fmt.Errorf("chain: %w", err)
			}
			if c.Table == table {
				lt.chains[c.Name] = liveChain{hook: c.Hook, policy: c.Policy}
			}
		}
		if raw, ok := obj["rule"]; ok {
			var r struct{ Table, Chain string }
			if err := json.Unmarshal(raw, &r); err != nil {
				return lt, fmt.Errorf("rule: %w", err)
			}
			if r.Table == table {
				rules = append(rules, r.Chain)
			}
		}
		if raw, ok := obj["set"]; ok {
			var s struct {
				Table, Name string
				Elem        []json.RawMessage
			}
			if err := json.Unmarshal(raw, &s); err != nil {
				return lt, fmt.Errorf("set: %w", err)
			}
			if s.Table != table {
				continue
			}
			var b netipx.IPSetBuilder
			for _, e := range s.Elem {
				r, err := parseElem(e)
				if err != nil {
					return lt, fmt.Errorf("set %s: %w", s.Name, err)
				}
				b.AddRange(r)
			}
			set, err := b.IPSet()
			if err != nil {
				return lt, fmt.Errorf("set %s: %w", s.Name, err)
			}
			lt.sets[s.Name] = liveSet{set: set, ranges: len(s.Elem)}
		}
	}
	for _, name := range rules {
		c, ok := lt.chains[name]
		if !ok {
			return lt, fmt.Errorf("rule in unknown chain %q", name)
		}
		c.rules++
		lt.chains[name] = c
	}
	return lt, nil
}

// parseElem parses one set element: an address, {"prefix": {"addr", "len"}},
// {"range": [from, to]}, or any of them wrapped in {"elem": {"val": …}}.
func parseElem(raw json.RawMessage) (netipx.IPRange, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netipx.IPRange{}, err
		}
		return netipx.IPRangeFrom(a, a), nil
	}
	var o struct {
		Prefix *struct {
			Addr string
			Len  int
		}
		Range []string
		Elem  *struct{ Val json.RawMessage }
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return netipx.IPRange{}, err
	}
	switch {
	case o.Prefix != nil:
		a, err := netip.ParseAddr(o.Prefix.Addr)
		if err != nil {
			return netipx.IPRange{}, err
		}
		p, err := a.Prefix(o.Prefix.Len)
		if err != nil || p.Addr() != a || o.Prefix.Len < 0 {
			return netipx.IPRange{}, fmt.Errorf("bad prefix %s/%d", o.Prefix.Addr, o.Prefix.Len)
		}
		return netipx.RangeOfPrefix(p), nil
	case len(o.Range) == 2:
		from, err1 := netip.ParseAddr(o.Range[0])
		to, err2 := netip.ParseAddr(o.Range[1])
		r := netipx.IPRangeFrom(from, to)
		if err := errors.Join(err1, err2); err != nil || !r.IsValid() {
			return netipx.IPRange{}, fmt.Errorf("bad range %q", o.Range)
		}
		return r, nil
	case o.Elem != nil:
		return parseElem(o.Elem.Val)
	}
	return netipx.IPRange{}, fmt.Errorf("unknown element %s", raw)
}

// checkChains reports how the live chains differ from want.
func (lt liveTable) checkChains(want []chain, sets int) error {
	var diffs []string
	for _, c := range want {
		got, ok := lt.chains[c.name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("chain %s is missing", c.name))
		case got.hook != c.hook:
			diffs = append(diffs, fmt.Sprintf("chain %s is on hook %q, want %q", c.name, got.hook, c.hook))
		case c.hook != "" && got.policy != "accept":
			diffs = append(diffs, fmt.Sprintf("chain %s has policy %q, want accept", c.name, got.policy))
		case got.rules != len(c.rules):
			diffs = append(diffs, fmt.Sprintf("chain %s has %d rules, want %d", c.name, got.rules, len(c.rules)))
		}
	}
	if len(lt.chains) != len(want) {
		diffs = append(diffs, fmt.Sprintf("the table has %d chains, want %d", len(lt.chains), len(want)))
	}
	if len(lt.sets) != sets {
		diffs = append(diffs, fmt.Sprintf("the table has %d sets, want %d", len(lt.sets), sets))
	}
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}

// checkSets reports whether the live allowlist sets hold exactly set.
func (lt liveTable) checkSets(prefix string, set *netipx.IPSet) error {
	v4, v6 := split(set)
	set4, set6 := SetNames(prefix)
	var diffs []string
	for _, s := range []struct {
		name string
		want []netip.Prefix
	}{{set4, v4}, {set6, v6}} {
		got, ok := lt.sets[s.name]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("set %s is missing", s.name))
			continue
		}
		var b netipx.IPSetBuilder
		for _, p := range s.want {
			b.AddPrefix(p)
		}
		want, _ := b.IPSet() // the prefixes come from a valid set
		if !got.set.Equal(want) {
			diffs = append(diffs, fmt.Sprintf("set %s holds %d ranges that differ from the %d prefixes loaded", s.name, got.ranges, len(s.want)))
		}
	}
	if len(diffs) > 0 {
		return errors.New(strings.Join(diffs, "; "))
	}
	return nil
}
