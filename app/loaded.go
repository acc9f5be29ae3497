package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/policy"
)

// loaded is what the firewall was last brought up for, so that `mage status`
// can compare it with the network as it is now (a subnet that drifted after
// a reboot leaves rules that guard the wrong addresses).
type loaded struct {
	Network   string    `json:"network"`
	IPv4      string    `json:"ipv4"`
	IPv6      string    `json:"ipv6,omitempty"`
	Interface string    `json:"interface,omitempty"`
	Time      time.Time `json:"time"`
}

func loadedFor(n policy.Network) loaded {
	l := loaded{Network: n.Name, IPv4: n.IPv4.String(), Interface: n.Interface, Time: time.Now().UTC()}
	if n.IPv6.IsValid() {
		l.IPv6 = n.IPv6.String()
	}
	return l
}

func (l loaded) same(n policy.Network) bool {
	m := loadedFor(n)
	return l.Network == m.Network && l.IPv4 == m.IPv4 && l.IPv6 == m.IPv6 && l.Interface == m.Interface
}

func (l loaded) String() string {
	s := l.IPv4
	if l.IPv6 != "" {
		s += ", " + l.IPv6
	}
	if l.Interface != "" {
		s += " on " + l.Interface
	}
	return s
}

func (e *env) loadedPath() string { return filepath.Join(e.cfg.StateDir, "loaded.json") }

func (e *env) recordLoaded(n policy.Network) error {
	b, err := json.MarshalIndent(loadedFor(n), "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(e.cfg.StateDir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(e.loadedPath(), append(b, '\n'), 0o600)
}

func (e *env) forgetLoaded() error {
	if err := os.Remove(e.loadedPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// readLoaded returns the record, ok false when there is none.
func (e *env) readLoaded() (l loaded, ok bool, err error) {
	b, err := os.ReadFile(e.loadedPath())
	if errors.Is(err, os.ErrNotExist) {
		return l, false, nil
	}
	if err != nil {
		return l, false, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, false, fmt.Errorf("%s: %w", e.loadedPath(), err)
	}
	return l, true, nil
}
