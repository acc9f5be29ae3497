package container

import (
	"fmt"
	"strings"
)

const (
	indexMediaType = "application/vnd.oci.image.index.v1+json"
	vmnetPlugin    = "container-network-vmnet"
)

// list prints items as `… list` does: with --format json as compact JSON
// (1.2.2:Sources/ContainerCommands/OutputRendering.swift, JSONOptions.compact:
// sorted keys, ISO 8601 dates, one line), else as a table whose header and
// rows layout pads into columns.
func list[T any](c *cli, p parsed, items []T, toJSON func(T) any, layout string, header []any, row func(T) []any) {
	if p.last("--format") == "json" {
		out := []any{}
		for _, it := range items {
			out = append(out, toJSON(it))
		}
		c.out(c.encode(out))
		return
	}
	fmt.Fprintf(c.stdout, layout, header...)
	for _, it := range items {
		fmt.Fprintf(c.stdout, layout, row(it)...)
	}
}

// networkJSON renders a network as `network list` does (NetworkResource).
func (c *cli) networkJSON(n *network) any {
	cfg := obj{}.add("creationDate", date(n.Created)).
		addIf(n.Configured != "", "ipv4Subnet", n.Configured).
		add("labels", n.Labels).add("mode", n.Mode).add("name", n.Name).
		add("options", obj{}).add("plugin", vmnetPlugin)
	status := obj{}.add("ipv4Gateway", n.gateway().String()).add("ipv4Subnet", n.Subnet).
		addIf(n.Subnet6 != "", "ipv6Subnet", n.Subnet6)
	return obj{}.add("configuration", cfg).add("id", n.Name).add("status", status)
}

// containerJSON renders a container as `list --format json` does
// (ManagedContainer).
func (c *cli) containerJSON(ct *ctr) any {
	variant := "reserved" // vmnet's network variant
	if c.macos == 15 {
		variant = "allocationOnly"
	}
	attach := []any{}
	for _, a := range ct.Attach {
		attach = append(attach, obj{}.add("network", a.Network).add("hostname", a.Hostname).
			add("ipv4Address", a.Address).add("ipv4Gateway", a.Gateway).
			addIf(a.Address6 != "", "ipv6Address", a.Address6).add("macAddress", a.MAC).
			add("mtu", 1280).addIf(c.v.atLeast(1, 1, 0), "variant", variant))
	}
	status := obj{}.add("networks", attach).
		addIf(ct.Status == "running", "startedDate", date(ct.Started)).add("state", ct.Status)
	return obj{}.add("configuration", c.configurationJSON(ct)).add("id", ct.ID).add("status", status)
}

func (c *cli) configurationJSON(ct *ctr) obj {
	mounts := []any{}
	for _, m := range ct.Mounts {
		typ := obj{}.add("virtiofs", obj{})
		if m.Volume != "" {
			typ = obj{}.add("volume", obj{}.add("name", m.Volume).add("format", "ext4").
				add("cache", obj{}.add("on", obj{})).add("sync", obj{}.add("fsync", obj{})))
		}
		opts := []any{}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, obj{}.add("type", typ).add("source", m.Source).add("destination", m.Destination).add("options", opts))
	}
	nets := []any{}
	for _, n := range ct.Networks {
		nets = append(nets, obj{}.add("network", n).add("options", obj{}.add("hostname", ct.ID).add("mtu", 1280)))
	}
	dns := obj{}.add("nameservers", ct.DNS).addIf(ct.DNSDomain != "", "domain", ct.DNSDomain).
		add("searchDomains", []any{}).add("options", []any{})
	init := obj{}.add("executable", ct.Executable).add("arguments", ct.Args).add("environment", ct.Env).
		add("workingDirectory", ct.Workdir).add("terminal", ct.Terminal).
		add("user", obj{}.add("id", obj{}.add("uid", 0).add("gid", 0))).
		add("supplementalGroups", []any{}).add("rlimits", []any{})
	resources := obj{}.add("cpus", ct.CPUs).add("memoryInBytes", ct.Memory).add("cpuOverhead", 1)
	image := obj{}.add("reference", ct.Image).add("descriptor",
		obj{}.add("mediaType", indexMediaType).add("digest", ct.ImageDigest).add("size", ct.ImageSize))
	return obj{}.add("id", ct.ID).add("image", image).add("mounts", mounts).
		add("publishedPorts", []any{}).add("publishedSockets", []any{}).
		add("labels", ct.Labels).add("sysctls", obj{}).add("networks", nets).add("dns", dns).
		add("rosetta", false).add("initProcess", init).
		add("platform", obj{}.add("os", "linux").add("architecture", "arm64")).
		add("resources", resources).add("runtimeHandler", "container-runtime-linux").
		add("virtualization", false).add("ssh", false).add("readOnly", false).add("useInit", false).
		add("capAdd", []any{}).add("capDrop", []any{}).add("creationDate", date(ct.Created))
}

