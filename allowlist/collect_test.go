package allowlist_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/resolve"
	"github.com/VerilyPete/claudecontainer/sources"
)

const localFile = "/home/u/.config/claudecontainer/allowlist.local"

func fetched(res sources.Result) func(context.Context, sources.Env) (sources.Result, error) {
	return func(context.Context, sources.Env) (sources.Result, error) { return res, nil }
}

func failing(err error) func(context.Context, sources.Env) (sources.Result, error) {
	return func(context.Context, sources.Env) (sources.Result, error) { return sources.Result{}, err }
}

func options(r *fakeResolver) allowlist.Options {
	return allowlist.Options{Timeout: 10 * time.Second, Resolver: r, Env: sources.Env{LocalFile: localFile}}
}

// warnings returns every source's warnings, prefixed with its name.
func warnings(rep *allowlist.Report) []string {
	var out []string
	for _, s := range rep.Sources {
		for _, w := range s.Warnings {
			out = append(out, s.Name+": "+w)
		}
	}
	return out
}

func notes(rep *allowlist.Report) []string {
	var out []string
	for _, s := range rep.Sources {
		for _, n := range s.Notes {
			out = append(out, s.Name+": "+n)
		}
	}
	return out
}

func TestAFailedRunReturnsAnErrorAndLeavesTheFileUnchanged(t *testing.T) {
	tests := []struct {
		name     string
		srcs     []sources.Source
		resolver *fakeResolver
		want     string
	}{
		{
			name: "a required source whose fetch fails",
			srcs: []sources.Source{
				{Name: "good", Prefixes: []string{"140.82.112.0/20"}},
				{Name: "feed", Required: true, Fetch: failing(errors.New("HTTP 503 Service Unavailable"))},
			},
			want: "source feed: fetching: HTTP 503 Service Unavailable",
		},
		{
			name: "a required source with a host that does not resolve",
			srcs: []sources.Source{
				{Name: "api", Required: true, Prefixes: []string{"160.79.104.0/23"}, Hosts: []string{"api.example.com", "gone.example.com"}},
			},
			resolver: &fakeResolver{hosts: map[string][]string{"api.example.com": {"160.79.104.10"}}},
			want:     "source api: host gone.example.com: resolve gone.example.com: name does not exist",
		},
		{
			name: "a required source with a host that resolves only to loopback",
			srcs: []sources.Source{
				{Name: "api", Required: true, Hosts: []string{"api.example.com"}},
				{Name: "good", Prefixes: []string{"140.82.112.0/20"}},
			},
			resolver: &fakeResolver{hosts: map[string][]string{"api.example.com": {"127.0.0.1", "::1"}}},
			want:     "source api: host api.example.com: no usable address",
		},
		{
			name: "two required sources failing, both named",
			srcs: []sources.Source{
				{Name: "feed", Required: true, Fetch: failing(errors.New("HTTP 503"))},
				{Name: "npm", Required: true, Hosts: []string{"registry.example.org"}},
			},
			want: "source feed: fetching: HTTP 503\nsource npm: host registry.example.org: resolve registry.example.org: name does not exist",
		},
		{
			name: "a required source that gives nothing",
			srcs: []sources.Source{
				{Name: "feed", Required: true, Fetch: fetched(sources.Result{})},
				{Name: "good", Prefixes: []string{"140.82.112.0/20"}},
			},
			want: "source feed: gave no usable entry",
		},
		{
			name: "a required source whose fetch crashes",
			srcs: []sources.Source{
				{Name: "feed", Required: true, Fetch: func(context.Context, sources.Env) (sources.Result, error) { panic("index out of range") }},
			},
			want: "source feed: fetching: the source crashed: index out of range",
		},
		{
			name: "nothing usable at all",
			srcs: []sources.Source{
				{Name: "feed", Fetch: fetched(sources.Result{Prefixes: prefixes("10.0.0.0/8", "0.0.0.0/0")})},
				{Name: "cdn", Hosts: []string{"cdn.example.com"}},
			},
			resolver: &fakeResolver{hosts: map[string][]string{"cdn.example.com": {"192.168.1.1"}}},
			want:     "the allowlist is empty: no source gave a usable entry",
		},
		{
			name: "no sources",
			want: "the allowlist is empty: no source gave a usable entry",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := oldFile(t)
			r := tt.resolver
			if r == nil {
				r = &fakeResolver{}
			}
			rep, err := allowlist.Update(context.Background(), tt.srcs, options(r), path)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant %s", err, tt.want)
			}
			if rep.Set != nil {
				t.Errorf("the report carries a set after a failure")
			}
			assertUnchanged(t, path)
		})
	}
}

