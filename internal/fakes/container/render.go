package container

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
)

const (
	indexMediaType = "application/vnd.oci.image.index.v1+json"
	vmnetPlugin    = "container-network-vmnet"
)

// list renders items the way `… list --format json` does: compact, keys
// sorted from 1.0.0.
func (c *cli) list(items []any) []byte {
	return encodeSwift(items, c.v.atLeast(1, 0, 0), false)
}

// inspect renders items the way `… inspect` does: 0.x joins each item's
// compact encoding inside brackets; 1.x pretty-prints with sorted keys.
func (c *cli) inspect(items []any) []byte {
	if c.v.atLeast(1, 0, 0) {
		return encodeSwift(items, true, true)
	}
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = string(encodeSwift(it, false, false))
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

func (c *cli) variant() string {
	if c.macos == 15 {
		return "allocationOnly"
	}
	return "reserved"
}

// networkJSON renders a network as the release's `network list` does.
func (c *cli) networkJSON(n *network) any {
	v := c.v
	created := n.Name != "default" && os.Getenv(EnvNetworkState) == "created" && !v.atLeast(1, 0, 0)
	if v.atLeast(1, 0, 0) {
		cfg := obj{}.add("creationDate", v.date(n.Created)).
			addIf(n.Configured != "", "ipv4Subnet", n.Configured).
			add("labels", n.Labels).add("mode", n.Mode).add("name", n.Name).
			add("options", obj{}).add("plugin", vmnetPlugin)
		status := obj{}.add("ipv4Gateway", n.gateway().String()).add("ipv4Subnet", n.Subnet).
			addIf(n.Subnet6 != "", "ipv6Subnet", n.Subnet6)
		return obj{}.add("configuration", cfg).add("id", n.Name).add("status", status)
	}
	cfg := obj{}.add("id", n.Name).addIf(v.atLeast(0, 7, 0), "creationDate", v.date(n.Created)).add("mode", n.Mode)
	var status obj
	if v.atLeast(0, 8, 0) {
		cfg = cfg.addIf(n.Configured != "", "ipv4Subnet", n.Configured).add("labels", n.Labels)
		if v.atLeast(0, 10, 0) {
			cfg = cfg.add("pluginInfo", obj{}.add("plugin", vmnetPlugin).add("variant", c.variant()))
		}
		status = obj{}.add("ipv4Subnet", n.Subnet).add("ipv4Gateway", n.gateway().String()).
			addIf(n.Subnet6 != "", "ipv6Subnet", n.Subnet6)
	} else {
		cfg = cfg.addIf(v.atLeast(0, 6, 0) && n.Configured != "", "subnet", n.Configured).
			addIf(v.atLeast(0, 5, 0), "labels", n.Labels)
		status = obj{}.add("address", n.Subnet).add("gateway", n.gateway().String())
	}
	state := "running"
	if created {
		state = "created"
	}
	out := obj{}.add("id", n.Name).add("state", state).add("config", cfg)
	return out.addIf(!created, "status", status)
}

// containerJSON renders a container as the release's `ls --format json` does.
func (c *cli) containerJSON(ct *ctr) any {
	v := c.v
	var attach []any
	for _, a := range ct.Attach {
		attach = append(attach, c.attachmentJSON(a))
	}
	if attach == nil {
		attach = []any{}
	}
	cfg := c.configurationJSON(ct)
	if v.atLeast(1, 0, 0) {
		status := obj{}.add("networks", attach).
			addIf(ct.Status == "running", "startedDate", v.date(ct.Started)).add("state", ct.Status)
		return obj{}.add("configuration", cfg).add("id", ct.ID).add("status", status)
	}
	return obj{}.add("status", ct.Status).add("configuration", cfg).add("networks", attach).
		addIf(v.atLeast(0, 8, 0) && ct.Status == "running", "startedDate", v.date(ct.Started))
}

func (c *cli) attachmentJSON(a attachment) any {
	v := c.v
	o := obj{}.add("network", a.Network).add("hostname", a.Hostname)
	if !v.atLeast(0, 8, 0) {
		return o.add("address", a.Address).add("gateway", a.Gateway).addIf(v.atLeast(0, 7, 0), "macAddress", a.MAC)
	}
	return o.add("ipv4Address", a.Address).add("ipv4Gateway", a.Gateway).
		addIf(a.Address6 != "", "ipv6Address", a.Address6).add("macAddress", a.MAC).
		addIf(v.atLeast(0, 11, 0), "mtu", 1280).addIf(v.atLeast(1, 1, 0), "variant", c.variant())
}

func (c *cli) configurationJSON(ct *ctr) obj {
	v := c.v
	var mounts []any
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
	if mounts == nil {
		mounts = []any{}
	}
	var nets []any
	for _, n := range ct.Networks {
		if !v.atLeast(0, 4, 0) {
			nets = append(nets, n)
			continue
		}
		nets = append(nets, obj{}.add("network", n).add("options",
			obj{}.add("hostname", ct.ID).addIf(v.atLeast(0, 11, 0), "mtu", 1280)))
	}
	if nets == nil {
		nets = []any{}
	}
	dns := obj{}.add("nameservers", ct.DNS).addIf(ct.DNSDomain != "", "domain", ct.DNSDomain).
		add("searchDomains", []any{}).add("options", []any{})
	init := obj{}.add("executable", ct.Executable).add("arguments", ct.Args).add("environment", ct.Env).
		add("workingDirectory", ct.Workdir).add("terminal", ct.Terminal).
		add("user", obj{}.add("id", obj{}.add("uid", 0).add("gid", 0))).
		add("supplementalGroups", []any{}).add("rlimits", []any{})
	resources := obj{}.add("cpus", ct.CPUs).add("memoryInBytes", ct.Memory).addIf(v.atLeast(1, 0, 0), "cpuOverhead", 1)
	image := obj{}.add("reference", ct.Image).add("descriptor",
		obj{}.add("mediaType", indexMediaType).add("digest", ct.ImageDigest).add("size", ct.ImageSize))
	return obj{}.add("id", ct.ID).add("image", image).add("mounts", mounts).
		addIf(v.atLeast(0, 3, 0), "publishedPorts", []any{}).
		addIf(v.atLeast(0, 2, 0), "publishedSockets", []any{}).
		add("labels", ct.Labels).add("sysctls", obj{}).add("networks", nets).add("dns", dns).
		add("rosetta", false).
		addIf(!v.atLeast(0, 4, 0), "hostname", ct.ID).
		add("initProcess", init).
		add("platform", obj{}.add("os", "linux").add("architecture", "arm64")).
		add("resources", resources).add("runtimeHandler", "container-runtime-linux").
		addIf(v.atLeast(0, 3, 0), "virtualization", false).
		addIf(v.atLeast(0, 4, 0), "ssh", false).
		addIf(v.atLeast(0, 8, 0), "readOnly", false).
		addIf(v.atLeast(0, 10, 0), "useInit", false).
		addIf(v.atLeast(0, 12, 0), "capAdd", []any{}).
		addIf(v.atLeast(0, 12, 0), "capDrop", []any{}).
		addIf(v.atLeast(1, 0, 0), "creationDate", v.date(ct.Created))
}

// imageJSON renders an image as the release's `image list --format json` does.
func (c *cli) imageJSON(img *image) any {
	v := c.v
	if v.atLeast(1, 0, 0) {
		desc := obj{}.add("digest", img.Digest).add("mediaType", indexMediaType).add("size", 9218)
		cfg := obj{}.add("Env", []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}).
			addIf(img.Cmd != nil, "Cmd", img.Cmd).addIf(img.Entrypoint != nil, "Entrypoint", img.Entrypoint)
		variant := obj{}.add("config", obj{}.add("architecture", "arm64").add("config", cfg).
			add("created", v.date(img.Created)).add("os", "linux").
			add("rootfs", obj{}.add("diff_ids", []string{img.Digest}).add("type", "layers")).add("variant", "v8")).
			add("digest", img.Digest).
			add("platform", obj{}.add("architecture", "arm64").add("os", "linux").add("variant", "v8")).
			add("size", img.Size)
		return obj{}.add("configuration", obj{}.add("creationDate", v.date(img.Created)).add("descriptor", desc).add("name", img.Ref)).
			add("id", strings.TrimPrefix(img.Digest, "sha256:")).add("variants", []any{variant})
	}
	desc := obj{}.add("mediaType", indexMediaType).add("digest", img.Digest).add("size", 9218)
	return obj{}.add("reference", img.Ref).addIf(v.atLeast(0, 9, 0), "fullSize", byteCount(img.Size)).add("descriptor", desc)
}

