package oci

import (
	"context"
	"testing"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/proc"
	"github.com/VerilyPete/claudecontainer/policy"
)

// The fuzz targets below feed the readers of podman's and docker's output
// arbitrary input, seeded with the outputs the other tests quote (podman 3
// to 5, docker 28). What they accept must be usable as it is: a network that
// policy.Validate accepts, containers with names, and a runtime accepted
// only when it runs as root.

func FuzzParseNetwork(f *testing.F) {
	for _, s := range []string{podman5, podman5DualStack, podman4CNI, podman3, podman3Legacy,
		docker28, dockerDefaultBridge, dockerNoGateway, dockerDualStack,
		`[{"name":"claude","driver":"bridge","network_interface":"podman 1","subnets":[{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"}]}]`,
		`[{"name":"claude","id":"4f2d","driver":"bridge","network_interface":"podman1","subnets":[{"subnet":"10.89.0.0/24","gateway":"10.89.0.1"},{"subnet":"fe80::/64","gateway":"fe80::1%eth0"}]}]`,
		`[{"Name":"claude","Id":"5c1a9f0e3b7d4c2a8e6f1b0d9c8a7e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a","Driver":"bridge","IPAM":{"Config":[{"Subnet":"172.18.0.0/16"}]},"Options":{"com.docker.network.bridge.name":"br;rm -rf"}}]`,
		`[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, program := range []string{Podman, Docker} {
			for _, name := range []string{"claude", "bridge"} {
				n, err := parseNetwork(program, name, data)
				if err != nil {
					if n != (policy.Network{}) {
						t.Fatalf("error %v came with %+v", err, n)
					}
					continue
				}
				if n.Name != name || !policy.ValidInterface(n.Interface) {
					t.Fatalf("parseNetwork(%s, %s) = %+v", program, name, n)
				}
				if err := checkSubnet(n.IPv4); err != nil {
					t.Fatalf("parseNetwork(%s, %s) = %+v: %v", program, name, n, err)
				}
				if n.Gateway4 == n.IPv4.Addr() {
					t.Fatalf("parseNetwork(%s, %s): the gateway is the network's own address %s", program, name, n.Gateway4)
				}
				if _, err := policy.New(n, "claude_firewall"); err != nil {
					t.Fatalf("parseNetwork(%s, %s) = %+v, which cannot be rendered: %v", program, name, n, err)
				}
			}
		}
	})
}

func FuzzParsePS(f *testing.F) {
	for _, s := range []string{podmanPS, dockerPS, "", "[]", "null",
		`{"Names":"/claude-alpine","State":"","Status":"Up 2 minutes (Paused)"}`,
		`[{"Names":[],"State":"running"}]`,
		`{"Names":"a"} [{"Names":["b"],"Networks":"x,,y"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, program := range []string{Podman, Docker} {
			cs, err := parsePS(program, data)
			if err != nil {
				if cs != nil {
					t.Fatalf("error %v came with %+v", err, cs)
				}
				continue
			}
			for _, c := range cs {
				if !c.Names.present || len(c.Names.items) == 0 {
					t.Fatalf("a container without names: %+v", c)
				}
				st, err := c.state(program, c.Names.items[0])
				switch {
				case err != nil && st != "":
					t.Fatalf("state error %v came with %q", err, st)
				case err == nil && st != engine.Running && st != engine.Stopped:
					t.Fatalf("state %q from State %q, Status %q", st, c.State, c.Status)
				}
			}
		}
	})
}

// output is a runner whose every program prints the same standard output.
type output []byte

func (o output) Run(context.Context, proc.Cmd) (proc.Result, error) {
	return proc.Result{Stdout: o}, nil
}

func (o output) Interactive(context.Context, proc.Cmd) error { return nil }

// FuzzInfo reads `podman info` and `docker info`: a runtime EnsureRunning
// accepts is one whose containers the host firewall sees, never a rootless
// one.
func FuzzInfo(f *testing.F) {
	for _, s := range []string{
		`{"host":{"arch":"amd64","networkBackend":"netavark","security":{"rootless":false}},"version":{"APIVersion":"5.4.2","Version":"5.4.2"}}`,
		`{"host":{"networkBackend":"cni","security":{"rootless":false}},"version":{"Version":"4.3.1"}}`,
		`{"host":{"networkBackend":"netavark","security":{"rootless":true}},"version":{"Version":"5.4.2"}}`,
		`{"host":{"security":{}},"version":{"Version":"5.4.2"}}`,
		`{"ID":"6d3c","Driver":"overlay2","ServerVersion":"28.2.2","SecurityOptions":["name=seccomp,profile=builtin","name=cgroupns"],"ClientInfo":{"Version":"28.2.2"}}`,
		`{"ServerVersion":"28.2.2","SecurityOptions":["name=seccomp,profile=builtin","name=rootless"]}`,
		`{"ServerVersion":"20.10.24+dfsg1","SecurityOptions":[]}`,
		`{"ServerVersion":""}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, program := range []string{Podman, Docker} {
			e := New(output(data), program)
			ctx := context.Background()
			if _, err := e.EnsureRunning(ctx); err != nil {
				continue
			}
			if rootless, err := e.Rootless(ctx); err != nil || rootless {
				t.Fatalf("%s: EnsureRunning accepts %s, where Rootless = %v, %v", program, data, rootless, err)
			}
		}
	})
}
