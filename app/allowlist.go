package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/resolve"
	"github.com/VerilyPete/claudecontainer/sources"
)

// Seams for tests; production leaves them as they are.
var (
	// sourceURLs points sources at other document addresses, by source name.
	sourceURLs map[string]string
	// newResolver returns the resolver for the sources' host names.
	newResolver = func() (allowlist.Resolver, error) { return resolve.FromResolvConf("/etc/resolv.conf") }
	// allowlistRunner runs the privileged install of the allowlist file.
	allowlistRunner proc.Runner = proc.Exec{}
)

// replaceLive swaps the live firewall table for set; firewall.ErrNotUp means
// the firewall is not up, so there is nothing to replace. Tests replace it.
var replaceLive = func(ctx context.Context, cfg config.Config, set *netipx.IPSet) error {
	fw, err := newFirewall(cfg, proc.Exec{})
	if err != nil {
		return err
	}
	return fw.Replace(ctx, set)
}

// Allowlist fetches every source, merges and vets the result, writes the
// allowlist file and, when the firewall is up, replaces its live table.
func Allowlist(ctx context.Context, out io.Writer) error {
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	set, err := fetchAllowlist(ctx, cfg, out)
	if err != nil {
		return err
	}
	if replaceLive == nil {
		return nil
	}
	switch err := replaceLive(ctx, cfg, set); {
	case errors.Is(err, firewall.ErrNotUp):
		fmt.Fprintln(out, "    the firewall is not up; it loads the file when it comes up")
	case err != nil:
		return fmt.Errorf("the allowlist file is written, but the live table was not replaced: %w", err)
	default:
		fmt.Fprintln(out, "==> firewall: live allowlist replaced")
	}
	return nil
}

// fetchAllowlist runs the selected sources and writes the allowlist file,
// printing a line per source as it finishes. On error the file is unchanged.
func fetchAllowlist(ctx context.Context, cfg config.Config, out io.Writer) (*netipx.IPSet, error) {
	srcs, err := sources.Select(cfg.Sources, cfg.SkipSources)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the cache directory: %w", err)
	}
	r, err := newResolver()
	if err != nil {
		return nil, fmt.Errorf("setting up DNS: %w", err)
	}
	opts := allowlist.Options{
		Timeout: cfg.FetchTimeout,
		Env: sources.Env{
			HTTP:      &http.Client{Timeout: cfg.FetchTimeout},
			CacheDir:  cfg.CacheDir,
			LocalFile: cfg.LocalFile,
			Getenv:    os.Getenv,
			URL:       sourceURLs,
		},
		Resolver: r,
		Progress: func(s allowlist.SourceReport) {
			for _, l := range s.Lines() {
				fmt.Fprintln(out, "    "+l)
			}
		},
		Runner: allowlistRunner,
	}
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.Name
	}
	fmt.Fprintf(out, "==> allowlist: fetching %s (time limit %s)\n", strings.Join(names, ", "), cfg.FetchTimeout)
	rep, err := allowlist.Update(ctx, srcs, opts, cfg.AllowlistFile)
	if err != nil {
		var failed []string // required sources that failed
		if rep != nil {
			for _, s := range rep.Sources {
				if s.Err != nil {
					failed = append(failed, s.Name)
				}
			}
		}
		switch {
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			err = fmt.Errorf("%w\n(raise %sFETCH_TIMEOUT if the network is slow)", err, config.Prefix)
		case len(failed) > 0:
			err = fmt.Errorf("%w\n(check the network and DNS and run it again; to go without a source, leave it out with %sSKIP_SOURCES=%s)",
				err, config.Prefix, strings.Join(failed, ","))
		}
		return nil, fmt.Errorf("the allowlist was not updated; %s is unchanged:\n%w", cfg.AllowlistFile, err)
	}
	fmt.Fprintf(out, "==> allowlist: %s; wrote %s\n", rep.Summary(), cfg.AllowlistFile)
	return rep.Set, nil
}

// allowlistFor returns the allowlist `mage dev` and `mage up` load: the file
// when it is younger than maxAge (zero forces a fetch), a fresh fetch
// otherwise, and the last good file, with a warning, when the fetch fails.
func allowlistFor(ctx context.Context, cfg config.Config, out io.Writer, maxAge time.Duration) (*netipx.IPSet, error) {
	if maxAge > 0 && allowlist.Fresh(cfg.AllowlistFile, maxAge) {
		if set, err := allowlist.Load(cfg.AllowlistFile); err == nil {
			fmt.Fprintf(out, "==> allowlist: using %s (younger than %s)\n", cfg.AllowlistFile, maxAge)
			return set, nil
		}
	}
	set, err := fetchAllowlist(ctx, cfg, out)
	if err == nil {
		return set, nil
	}
	old, lerr := allowlist.Load(cfg.AllowlistFile)
	if lerr != nil {
		return nil, err
	}
	fmt.Fprintf(out, "    warning: %s\n    using the last good allowlist in %s\n", strings.ReplaceAll(err.Error(), "\n", "\n    "), cfg.AllowlistFile)
	return old, nil
}
