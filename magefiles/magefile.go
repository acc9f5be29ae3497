//go:build mage

// claudecontainer runs Claude Code in a container whose network is locked
// down by a firewall on the host. Settings are CLAUDECONTAINER_* environment
// variables; see README.md.
package main

import (
	"context"
	"os"
	"time"

	"github.com/VerilyPete/claudecontainer/app"
	"github.com/VerilyPete/claudecontainer/filterd"
)

// The DNS filter's daemon is this binary run again as root (see package
// filterd): such a run never reaches mage's own main.
func init() {
	if len(os.Args) > 1 && os.Args[1] == filterd.Arg {
		os.Exit(filterd.Main(os.Args[2:]))
	}
}

// There is no Default target: a bare `mage` lists the targets. (mage 1.17.2
// cannot compile a default target that takes optional flags, and `dev` takes
// -workspace.)

// Dev brings the firewall up, starts or attaches to the container, and lifts the firewall when the last shell leaves.
// With -workspace=DIR it mounts DIR at /workspace instead of the configured workspace (workspace/ in the checkout).
func Dev(ctx context.Context, workspace *string) error {
	ws := ""
	if workspace != nil {
		ws = *workspace
	}
	return app.Dev(ctx, os.Stdout, ws)
}

// Build builds the container image (claudepine:latest by default).
func Build(ctx context.Context) error { return app.Build(ctx, os.Stdout) }

// Allowlist fetches every allowlist source, merges them and writes the allowlist file (and the live table if the firewall is up).
func Allowlist(ctx context.Context) error { return app.Allowlist(ctx, os.Stdout) }

// Subnet finds (or creates) the container network and prints the firewall rules rendered for it.
func Subnet(ctx context.Context) error { return app.Subnet(ctx, os.Stdout) }

// Up brings the firewall up without touching any container.
func Up(ctx context.Context) error { return app.Up(ctx, os.Stdout) }

// Reset takes the firewall down and repairs what a crashed run left behind; with -stop it first stops a running container, without it it refuses.
func Reset(ctx context.Context, stop *bool) error {
	return app.Reset(ctx, os.Stdout, stop != nil && *stop)
}

// Status checks the firewall, the allowlist, the network and the container, and says how to fix what is wrong.
func Status(ctx context.Context) error { return app.Status(ctx, os.Stdout) }

// Allow adds names, *.domains, addresses or CIDRs (comma-separated; quote wildcards) to your local allowlist file and applies them at once; -remove takes them out, -deny refuses names that a wider entry allows.
func Allow(ctx context.Context, entries string, remove, deny *bool) error {
	return app.Allow(ctx, os.Stdout, entries, remove != nil && *remove, deny != nil && *deny)
}

// Blocked lists the names and addresses that were refused, newest first, each with the command that allows it; -since=DURATION leaves out older ones, -json prints JSON.
func Blocked(ctx context.Context, since *time.Duration, json *bool) error {
	var d time.Duration
	if since != nil {
		d = *since
	}
	return app.Blocked(ctx, os.Stdout, d, json != nil && *json)
}
