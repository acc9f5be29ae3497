package oci

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/policy"
)

// Network objects as the runtimes print them. podman 5 and 4 (netavark, or
// CNI behind podman 4's own format) follow podman-network-inspect(1); docker
// follows docker 28. podman 3 printed its CNI configuration list, which the
// driver refuses (EnsureRunning refuses podman 3 before).
const (
	podman5 = `[
     {
          "name": "claude",
          "id": "4f2d0c1be0e8a3f9c6b7d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4",
          "driver": "bridge",
          "network_interface": "podman1",
          "created": "2026-01-02T03:04:05.123456789Z",
          "subnets": [
               {
                    "subnet": "192.168.218.0/24",
                    "gateway": "192.168.218.1"
               }
          ],
          "ipv6_enabled": false,
          "internal": false,
          "dns_enabled": true,
          "ipam_options": {
               "driver": "host-local"
          },
          "containers": {}
     }
]`
	podman5DualStack = `[{"name":"claude","id":"4f2d","driver":"bridge","network_interface":"podman1",
		"subnets":[{"subnet":"10.89.0.0/24","gateway":"10.89.0.1","lease_range":{"start_ip":"10.89.0.10","end_ip":"10.89.0.200"}},{"subnet":"fd00:dead:beef::/64","gateway":"fd00:dead:beef::1"}],
		"ipv6_enabled":true,"internal":false,"dns_enabled":true,"options":{"isolate":"true","mtu":"1500"},"ipam_options":{"driver":"host-local"}}]`
	podman4CNI = `[{"name":"claude","id":"2f25","driver":"bridge","network_interface":"cni-podman1","created":"2021-06-03T12:04:33.088567413+02:00",
		"subnets":[{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"}],"ipv6_enabled":false,"internal":false,"dns_enabled":true,"ipam_options":{"driver":"host-local"}}]`
	podman3 = `[
    {
        "cniVersion": "0.4.0",
        "name": "claude",
        "plugins": [
            {
                "bridge": "cni-podman1",
                "hairpinMode": true,
                "ipMasq": true,
                "ipam": {
                    "ranges": [
                        [
                            {
                                "gateway": "10.89.0.1",
                                "subnet": "10.89.0.0/24"
                            }
                        ]
                    ],
                    "routes": [
                        {
                            "dst": "0.0.0.0/0"
                        }
                    ],
                    "type": "host-local"
                },
                "isGateway": true,
                "type": "bridge"
            },
            {
                "capabilities": {
                    "portMappings": true
                },
                "type": "portmap"
            },
            {
                "backend": "",
                "type": "firewall"
            },
            {
                "type": "tuning"
            },
            {
                "capabilities": {
                    "aliases": true
                },
                "domainName": "dns.podman",
                "type": "dnsname"
            }
        ]
    }
]`
	podman3Legacy = `[{"cniVersion":"0.3.0","name":"claude","plugins":[{"type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":true,
		"ipam":{"type":"host-local","subnet":"10.88.1.0/24","routes":[{"dst":"0.0.0.0/0"}]}},{"type":"portmap","capabilities":{"portMappings":true}}]}]`
	docker28 = `[
    {
        "Name": "claude",
        "Id": "5c1a9f0e3b7d4c2a8e6f1b0d9c8a7e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a",
        "Created": "2026-01-02T03:04:05.123456789Z",
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [
                {
                    "Subnet": "192.168.218.0/24",
                    "Gateway": "192.168.218.1"
                }
            ]
        },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {
            "Network": ""
        },
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {}
    }
]`
	dockerDefaultBridge = `[{"Name":"bridge","Id":"3430ad6f20bf1486df2e5f64ddc93cc4ff95d81f59b6baea8a510ad500df2e57","Scope":"local","Driver":"bridge","EnableIPv6":false,
		"IPAM":{"Driver":"default","Options":null,"Config":[{"Subnet":"172.17.0.0/16","Gateway":"172.17.0.1"}]},"Internal":false,"Containers":{},
		"Options":{"com.docker.network.bridge.default_bridge":"true","com.docker.network.bridge.name":"docker0","com.docker.network.driver.mtu":"1500"},"Labels":{}}]`
	dockerNoGateway = `[{"Name":"claude","Id":"5c1a9f0e3b7d4c2a8e6f1b0d9c8a7e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a","Driver":"bridge",
		"IPAM":{"Driver":"default","Options":null,"Config":[{"Subnet":"172.18.0.0/16"}]},"Options":null}]`
	dockerDualStack = `[{"Name":"claude","Id":"5c1a9f0e3b7d4c2a8e6f1b0d9c8a7e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a","Driver":"bridge","EnableIPv6":true,
		"IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"172.18.0.0/16","Gateway":"172.18.0.1"},{"Subnet":"fd4d:6169:6c63:6f77::/64","Gateway":"fd4d:6169:6c63:6f77::1"}]},"Options":{}}]`
)

func TestParseNetworkReadsEveryRuntimeShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, program, json string
		want                policy.Network
	}{
		{"podman 5 with netavark", "podman", podman5, policy.Network{
			Name: "claude", IPv4: netip.MustParsePrefix("192.168.218.0/24"), Gateway4: netip.MustParseAddr("192.168.218.1"), Interface: "podman1"}},
		{"podman 5 dual stack", "podman", podman5DualStack, policy.Network{
			Name: "claude", IPv4: netip.MustParsePrefix("10.89.0.0/24"), Gateway4: netip.MustParseAddr("10.89.0.1"),
			IPv6: netip.MustParsePrefix("fd00:dead:beef::/64"), Interface: "podman1"}},
		{"podman 4 with CNI", "podman", podman4CNI, policy.Network{
			Name: "claude", IPv4: netip.MustParsePrefix("10.89.0.0/24"), Gateway4: netip.MustParseAddr("10.89.0.1"), Interface: "cni-podman1"}},
		{"docker 28 names the bridge after the ID", "docker", docker28, policy.Network{
			Name: "claude", IPv4: netip.MustParsePrefix("192.168.218.0/24"), Gateway4: netip.MustParseAddr("192.168.218.1"), Interface: "br-5c1a9f0e3b7d"}},
		{"docker's default bridge names its interface in an option", "docker", dockerDefaultBridge, policy.Network{
			Name: "bridge", IPv4: netip.MustParsePrefix("172.17.0.0/16"), Gateway4: netip.MustParseAddr("172.17.0.1"), Interface: "docker0"}},
		{"docker without a gateway uses the first host", "docker", dockerNoGateway, policy.Network{
			Name: "claude", IPv4: netip.MustParsePrefix("172.18.0.0/16"), Gateway4: netip.MustParseAddr("172.18.0.1"), Interface: "br-5c1a9f0e3b7d"}},
		{"docker dual stack", "docker", dockerDualStack, policy.Network{
			Name: "claude", IPv4: netip.MustParsePrefix("172.18.0.0/16"), Gateway4: netip.MustParseAddr("172.18.0.1"),
			IPv6: netip.MustParsePrefix("fd4d:6169:6c63:6f77::/64"), Interface: "br-5c1a9f0e3b7d"}},
		{"podman standing in for docker", "docker", podman5, policy.Network{
			Name: "claude", IPv4: netip.MustParsePrefix("192.168.218.0/24"), Gateway4: netip.MustParseAddr("192.168.218.1"), Interface: "podman1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseNetwork(tc.program, tc.want.Name, []byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("parseNetwork (-want +got):\n%s", diff)
			}
			if _, err := policy.New(got, "allowed_destinations"); err != nil {
				t.Errorf("the parsed network does not make a valid policy: %v", err)
			}
		})
	}
}

