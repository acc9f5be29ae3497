package config_test

import (
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/config"
)

func TestMemoryNeedsAUnitBecauseABareNumberIsBytes(t *testing.T) {
	for _, v := range []string{"4096", "8", "0"} {
		_, err := config.Load(env(map[string]string{"HOME": "/h", "CLAUDECONTAINER_MEMORY": v}), "darwin")
		if err == nil || !strings.Contains(err.Error(), "CLAUDECONTAINER_MEMORY") || !strings.Contains(err.Error(), "read a bare number as bytes") ||
			!strings.Contains(err.Error(), v+"m for MiB") {
			t.Errorf("MEMORY=%s: err = %v, want one that explains the missing unit", v, err)
		}
	}
	for _, v := range []string{"4096b", "1.5g", "8 g", "8t", "0g", "8gb"} {
		if _, err := config.Load(env(map[string]string{"HOME": "/h", "CLAUDECONTAINER_MEMORY": v}), "darwin"); err == nil ||
			!strings.Contains(err.Error(), "unit k, m or g") {
			t.Errorf("MEMORY=%s: err = %v, want a refusal", v, err)
		}
	}
	for _, v := range []string{"4096m", "8g", "8G", "262144k"} {
		c, err := config.Load(env(map[string]string{"HOME": "/h", "CLAUDECONTAINER_MEMORY": v}), "darwin")
		if err != nil || c.Memory != v {
			t.Errorf("MEMORY=%s: Memory %q, err %v", v, c.Memory, err)
		}
	}
}
