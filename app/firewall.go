package app

import (
	"context"
	"io"
)

// Subnet finds the container network and prints the rendered firewall rules.
func Subnet(ctx context.Context, out io.Writer) error { return notYet("subnet", "the pf issue") }

// Up brings the firewall up without touching any container.
func Up(ctx context.Context, out io.Writer) error { return notYet("up", "the pf issue") }

// Reset takes the firewall down and repairs crashed runs.
func Reset(ctx context.Context, out io.Writer, stop bool) error {
	return notYet("reset", "the pf issue")
}

// Status reports the state of the firewall, allowlist, network and container.
func Status(ctx context.Context, out io.Writer) error { return notYet("status", "the pf issue") }