func TestParseNetworkRefusesWhatTheFirewallCannotGuard(t *testing.T) {
	t.Parallel()
	netavark := func(subnets, extra string) string {
		return `[{"name":"claude","id":"4f2d","driver":"bridge","network_interface":"podman1","subnets":[` + subnets + `]` + extra + `}]`
	}
	dockerNet := func(config, extra string) string {
		return `[{"Name":"claude","Id":"5c1a9f0e3b7d4c2a8e6f1b0d9c8a7e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a","Driver":"bridge","IPAM":{"Config":[` + config + `]}` + extra + `}]`
	}
	tests := []struct {
		name, json, wantErr string
	}{
		{"malformed JSON", `[{"name":"claude",`, "reading `podman network inspect claude` output"},
		{"an object instead of a list", `{"name":"claude"}`, "reading `podman network inspect claude` output"},
		{"nothing but text", `Error: something odd`, "reading `podman network inspect claude` output"},
		{"two networks", `[{"name":"claude"},{"name":"claude"}]`, "listed 2 networks"},
		{"no name key", `[{"id":"4f2d","driver":"bridge"}]`, "no name key"},
		{"another network matched by ID prefix", `[{"name":"other","driver":"bridge"}]`, `answered with network "other"`},
		{"a macvlan network", `[{"name":"claude","driver":"macvlan","network_interface":"eth0","subnets":[{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"}]}]`, `uses the "macvlan" driver`},
		{"a docker overlay network", `[{"Name":"claude","Id":"5c1a9f0e3b7d4c2a","Driver":"overlay","IPAM":{"Config":[{"Subnet":"10.0.1.0/24"}]}}]`, `uses the "overlay" driver`},
		{"no subnets", netavark(``, ``), "has no IPv4 subnet"},
		{"no subnets key at all", `[{"name":"claude","driver":"bridge","network_interface":"podman1"}]`, "has no IPv4 subnet"},
		{"IPv6 only", netavark(`{"subnet":"fd00::/64","gateway":"fd00::1"}`, ``), "has no IPv4 subnet"},
		{"two IPv4 subnets", netavark(`{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"},{"subnet":"10.89.1.0/24","gateway":"10.89.1.1"}`, ``), "has 2 IPv4 subnets (10.89.0.0/24, 10.89.1.0/24)"},
		{"two IPv6 subnets", netavark(`{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"},{"subnet":"fd00:1::/64"},{"subnet":"fd00:2::/64"}`, ``), "has 2 IPv6 subnets"},
		{"a public subnet", netavark(`{"subnet":"8.8.8.0/24","gateway":"8.8.8.1"}`, ``), "not inside a private range"},
		{"a subnet that starts private and ends public", netavark(`{"subnet":"192.168.0.0/15","gateway":"192.168.0.1"}`, ``), "not inside a private range"},
		{"a subnet around a private range", netavark(`{"subnet":"172.0.0.0/8","gateway":"172.0.0.1"}`, ``), "not inside a private range"},
		{"a /31", netavark(`{"subnet":"10.89.0.0/31","gateway":"10.89.0.1"}`, ``), "between /8 and /30"},
		{"an unmasked subnet", netavark(`{"subnet":"10.89.0.5/24","gateway":"10.89.0.1"}`, ``), "subnet 10.89.0.5/24 is not masked"},
		{"a subnet that is not a prefix", netavark(`{"subnet":"10.89.0.0","gateway":"10.89.0.1"}`, ``), `subnet "10.89.0.0"`},
		{"an IPv4-mapped subnet", netavark(`{"subnet":"::ffff:10.89.0.0/120","gateway":"::ffff:10.89.0.1"}`, ``), "IPv4-mapped"},
		{"a gateway outside the subnet", netavark(`{"subnet":"10.89.0.0/24","gateway":"10.90.0.1"}`, ``), "gateway 10.90.0.1 is not a host address inside subnet 10.89.0.0/24"},
		{"the network address as gateway", netavark(`{"subnet":"10.89.0.0/24","gateway":"10.89.0.0"}`, ``), "gateway 10.89.0.0 is not a host address"},
		{"a gateway that is not an address", netavark(`{"subnet":"10.89.0.0/24","gateway":"10.89.0.one"}`, ``), `gateway "10.89.0.one"`},
		{"a gateway with a zone", netavark(`{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"},{"subnet":"fe80::/64","gateway":"fe80::1%eth0"}`, ``), "gateway fe80::1%eth0 is not a host address"},
		{"netavark without a gateway", netavark(`{"subnet":"10.89.0.0/24"}`, ``), "subnet 10.89.0.0/24 has no gateway"},
		{"an IPv6 gateway outside its subnet", netavark(`{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"},{"subnet":"fd00:1::/64","gateway":"fd00:2::1"}`, ``), "gateway fd00:2::1 is not a host address inside subnet fd00:1::/64"},
		{"an IPv6 subnet wider than /48", netavark(`{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"},{"subnet":"fd00::/32","gateway":"fd00::1"}`, ``), "wider than /48"},
		{"no interface", `[{"name":"claude","driver":"bridge","subnets":[{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"}]}]`, "does not name its host bridge interface"},
		{"an interface name with a space", `[{"name":"claude","driver":"bridge","network_interface":"podman 1","subnets":[{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"}]}]`, `"podman 1" is not a valid interface name`},
		{"an interface name too long for Linux", `[{"name":"claude","driver":"bridge","network_interface":"podmanbridge12345","subnets":[{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"}]}]`, "not a valid interface name"},
		{"docker without a usable ID", `[{"Name":"claude","Id":"xyz","Driver":"bridge","IPAM":{"Config":[{"Subnet":"172.18.0.0/16"}]}}]`, `ID "xyz" is not a docker network ID`},
		{"docker with a public subnet", dockerNet(`{"Subnet":"1.2.3.0/24","Gateway":"1.2.3.1"}`, ``), "not inside a private range"},
		{"docker with a gateway outside", dockerNet(`{"Subnet":"172.18.0.0/16","Gateway":"172.19.0.1"}`, ``), "gateway 172.19.0.1 is not a host address inside subnet 172.18.0.0/16"},
		{"docker with a bridge option that is not an interface name", dockerNet(`{"Subnet":"172.18.0.0/16"}`, `,"Options":{"com.docker.network.bridge.name":"br;rm -rf"}`), "not a valid interface name"},
		{"podman 3's CNI configuration list", podman3, `uses the "" driver`},
		{"podman 3's legacy CNI configuration list", podman3Legacy, `uses the "" driver`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseNetwork("podman", "claude", []byte(tc.json))
			if err == nil {
				t.Fatalf("parseNetwork accepted %s as %+v; want an error containing %q", tc.json, got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q does not contain %q", err, tc.wantErr)
			}
			if errors.Is(err, engine.ErrNotFound) {
				t.Errorf("error %q claims the network does not exist", err)
			}
		})
	}
}

