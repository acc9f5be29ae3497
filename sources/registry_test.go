package sources_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/VerilyPete/claudecontainer/sources"
)

// testEnv is an Env pointing at temporary directories, with the warnings it
// received.
type testEnv struct {
	sources.Env
	warnings []string
	vars     map[string]string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	e := &testEnv{vars: map[string]string{}}
	e.Env = sources.Env{
		HTTP:      &http.Client{Timeout: 10 * time.Second},
		CacheDir:  filepath.Join(t.TempDir(), "cache"),
		LocalFile: filepath.Join(t.TempDir(), "allowlist.local"),
		Getenv:    func(k string) string { return e.vars[k] },
		URL:       map[string]string{},
		Warn: func(format string, args ...any) {
			e.warnings = append(e.warnings, fmt.Sprintf(format, args...))
		},
	}
	return e
}

// equateNet lets cmp compare netip values, which have unexported fields.
var equateNet = cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// all returns every registered source.
func all(t *testing.T) []sources.Source {
	t.Helper()
	srcs, err := sources.Select(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srcs
}

func lookup(t *testing.T, name string) sources.Source {
	t.Helper()
	s, err := sources.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEveryRegisteredSourceHasItsOwnFileAOneLineDocAndValidEntries(t *testing.T) {
	srcs := all(t)
	if len(srcs) == 0 {
		t.Fatal("no sources registered")
	}
	seen := map[string]bool{}
	for _, s := range srcs {
		if seen[s.Name] {
			t.Errorf("source %q registered twice", s.Name)
		}
		seen[s.Name] = true
		if _, err := os.Stat(s.Name + ".go"); err != nil {
			t.Errorf("source %q: no file sources/%s.go: %v", s.Name, s.Name, err)
		}
		if strings.TrimSpace(s.Doc) == "" || strings.ContainsAny(s.Doc, "\r\n") {
			t.Errorf("source %q: Doc %q is not one non-empty line", s.Name, s.Doc)
		}
		if s.Fetch == nil && len(s.Prefixes) == 0 && len(s.Hosts) == 0 {
			t.Errorf("source %q yields nothing", s.Name)
		}
		for _, p := range s.Prefixes {
			got, err := sources.ParsePrefix(p)
			if err != nil {
				t.Errorf("source %q: %v", s.Name, err)
			} else if got.String() != p {
				t.Errorf("source %q: prefix %q is not written as %s", s.Name, p, got)
			}
		}
		for _, h := range s.Hosts {
			if !sources.ValidHost(h) {
				t.Errorf("source %q: invalid host %q", s.Name, h)
			}
		}
	}
}

func TestEveryFileInTheSourcesDirectoryOtherThanTheRegistryAndHelpersIsARegisteredSource(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f == "registry.go" || f == "helpers.go" || strings.HasSuffix(f, "_test.go") {
			continue
		}
		n := strings.TrimSuffix(f, ".go")
		if _, err := sources.Lookup(n); err != nil {
			t.Errorf("%s registers no source %q (helpers shared by sources belong in helpers.go)", f, n)
		}
	}
}

// A source added later needs no change here; the ones the README documents
// must stay, with the documented Required flags.
func TestTheDocumentedBuiltInSourcesAreRegisteredWithTheDocumentedRequiredFlags(t *testing.T) {
	want := map[string]bool{
		"anthropic": true,
		"github":    true,
		"local":     false,
		"npm":       true,
		"sentry":    false,
		"statsig":   false,
		"vscode":    false,
	}
	got := map[string]bool{}
	for _, s := range all(t) {
		if _, documented := want[s.Name]; documented {
			got[s.Name] = s.Required
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sources and Required flags (-want +got):\n%s", diff)
	}
}

func TestRegisterPanicsOnASourceThatCouldNeverWork(t *testing.T) {
	hosts := []string{"example.com"}
	tests := []struct {
		name      string
		s         sources.Source
		wantPanic string
	}{
		{"an upper-case name", sources.Source{Name: "GitHub", Doc: "d", Hosts: hosts}, "invalid source name"},
		{"an empty name", sources.Source{Doc: "d", Hosts: hosts}, "invalid source name"},
		{"a name with a hyphen", sources.Source{Name: "my-src", Doc: "d", Hosts: hosts}, "invalid source name"},
		{"a name starting with a digit", sources.Source{Name: "1src", Doc: "d", Hosts: hosts}, "invalid source name"},
		{"a duplicate name", sources.Source{Name: "taken", Doc: "d", Hosts: hosts}, "called twice"},
		{"no Doc", sources.Source{Name: "nodoc", Hosts: hosts}, "no Doc"},
		{"a blank Doc", sources.Source{Name: "blankdoc", Doc: " \t", Hosts: hosts}, "no Doc"},
		{"a Doc of two lines", sources.Source{Name: "twolines", Doc: "one\ntwo", Hosts: hosts}, "one line"},
		{"nothing to yield", sources.Source{Name: "empty", Doc: "d"}, "no prefixes, hosts, domains or Fetch"},
		{"a bad domain", sources.Source{Name: "bad", Doc: "d", Domains: []string{"*.*.example.com"}}, `"*.*.example.com"`},
		{"a bad prefix", sources.Source{Name: "badprefix", Doc: "d", Prefixes: []string{"10.0.0.0/33"}}, "invalid CIDR"},
		{"a bad host", sources.Source{Name: "badhost", Doc: "d", Hosts: []string{"*.example.com"}}, "invalid host name"},
		{"an upper-case host", sources.Source{Name: "upperhost", Doc: "d", Hosts: []string{"Example.com"}}, "invalid host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]sources.Source{"taken": {Name: "taken"}}
			got := panicOf(func() { sources.RegisterIn(m, tt.s) })
			if !strings.Contains(got, tt.wantPanic) {
				t.Errorf("panic = %q, want one containing %q", got, tt.wantPanic)
			}
			if len(m) != 1 {
				t.Errorf("the refused source was registered: %v", m)
			}
		})
	}
}

func TestRegisterAddsAValidSource(t *testing.T) {
	m := map[string]sources.Source{}
	s := sources.Source{Name: "pypi", Doc: "PyPI", Hosts: []string{"pypi.org"}, Prefixes: []string{"192.0.2.0/24"}}
	if p := panicOf(func() { sources.RegisterIn(m, s) }); p != "" {
		t.Fatalf("Register panicked: %s", p)
	}
	if got := m["pypi"]; got.Name != "pypi" || got.Doc != "PyPI" {
		t.Errorf("registered %+v", got)
	}
}

func TestRegisterRefusesASecondGitHubSourceInTheRealRegistry(t *testing.T) {
	before := len(all(t))
	got := panicOf(func() {
		sources.Register(sources.Source{Name: "github", Doc: "d", Hosts: []string{"example.com"}})
	})
	if !strings.Contains(got, "called twice") {
		t.Errorf("panic = %q", got)
	}
	if lookup(t, "github").Doc == "d" || len(all(t)) != before {
		t.Error("the duplicate replaced or joined the registered sources")
	}
}

func panicOf(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

func TestParsePrefixTakesCIDRsAndBareAddressesAndRefusesTheRest(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"192.30.252.0/22", "192.30.252.0/22"},
		{"10.0.0.5/8", "10.0.0.0/8"},
		{"35.186.247.156", "35.186.247.156/32"},
		{"2600:1901:0:5e8a::/64", "2600:1901:0:5e8a::/64"},
		{"2606:50c0:8000::153", "2606:50c0:8000::153/128"},
		{"::ffff:1.2.3.4", "1.2.3.4/32"},
		{"::ffff:1.2.3.0/120", "1.2.3.0/24"},
		{" 1.2.3.4/32 ", "1.2.3.4/32"},
		{"1.2.3.4/33", ""},
		{"1.2.3", ""},
		{"fe80::1%eth0", ""},
		{"::ffff:0:0/90", ""},
		{"example.com", ""},
		{"", ""},
	}
	for _, tt := range tests {
		got, err := sources.ParsePrefix(tt.in)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ParsePrefix(%q) = %v, want an error", tt.in, got)
		case tt.want != "" && err != nil:
			t.Errorf("ParsePrefix(%q): %v", tt.in, err)
		case tt.want != "" && got.String() != tt.want:
			t.Errorf("ParsePrefix(%q) = %v, want %s", tt.in, got, tt.want)
		}
	}
}

func TestValidHostAcceptsOnlySpelledOutLowerCaseNames(t *testing.T) {
	tests := map[string]bool{
		"registry.npmjs.org":           true,
		"vscode.blob.core.windows.net": true,
		"a-b.example":                  true,
		"localhost":                    false,
		"*.github.com":                 false,
		"Example.com":                  false,
		"example.com.":                 false,
		"1.2.3.4":                      false,
		"-a.example.com":               false,
		"a_b.example.com":              false,
		"example.com:443":              false,
		"":                             false,
	}
	for h, want := range tests {
		if got := sources.ValidHost(h); got != want {
			t.Errorf("ValidHost(%q) = %v, want %v", h, got, want)
		}
	}
}
