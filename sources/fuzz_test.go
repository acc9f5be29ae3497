package sources

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets below feed the parsers of fetched documents and of the
// user's file arbitrary input. Each checks that whatever comes out could go
// into the allowlist as it is: a valid, masked prefix that is neither
// IPv4-mapped nor zoned nor a default route, and host names that ValidHost
// accepts; and that an error comes with nothing else.

// checkPrefix fails t unless p is a prefix ParsePrefix and parseList promise.
func checkPrefix(t *testing.T, what string, p netip.Prefix) {
	t.Helper()
	switch {
	case !p.IsValid():
		t.Fatalf("%s: invalid prefix %v", what, p)
	case p != p.Masked():
		t.Fatalf("%s: %s is not masked", what, p)
	case p.Addr().Is4In6():
		t.Fatalf("%s: %s is IPv4-mapped", what, p)
	case p.Addr().Zone() != "":
		t.Fatalf("%s: %s has a zone", what, p)
	case p.Bits() == 0:
		t.Fatalf("%s: %s allows every address", what, p)
	}
}

// seedFile adds the contents of a test fixture to the corpus.
func seedFile(f *testing.F, path string) {
	f.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
}

func FuzzParseGitHubMeta(f *testing.F) {
	seedFile(f, filepath.Join("testdata", "github-meta-2023-11-27.json"))
	f.Add([]byte(`{"web":["192.30.252.0/22","2a0a:a440::/29"],"api":["140.82.112.0/20"],"git":["::ffff:192.30.252.1","140.82.112.3"]}`))
	f.Add([]byte(`{"web":[],"api":[],"git":[]}`))
	f.Add([]byte(`{"web":["10.0.0.5/8"],"api":null,"git":[]}`))
	f.Add([]byte(`{"web":["0.0.0.0/0"],"api":[],"git":[]}`))
	f.Add([]byte(`{"web":["fe80::1%en0/64"],"api":[],"git":[]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		ps, err := parseGitHubMeta(doc)
		if err != nil {
			if ps != nil {
				t.Fatalf("error %v came with prefixes %v", err, ps)
			}
			return
		}
		if len(ps) == 0 {
			t.Fatal("no error and no prefixes")
		}
		for i, p := range ps {
			checkPrefix(t, "meta document", p)
			if i > 0 && comparePrefixes(ps[i-1], p) >= 0 {
				t.Fatalf("prefixes not sorted and unique: %s before %s", ps[i-1], p)
			}
		}
	})
}

// roundTripper answers every request with a fixed status and body, so that a
// source's HTTP code runs without a network.
type roundTripper struct {
	status int
	body   []byte
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: rt.status,
		Status:     http.StatusText(rt.status),
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(rt.body)),
		Request:    req,
	}, nil
}

func FuzzSentryRanges(f *testing.F) {
	seedFile(f, filepath.Join("testdata", "sentry-ip-ranges.json"))
	f.Add([]byte(`{"data":{"dashboard":{"sentry_io":["35.186.247.157"]},"event_ingestion":{"apex_domain":["35.186.247.157/32"],` +
		`"organization_subdomains":{"us":["34.120.195.250","2600:1901:0:1::1"],"eu":["34.120.62.213/32"]}},"email_delivery":["167.89.86.73"]}}`))
	f.Add([]byte(`{"data":{"dashboard":{"sentry_io":[]},"event_ingestion":{"apex_domain":[],"organization_subdomains":{"us":[]}}}}`))
	f.Add([]byte(`{"data":{"dashboard":{"sentry_io":["::/0"]},"event_ingestion":{"apex_domain":null}}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		env := Env{HTTP: &http.Client{Transport: roundTripper{status: http.StatusOK, body: doc}}}
		ps, err := getSentryRanges(context.Background(), env, "http://sentry.invalid/api/ip-ranges")
		if err != nil {
			if ps != nil {
				t.Fatalf("error %v came with prefixes %v", err, ps)
			}
			return
		}
		if len(ps) == 0 {
			t.Fatal("no error and no prefixes")
		}
		for _, p := range ps {
			checkPrefix(t, "Sentry document", p)
		}
	})
}

func FuzzLocalFile(f *testing.F) {
	f.Add("# my additions\npypi.org\nFiles.PythonHosted.org.   # trailing comment, upper case and a final dot\n\n" +
		"203.0.113.7\n  198.51.100.0/24\n2001:db8::/32\t# documentation range\n\t# an indented comment\n::ffff:192.0.2.1\n")
	f.Add("10.0.0.5/8\n")
	f.Add("0.0.0.0/0\n")
	f.Add("*.example.com\n")
	f.Add("example.com:443\nhttps://example.com/\n")
	f.Add("fe80::1%eth0\n::ffff:0:0/95\n")
	f.Add("1.2.3.4.5\n1234\nxn--bcher-kva.example\n")
	// One file for the whole run: a fuzz worker calls the function below
	// one input at a time.
	path := filepath.Join(f.TempDir(), "local")
	f.Fuzz(func(t *testing.T, text string) {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := fetchLocal(context.Background(), Env{LocalFile: path})
		if err != nil {
			if res.Prefixes != nil || res.Hosts != nil || res.Literal {
				t.Fatalf("error %v came with %+v", err, res)
			}
			return
		}
		if !res.Literal {
			t.Fatal("entries of the local file are not marked as written by hand")
		}
		if n := len(res.Prefixes) + len(res.Hosts); n > strings.Count(text, "\n")+1 {
			t.Fatalf("%d entries from %d lines", n, strings.Count(text, "\n")+1)
		}
		for _, p := range res.Prefixes {
			checkPrefix(t, "local file", p)
		}
		for _, h := range res.Hosts {
			if !ValidHost(h) {
				t.Fatalf("local file: host %q is not a valid host name", h)
			}
			if _, err := netip.ParseAddr(h); err == nil {
				t.Fatalf("local file: host %q is an address", h)
			}
		}
	})
}