func TestParseNetworkTreatsAnEmptyListAsNotFound(t *testing.T) {
	t.Parallel()
	_, err := parseNetwork("docker", "claude", []byte("[]\n"))
	if !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("error %v does not wrap engine.ErrNotFound", err)
	}
}

func TestCheckSubnetAcceptsOnlyPrivateIPv4Prefixes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix  netip.Prefix
		wantErr string
	}{
		{netip.MustParsePrefix("192.168.218.0/24"), ""},
		{netip.MustParsePrefix("10.0.0.0/8"), ""},
		{netip.MustParsePrefix("172.16.0.0/12"), ""},
		{netip.MustParsePrefix("10.89.0.0/30"), ""},
		{netip.Prefix{}, "is not an IPv4 prefix"},
		{netip.MustParsePrefix("fd00::/64"), "is not an IPv4 prefix"},
		{netip.MustParsePrefix("192.168.218.7/24"), "is not masked (did you mean 192.168.218.0/24?)"},
		{netip.MustParsePrefix("10.0.0.0/7"), "between /8 and /30"},
		{netip.MustParsePrefix("10.0.0.0/31"), "between /8 and /30"},
		{netip.MustParsePrefix("100.64.0.0/10"), "not inside a private range"},
		{netip.MustParsePrefix("192.168.0.0/15"), "not inside a private range"},
		{netip.MustParsePrefix("172.0.0.0/8"), "not inside a private range"},
	}
	for _, tc := range tests {
		err := checkSubnet(tc.prefix)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("checkSubnet(%v) = %v; want nil", tc.prefix, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("checkSubnet(%v) = %v; want an error containing %q", tc.prefix, err, tc.wantErr)
		}
	}
}
