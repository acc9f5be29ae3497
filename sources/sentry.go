package sources

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/bitfield/script"
)

func init() {
	Register(Source{
		Name:  "sentry",
		Doc:   "Sentry error reporting: dashboard and US event-ingestion ranges from docs.sentry.io, or a built-in copy",
		Hosts: []string{"sentry.io"},
		Fetch: fetchSentry,
	})
}

// See https://docs.sentry.io/security-legal-pii/security/ip-ranges/, whose
// data is served as JSON at sentryURL. Only the ranges Claude Code connects
// to are taken; outbound_requests, email_delivery and uptime_monitoring are
// where Sentry connects from.
const (
	sentryURL   = "https://docs.sentry.io/api/ip-ranges"
	sentryLimit = 1 << 20
)

// sentryFallback is data.dashboard.sentry_io, data.event_ingestion.apex_domain
// and data.event_ingestion.organization_subdomains.us as published after
// Sentry's November 2025 IPv6 update, used when the document cannot be had.
var sentryFallback = []string{
	"35.186.247.156/32", "34.120.195.249/32", "34.160.81.0/32", "34.102.210.18/32",
	"2600:1901:0:5e8a::/64", "2600:1901:0:7edb::/64",
}

// sentryRanges is the part of the document used here; other keys are
// ignored, and a missing list makes the document malformed.
type sentryRanges struct {
	Data struct {
		Dashboard struct {
			SentryIO *[]string `json:"sentry_io"`
		} `json:"dashboard"`
		EventIngestion struct {
			ApexDomain             *[]string `json:"apex_domain"`
			OrganizationSubdomains struct {
				US *[]string `json:"us"`
			} `json:"organization_subdomains"`
		} `json:"event_ingestion"`
	} `json:"data"`
}

// fetchSentry never fails: the built-in copy stands in for a document that
// cannot be fetched or read, with a warning.
func fetchSentry(ctx context.Context, env Env) (Result, error) {
	url := env.urlFor("sentry", sentryURL)
	ps, err := getSentryRanges(ctx, env, url)
	if err != nil {
		env.warnf("fetching %s: %v; using the built-in Sentry list", url, err)
		if ps, err = parseLists(keyedList{"built-in list", &sentryFallback}); err != nil {
			return Result{}, err
		}
	}
	return Result{Prefixes: ps}, nil
}

func getSentryRanges(ctx context.Context, env Env, url string) ([]netip.Prefix, error) {
	req, err := newGet(ctx, env, url, "application/json")
	if err != nil {
		return nil, err
	}
	// The pipe fails on a non-2xx status after streaming the body, so its
	// error is checked once the body has been read.
	p := script.NewPipe().WithHTTPClient(env.HTTP).Do(req)
	defer p.Close()
	body, err := readLimited(p, sentryLimit)
	if err == nil {
		err = p.Error()
	}
	if err != nil {
		return nil, err
	}
	var doc sentryRanges
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("malformed document: %v", err)
	}
	ps, err := parseLists(
		keyedList{"data.dashboard.sentry_io", doc.Data.Dashboard.SentryIO},
		keyedList{"data.event_ingestion.apex_domain", doc.Data.EventIngestion.ApexDomain},
		keyedList{"data.event_ingestion.organization_subdomains.us", doc.Data.EventIngestion.OrganizationSubdomains.US},
	)
	if err != nil {
		return nil, fmt.Errorf("malformed document: %w", err)
	}
	return ps, nil
}
