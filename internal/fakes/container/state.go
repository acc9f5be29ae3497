package container

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
	"github.com/VerilyPete/claudecontainer/internal/flock"
)

// state is everything the fake runtime remembers between calls.
type state struct {
	Service    string // "running", "not running", "unregistered"
	Kernel     bool
	Networks   []*network
	Images     []*image
	Containers []*ctr
	Bridges    map[string]int // network → bridgeNNN index while a container runs on it
	Seq        int            // source of MAC addresses and ids
}

type network struct {
	Name       string
	Mode       string // "nat" or "hostOnly"
	Configured string // --subnet as given; "" when vmnet chose
	Subnet     string // as reported in status
	Subnet6    string // "" without IPv6
	Labels     map[string]string
	Created    time.Time
	NextHost   int // rotating allocator: next host number to hand out
}

type image struct {
	Ref        string // normalised
	Digest     string // sha256:…
	Size       int64
	Created    time.Time
	Entrypoint []string
	Cmd        []string
}

type ctr struct {
	ID          string
	Image       string
	ImageDigest string
	ImageSize   int64
	Status      string // running, stopped
	Networks    []string
	Attach      []attachment
	Mounts      []mount
	Env         []string
	Executable  string
	Args        []string
	Workdir     string
	Terminal    bool
	CPUs        int
	Memory      int64
	DNS         []string
	DNSDomain   string
	Labels      map[string]string
	Remove      bool
	Created     time.Time
	Started     time.Time

	// While `run` makes it: the entrypoint and command it was given (not
	// kept in the state).
	entry, command []string
}

type attachment struct {
	Network, Hostname, Address, Gateway, Address6, MAC string
}

type mount struct {
	Volume      string // named volume; "" for a host directory
	Source      string
	Destination string
	ReadOnly    bool
}

// locked runs f with the state loaded and, when f returns true, saves it.
// An exclusive lock on DIR/lock serialises concurrent calls of the fakes.
func (c *cli) locked(f func(s *state) (save bool, e *exit)) *exit {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fail("fake state: %v", err)
	}
	unlock, err := flock.Lock(context.Background(), filepath.Join(c.dir, "lock"))
	if err != nil {
		return fail("fake state: %v", err)
	}
	defer unlock()
	// Without a state yet, the initial one is saved (and dated) by this call.
	b, err := os.ReadFile(filepath.Join(c.dir, "state.json"))
	fresh := os.IsNotExist(err)
	s := &state{Bridges: map[string]int{}}
	if fresh {
		s, err = c.initial(), nil
	} else if err == nil {
		err = json.Unmarshal(b, s)
	}
	if err != nil {
		return fail("fake state: %v", err)
	}
	save, e := f(s)
	if save || fresh {
		b, err := json.MarshalIndent(s, "", "  ")
		if err == nil {
			err = atomicfile.Write(filepath.Join(c.dir, "state.json"), b, 0o644)
		}
		if err != nil {
			return fail("fake state: %v", err)
		}
	}
	return e
}

// snapshot loads the state for reading without keeping the lock.
func (c *cli) snapshot() (s *state, e *exit) {
	e = c.locked(func(st *state) (bool, *exit) { s = st; return false, nil })
	return s, e
}

// initial is a freshly installed runtime: the default network and the
// images of FAKE_CONTAINER_IMAGES.
func (c *cli) initial() *state {
	s := &state{Service: "running", Kernel: true, Bridges: map[string]int{}}
	switch v := os.Getenv(EnvService); v {
	case "not running", "unregistered":
		s.Service = v
	}
	if os.Getenv(EnvKernel) == "missing" {
		s.Kernel = false
	}
	def := &network{Name: "default", Mode: "nat", Subnet: "192.168.64.0/24",
		Labels: map[string]string{"com.apple.container.resource.role": "builtin"}, Created: now(), NextHost: 2}
	if c.macos == 15 {
		def.Subnet = "192.168.64.1/24"
	} else {
		def.Subnet6 = "fd5e:9a3b:1c2d:4e5f::/64"
	}
	s.Networks = []*network{def}
	for _, ref := range strings.Split(os.Getenv(EnvImages), ",") {
		if ref = strings.TrimSpace(ref); ref != "" {
			s.addImage(normalize(ref), []string{"/bin/sh"}, nil)
		}
	}
	return s
}

func (s *state) next() int { s.Seq++; return s.Seq }

func (s *state) addImage(ref string, cmd, entrypoint []string) {
	n := s.next()
	img := &image{Ref: ref, Digest: fmt.Sprintf("sha256:%064x", 0xc0ffee00+n), Size: int64(4000000 + 1000*n),
		Created: now(), Cmd: cmd, Entrypoint: entrypoint}
	if i := slices.IndexFunc(s.Images, func(old *image) bool { return old.Ref == ref }); i >= 0 {
		s.Images[i] = img
	} else {
		s.Images = append(s.Images, img)
	}
}

