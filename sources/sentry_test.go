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

func serveBody(status int, body []byte) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write(body)
	}))
}

// fetchSentry fetches the sentry source from a server that answers status
// and body.
func fetchSentry(t *testing.T, status int, body []byte) (sources.Result, *testEnv) {
	t.Helper()
	srv := serveBody(status, body)
	defer srv.Close()
	env := newEnv(t)
	env.URL["sentry"] = srv.URL
	got, err := fetch(t, "sentry", env)
	if err != nil {
		t.Fatal(err)
	}
	return got, env
}

// sentryPublished is what the sentry source makes of the document Sentry
// published (testdata/sentry-ip-ranges.json).
func sentryPublished(t *testing.T) sources.Result {
	t.Helper()
	doc, err := os.ReadFile("testdata/sentry-ip-ranges.json")
	if err != nil {
		t.Fatal(err)
	}
	got, env := fetchSentry(t, 200, doc)
	if len(env.warnings) != 0 {
		t.Fatalf("warnings: %q", env.warnings)
	}
	return got
}

func TestSentryTakesTheDashboardAndUSIngestionRangesFromTheDocument(t *testing.T) {
	got, env := fetchSentry(t, 200, []byte(`{"data":{
		"dashboard":{"sentry_io":["35.186.247.157"]},
		"event_ingestion":{"apex_domain":["35.186.247.157/32"],
			"organization_subdomains":{"us":["34.120.195.250","2600:1901:0:1::1"],"eu":["34.120.62.213/32"]}},
		"email_delivery":["167.89.86.73"]}}`))
	want := sources.Result{Prefixes: prefixes(t, "34.120.195.250/32", "35.186.247.157/32", "2600:1901:0:1::1/128")}
	if diff := cmp.Diff(want, got, equateNet); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if len(env.warnings) != 0 {
		t.Errorf("warnings: %q", env.warnings)
	}
}

// The built-in list the source falls back to must be what the published
// document gives, so each fallback below is compared with that.
func TestSentryFallsBackToTheBuiltInListWithAWarningWhenTheDocumentIsUnusable(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   []byte
		cause  string
	}{
		{"malformed JSON", 200, []byte(`{"data":`), "malformed document"},
		{"no us ingestion list", 200, []byte(`{"data":{"dashboard":{"sentry_io":["35.186.247.156/32"]},"event_ingestion":{"apex_domain":[]}}}`),
			`no "data.event_ingestion.organization_subdomains.us" list`},
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
			got, env := fetchSentry(t, tt.status, tt.body)
			if diff := cmp.Diff(sentryPublished(t), got, equateNet); diff != "" {
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
		if diff := cmp.Diff(sentryPublished(t), got, equateNet); diff != "" || len(env.warnings) != 1 {
			t.Errorf("%s: warnings %q; result (-published +got):\n%s", url, env.warnings, diff)
		}
	}
}
