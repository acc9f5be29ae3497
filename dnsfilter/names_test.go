package dnsfilter

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestNamesMatchExactNamesWildcardsAndDenyEntries(t *testing.T) {
	n := mustNames(t,
		"api.anthropic.com",
		"*.github.com",
		"!gist.github.com",
		"!*.corp.github.com",
		"*.example.org", "!*.example.org", // the deny wins
		"Registry.NPMJS.org.", // case and a trailing dot are ignored
		"_acme-challenge.example.net",
		"xn--bcher-kva.example",
	)
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"api.anthropic.com", true},
		{"API.Anthropic.COM.", true},
		{"anthropic.com", false},
		{"x.api.anthropic.com", false},
		{"github.com", false}, // a wildcard does not cover its own domain
		{"api.github.com", true},
		{"a.b.c.github.com", true},
		{"gist.github.com", false},
		{"GIST.github.com.", false},
		{"x.gist.github.com", true}, // the deny is exact
		{"corp.github.com", true},   // the deny wildcard does not cover its domain
		{"a.corp.github.com", false},
		{"a.b.corp.github.com", false},
		{"notgithub.com", false},
		{"api.github.com.evil.example", false},
		{"x.example.org", false},
		{"registry.npmjs.org", true},
		{"_acme-challenge.example.net", true},
		{"xn--bcher-kva.example", true},
		{"bücher.example", false},
		{"", false},
		{".", false},
		{"com", false},
		// miekg/dns escapes a dot inside a label: the label "a.b" under
		// github.com and the label "b.github" under com; names with
		// escapes are never allowed, so neither is split at the wrong dot.
		{`a\.b.github.com`, false},
		{`a.b\.github.com`, false},
		{`x\000.github.com`, false},
	} {
		if got := n.Allowed(tc.name); got != tc.want {
			t.Errorf("Allowed(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestAnEmptyOrNilPolicyAllowsNothing(t *testing.T) {
	var nilNames *Names
	for _, n := range []*Names{mustNames(t), nilNames} {
		for _, name := range []string{"example.com", "a.example.com", "."} {
			if n.Allowed(name) {
				t.Errorf("%v allows %q", n, name)
			}
		}
	}
}

func TestParseNamesSaysWhyAnEntryIsRefused(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, tc := range []struct {
		entry string
		want  string
	}{
		{"", "empty"},
		{"!", "empty"},
		{"*", "a bare * would match every name"},
		{"*.", "a bare * would match every name"},
		{"!*", "a bare * would match every name"},
		{"*.com", "*.com would match a whole top-level domain"},
		{"!*.com", "*.com would match a whole top-level domain"},
		{"com", "a single label is not a public name"},
		{"localhost", "a single label is not a public name"},
		{"http://example.com", "is a URL"},
		{"example.com/path", "has a path"},
		{"user@example.com", "has a path or user part"},
		{"host.example.com:22", "has a port"},
		{"192.0.2.1", "is an IP address"},
		{"2001:db8::1", "is an IP address"},
		{"[2001:db8::1]", "is an IP address"},
		{"1.2.3", "the last label is a number"},
		{"a..example.com", "has an empty label"},
		{".example.com", "has an empty label"},
		{"example.com..", "has an empty label"},
		{"a.*.example.com", `"*" may only be the whole first label`},
		{"*a.example.com", `"*" may only be the whole first label`},
		{"**.example.com", `"*" may only be the whole first label`},
		{"*.*.example.com", `"*" may only be the whole first label`},
		{long + ".example.com", "longer than 63 bytes"},
		{strings.Repeat("abcdefghi.", 25) + "example", "longer than 253 bytes"},
		{"-a.example.com", "starts or ends with a hyphen"},
		{"a-.example.com", "starts or ends with a hyphen"},
		{"bücher.example", "punycode"},
		{"a b.example.com", `holds ' '`},
		{`a\.b.example.com`, `holds '\\'`},
	} {
		_, err := ParseNames([]string{tc.entry})
		if err == nil {
			t.Errorf("ParseNames(%q) succeeded", tc.entry)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "name "+strconv.Quote(tc.entry)) {
			t.Errorf("ParseNames(%q) = %q, want it to quote the entry and say %q", tc.entry, err, tc.want)
		}
	}
}

func TestParseNamesAcceptsTheLongestNamesAndLabels(t *testing.T) {
	label := strings.Repeat("a", 63)
	name := label + "." + label + "." + label + "." + strings.Repeat("b", 61) // 253 bytes
	if len(name) != 253 {
		t.Fatalf("test name is %d bytes", len(name))
	}
	n := mustNames(t, name, "*."+label+".example")
	if !n.Allowed(name+".") || !n.Allowed("x."+label+".example") {
		t.Error("the longest name or label is not matched")
	}
}

func TestParseNamesReportsEveryBadEntryAtOnce(t *testing.T) {
	_, err := ParseNames([]string{"ok.example.com", "*", "http://x", "host:22"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"*"`, `"http://x"`, `"host:22"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "ok.example.com") {
		t.Errorf("error %q names a good entry", err)
	}
}

func TestNamesAreSafeForConcurrentUse(t *testing.T) {
	n := mustNames(t, "*.github.com", "!gist.github.com")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if !n.Allowed("api.github.com") || n.Allowed("gist.github.com") {
					t.Error("wrong answer under concurrency")
					return
				}
			}
		})
	}
	wg.Wait()
}

func ExampleParseNames() {
	names, err := ParseNames([]string{"api.anthropic.com", "*.github.com", "!gist.github.com"})
	if err != nil {
		panic(err)
	}
	fmt.Println(names.Allowed("api.github.com"), names.Allowed("gist.github.com"), names.Allowed("github.com"))

	_, err = ParseNames([]string{"*.com", "https://example.com", "host.example.com:22"})
	fmt.Println(err)
	// Output:
	// true false false
	// dnsfilter: name "*.com": *.com would match a whole top-level domain; name a domain under it
	// name "https://example.com": is a URL; write the host name alone
	// name "host.example.com:22": has a port; write the host name alone (the policy covers every port)
}
