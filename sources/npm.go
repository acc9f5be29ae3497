package sources

func init() {
	Register(Source{
		Name:     "npm",
		Doc:      "npm registry, which Claude Code and its tools install packages from",
		Required: true,
		Hosts:    []string{"registry.npmjs.org"},
	})
}

// npm publishes no address list; registry.npmjs.org sits behind a CDN, so it
// is resolved by name, and allowing the CDN's whole ranges would admit every
// other site on it.
