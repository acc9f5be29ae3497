package policytest_test

import (
	"testing"

	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/policy/policytest"
)

func TestEveryExamplePolicyIsValid(t *testing.T) {
	for name, p := range policytest.Policies() {
		if err := p.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCasesReachEveryVerdictWithOneAddressFamilyEach(t *testing.T) {
	set := policytest.Allowlist()
	for name, p := range policytest.Policies() {
		seen := map[policy.Verdict]int{}
		names := map[string]bool{}
		for _, c := range policytest.Cases(p) {
			if names[c.Name] {
				t.Errorf("%s: case %q appears twice", name, c.Name)
			}
			names[c.Name] = true
			f := c.Flow
			if f.Src.Unmap().Is4() != f.Dst.Unmap().Is4() {
				t.Errorf("%s: %s mixes address families: %v -> %v", name, c.Name, f.Src, f.Dst)
			}
			seen[p.Decide(f, set)]++
		}
		for _, v := range []policy.Verdict{policy.Pass, policy.Refuse, policy.Ignore} {
			if seen[v] < 3 {
				t.Errorf("%s: only %d cases decide %s", name, seen[v], v)
			}
		}
	}
}

func TestCasesIncludeIPv6OnlyWhenTheNetworkHasIt(t *testing.T) {
	count6 := func(p policy.Policy) int {
		n := 0
		for _, f := range policytest.Flows(p) {
			if f.Src.Is6() && p.Network.IPv6.IsValid() && p.Network.IPv6.Contains(f.Src) {
				n++
			}
		}
		return n
	}
	if n := count6(policytest.DualStack()); n < 8 {
		t.Errorf("dual stack: %d flows from the IPv6 subnet, want at least 8", n)
	}
	if n := count6(policytest.IPv4Only()); n != 0 {
		t.Errorf("IPv4 only: %d flows from an IPv6 subnet", n)
	}
}

func TestContainerAddressesAvoidTheGatewayAndDNSServers(t *testing.T) {
	p := policytest.CustomDNS()
	for _, c := range policytest.Cases(p) {
		if c.Flow.FromHost {
			continue
		}
		src := c.Flow.Src
		if p.Network.IPv4.Contains(src) && (src == p.Network.Gateway4 || src == p.DNS[0]) {
			t.Errorf("%s: source %v is the gateway or a DNS server", c.Name, src)
		}
	}
}
