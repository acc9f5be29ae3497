package apple

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// MaxDockerfile is the size from which `container build` refuses a
// Dockerfile (it must be smaller than 16 KiB, from 1.0.0).
const MaxDockerfile = 16 * 1024

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ImageExists reports whether the image is in the local image store. Both
// sides are compared normalised, as the runtime lists them: a local build
// tagged `claudepine:latest` is listed as docker.io/library/claudepine:latest.
func (e *Engine) ImageExists(ctx context.Context, ref string) (bool, error) {
	want, err := NormalizeReference(ref)
	if err != nil {
		return false, err
	}
	out, v, err := e.list(ctx, "images", "image", "list")
	if err != nil {
		return false, err
	}
	refs, err := ParseImages(out, v)
	if err != nil {
		return false, err
	}
	for _, r := range refs {
		if got, err := NormalizeReference(r); err == nil && got == want {
			return true, nil
		}
	}
	return false, nil
}

// Build builds an image on this terminal, so the user sees its progress:
// `container build -t TAG -f DOCKERFILE --build-arg K=V … CONTEXT`. Paths
// are made absolute first; a relative Dockerfile is taken from the current
// directory, as `container build` 1.0 does.
func (e *Engine) Build(ctx context.Context, b engine.BuildSpec) error {
	if _, err := NormalizeReference(b.Tag); err != nil {
		return fmt.Errorf("image tag: %w", err)
	}
	dir, err := filepath.Abs(b.Context)
	if err != nil || b.Context == "" {
		return fmt.Errorf("build context %q: not a usable directory", b.Context)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("build context %s is not a directory", dir)
	}
	file, err := filepath.Abs(cmp.Or(b.Dockerfile, filepath.Join(dir, "Dockerfile")))
	if err != nil {
		return fmt.Errorf("the Dockerfile %q: %w", b.Dockerfile, err)
	}
	fi, err := os.Stat(file)
	if err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("the Dockerfile %s does not exist or is not a file", file)
	}
	v, err := e.release(ctx)
	if err != nil {
		return err
	}
	if fi.Size() >= MaxDockerfile {
		return fmt.Errorf("the Dockerfile %s is %d bytes, but container %s refuses Dockerfiles of 16 KiB or more: "+
			"move long scripts into files that the Dockerfile COPYs", file, fi.Size(), v)
	}
	args := []string{"build", "-t", b.Tag, "-f", file}
	for _, k := range slices.Sorted(maps.Keys(b.Args)) {
		if !envName.MatchString(k) {
			return fmt.Errorf("build argument name %q: want letters, digits and '_'", k)
		}
		args = append(args, "--build-arg", k+"="+b.Args[k])
	}
	args = append(args, dir)
	if err := e.runner.Interactive(ctx, proc.Cmd{Name: Program, Args: args}); err != nil {
		return fmt.Errorf("building image %s: %w", b.Tag, explain(err))
	}
	return nil
}
