package filterd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/VerilyPete/claudecontainer/allowlist"
	"github.com/VerilyPete/claudecontainer/firewall"
	"github.com/VerilyPete/claudecontainer/internal/flock"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/nft"
	"github.com/VerilyPete/claudecontainer/pf"
	"github.com/VerilyPete/claudecontainer/policy"
)

// watchEvery is how often the daemon looks at the host's interfaces.
const watchEvery = time.Second

// watcher reloads the firewall's rules when the network's bridge appears.
type watcher struct {
	dir  string
	spec Spec
	log  func(format string, args ...any)
	// bridge finds the interface that holds addr; tests replace it.
	bridge func(addr netip.Addr) (string, error)

	mu     sync.Mutex
	p      *policy.Policy // what the rules were last loaded for; nil: nothing to watch
	seen   bool           // whether the bridge was there at the last look
	failed string         // the last reload's error, logged once
}

func newWatcher(dir string, spec Spec, log func(string, ...any)) *watcher {
	w := &watcher{dir: dir, spec: spec, log: log, bridge: bridgeHolding}
	w.set(spec.Watch)
	return w
}

// set replaces the policy to watch for (after a reload of the spec).
func (w *watcher) set(p *policy.Policy) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.p, w.failed = p, ""
	if p != nil {
		name, _ := w.bridge(p.Network.Gateway4)
		w.seen = name != "" && name == p.Network.Interface
	}
}

// run looks every interval until ctx ends.
func (w *watcher) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.look(ctx)
		}
	}
}

// look reloads the rules when the bridge has appeared since the last look,
// or holds the gateway under another name than the rules were loaded for.
// The reload holds the sessions lock that mage holds while it loads the
// rules or the allowlist, so that the two never interleave, and is skipped
// when mage has loaded the rules for the bridge meanwhile.
func (w *watcher) look(ctx context.Context) {
	name, ok := w.due()
	if !ok {
		return
	}
	lockPath := filepath.Join(w.dir, "sessions", ".lock")
	if _, err := os.Stat(lockPath); err != nil {
		return // made by mage, as the user; never by root
	}
	lctx, cancel := context.WithTimeout(ctx, watchEvery/2)
	defer cancel()
	unlock, err := flock.Lock(lctx, lockPath)
	if err != nil {
		return // mage is at work: the next look
	}
	defer unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.p == nil {
		return
	}
	p := *w.p
	if l, ok, _ := firewall.ReadLoaded(w.dir); ok {
		switch {
		case l.Network != p.Network.Name || l.IPv4 != p.Network.IPv4.String():
			return // mage loaded the rules for another network: its reload of the filter follows
		case l.Interface == name:
			p.Network.Interface = name
			w.p, w.seen = &p, true
			return // mage loaded them for the bridge already
		}
	}
	p.Network.Interface = name
	// Not cut short by the daemon's end: a half-done load would leave what
	// `mage reset` must repair.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer rcancel()
	if err := w.reload(rctx, p); err != nil {
		if msg := err.Error(); msg != w.failed {
			w.failed = msg
			w.log("the network's bridge %s appeared, but the rules were not loaded for it (run `mage up`): %v", name, err)
		}
		return
	}
	w.log("the network's bridge %s appeared: rules loaded for it", name)
	w.p, w.seen, w.failed = &p, true, ""
}

// due returns the bridge's name when the rules should be loaded for it.
func (w *watcher) due() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.p == nil {
		return "", false
	}
	name, err := w.bridge(w.p.Network.Gateway4)
	if err != nil || name == "" {
		w.seen = false
		return "", false
	}
	if name == w.p.Network.Interface && w.seen {
		return "", false
	}
	return name, true
}

// reload loads the rules for p with the allowlist file, as `mage up`
// would, and records it.
func (w *watcher) reload(ctx context.Context, p policy.Policy) error {
	set, err := allowlist.Load(w.spec.AllowlistFile)
	if err != nil {
		return err
	}
	var fw firewall.Backend
	switch w.spec.Backend {
	case "pf":
		fw, err = pf.New(proc.Exec{}, pf.Config{Anchor: w.spec.Table, StateDir: w.dir})
	default:
		fw, err = nft.New(proc.Exec{}, nft.Config{Table: w.spec.Table, SetPrefix: w.spec.Set, StateDir: w.dir})
	}
	if err != nil {
		return err
	}
	if up, err := fw.IsUp(ctx); err != nil || !up {
		return fmt.Errorf("the firewall is not up (%v)", err)
	}
	if err := fw.Up(ctx, p, set); err != nil {
		return err
	}
	return firewall.RecordLoaded(w.dir, p.Network)
}

// bridgeHolding returns the name of the interface that holds addr, or "".
func bridgeHolding(addr netip.Addr) (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == addr {
					return ifc.Name, nil
				}
			}
		}
	}
	return "", nil
}