func TestAnOptionalSourceThatFailsIsAWarningAndTheFileIsWritten(t *testing.T) {
	path := oldFile(t)
	srcs := []sources.Source{
		{Name: "good", Required: true, Prefixes: []string{"140.82.112.0/20", "2606:50c0::/32"}},
		{Name: "sentry", Prefixes: []string{"35.186.247.156/32"}, Fetch: failing(errors.New("HTTP 503"))},
		{Name: "statsig", Hosts: []string{"statsig.example.com"}},
	}
	rep, err := allowlist.Update(context.Background(), srcs, options(&fakeResolver{}), path)
	if err != nil {
		t.Fatal(err)
	}
	wantWarnings := []string{
		"sentry: fetching: HTTP 503",
		"statsig: host statsig.example.com: resolve statsig.example.com: name does not exist",
	}
	if diff := cmp.Diff(wantWarnings, warnings(rep)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	// The failed fetch does not take the source's fixed entries with it.
	if diff := cmp.Diff([]string{"35.186.247.156/32", "140.82.112.0/20", "2606:50c0::/32"}, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
	if c := comments(t, path); !strings.Contains(c, "#   warning: fetching: HTTP 503\n") {
		t.Errorf("the file's header does not carry the warning:\n%s", c)
	}
}

func TestDNSAnswersInSpecialRangesAreRefusedWithWarnings(t *testing.T) {
	path := oldFile(t)
	r := &fakeResolver{hosts: map[string][]string{
		"a.example.com": {"10.0.0.5", "151.101.1.1"},
		"b.example.com": {"127.0.0.1"},
		"c.example.com": {"2606:4700::6810:84e5", "fd00::1", "::ffff:104.16.0.1"},
	}}
	srcs := []sources.Source{{Name: "cdn", Hosts: []string{"a.example.com", "b.example.com", "c.example.com"}}}
	rep, err := allowlist.Update(context.Background(), srcs, options(r), path)
	if err != nil {
		t.Fatal(err)
	}
	wantWarnings := []string{
		"cdn: a.example.com resolved to 10.0.0.5 (private network, RFC 1918): refused; write the address in " + localFile + " if you mean it",
		"cdn: b.example.com resolved to 127.0.0.1 (loopback): refused",
		"cdn: c.example.com resolved to fd00::1 (unique local address, RFC 4193): refused; write the address in " + localFile + " if you mean it",
	}
	if diff := cmp.Diff(wantWarnings, warnings(rep)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"104.16.0.1/32", "151.101.1.1/32", "2606:4700::6810:84e5/128"}, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
	if got, want := rep.Sources[0].Addrs, 3; got != want {
		t.Errorf("Addrs = %d, want %d", got, want)
	}
}

func TestPrivateRangesTheUserWroteAreKeptWithANote(t *testing.T) {
	path := oldFile(t)
	srcs := []sources.Source{
		{Name: "local", Fetch: fetched(sources.Result{Literal: true,
			Prefixes: prefixes("10.20.0.0/16", "fd12:3456::/48", "127.0.0.0/8", "140.82.112.0/20")})},
		{Name: "feed", Fetch: fetched(sources.Result{Prefixes: prefixes("10.30.0.0/16", "fd12:abcd::/48", "185.199.108.0/22")})},
	}
	rep, err := allowlist.Update(context.Background(), srcs, options(&fakeResolver{}), path)
	if err != nil {
		t.Fatal(err)
	}
	wantNotes := []string{
		"local: kept 10.20.0.0/16 (private network, RFC 1918) because you wrote it in " + localFile,
		"local: kept fd12:3456::/48 (unique local address, RFC 4193) because you wrote it in " + localFile,
	}
	if diff := cmp.Diff(wantNotes, notes(rep)); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
	wantWarnings := []string{
		"local: refused 127.0.0.0/8: loopback",
		"feed: refused 10.30.0.0/16: private network, RFC 1918",
		"feed: refused fd12:abcd::/48: unique local address, RFC 4193",
	}
	if diff := cmp.Diff(wantWarnings, warnings(rep)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"10.20.0.0/16", "140.82.112.0/20", "185.199.108.0/22", "fd12:3456::/48"}, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
	if c := comments(t, path); !strings.Contains(c, "#   note: kept 10.20.0.0/16 (private network, RFC 1918) because you wrote it in "+localFile+"\n") {
		t.Errorf("the file's header does not carry the note:\n%s", c)
	}
}

func TestDefaultRoutesAndBroadPrefixesAreRefusedWholeEvenFromARequiredSource(t *testing.T) {
	path := oldFile(t)
	srcs := []sources.Source{
		{Name: "feed", Required: true, Fetch: fetched(sources.Result{
			Prefixes: prefixes("0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "140.82.112.0/20")})},
		{Name: "local", Fetch: fetched(sources.Result{Literal: true, Prefixes: prefixes("0.0.0.0/0", "::/0")})},
	}
	rep, err := allowlist.Update(context.Background(), srcs, options(&fakeResolver{}), path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"feed: refused 0.0.0.0/0: default route",
		"feed: refused ::/0: default route",
		"feed: refused 0.0.0.0/1: too broad (shorter than /8)",
		"feed: refused 128.0.0.0/1: too broad (shorter than /8)",
		"local: refused 0.0.0.0/0: default route",
		"local: refused ::/0: default route",
	}
	if diff := cmp.Diff(want, warnings(rep)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"140.82.112.0/20"}, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
}

func TestAPrefixAroundASpecialRangeLosesOnlyThatPart(t *testing.T) {
	path := oldFile(t)
	srcs := []sources.Source{{Name: "feed", Fetch: fetched(sources.Result{Prefixes: prefixes("100.0.0.0/8")})}}
	rep, err := allowlist.Update(context.Background(), srcs, options(&fakeResolver{}), path)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"feed: 100.0.0.0/8: removed 100.64.0.0/10 (shared address space for CGNAT, RFC 6598)"}
	if diff := cmp.Diff(want, warnings(rep)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"100.0.0.0/10", "100.128.0.0/9"}, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
}

func TestIPv4MappedPrefixesAndAnswersAreUnmapped(t *testing.T) {
	path := oldFile(t)
	r := &fakeResolver{hosts: map[string][]string{"api.example.com": {"::ffff:160.79.104.10"}}}
	srcs := []sources.Source{
		{Name: "static", Prefixes: []string{"::ffff:192.30.252.0/118"}, Hosts: []string{"api.example.com"}},
		{Name: "feed", Fetch: fetched(sources.Result{Prefixes: prefixes("::ffff:140.82.112.0/116")})},
	}
	if _, err := allowlist.Update(context.Background(), srcs, options(r), path); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"140.82.112.0/20", "160.79.104.10/32", "192.30.252.0/22"}, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
}

func TestDuplicatesAcrossSourcesAreMergedAndEachHostIsAskedOnce(t *testing.T) {
	path := oldFile(t)
	r := &fakeResolver{hosts: map[string][]string{"api.example.com": {"160.79.104.10", "160.79.104.10"}}}
	srcs := []sources.Source{
		{Name: "one", Prefixes: []string{"192.30.252.0/22", "192.30.252.0/24"}, Hosts: []string{"api.example.com"}},
		{Name: "two", Prefixes: []string{"192.30.252.0/22"}, Hosts: []string{"api.example.com", "api.example.com"}},
		{Name: "three", Fetch: fetched(sources.Result{Prefixes: prefixes("192.30.254.0/23"), Hosts: []string{"api.example.com"}})},
	}
	rep, err := allowlist.Update(context.Background(), srcs, options(r), path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"api.example.com": 1}, r.asked); diff != "" {
		t.Errorf("questions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"160.79.104.10/32", "192.30.252.0/22"}, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
	// one: 2 prefixes + 2 answers; two: 1 + 2; three: 1 + 2.
	if rep.Entries != 10 || len(rep.Prefixes) != 2 {
		t.Errorf("entries %d merged into %d, want 10 into 2", rep.Entries, len(rep.Prefixes))
	}
	if got := warnings(rep); got != nil {
		t.Errorf("warnings = %q, want none", got)
	}
}

func TestTheTimeLimitBoundsASourceThatHangs(t *testing.T) {
	hangs := func(ctx context.Context, _ sources.Env) (sources.Result, error) {
		<-ctx.Done()
		return sources.Result{}, ctx.Err()
	}
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	ignoresCtx := func(context.Context, sources.Env) (sources.Result, error) {
		<-stuck
		return sources.Result{Prefixes: prefixes("1.1.1.0/24")}, nil
	}
	good := sources.Source{Name: "good", Required: true, Prefixes: []string{"140.82.112.0/20"}, Hosts: []string{"api.example.com"}}
	tests := []struct {
		name     string
		srcs     []sources.Source
		resolver allowlist.Resolver
		wantErr  string
		warnings []string
	}{
		{
			name: "an optional source that waits for its context",
			srcs: []sources.Source{good, {Name: "slow", Fetch: hangs}},
			warnings: []string{
				"slow: fetching: context deadline exceeded (the time limit of 1s ran out)",
			},
		},
		{
			name: "an optional source that ignores its context",
			srcs: []sources.Source{good, {Name: "stuck", Fetch: ignoresCtx}},
			warnings: []string{
				"stuck: fetching: context deadline exceeded (the time limit of 1s ran out)",
			},
		},
		{
			name:    "a required source that hangs",
			srcs:    []sources.Source{good, {Name: "slow", Required: true, Fetch: hangs}},
			wantErr: "source slow: fetching: context deadline exceeded (the time limit of 1s ran out)",
		},
		{
			name:     "a resolver that never answers",
			srcs:     []sources.Source{good},
			resolver: silentResolver{},
			wantErr:  "source good: host api.example.com: no answer: context deadline exceeded (the time limit of 1s ran out)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := oldFile(t)
			opts := options(&fakeResolver{hosts: map[string][]string{"api.example.com": {"160.79.104.10"}}})
			opts.Timeout = time.Second
			if tt.resolver != nil {
				opts.Resolver = tt.resolver
			}
			rep, err := allowlist.Update(context.Background(), tt.srcs, opts, path)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("err = %v\nwant %s", err, tt.wantErr)
				}
				assertUnchanged(t, path)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.warnings, warnings(rep)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"140.82.112.0/20", "160.79.104.10/32"}, cidrs(t, path)); diff != "" {
				t.Errorf("file (-want +got):\n%s", diff)
			}
		})
	}
}

// silentResolver never answers (and ignores its context).
type silentResolver struct{}

func (silentResolver) LookupAll(context.Context, []string) []resolve.Answer { select {} }

func TestSourceWarningsAreCollectedPerSourceAndProgressIsReportedOncePerSource(t *testing.T) {
	var seen []string
	opts := options(&fakeResolver{})
	opts.Progress = func(s allowlist.SourceReport) { seen = append(seen, s.Name) }
	opts.Env.Warn = func(string, ...any) { t.Error("the caller's Warn was called") }
	srcs := []sources.Source{
		{Name: "cached", Fetch: func(_ context.Context, env sources.Env) (sources.Result, error) {
			env.Warn("using the cached copy from %s", "2026-01-02")
			return sources.Result{Prefixes: prefixes("140.82.112.0/20")}, nil
		}},
		{Name: "hosts", Fetch: fetched(sources.Result{Hosts: []string{"*.example.com", "example.com/path"}})},
		{Name: "quiet", Prefixes: []string{"185.199.108.0/22"}},
	}
	rep, err := allowlist.Collect(context.Background(), srcs, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cached: using the cached copy from 2026-01-02",
		`hosts: invalid host name "*.example.com"`,
		`hosts: invalid host name "example.com/path"`,
	}
	if diff := cmp.Diff(want, warnings(rep)); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	slices.Sort(seen)
	if diff := cmp.Diff([]string{"cached", "hosts", "quiet"}, seen); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(prefixes("140.82.112.0/20", "185.199.108.0/22"), rep.Prefixes, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("prefixes (-want +got):\n%s", diff)
	}
}

func TestTheFileCarriesEveryHostAndDomainForTheDNSFilter(t *testing.T) {
	path := oldFile(t)
	r := &fakeResolver{hosts: map[string][]string{"api.example.com": {"160.79.104.10"}}}
	srcs := []sources.Source{
		{Name: "one", Hosts: []string{"api.example.com", "gone.example.com"}, Domains: []string{"*.example.org"}},
		{Name: "two", Prefixes: []string{"192.30.252.0/22"}, Fetch: fetched(sources.Result{
			Domains: []string{"!gist.example.org", "*.*.bad.example", "api.example.com"}})},
	}
	_, err := allowlist.Update(context.Background(), srcs, options(r), path)
	if err != nil {
		t.Fatal(err)
	}
	names, entries, err := allowlist.LoadNames(path)
	if err != nil {
		t.Fatal(err)
	}
	// A host that did not resolve is still a name the filter may answer;
	// a malformed entry from a fetch is left out (with a warning).
	want := []string{"!gist.example.org", "*.example.org", "api.example.com", "gone.example.com"}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	for name, ok := range map[string]bool{"a.example.org": true, "gist.example.org": false, "gone.example.com": true, "example.org": false} {
		if names.Allowed(name) != ok {
			t.Errorf("Allowed(%q) = %v, want %v", name, !ok, ok)
		}
	}
	// The names are comments to pfctl: the addresses read back unchanged.
	if diff := cmp.Diff([]string{"160.79.104.10/32", "192.30.252.0/22"}, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
}

func TestADeniedHostLeavesItsAddressesOut(t *testing.T) {
	path := oldFile(t)
	r := &fakeResolver{hosts: map[string][]string{
		"statsig.com":     {"34.120.214.181", "104.16.2.34"},
		"api.example.com": {"160.79.104.10"},
		"cdn.example.com": {"104.16.2.34"}, // shares an address with the denied host
	}}
	srcs := []sources.Source{
		{Name: "statsig", Hosts: []string{"statsig.com", "api.example.com", "cdn.example.com"}},
		{Name: "local", Fetch: fetched(sources.Result{Domains: []string{"!statsig.com"}, Literal: true})},
	}
	rep, err := allowlist.Update(context.Background(), srcs, options(r), path)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"104.16.2.34/32", "160.79.104.10/32"}, cidrs(t, path)); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
	if got := notes(rep); !slices.Contains(got, "statsig: statsig.com is denied: its addresses are left out") {
		t.Errorf("notes = %q", got)
	}
}
