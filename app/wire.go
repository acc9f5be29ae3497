package app

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/engine/apple"
	"github.com/VerilyPete/claudecontainer/engine/oci"
	"github.com/VerilyPete/claudecontainer/filterd"
	"github.com/VerilyPete/claudecontainer/image"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/nft"
	"github.com/VerilyPete/claudecontainer/pf"
	"github.com/VerilyPete/claudecontainer/resolve"
	"github.com/VerilyPete/claudecontainer/session"
)

// withEnv runs f, a target, in the environment newEnv builds.
func withEnv(out io.Writer, f func(*env) error) error {
	e, err := newEnv(out)
	if err != nil {
		return err
	}
	return f(e)
}

// newEnv builds the environment of a target from the settings of this
// process.
func newEnv(out io.Writer) (*env, error) {
	cfg, err := config.FromEnv()
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, out: out, pid: os.Getpid(), bridgeWait: 3 * time.Second,
		runner: proc.Exec{}, lookPath: exec.LookPath, buildSpec: checkoutBuild, newResolver: systemResolver, resolvConf: "/etc/resolv.conf"}
	e.allowlist = e.allowlistFor
	return e, e.wire()
}

// wire makes the firewall backend, the container runtime and the sessions
// directory that e.cfg names, running programs through e.runner.
func (e *env) wire() error {
	var err error
	switch e.cfg.Firewall {
	case "pf":
		e.fw, err = pf.New(e.runner, pf.Config{Anchor: e.cfg.Anchor, StateDir: e.cfg.StateDir})
	case "nftables":
		// The nftables table is the ANCHOR setting, the set prefix TABLE.
		e.fw, err = nft.New(e.runner, nft.Config{Table: e.cfg.Anchor, SetPrefix: e.cfg.Table, StateDir: e.cfg.StateDir})
	default:
		err = fmt.Errorf("unknown firewall backend %q (want pf or nftables)", e.cfg.Firewall)
	}
	if err != nil {
		return err
	}
	if e.eng, err = e.newEngine(); err != nil {
		return err
	}
	e.filter = &filterd.Control{Dir: e.cfg.StateDir, Runner: e.runner}
	e.sessions, err = session.Open(e.cfg.StateDir)
	return err
}

// systemResolver is the resolver of this host, for the sources' host names.
func systemResolver() (allowlist.Resolver, error) { return resolve.FromResolvConf("/etc/resolv.conf") }

func (e *env) newEngine() (engine.Engine, error) {
	switch e.cfg.Runtime {
	case "container":
		eng := apple.New(e.runner)
		eng.VersionFile = filepath.Join(e.cfg.StateDir, "container-version.json")
		return eng, nil
	case "podman", "docker":
		prog := e.cfg.Runtime
		// Unless the runtime was chosen explicitly, podman is preferred and
		// docker used when podman is not installed.
		if os.Getenv(config.Prefix+"RUNTIME") == "" && prog == "podman" {
			if _, err := e.lookPath("podman"); err != nil {
				if _, err := e.lookPath("docker"); err == nil {
					prog = "docker"
				}
			}
		}
		return oci.New(e.runner, prog), nil
	}
	return nil, fmt.Errorf("unknown container runtime %q (want container, podman or docker)", e.cfg.Runtime)
}

func (e *env) build(ctx context.Context) error {
	spec, notes, err := e.buildSpec(e.cfg)
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

// checkoutBuild is the image build: the Dockerfile of this checkout, with
// the host user's time zone and ids as build arguments.
func checkoutBuild(cfg config.Config) (spec engine.BuildSpec, notes []string, err error) {
	c, err := image.Locate(".")
	if err != nil {
		return engine.BuildSpec{}, nil, err
	}
	a := image.BuildArgs(os.Getenv, os.Getuid(), os.Getgid(), "/etc/localtime")
	return image.Spec(c, cfg.Image, a), a.Notes, nil
}

func formatArgs(args map[string]string) string {
	keys := slices.Sorted(maps.Keys(args))
	for i, k := range keys {
		keys[i] = k + "=" + args[k]
	}
	return strings.Join(keys, " ")
}
