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
	"github.com/VerilyPete/claudecontainer/sources"
)

// Allowlist fetches every source, merges and vets the result, writes the
// allowlist file and, when the firewall is up, replaces its live table.
func Allowlist(ctx context.Context, out io.Writer) error {
	return withEnv(out, func(e *env) error { return e.refreshAllowlist(ctx) })
}

func (e *env) refreshAllowlist(ctx context.Context) error {
	set, err := e.fetchAllowlist(ctx)
	if err != nil {
		return err
	}
	// The sessions lock keeps the live table and the DNS filter's names
	// apart from a `mage dev` loading the rules and from the filter's own
	// reload when the bridge appears: whichever of those read the file
	// before it was written is done before the table is replaced.
	unlock, err := e.sessions.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	switch err := e.fw.Replace(ctx, set); {
	case errors.Is(err, firewall.ErrNotUp):
		e.note("the firewall is not up; it loads the file when it comes up")
	case err != nil:
		return fmt.Errorf("the allowlist file is written, but the live table was not replaced: %w", err)
	default:
		e.step("firewall: live allowlist replaced")
	}
	if err := e.reloadFilter(ctx); err != nil {
		return fmt.Errorf("the allowlist file is written, but the DNS filter did not take its names: %w", err)
	}
	return nil
}

// fetchAllowlist runs the selected sources and writes the allowlist file,
// printing a line per source as it finishes. On error the file is unchanged.
func (e *env) fetchAllowlist(ctx context.Context) (*netipx.IPSet, error) {
	cfg, out := e.cfg, e.out
	srcs, err := sources.Select(cfg.Sources, cfg.SkipSources)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the cache directory: %w", err)
	}
	r, err := e.newResolver()
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
			URL:       e.sourceURLs,
		},
		Resolver: r,
		Progress: func(s allowlist.SourceReport) {
			for _, l := range s.Lines() {
				fmt.Fprintln(out, "    "+l)
			}
		},
		Runner: e.runner,
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
func (e *env) allowlistFor(ctx context.Context, maxAge time.Duration) (*netipx.IPSet, error) {
	cfg, out := e.cfg, e.out
	if maxAge > 0 && allowlist.Fresh(cfg.AllowlistFile, maxAge) {
		if set, err := allowlist.Load(cfg.AllowlistFile); err == nil {
			fmt.Fprintf(out, "==> allowlist: using %s (younger than %s)\n", cfg.AllowlistFile, maxAge)
			return set, nil
		}
	}
	set, err := e.fetchAllowlist(ctx)
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