// byteCount formats a size as Foundation's ByteCountFormatter does ("4.2 MB").
func byteCount(n int64) string {
	units := []string{"bytes", "KB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// statusJSON renders `system status --format json` (0.10+).
func (c *cli) statusJSON(s *state) []byte {
	up := s.Service == "running"
	str := func(v string) string {
		if up {
			return v
		}
		return ""
	}
	o := obj{}.add("status", s.Service).
		add("appRoot", "/Users/me/Library/Application Support/com.apple.container/").
		add("installRoot", "/usr/local/").
		add("apiServerVersion", str(fmt.Sprintf("container-apiserver version %s (build: release, commit: %s)", c.v.raw, c.commit()))).
		add("apiServerCommit", str(c.commit())).
		add("apiServerBuild", str("release")).
		add("apiServerAppName", str("container-apiserver"))
	return encodeSwift(o, c.v.atLeast(1, 0, 0), false)
}

func (c *cli) commit() string {
	if s, ok := commits[c.v.raw]; ok {
		return s
	}
	return "0000000"
}

// volumeJSON renders `volume inspect` / `volume list --format json`.
func (c *cli) volumeJSON(vol *volume) any {
	return obj{}.add("name", vol.Name).add("driver", "local").add("format", "ext4").
		add("source", "/Users/me/Library/Application Support/com.apple.container/volumes/"+vol.Name+"/volume.img").
		add("labels", obj{}).add("options", obj{}).add("createdAt", c.v.date(vol.Created))
}

// subnetFor returns the /24 vmnet would pick: the lowest 192.168.N.0/24 from
// N = 64 not used by another network.
func subnetFor(s *state, skip string) string {
	for n := 64; n < 255; n++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(n), 0}), 24)
		if p.String() == skip {
			continue
		}
		free := true
		for _, o := range s.Networks {
			if q, err := netip.ParsePrefix(o.Subnet); err == nil && q.Masked().Overlaps(p) {
				free = false
			}
		}
		if free {
			return p.String()
		}
	}
	return "10.250.0.0/24"
}
