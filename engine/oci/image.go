package oci

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// ImageExists reports whether the image is in local storage. It never
// pulls.
func (e *Engine) ImageExists(ctx context.Context, ref string) (bool, error) {
	if err := checkImage(ref); err != nil {
		return false, err
	}
	args := []string{"image", "inspect", "--format", "{{.Id}}", ref}
	if e.program == Podman {
		args = []string{"image", "exists", ref} // 0 yes, 1 no, 125 failure
	}
	_, err := e.output(ctx, args...)
	switch {
	case err == nil:
		return true, nil
	case e.program == Podman && proc.ExitCode(err) == 1, e.program == Docker && notFound(err, "image"):
		return false, nil
	}
	return false, err
}

// Build builds the image on this terminal, so that the user sees the
// build's progress.
func (e *Engine) Build(ctx context.Context, b engine.BuildSpec) error {
	args, err := buildArgs(b)
	if err != nil {
		return fmt.Errorf("building %s: %w", b.Tag, err)
	}
	return e.run.Interactive(ctx, e.cmd(args...))
}

func buildArgs(b engine.BuildSpec) ([]string, error) {
	if err := checkImage(b.Tag); err != nil {
		return nil, err
	}
	if b.Context == "" || strings.HasPrefix(b.Context, "-") {
		return nil, fmt.Errorf("build context %q: want a directory", b.Context)
	}
	if strings.HasPrefix(b.Dockerfile, "-") {
		return nil, fmt.Errorf("the Dockerfile %q: want a file path", b.Dockerfile)
	}
	args := []string{"build", "-t", b.Tag}
	if b.Dockerfile != "" {
		args = append(args, "-f", b.Dockerfile)
	}
	for _, k := range slices.Sorted(maps.Keys(b.Args)) {
		if !envKey.MatchString(k) {
			return nil, fmt.Errorf("build argument name %q: want letters, digits and '_'", k)
		}
		args = append(args, "--build-arg", k+"="+b.Args[k])
	}
	return append(args, b.Context), nil
}
