package pfctl_test

import (
	"testing"

	pfctl "github.com/VerilyPete/claudecontainer/internal/fakes/pfctl"
)

func TestForbiddenCatchesEveryFormOfADangerousCall(t *testing.T) {
	for _, call := range []string{
		"pfctl -d", "pfctl -vd", "pfctl -a com.apple/x -s rules -d",
		"pfctl -e",
		"pfctl -q -E", "pfctl -qE", "pfctl -Eq", "pfctl -q -s info",
		"pfctl -F all", "pfctl -Fall", "pfctl -a com.apple -F all", "pfctl -a com.apple/* -F all", "pfctl -a  -F all",
		"pfctl -f /etc/pf.conf", "pfctl -nf x", "pfctl -a com.apple/x/sub -f -", "pfctl -a com.apple.internet-sharing -f -",
		"pfctl -t t -T flush", "pfctl -a com.apple/250.ApplicationFirewall -t t -T replace -f /tmp/f",
		"pfctl -k 0.0.0.0/0", "pfctl -k 8.8.8.0/24", "pfctl -k ::/0", "pfctl -k fd00::/8",
		"pfctl -k 93.184.216.34 -k 192.168.64.0/24", "pfctl -k 192.168.64.0/24 -k 0.0.0.0/0",
		"pfctl -Z", "pfctl -a",
	} {
		if pfctl.Forbidden(call) == "" {
			t.Errorf("%q passed", call)
		}
	}
}

func TestForbiddenAllowsWhatTheBackendRuns(t *testing.T) {
	for _, call := range []string{
		"pfctl -E", "pfctl -X 123",
		"pfctl -a com.apple/claude_firewall -f -", "pfctl -a com.apple/x -F all",
		"pfctl -a com.apple/x -t t -T replace -f /tmp/f", "pfctl -a com.apple/x -t t -T add 1.2.3.4 2001:db8::/48",
		"pfctl -a com.apple/x -t t -T show", "pfctl -a com.apple/x -s rules",
		"pfctl -s info", "pfctl -s References", "pfctl -sr", "pfctl -s rules", "pfctl -sd",
		"pfctl -k 192.168.64.0/24", "pfctl -k fd5e:9a3b:1c2d:4e5f::/64", "pfctl -k 10.0.0.0/8",
		"pfctl -k 192.168.64.0/24 -k 93.184.216.34",
		"container run -d x", "ifconfig",
	} {
		if why := pfctl.Forbidden(call); why != "" {
			t.Errorf("%q: %s", call, why)
		}
	}
}
