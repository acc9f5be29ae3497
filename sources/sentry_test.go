package sources_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/sources"
)

// sentryBuiltIn is the list the sentry source falls back to.
var sentryBuiltIn = []string{
	"34.102.210.18/32", "34.120.195.249/32", "34.160.81.0/32", "35.186.247.156/32",
	"2600:1901:0:5e8a::/64", "2600:1901:0:7edb::/64",
}

func serveBody(status int, body []byte) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write(body)
	}))
}

func TestSentryTakesTheDashboardAndUSIngestionRangesFromTheDocument(t *testing.T) {
	fixture, err := os.ReadFile("testdata/sentry-ip-ranges.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		doc  []byte
		want []string
	}{
		{"the published document", fixture, sentryBuiltIn},
		{"a document with bare addresses", []byte(`{"data":{
			"dashboard":{"sentry_io":["35.186.247.157"]},
			"event_ingestion":{"apex_domain":["35.186.247.157/32"],
				"organization_subdomains":{"us":["34.120.195.250","2600:1901:0:1::1"],"eu":["34.120.62.213/32"]}},
			"email_delivery":["167.89.86.73"]}}`),
			[]string{"34.120.195.250/32", "35.186.247.157/32", "2600:1901:0:1::1/128"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveBody(200, tt.doc)
			defer srv.Close()
			env := newEnv(t)
			env.URL["sentry"] = srv.URL
			got, err := fetch(t, "sentry", env)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sources.Result{Prefixes: prefixes(t, tt.want...)}, got, equateNet); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if len(env.warnings) != 0 {
				t.Errorf("warnings: %q", env.warnings)
			}
		})
	}
}

func TestSentryFallsBackToTheBuiltInListWithAWarningWhenTheDocumentIsUnusable(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   []byte
		cause  string
	}{
		{"malformed JSON", 200, []byte(`{"data":`), "malformed document"},
		{"no us ingestion list", 200, []byte(`{"data":{"dashboard":{"sentry_io":["35.186.247.156/32"]},"event_ingestion":{"apex_domain":[]}}}`),
			"no data.event_ingestion.organization_subdomains.us list"},
		{"a bad entry", 200, []byte(`{"data":{"dashboard":{"sentry_io":["35.186.247.156/32"]},"event_ingestion":{"apex_domain":["35.186.247"],"organization_subdomains":{"us":[]}}}}`),
			`data.event_ingestion.apex_domain[0]: invalid address or CIDR "35.186.247"`},
		{"an allow-everything entry", 200, []byte(`{"data":{"dashboard":{"sentry_io":["0.0.0.0/0"]},"event_ingestion":{"apex_domain":[],"organization_subdomains":{"us":[]}}}}`),
			"would allow every address"},
		{"empty lists", 200, []byte(`{"data":{"dashboard":{"sentry_io":[]},"event_ingestion":{"apex_domain":[],"organization_subdomains":{"us":[]}}}}`),
			"all empty"},
		{"a server error", 503, []byte(`{"data":{"dashboard":{"sentry_io":["35.186.247.156/32"]},"event_ingestion":{"apex_domain":[],"organization_subdomains":{"us":[]}}}}`),
			"503 Service Unavailable"},
		{"a body over 1 MiB", 200, bytes.Repeat([]byte(" "), 1<<20+1), "larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveBody(tt.status, tt.body)
			defer srv.Close()
			env := newEnv(t)
			env.URL["sentry"] = srv.URL
			got, err := fetch(t, "sentry", env)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(sources.Result{Prefixes: prefixes(t, sentryBuiltIn...)}, got, equateNet); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if len(env.warnings) != 1 || !strings.Contains(env.warnings[0], tt.cause) || !strings.Contains(env.warnings[0], "built-in") {
				t.Errorf("warnings = %q, want one naming %q and the built-in list", env.warnings, tt.cause)
			}
		})
	}
}

func TestSentryFallsBackWhenTheServerIsTooSlowOrGone(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer slow.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, url := range []string{slow.URL, gone.URL} {
		env := newEnv(t)
		env.HTTP = &http.Client{Timeout: 50 * time.Millisecond}
		env.URL["sentry"] = url
		got, err := fetch(t, "sentry", env)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Prefixes) != len(sentryBuiltIn) || len(env.warnings) != 1 {
			t.Errorf("%s: got %v, warnings %q", url, got.Prefixes, env.warnings)
		}
	}
}

func TestSentryAlsoNamesTheSentryIOHost(t *testing.T) {
	if diff := cmp.Diff([]string{"sentry.io"}, lookup(t, "sentry").Hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}
