package sources_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/sources"
)

func writeLocal(t *testing.T, env *testEnv, text string) {
	t.Helper()
	if err := os.WriteFile(env.LocalFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLocalReadsHostsAndPrefixesSkippingCommentsAndBlankLines(t *testing.T) {
	env := newEnv(t)
	writeLocal(t, env, `# my additions
pypi.org
Files.PythonHosted.org.   # trailing comment, upper case and a final dot

203.0.113.7
  198.51.100.0/24
2001:db8::/32	# documentation range
	# an indented comment
::ffff:192.0.2.1
`)
	got, err := fetch(t, "local", env)
	if err != nil {
		t.Fatal(err)
	}
	want := sources.Result{
		Prefixes: prefixes(t, "203.0.113.7/32", "198.51.100.0/24", "2001:db8::/32", "192.0.2.1/32"),
		Hosts:    []string{"pypi.org", "files.pythonhosted.org"},
		Literal:  true,
	}
	if diff := cmp.Diff(want, got, equateNet); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if len(env.warnings) != 0 {
		t.Errorf("warnings: %q", env.warnings)
	}
}

func TestLocalWarnsAboutACIDRWithHostBitsAndUsesTheMaskedPrefix(t *testing.T) {
	env := newEnv(t)
	writeLocal(t, env, "10.1.2.3/8\n")
	got, err := fetch(t, "local", env)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(prefixes(t, "10.0.0.0/8"), got.Prefixes, equateNet); diff != "" {
		t.Errorf("prefixes (-want +got):\n%s", diff)
	}
	want := env.LocalFile + `:1: "10.1.2.3/8" has host bits set; using 10.0.0.0/8`
	if len(env.warnings) != 1 || env.warnings[0] != want {
		t.Errorf("warnings = %q, want %q", env.warnings, want)
	}
}

func TestLocalRefusesABadLineNamingTheFileLineAndText(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"a bare wildcard", "*", `is not a host name, IP address or CIDR`},
		{"a wildcard inside a name", "a.*.example.com", `is not a host name, IP address or CIDR`},
		{"a wildcard over a top-level domain", "*.com", `want *.example.com`},
		{"a deny of nothing", "!", `want *.example.com`},
		{"a deny of an address", "!10.0.0.1", `want *.example.com`},
		{"a URL", "https://example.com/", `is not a host name, IP address or CIDR`},
		{"a host and port", "example.com:443", `is not a host name, IP address or CIDR`},
		{"two entries on a line", "example.com example.org", `is not a host name, IP address or CIDR`},
		{"a single-label name", "localhost", `is not a host name, IP address or CIDR`},
		{"a short address", "10.1.2", `is not a host name, IP address or CIDR`},
		{"a bad prefix length", "10.0.0.0/33", `is not a host name, IP address or CIDR`},
		{"the IPv4 default route", "0.0.0.0/0", "would allow every address"},
		{"the IPv6 default route", "::/0 # everything", "would allow every address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			writeLocal(t, env, "# header\nexample.org\n\n"+tt.line+"\nexample.net\n")
			got, err := fetch(t, "local", env)
			if err == nil {
				t.Fatalf("fetch succeeded with %+v", got)
			}
			entry := strings.TrimSpace(strings.Split(tt.line, "#")[0])
			for _, part := range []string{env.LocalFile + ":4: ", `"` + entry + `"`, tt.want} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}
}

func TestLocalTakesWildcardsAndDenyEntriesAsDomains(t *testing.T) {
	env := newEnv(t)
	writeLocal(t, env, "pypi.org\r\n*.PythonHosted.org.\n!gist.github.com # not this one\n!*.corp.example.com")
	got, err := fetch(t, "local", env)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pypi.org"}; !slices.Equal(got.Hosts, want) {
		t.Errorf("hosts = %q, want %q", got.Hosts, want)
	}
	if want := []string{"*.pythonhosted.org", "!gist.github.com", "!*.corp.example.com"}; !slices.Equal(got.Domains, want) {
		t.Errorf("domains = %q, want %q", got.Domains, want)
	}
}

func TestLocalWithNoFileAddsNothing(t *testing.T) {
	for _, path := range []string{filepath.Join(t.TempDir(), "absent"), ""} {
		env := newEnv(t)
		env.LocalFile = path
		got, err := fetch(t, "local", env)
		if err != nil {
			t.Fatalf("LocalFile %q: %v", path, err)
		}
		if diff := cmp.Diff(sources.Result{Literal: true}, got, equateNet); diff != "" {
			t.Errorf("LocalFile %q: result (-want +got):\n%s", path, diff)
		}
	}
}

func TestLocalFileThatCannotBeReadIsAnError(t *testing.T) {
	env := newEnv(t)
	env.LocalFile = t.TempDir() // a directory
	if _, err := fetch(t, "local", env); err == nil {
		t.Error("reading a directory succeeded")
	}
}