func (s *state) image(ref string) *image {
	return find(s.Images, func(img *image) bool { return img.Ref == ref })
}

func (s *state) network(name string) *network {
	return find(s.Networks, func(n *network) bool { return n.Name == name })
}

func (s *state) container(id string) *ctr {
	return find(s.Containers, func(c *ctr) bool { return c.ID == id })
}

// find returns the first item that matches, or nil.
func find[T any](items []*T, match func(*T) bool) *T {
	if i := slices.IndexFunc(items, match); i >= 0 {
		return items[i]
	}
	return nil
}

// running returns the running containers; with a network, those attached
// to it.
func (s *state) running(network string) []*ctr {
	var list []*ctr
	for _, c := range s.Containers {
		if c.Status == "running" && (network == "" || slices.Contains(c.Networks, network)) {
			list = append(list, c)
		}
	}
	return list
}

// overlapping returns a network whose subnet overlaps p, or nil.
func (s *state) overlapping(p netip.Prefix) *network {
	return find(s.Networks, func(o *network) bool {
		q, err := netip.ParsePrefix(o.Subnet)
		return err == nil && q.Masked().Overlaps(p)
	})
}

// subnetFor returns the /24 vmnet would pick: the lowest 192.168.N.0/24 from
// N = 64 not used by another network.
func subnetFor(s *state, skip string) string {
	for n := 64; n < 255; n++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(n), 0}), 24)
		if p.String() != skip && s.overlapping(p) == nil {
			return p.String()
		}
	}
	return "10.250.0.0/24"
}

// gateway is the first host of the network's subnet.
func (n *network) gateway() netip.Addr {
	p, _ := netip.ParsePrefix(n.Subnet)
	return p.Masked().Addr().Next()
}

// allocate hands out the next address, rotating through lower+2 … upper-2
// as apple/container's allocator does.
func (n *network) allocate() netip.Prefix {
	p, _ := netip.ParsePrefix(n.Subnet)
	p = p.Masked()
	size := 1<<(32-p.Bits()) - 4 // lower+2 … upper-2
	if n.NextHost < 2 || n.NextHost >= 2+size {
		n.NextHost = 2
	}
	a := p.Addr()
	for i := 0; i < n.NextHost; i++ {
		a = a.Next()
	}
	n.NextHost++
	return netip.PrefixFrom(a, p.Bits())
}

// start marks a container running and attaches it to its networks.
func (s *state) start(c *ctr) {
	c.Status = "running"
	c.Started = now()
	c.Attach = nil
	for _, name := range c.Networks {
		n := s.network(name)
		if n == nil {
			continue
		}
		seq := s.next()
		mac := fmt.Sprintf("f2:%02x:%02x:%02x:%02x:%02x", byte(seq>>24), byte(seq>>16)^0x61, byte(seq>>8)^0x5e, byte(seq)^0xf2, 0x7e)
		c.Attach = append(c.Attach, attachment{Network: name, Hostname: c.ID, Address: n.allocate().String(),
			Gateway: n.gateway().String(), Address6: eui64(n.Subnet6, mac), MAC: mac})
		if _, ok := s.Bridges[name]; !ok {
			s.Bridges[name] = s.freeBridge()
		}
	}
}

// stop marks a container stopped, detaches it, and removes the bridges no
// running container uses any more (their index is reused later).
func (s *state) stop(c *ctr) {
	c.Status = "stopped"
	c.Attach = nil
	for name := range s.Bridges {
		if len(s.running(name)) == 0 {
			delete(s.Bridges, name)
		}
	}
	if c.Remove {
		s.remove(c.ID)
	}
}

func (s *state) remove(id string) {
	s.Containers = slices.DeleteFunc(s.Containers, func(o *ctr) bool { return o.ID == id })
}

func (s *state) freeBridge() int {
	used := slices.Collect(maps.Values(s.Bridges))
	i := 100
	for slices.Contains(used, i) {
		i++
	}
	return i
}

// eui64 is the network's /64 prefix plus the MAC's modified EUI-64, or ""
// for a network without IPv6.
func eui64(prefix, mac string) string {
	p, err := netip.ParsePrefix(prefix)
	if err != nil {
		return ""
	}
	var m [6]byte
	fmt.Sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5])
	b := p.Masked().Addr().As16()
	copy(b[8:], []byte{m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]})
	return netip.PrefixFrom(netip.AddrFrom16(b), 64).String()
}

// normalize writes an image reference as the runtime lists it.
func normalize(ref string) string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	tag := ""
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag = name[:i], name[i+1:]
	}
	parts := strings.Split(name, "/")
	if len(parts) == 1 {
		name = "docker.io/library/" + name
	} else if !strings.ContainsAny(parts[0], ".:") && parts[0] != "localhost" {
		name = "docker.io/" + name
	}
	if tag == "" && !hasDigest {
		tag = "latest"
	}
	if tag != "" {
		name += ":" + tag
	}
	if hasDigest {
		name += "@" + digest
	}
	return name
}
