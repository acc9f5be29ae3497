package firewall

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

// Loaded is what the firewall was last brought up for, recorded in the
// state directory, so that `mage status` can compare it with the network as
// it is now (a subnet that drifted after a reboot leaves rules that guard
// the wrong addresses). `mage up`, `mage dev` and the DNS filter's daemon,
// which reloads the rules when the network's bridge appears, record it.
type Loaded struct {
	Network   string    `json:"network"`
	IPv4      string    `json:"ipv4"`
	IPv6      string    `json:"ipv6,omitempty"`
	Interface string    `json:"interface,omitempty"`
	Time      time.Time `json:"time"`
}

// LoadedFor is the record of a load for n, now.
func LoadedFor(n policy.Network) Loaded {
	l := Loaded{Network: n.Name, IPv4: n.IPv4.String(), Interface: n.Interface, Time: time.Now().UTC()}
	if n.IPv6.IsValid() {
		l.IPv6 = n.IPv6.String()
	}
	return l
}

// Same reports whether l was recorded for n.
func (l Loaded) Same(n policy.Network) bool {
	m := LoadedFor(n)
	return l.Network == m.Network && l.IPv4 == m.IPv4 && l.IPv6 == m.IPv6 && l.Interface == m.Interface
}

func (l Loaded) String() string {
	s := l.IPv4
	if l.IPv6 != "" {
		s += ", " + l.IPv6
	}
	if l.Interface != "" {
		s += " on " + l.Interface
	}
	return s
}

func loadedPath(dir string) string { return filepath.Join(dir, "loaded.json") }

// RecordLoaded records in dir that the firewall was loaded for n.
func RecordLoaded(dir string, n policy.Network) error {
	b, err := json.MarshalIndent(LoadedFor(n), "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.Write(loadedPath(dir), append(b, '\n'), 0o600)
}

// ForgetLoaded removes the record in dir.
func ForgetLoaded(dir string) error {
	if err := os.Remove(loadedPath(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ReadLoaded returns the record in dir, ok false when there is none.
func ReadLoaded(dir string) (l Loaded, ok bool, err error) {
	b, err := os.ReadFile(loadedPath(dir))
	if errors.Is(err, os.ErrNotExist) {
		return l, false, nil
	}
	if err != nil {
		return l, false, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, false, fmt.Errorf("%s: %w", loadedPath(dir), err)
	}
	return l, true, nil
}
