package allowlist_test

import (
	"cmp"
	"context"
	"encoding/json"
	"math/big"
	"net/netip"
	"os"
	"slices"
	"sort"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/sources"
)

// metaPrefixes returns every prefix of every CIDR list in the GitHub meta
// snapshot (actions included), and the names of those lists.
func metaPrefixes(tb testing.TB) ([]netip.Prefix, []string) {
	tb.Helper()
	b, err := os.ReadFile("../sources/testdata/github-meta-2023-11-27.json")
	if err != nil {
		tb.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		tb.Fatal(err)
	}
	var all []netip.Prefix
	var keys []string
	for k, raw := range doc {
		var list []string
		if json.Unmarshal(raw, &list) != nil {
			continue // not a list of strings
		}
		var ps []netip.Prefix
		for _, s := range list {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				ps = nil
				break
			}
			ps = append(ps, p)
		}
		if ps != nil {
			all = append(all, ps...)
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return all, keys
}

// referenceMerge is a plain computation of the minimal CIDR cover, written
// independently of netipx: expand each prefix to an integer range, sort,
// coalesce overlapping and adjacent ranges, then split each range into the
// largest aligned blocks.
func referenceMerge(ps []netip.Prefix) []netip.Prefix {
	type rng struct {
		lo, hi *big.Int
		bits   int // address length
	}
	one := big.NewInt(1)
	var out []netip.Prefix
	for _, family := range []int{32, 128} {
		var rs []rng
		for _, p := range ps {
			if p.Addr().BitLen() != family {
				continue
			}
			lo := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
			size := new(big.Int).Lsh(one, uint(family-p.Bits()))
			hi := new(big.Int).Add(lo, size)
			rs = append(rs, rng{lo, hi.Sub(hi, one), family})
		}
		slices.SortFunc(rs, func(a, b rng) int { return cmp.Or(a.lo.Cmp(b.lo), a.hi.Cmp(b.hi)) })
		var merged []rng
		for _, r := range rs {
			if n := len(merged); n > 0 {
				last := &merged[n-1]
				if next := new(big.Int).Add(last.hi, one); r.lo.Cmp(next) <= 0 {
					if r.hi.Cmp(last.hi) > 0 {
						last.hi = r.hi
					}
					continue
				}
			}
			merged = append(merged, r)
		}
		for _, r := range merged {
			lo := new(big.Int).Set(r.lo)
			for lo.Cmp(r.hi) <= 0 {
				// The largest block that starts at lo and ends by r.hi.
				k := 0
				for k < family && lo.Bit(k) == 0 {
					end := new(big.Int).Add(lo, new(big.Int).Lsh(one, uint(k+1)))
					if end.Sub(end, one).Cmp(r.hi) > 0 {
						break
					}
					k++
				}
				buf := make([]byte, family/8)
				lo.FillBytes(buf)
				a, _ := netip.AddrFromSlice(buf)
				out = append(out, netip.PrefixFrom(a, family-k))
				lo.Add(lo, new(big.Int).Lsh(one, uint(k)))
			}
		}
	}
	return out
}

var prefixCmp = gocmp.Comparer(func(a, b netip.Prefix) bool { return a == b })

func TestMergeOfTheWholeGitHubMetaDocumentMatchesAReferenceComputation(t *testing.T) {
	all, keys := metaPrefixes(t)
	wantKeys := []string{"actions", "api", "dependabot", "git", "github_enterprise_importer", "hooks", "importer", "packages", "pages", "web"}
	if diff := gocmp.Diff(wantKeys, keys); diff != "" {
		t.Fatalf("CIDR lists in the snapshot (-want +got):\n%s", diff)
	}
	if len(all) != 3977 {
		t.Fatalf("read %d prefixes, want 3977", len(all))
	}

	set, err := allowlist.Merge(all)
	if err != nil {
		t.Fatal(err)
	}
	got := set.Prefixes()
	want := referenceMerge(all)
	if diff := gocmp.Diff(want, got, prefixCmp); diff != "" {
		t.Fatalf("Merge (-reference +got):\n%s", diff)
	}
	v4 := 0
	for _, p := range got {
		if p.Addr().Is4() {
			v4++
		}
	}
	// Both families are merged, not only IPv4: the snapshot's 3977
	// prefixes make 2262 IPv4 and 582 IPv6 CIDRs.
	if v6 := len(got) - v4; v4 != 2262 || v6 != 582 {
		t.Errorf("merged into %d IPv4 and %d IPv6 CIDRs, want 2262 and 582", v4, v6)
	}

	// Minimal: IPv4 first, sorted, none overlapping another, no two
	// siblings that could be one shorter prefix.
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		if a.Addr().Compare(b.Addr()) >= 0 {
			t.Errorf("%s comes before %s", a, b)
		}
		if a.Bits() == b.Bits() && a.Bits() > 0 {
			pa, _ := a.Addr().Prefix(a.Bits() - 1)
			pb, _ := b.Addr().Prefix(b.Bits() - 1)
			if pa == pb {
				t.Errorf("%s and %s could be merged into %s", a, b, pa)
			}
		}
	}
	for i, a := range got {
		for _, b := range got[i+1:] {
			if a.Overlaps(b) {
				t.Errorf("%s overlaps %s", a, b)
			}
		}
	}

	// The same through Collect: nothing in the snapshot is vetted away.
	rep, err := allowlist.Collect(context.Background(), []sources.Source{{Name: "github", Required: true,
		Fetch: fetched(sources.Result{Prefixes: all})}}, options(&fakeResolver{}))
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(want, rep.Prefixes, prefixCmp); diff != "" {
		t.Errorf("Collect (-reference +got):\n%s", diff)
	}
	if w := warnings(rep); w != nil {
		t.Errorf("warnings: %q", w)
	}
	if rep.Entries != len(all) {
		t.Errorf("Entries = %d, want %d", rep.Entries, len(all))
	}
}

func TestTheReferenceMergeIsItselfRight(t *testing.T) {
	got := referenceMerge(prefixes("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/25", "10.0.2.128/25", "10.0.0.7/32",
		"10.0.4.0/24", "2001:db8::/33", "2001:db8:8000::/33", "2001:db9::1/128"))
	want := prefixes("10.0.0.0/23", "10.0.2.0/24", "10.0.4.0/24", "2001:db8::/32", "2001:db9::1/128")
	if diff := gocmp.Diff(want, got, prefixCmp); diff != "" {
		t.Errorf("referenceMerge (-want +got):\n%s", diff)
	}
}

func TestMergeUnmapsAndRefusesInvalidPrefixes(t *testing.T) {
	set, err := allowlist.Merge(prefixes("::ffff:140.82.112.0/116"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(prefixes("140.82.112.0/20"), set.Prefixes(), prefixCmp); diff != "" {
		t.Errorf("Merge (-want +got):\n%s", diff)
	}
	if _, err := allowlist.Merge([]netip.Prefix{{}}); err == nil {
		t.Error("Merge accepted an invalid prefix")
	}
}

func BenchmarkMerge(b *testing.B) {
	all, _ := metaPrefixes(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := allowlist.Merge(all); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCollect is Merge plus vetting and the report, for the same
// snapshot given by one source.
func BenchmarkCollect(b *testing.B) {
	all, _ := metaPrefixes(b)
	srcs := []sources.Source{{Name: "github", Fetch: fetched(sources.Result{Prefixes: all})}}
	opts := options(&fakeResolver{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := allowlist.Collect(context.Background(), srcs, opts); err != nil {
			b.Fatal(err)
		}
	}
}
