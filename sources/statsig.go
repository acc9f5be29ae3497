package sources

func init() {
	Register(Source{
		Name:     "statsig",
		Doc:      "Statsig feature-flag and metrics service, used by older Claude Code versions",
		Prefixes: []string{"34.120.214.181/32", "34.128.128.0/29"},
		Hosts:    []string{"statsig.com"},
	})
}

// See https://docs.statsig.com/infrastructure/statsig_ip_ranges (the inbound
// ranges behind api.statsig.com). statsig.anthropic.com, which older Claude
// Code documentation named, no longer resolves (NXDOMAIN), so it is not
// listed: a name that never resolves would only produce a warning every run.
