package sources

func init() {
	Register(Source{
		Name:     "anthropic",
		Doc:      "Anthropic API inbound ranges (IPv4 and IPv6) and the hosts Claude Code signs in, talks and updates through",
		Required: true,
		Prefixes: []string{"160.79.104.0/23", "2607:6bc0::/48"},
		Hosts:    []string{"api.anthropic.com", "claude.ai", "platform.claude.com", "downloads.claude.ai"},
	})
}

// Prefixes: the inbound addresses on
// https://platform.claude.com/docs/en/api/ip-addresses (English page, read
// 2026-11). The outbound 160.79.104.0/21 is where Anthropic connects from,
// not to, and the 34.162.x.x addresses the old tool allowed are listed there
// as phased out. Some translated copies of the page also list
// 153.61.224.0/22 inbound; it is left out until the English page has it, and
// api.anthropic.com is resolved by name in any case.
//
// Hosts: "Network access requirements" on
// https://code.claude.com/docs/en/network-config (read 2026-11):
// api.anthropic.com (API and the WebFetch safety check), claude.ai and
// platform.claude.com (sign-in), downloads.claude.ai (native installer,
// auto-updater and plugin downloads).
