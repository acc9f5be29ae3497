package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/engine/apple"
	"github.com/VerilyPete/claudecontainer/engine/oci"
	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/image"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/nft"
	"github.com/VerilyPete/claudecontainer/pf"
	"github.com/VerilyPete/claudecontainer/session"
)

// newEnv builds the environment of a target from the settings of this
// process.
func newEnv(out io.Writer) (*env, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	var runner proc.Runner = proc.Exec{}
	fw, err := newFirewall(cfg, runner)
	if err != nil {
		return nil, err
	}
	eng, err := newEngine(cfg, runner)
	if err != nil {
		return nil, err
	}
	sessions, err := session.Open(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, out: out, fw: fw, eng: eng, sessions: sessions, pid: os.Getpid(), bridgeWait: 3 * time.Second}
	e.allowlist = func(ctx context.Context, maxAge time.Duration) (*netipx.IPSet, error) {
		return allowlistFor(ctx, cfg, out, maxAge)
	}
	return e, nil
}

func newFirewall(cfg config.Config, runner proc.Runner) (firewall.Backend, error) {
	switch cfg.Firewall {
	case "pf":
		return pf.New(runner, pf.Config{Anchor: cfg.Anchor, StateDir: cfg.StateDir})
	case "nftables":
		return nft.New(runner, nft.ConfigFrom(cfg))
	}
	return nil, fmt.Errorf("unknown firewall backend %q (want pf or nftables)", cfg.Firewall)
}

// lookPath finds programs on PATH; tests replace it.
var lookPath = exec.LookPath

func newEngine(cfg config.Config, runner proc.Runner) (engine.Engine, error) {
	switch cfg.Runtime {
	case "container":
		return apple.New(runner), nil
	case "podman", "docker":
		prog := cfg.Runtime
		// Unless the runtime was chosen explicitly, podman is preferred and
		// docker used when podman is not installed.
		if os.Getenv(config.Prefix+"RUNTIME") == "" && prog == "podman" {
			if _, err := lookPath("podman"); err != nil {
				if _, err := lookPath("docker"); err == nil {
					prog = "docker"
				}
			}
		}
		return oci.New(runner, prog), nil
	}
	return nil, fmt.Errorf("unknown container runtime %q (want container, podman or docker)", cfg.Runtime)
}

func (e *env) build(ctx context.Context) error {
	spec, notes, err := buildSpec(e.cfg)
	if err != nil {
		return err
	}
	for _, n := range notes {
		e.note("note: %s", n)
	}
	e.step("building image %s with %s (build args %s)", spec.Tag, e.eng.Name(), formatArgs(spec.Args))
	if err := e.eng.Build(ctx, spec); err != nil {
		return fmt.Errorf("building image %s: %w", spec.Tag, err)
	}
	return nil
}

// buildSpec is the image build: the Dockerfile of this checkout, with the
// host user's time zone and ids as build arguments. Tests replace it.
var buildSpec = func(cfg config.Config) (spec engine.BuildSpec, notes []string, err error) {
	c, err := image.Locate(".")
	if err != nil {
		return engine.BuildSpec{}, nil, err
	}
	a := image.BuildArgs(os.Getenv, os.Getuid(), os.Getgid(), "/etc/localtime")
	return image.Spec(c, cfg.Image, a), a.Notes, nil
}

func formatArgs(args map[string]string) string {
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + args[k]
	}
	return strings.Join(keys, " ")
}
