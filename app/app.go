// Package app carries out claudecontainer's mage targets. magefiles/ only
// forwards to it, so everything here is ordinary, tested Go.
package app

import (
	"context"
	"errors"
	"io"
)

func notYet(target, what string) error {
	return errors.New("mage " + target + " is not built yet: it arrives with " + what)
}

// Dev brings the firewall up, starts or attaches to the container, and lifts
// the firewall when the last session leaves.
func Dev(ctx context.Context, out io.Writer, workspace string) error { return notYet("dev", "the dev issue") }

// Build builds the container image.
func Build(ctx context.Context, out io.Writer) error { return notYet("build", "the dev issue") }

// Allowlist fetches every source and writes the allowlist file.
func Allowlist(ctx context.Context, out io.Writer) error {
	return notYet("allowlist", "the allowlist issue")
}

// Subnet finds the container network and prints the rendered firewall rules.
func Subnet(ctx context.Context, out io.Writer) error { return notYet("subnet", "the pf issue") }

// Up brings the firewall up without touching any container.
func Up(ctx context.Context, out io.Writer) error { return notYet("up", "the pf issue") }

// Reset takes the firewall down and repairs crashed runs.
func Reset(ctx context.Context, out io.Writer, stop bool) error { return notYet("reset", "the pf issue") }

// Status reports the state of the firewall, allowlist, network and container.
func Status(ctx context.Context, out io.Writer) error { return notYet("status", "the pf issue") }