// imageJSON renders an image as `image list --format json` does (ImageResource).
func (c *cli) imageJSON(img *image) any {
	desc := obj{}.add("digest", img.Digest).add("mediaType", indexMediaType).add("size", 9218)
	cfg := obj{}.add("Env", []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}).
		addIf(img.Cmd != nil, "Cmd", img.Cmd).addIf(img.Entrypoint != nil, "Entrypoint", img.Entrypoint)
	variant := obj{}.add("config", obj{}.add("architecture", "arm64").add("config", cfg).
		add("created", date(img.Created)).add("os", "linux").
		add("rootfs", obj{}.add("diff_ids", []string{img.Digest}).add("type", "layers")).add("variant", "v8")).
		add("digest", img.Digest).
		add("platform", obj{}.add("architecture", "arm64").add("os", "linux").add("variant", "v8")).
		add("size", img.Size)
	return obj{}.add("configuration", obj{}.add("creationDate", date(img.Created)).add("descriptor", desc).add("name", img.Ref)).
		add("id", strings.TrimPrefix(img.Digest, "sha256:")).add("variants", []any{variant})
}

// statusJSON renders `system status --format json`. Through 1.2.x it is
// PrintableStatus (1.2.2:Sources/ContainerCommands/System/SystemStatus.swift),
// whose strings stay "" while the service is down. 1.4.1 nests the service's
// details under client, host, paths, resources and server (apple/container
// PR #1769) and prints the status alone while the service is down.
func (c *cli) statusJSON(s *state) []byte {
	const appRoot, installRoot = "/Users/me/Library/Application Support/com.apple.container/", "/usr/local/"
	up := s.Service == "running"
	if c.v.atLeast(1, 4, 0) {
		if !up {
			return c.encode(obj{}.add("status", s.Service))
		}
		build := func(app string) obj {
			return obj{}.add("appName", app).add("build", "release").add("commit", c.fullCommit()).add("version", c.v.raw)
		}
		return c.encode(obj{}.add("client", build("container")).
			add("host", obj{}.add("architecture", "arm64").add("cpus", 10).add("operatingSystem", "Version 26.0 (Build 25A354)")).
			add("paths", obj{}.add("appRoot", appRoot).add("installRoot", installRoot)).
			add("resources", obj{}.add("containersRunning", len(s.running(""))).add("containersTotal", len(s.Containers)).add("images", len(s.Images))).
			add("server", build("container-apiserver")).
			add("status", s.Service))
	}
	str := func(v string) string {
		if up {
			return v
		}
		return ""
	}
	return c.encode(obj{}.add("status", s.Service).
		add("appRoot", str(appRoot)).add("installRoot", str(installRoot)).
		add("apiServerVersion", str(fmt.Sprintf("container-apiserver version %s (build: release, commit: %s)", c.v.raw, c.commit()))).
		add("apiServerCommit", str(c.fullCommit())).
		add("apiServerBuild", str("release")).
		add("apiServerAppName", str("container-apiserver")))
}

// commit is the short commit a release prints in --version.
func (c *cli) commit() string { return c.fullCommit()[:7] }

// fullCommit is the commit the release was built from: for 1.2.2 the one
// its tag points to, for the others a placeholder.
func (c *cli) fullCommit() string {
	if c.v.raw == "1.2.2" {
		return "0190097d06df0b9065f4c2d2c7873c649d81d493"
	}
	return "0000000000000000000000000000000000000000"
}
