package oci

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	"github.com/VerilyPete/claudecontainer/internal/fakes/execsession"
	"github.com/VerilyPete/claudecontainer/internal/flock"
)

// dialect is what differs between the two programs.
type dialect struct {
	program    string
	failCode   int // exit status of a command the daemon or podman refused
	version    string
	defaultNet string
	refused    string // how the message of a refused request starts
}

var (
	podman = dialect{program: "podman", failCode: 125, version: "5.4.2", defaultNet: "podman", refused: "Error: "}
	docker = dialect{program: "docker", failCode: 1, version: "28.2.2", defaultNet: "bridge", refused: "Error response from daemon: "}
)

// noDaemon is what docker says when its daemon is down.
const noDaemon = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"

// PodmanMain is the fake podman.
func PodmanMain() int {
	fakebin.Record()
	return (&fake{dialect: podman}).main(os.Args[1:])
}

// DockerMain is the fake docker.
func DockerMain() int {
	fakebin.Record()
	return (&fake{dialect: docker}).main(os.Args[1:])
}

type fake struct {
	dialect
	dir string
	cmd string // the command running, as usage messages name it
}

func (f *fake) isPodman() bool { return f.program == "podman" }

// pick returns what podman says or what docker says, whichever f is.
func (f *fake) pick(podman, docker string) string {
	if f.isPodman() {
		return podman
	}
	return docker
}

// fail prints msg and returns code.
func (f *fake) fail(code int, format string, args ...any) int {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	return code
}

// refuse reports an error the way the program reports a refused request:
// podman "Error: …" with 125, docker "Error response from daemon: …" with 1.
func (f *fake) refuse(format string, args ...any) int {
	return f.fail(f.failCode, f.refused+format, args...)
}

// usage reports a command line that the running command (f.cmd) does not
// accept, with 125.
func (f *fake) usage(format string, args ...any) int {
	return f.fail(125, f.pick("Error: %s\nSee 'podman %s --help'", "%s\nSee 'docker %s --help'."), fmt.Sprintf(format, args...), f.cmd)
}

// commandKey names the command args run: one word, or two for a group's
// ("network create").
func commandKey(args []string) string {
	switch {
	case len(args) == 0:
		return ""
	case len(args) > 1 && slices.Contains([]string{"network", "image", "container", "volume", "system"}, args[0]):
		return args[0] + " " + args[1]
	}
	return args[0]
}

// injected returns the exit status FailEnv asks for this command, or -1.
func (f *fake) injected(key string) int {
	for _, item := range strings.Split(os.Getenv(FailEnv), ",") {
		name, code, _ := strings.Cut(strings.TrimSpace(item), ":")
		if name == "" || name != key {
			continue
		}
		if n, err := strconv.Atoi(code); err == nil && n > 0 {
			return n
		}
		return f.failCode
	}
	return -1
}

func (f *fake) main(args []string) int {
	key := commandKey(args)
	if code := f.injected(key); code >= 0 {
		return f.fail(code, f.refused+"%s: injected failure (%s)", key, FailEnv)
	}
	if key == "--version" {
		if dir := os.Getenv(StateEnv); dir != "" {
			if w, err := Load(dir); err == nil {
				f.version = cmp.Or(w.Version, f.version)
			}
		}
		fmt.Fprintf(os.Stdout, f.pick("podman version %s\n", "Docker version %s, build e6534b4\n"), f.version)
		return 0
	}
	f.dir = os.Getenv(StateEnv)
	if f.dir == "" {
		return f.fail(2, "fake %s: %s is not set", f.program, StateEnv)
	}
	if key == "exec" {
		return f.exec(args[1:])
	}
	code, err := locked(f.dir, func(w *World) int {
		f.version = cmp.Or(w.Version, f.version)
		if w.DaemonDown && !f.isPodman() && key != "version" {
			return f.fail(1, noDaemon)
		}
		return f.dispatch(w, key, args)
	})
	if err != nil {
		return f.fail(2, "fake %s: %v", f.program, err)
	}
	return code
}

// locked runs fn on the world in dir under the directory's lock, so that
// concurrent fakes see one another's changes whole, and saves the world when
// fn changed it.
func locked[T any](dir string, fn func(w *World) T) (T, error) {
	var zero T
	unlock, err := flock.Lock(context.Background(), filepath.Join(dir, "lock"))
	if err != nil {
		return zero, err
	}
	defer unlock()
	w, err := Load(dir)
	if err != nil {
		return zero, err
	}
	before := fmt.Sprint(w)
	v := fn(&w)
	if fmt.Sprint(w) != before {
		return v, Save(dir, w)
	}
	return v, nil
}

// command is one command the fakes understand: the options it takes and
// what it does.
type command struct {
	flags flagSet
	run   func(f *fake, w *World, p parsed) int
}

// commands are the commands the fakes understand, by the names usage
// messages give them; aliases are their other spellings.
var (
	commands = map[string]command{
		"version":         {flags(false, "format=-f,--format"), (*fake).versionCmd},
		"info":            {flags(false, "format=-f,--format"), (*fake).info},
		"network inspect": {flags(false, "format=-f,--format"), (*fake).networkInspect},
		"network create":  {flags(false, "driver=-d,--driver", "subnet=--subnet", "gateway=--gateway", "ipv6:--ipv6", "internal:--internal"), (*fake).networkCreate},
		"image exists":    {run: (*fake).imageExists}, // podman's only; it takes no options
		"image inspect":   {flags(false, "format=-f,--format"), (*fake).imageInspect},
		"build":           {flags(false, "tag=-t,--tag", "file=-f,--file", "build-arg=--build-arg"), (*fake).build},
		"ps":              {flags(false, "all:-a,--all", "format=--format", "no-trunc:--no-trunc"), (*fake).ps},
		"start":           {flags(false, "attach:-a,--attach", "interactive:-i,--interactive"), (*fake).start},
		"stop":            {flags(false, "time=-t,--time"), (*fake).stop},
		"rm":              {flags(false, "force:-f,--force"), (*fake).rm},
		"run": {flags(true,
			"detach:-d,--detach", "interactive:-i,--interactive", "tty:-t,--tty", "rm:--rm", "init:--init",
			"name=--name", "network=--network,--net", "dns=--dns", "volume=-v,--volume", "memory=-m,--memory",
			"cpus=--cpus", "env=-e,--env", "userns=--userns", "stop-signal=--stop-signal", "hostname=-h,--hostname",
			"workdir=-w,--workdir", "user=-u,--user",
		), (*fake).run},
	}
	aliases = map[string]string{"system info": "info", "container ls": "ps", "container ps": "ps", "container list": "ps"}
)

func (f *fake) dispatch(w *World, key string, args []string) int {
	name := key
	if a, ok := aliases[key]; ok {
		name = a
	}
	c, ok := commands[name]
	if !ok || name == "image exists" && !f.isPodman() {
		return f.fail(f.failCode, f.pick(
			"Error: unrecognized command `podman %s`\nTry 'podman --help' for more information",
			"docker: unknown command: docker %s\n\nRun 'docker --help' for more information"), strings.Join(args, " "))
	}
	f.cmd = name
	p, err := c.flags.parse(args[len(strings.Fields(key)):])
	if err != nil {
		return f.usage("%v", err)
	}
	return c.run(f, w, p)
}

// flagSet names the options a command understands, each "name=-n,--name"
// (it takes a value) or "name:-n,--name" (a switch).
type flagSet struct {
	spec []string
	// stopAtPositional ends option parsing at the first positional argument
	// (run and exec: what follows is the container's command).
	stopAtPositional bool
}

func flags(stop bool, spec ...string) flagSet {
	return flagSet{spec: spec, stopAtPositional: stop}
}

// option returns the name of the option spelled sp and whether it takes a
// value.
func (fs flagSet) option(sp string) (name string, takesValue, ok bool) {
	for _, s := range fs.spec {
		i := strings.IndexAny(s, "=:")
		if slices.Contains(strings.Split(s[i+1:], ","), sp) {
			return s[:i], s[i] == '=', true
		}
	}
	return "", false, false
}

type parsed struct {
	args []string // as given
	opts map[string][]string
	pos  []string
}

func (p parsed) has(name string) bool     { _, ok := p.opts[name]; return ok }
func (p parsed) all(name string) []string { return p.opts[name] }
func (p parsed) last(name string) string {
	if v := p.opts[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (fs flagSet) parse(args []string) (parsed, error) {
	if fs.spec == nil { // no options at all: every argument is positional
		return parsed{args: args, pos: args}, nil
	}
	p := parsed{args: args, opts: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			p.pos = append(p.pos, args[i+1:]...)
			return p, nil
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if fs.stopAtPositional {
				p.pos = append(p.pos, args[i:]...)
				return p, nil
			}
			p.pos = append(p.pos, a)
			continue
		}
		spelling, value, hasValue := strings.Cut(a, "=")
		name, takesValue, ok := fs.option(spelling)
		if !ok && !strings.HasPrefix(a, "--") && len(a) > 2 && !hasValue {
			// Combined switches: -dit.
			for _, c := range a[1:] {
				sw, takes, ok := fs.option("-" + string(c))
				if !ok || takes {
					return p, fmt.Errorf("unknown shorthand flag: '%c' in %s", c, a)
				}
				p.opts[sw] = append(p.opts[sw], "true")
			}
			continue
		}
		switch {
		case !ok:
			return p, fmt.Errorf("unknown flag: %s", spelling)
		case !takesValue && hasValue:
			return p, fmt.Errorf("flag %s takes no value here", spelling)
		case !takesValue:
			value = "true"
		case !hasValue && i+1 < len(args):
			i++
			value = args[i]
		case !hasValue:
			return p, fmt.Errorf("flag needs an argument: %s", spelling)
		}
		p.opts[name] = append(p.opts[name], value)
	}
	return p, nil
}

func id(kind, name string) string {
	sum := sha256.Sum256([]byte(kind + "/" + name))
	return hex.EncodeToString(sum[:])
}

// normRef spells an image reference the way both runtimes compare them.
func normRef(ref string) string {
	for _, p := range []string{"localhost/", "docker.io/library/", "docker.io/"} {
		ref = strings.TrimPrefix(ref, p)
	}
	if !strings.Contains(path.Base(ref), ":") && !strings.Contains(ref, "@") {
		ref += ":latest"
	}
	return ref
}

func (w *World) hasImage(ref string) bool {
	return slices.ContainsFunc(w.Images, func(i string) bool { return normRef(i) == normRef(ref) })
}

// isJSON reports whether a --format asks for JSON.
func isJSON(format string) bool { return format == "json" || format == "{{json .}}" }

func (f *fake) versionCmd(w *World, p parsed) int {
	asJSON := isJSON(p.last("format"))
	switch {
	case f.isPodman() && asJSON:
		fmt.Fprintf(os.Stdout, `{"Client":{"APIVersion":"%s","Version":"%s","GoVersion":"go1.23.6","GitCommit":"","BuiltTime":"Thu Jan  1 00:00:00 1970","Built":0,"OsArch":"linux/amd64","Os":"linux"}}`+"\n", f.version, f.version)
	case f.isPodman():
		fmt.Fprintf(os.Stdout, "Client:       Podman Engine\nVersion:      %s\nAPI Version:  %s\nOS/Arch:      linux/amd64\n", f.version, f.version)
	case asJSON:
		server := "null" // docker prints the client's part without its daemon
		if !w.DaemonDown {
			server = fmt.Sprintf(`{"Platform":{"Name":"Docker Engine - Community"},"Version":"%s","ApiVersion":"1.50","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}`, f.version)
		}
		fmt.Fprintf(os.Stdout, `{"Client":{"Version":"%s","ApiVersion":"1.50","DefaultAPIVersion":"1.50","GitCommit":"e6534b4","GoVersion":"go1.24.3","Os":"linux","Arch":"amd64","BuildTime":"Fri May 30 12:07:14 2025","Context":"default"},"Server":%s}`+"\n", f.version, server)
	default:
		fmt.Fprintf(os.Stdout, "Client: Docker Engine - Community\n Version:           %s\n", f.version)
	}
	if w.DaemonDown && !f.isPodman() {
		return f.fail(1, noDaemon)
	}
	return 0
}

// backend formats podman's network backend with format, or returns "" when
// the world leaves it out.
func backend(w *World, format string) string {
	if w.NetworkBackend == "-" {
		return ""
	}
	return fmt.Sprintf(format, cmp.Or(w.NetworkBackend, "netavark"))
}

func (f *fake) info(w *World, p parsed) int {
	format := p.last("format")
	switch {
	case format != "" && !isJSON(format):
		return f.fail(f.failCode, f.pick("Error: template: info:1: unsupported format %q in the fake",
			"template parsing error: unsupported format %q in the fake"), format)
	case f.isPodman() && format == "":
		fmt.Fprintf(os.Stdout, "host:\n  arch: amd64%s\n  security:\n    rootless: %t\nversion:\n  Version: %s\n", backend(w, "\n  networkBackend: %s"), w.Rootless, f.version)
	case f.isPodman():
		fmt.Fprintf(os.Stdout, `{
  "host": {
    "arch": "amd64",
    "cgroupManager": "systemd",
    "cgroupVersion": "v2",
    "hostname": "fakehost",%s
    "ociRuntime": {"name": "crun", "package": "crun_1.21-1_amd64", "path": "/usr/bin/crun"},
    "os": "linux",
    "security": {
      "apparmorEnabled": false,
      "capabilities": "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_NET_BIND_SERVICE,CAP_SETFCAP,CAP_SETGID,CAP_SETPCAP,CAP_SETUID,CAP_SYS_CHROOT",
      "rootless": %t,
      "seccompEnabled": true,
      "seccompProfilePath": "/usr/share/containers/seccomp.json",
      "selinuxEnabled": false
    }
  },
  "store": {"graphDriverName": "overlay", "graphRoot": "/var/lib/containers/storage"},
  "registries": {},
  "plugins": {"network": ["bridge", "macvlan", "ipvlan"]},
  "version": {"APIVersion": "%s", "Version": "%s", "GoVersion": "go1.23.6", "OsArch": "linux/amd64", "Os": "linux"}
}
`, backend(w, `
    "networkBackend": %q,`), w.Rootless, f.version, f.version)
	case format == "":
		fmt.Fprintf(os.Stdout, "Client: Docker Engine - Community\n Version:    %s\n\nServer:\n Server Version: %s\n", f.version, f.version)
	default:
		opts := `"name=seccomp,profile=builtin","name=cgroupns"`
		if w.Rootless {
			opts += `,"name=rootless"`
		}
		fmt.Fprintf(os.Stdout, `{"ID":"6d3c5f1e-8a2b-4c7d-9e0f-1a2b3c4d5e6f","Containers":%d,"Images":%d,"Driver":"overlay2","CgroupDriver":"systemd","CgroupVersion":"2","KernelVersion":"6.12.0","OperatingSystem":"Debian GNU/Linux 13 (trixie)","OSType":"linux","Architecture":"x86_64","Name":"fakehost","ServerVersion":"%s","SecurityOptions":[%s],"Warnings":null,"ClientInfo":{"Debug":false,"Version":"%s","Context":"default","Plugins":[],"Warnings":null}}`+"\n",
			len(w.Containers), len(w.Images), f.version, opts, f.version)
	}
	return 0
}

// filled returns n with the defaults the runtime would have given it.
func (f *fake) filled(n Network, index int) Network {
	n.ID = cmp.Or(n.ID, id("network", n.Name))
	n.Driver = cmp.Or(n.Driver, "bridge")
	if n.Interface == "" {
		if f.isPodman() {
			n.Interface = fmt.Sprintf("podman%d", index+1)
		} else {
			n.Interface = "br-" + n.ID[:12]
		}
	}
	// A gateway left out is the subnet's first host.
	firstHost := func(gateway *string, subnet string) {
		if p, err := netip.ParsePrefix(subnet); err == nil && *gateway == "" {
			*gateway = p.Masked().Addr().Next().String()
		}
	}
	firstHost(&n.Gateway, n.Subnet)
	firstHost(&n.Gateway6, n.Subnet6)
	return n
}

func quote(s string) string { return strconv.Quote(s) }

func (f *fake) networkJSON(n Network) string {
	if len(n.Raw) > 0 {
		return string(n.Raw)
	}
	var subnets []string
	for _, s := range [][2]string{{n.Subnet, n.Gateway}, {n.Subnet6, n.Gateway6}} {
		if s[0] != "" {
			subnets = append(subnets, fmt.Sprintf(f.pick(`{"subnet": %s, "gateway": %s}`, `{"Subnet": %s, "Gateway": %s}`), quote(s[0]), quote(s[1])))
		}
	}
	if f.isPodman() {
		return fmt.Sprintf(`{
    "name": %s,
    "id": %s,
    "driver": %s,
    "network_interface": %s,
    "created": "2026-01-02T03:04:05.123456789Z",
    "subnets": [%s],
    "ipv6_enabled": %t,
    "internal": %t,
    "dns_enabled": true,
    "ipam_options": {"driver": "host-local"},
    "containers": {}
  }`, quote(n.Name), quote(n.ID), quote(n.Driver), quote(n.Interface), strings.Join(subnets, ", "), n.Subnet6 != "", n.Internal)
	}
	options := "{}"
	if n.Interface != "br-"+n.ID[:min(12, len(n.ID))] {
		options = fmt.Sprintf(`{"com.docker.network.bridge.name": %s}`, quote(n.Interface))
	}
	return fmt.Sprintf(`{
        "Name": %s,
        "Id": %s,
        "Created": "2026-01-02T03:04:05.123456789Z",
        "Scope": "local",
        "Driver": %s,
        "EnableIPv4": true,
        "EnableIPv6": %t,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [%s]
        },
        "Internal": %t,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": %s,
        "Labels": {}
    }`, quote(n.Name), quote(n.ID), quote(n.Driver), n.Subnet6 != "", strings.Join(subnets, ", "), n.Internal, options)
}

func (f *fake) networkInspect(w *World, p parsed) int {
	if p.has("format") {
		return f.usage("the fake does not support --format")
	}
	if len(p.pos) == 0 {
		return f.usage("requires at least 1 arg(s), only received 0")
	}
	var objs []string
	for _, name := range p.pos {
		i := slices.IndexFunc(w.Networks, func(n Network) bool { return n.Name == name })
		if i < 0 {
			if !f.isPodman() {
				fmt.Fprintln(os.Stdout, "[]")
			}
			return f.refuse(f.pick("%[1]s: unable to find network with name or ID %[1]s: network not found", "network %s not found"), name)
		}
		objs = append(objs, f.networkJSON(f.filled(w.Networks[i], i)))
	}
	fmt.Fprintf(os.Stdout, "[\n  %s\n]\n", strings.Join(objs, ",\n  "))
	return 0
}

func (f *fake) networkCreate(w *World, p parsed) int {
	if len(p.pos) != 1 {
		return f.usage("accepts 1 arg(s), received %d", len(p.pos))
	}
	name := p.pos[0]
	if w.hasNetwork(name) {
		return f.refuse(f.pick("network name %s already used: network already exists", "network with name %s already exists"), name)
	}
	if d := p.last("driver"); d != "" && d != "bridge" {
		return f.refuse("unsupported driver %s in the fake", d)
	}
	n := Network{Name: name, Driver: "bridge", Internal: p.has("internal")}
	for _, s := range p.all("subnet") {
		pr, err := netip.ParsePrefix(s)
		if err != nil {
			return f.refuse("invalid subnet %s: %v", s, err)
		}
		if pr != pr.Masked() {
			return f.refuse("invalid subnet %s: it should be %s", s, pr.Masked())
		}
		if pr.Addr().Is4() {
			n.Subnet = s
		} else {
			n.Subnet6 = s
		}
		for _, other := range w.Networks {
			if o, err := netip.ParsePrefix(other.Subnet); err == nil && o.Overlaps(pr) {
				return f.refuse("%s", f.pick(fmt.Sprintf("subnet %s is already used on the host or by another config", s),
					"invalid pool request: Pool overlaps with other one on this address space"))
			}
		}
	}
	n.Subnet = cmp.Or(n.Subnet, f.pick(fmt.Sprintf("10.89.%d.0/24", len(w.Networks)), fmt.Sprintf("172.%d.0.0/16", 18+len(w.Networks))))
	if p.has("ipv6") && n.Subnet6 == "" {
		n.Subnet6 = fmt.Sprintf("fd%02x:a1b2:c3d4::/64", len(w.Networks))
	}
	n.Gateway = p.last("gateway")
	n = f.filled(n, len(w.Networks))
	w.Networks = append(w.Networks, n)
	fmt.Fprintln(os.Stdout, f.pick(name, n.ID))
	return 0
}

func (f *fake) imageExists(w *World, p parsed) int {
	if len(p.pos) != 1 {
		return f.usage("accepts 1 arg(s), received %d", len(p.pos))
	}
	if w.hasImage(p.pos[0]) {
		return 0
	}
	return 1
}

func (f *fake) imageInspect(w *World, p parsed) int {
	if len(p.pos) != 1 {
		return f.usage("the fake inspects exactly one image")
	}
	ref := p.pos[0]
	if !w.hasImage(ref) {
		if !f.isPodman() && !p.has("format") {
			fmt.Fprintln(os.Stdout, "[]")
		}
		return f.refuse("%s", f.pick(ref+": image not known", "No such image: "+normRef(ref)))
	}
	imageID := "sha256:" + id("image", normRef(ref))
	switch p.last("format") {
	case "{{.Id}}", "{{.ID}}":
		fmt.Fprintln(os.Stdout, imageID)
	case "":
		fmt.Fprintf(os.Stdout, "[{\"Id\": %s, \"RepoTags\": [%s]}]\n", quote(imageID), quote(normRef(ref)))
	default:
		return f.usage("unsupported format %q in the fake", p.last("format"))
	}
	return 0
}

func (f *fake) build(w *World, p parsed) int {
	if len(p.pos) != 1 {
		return f.usage("accepts 1 arg(s), received %d", len(p.pos))
	}
	if fi, err := os.Stat(p.pos[0]); err != nil || !fi.IsDir() {
		return f.refuse("stat %s: no such directory", p.pos[0])
	}
	file := cmp.Or(p.last("file"), filepath.Join(p.pos[0], "Dockerfile"))
	if _, err := os.Stat(file); err != nil {
		return f.refuse("no Containerfile or Dockerfile specified or found in context directory, %s: %v", p.pos[0], err)
	}
	for _, a := range p.all("build-arg") {
		if k, _, ok := strings.Cut(a, "="); !ok || k == "" {
			return f.usage("invalid build argument %q", a)
		}
	}
	fmt.Fprintln(os.Stdout, "STEP 1/1: FROM scratch")
	for _, t := range p.all("tag") {
		if !w.hasImage(t) {
			w.Images = append(w.Images, normRef(t))
		}
		fmt.Fprintf(os.Stdout, "Successfully tagged %s\n", normRef(t))
	}
	return 0
}

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func status(state string) string {
	switch state {
	case "running":
		return "Up 2 minutes"
	case "paused":
		return "Up 2 minutes (Paused)"
	case "created":
		return "Created"
	case "exited", "stopped":
		return "Exited (0) 1 minute ago"
	}
	return strings.ToUpper(state[:1]) + state[1:]
}

func (f *fake) ps(w *World, p parsed) int {
	format := p.last("format")
	var shown []Container
	for _, c := range w.Containers {
		up := c.State == "running" || (!f.isPodman() && (c.State == "paused" || c.State == "restarting"))
		if up || p.has("all") {
			shown = append(shown, c)
		}
	}
	switch {
	case format == "":
		fmt.Fprintln(os.Stdout, "CONTAINER ID  IMAGE  COMMAND  CREATED  STATUS  PORTS  NAMES")
		for _, c := range shown {
			fmt.Fprintf(os.Stdout, "%s  %s  /bin/zsh  2 minutes ago  %s    %s\n", c.ID[:12], c.Image, status(c.State), c.Name)
		}
	case f.isPodman() && format == "json":
		var objs []string
		for _, c := range shown {
			objs = append(objs, f.podmanPS(c))
		}
		if len(objs) == 0 {
			fmt.Fprintln(os.Stdout, "[]")
		} else {
			fmt.Fprintf(os.Stdout, "[\n  %s\n]\n", strings.Join(objs, ",\n  "))
		}
	case !f.isPodman() && isJSON(format):
		for _, c := range shown {
			fmt.Fprintln(os.Stdout, f.dockerPS(c))
		}
	default:
		return f.usage("unsupported format %q in the fake", format)
	}
	return 0
}

func jsonList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ",") + "]"
}

func (f *fake) podmanPS(c Container) string {
	exited := c.State == "exited" || c.State == "stopped"
	pid := 0
	if c.State == "running" {
		pid = 4242
	}
	return fmt.Sprintf(`{
    "AutoRemove": false,
    "Command": ["/bin/zsh"],
    "Created": %s,
    "CreatedAt": "2 minutes ago",
    "CIDFile": "",
    "Exited": %t,
    "ExitedAt": %d,
    "ExitCode": 0,
    "Id": %s,
    "Image": %s,
    "ImageID": %s,
    "IsInfra": false,
    "Labels": null,
    "Mounts": ["/workspace"],
    "Names": [%s],
    "Namespaces": {},
    "Networks": %s,
    "Pid": %d,
    "Pod": "",
    "PodName": "",
    "Ports": null,
    "Restarts": 0,
    "Size": null,
    "StartedAt": %d,
    "State": %s,
    "Status": %s
  }`, quote(created.Format(time.RFC3339Nano)), exited, created.Unix()+60, quote(c.ID), quote(c.Image), quote(id("image", normRef(c.Image))),
		quote(c.Name), jsonList(c.Networks), pid, created.Unix(), quote(c.State), quote(status(c.State)))
}

func (f *fake) dockerPS(c Container) string {
	return fmt.Sprintf(`{"Command":"\"/entrypoint.sh /bin/zsh\"","CreatedAt":"2026-01-02 03:04:05 +0000 UTC","ID":%s,"Image":%s,"Labels":"","LocalVolumes":"2","Mounts":"alpine-home,claude-history,/home/user/proj","Names":%s,"Networks":%s,"Ports":"","RunningFor":"2 minutes ago","Size":"0B","State":%s,"Status":%s}`,
		quote(c.ID[:12]), quote(c.Image), quote(c.Name), quote(strings.Join(c.Networks, ",")), quote(c.State), quote(status(c.State)))
}

func (f *fake) run(w *World, p parsed) int {
	if len(p.pos) == 0 {
		return f.usage("requires at least 1 arg(s), only received 0")
	}
	if !p.has("detach") {
		return f.usage("the fake runs containers detached only (-d)")
	}
	image, command := p.pos[0], p.pos[1:]
	name := p.last("name")
	if name == "" {
		return f.usage("the fake needs --name")
	}
	if c, ok := w.Container(name); ok {
		return f.fail(125, f.pick("Error: creating container storage: the container name %q is already in use by %s. You have to remove that container to be able to reuse that name: that name is already in use",
			"docker: Error response from daemon: Conflict. The container name \"/%s\" is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.\n\nRun 'docker run --help' for more information"), name, c.ID)
	}
	if !w.hasImage(image) {
		if f.isPodman() {
			return f.fail(125, "Error: %s: image not known", image)
		}
		return f.fail(125, "Unable to find image '%s' locally\ndocker: Error response from daemon: pull access denied for %s, repository does not exist or may require 'docker login'\n\nRun 'docker run --help' for more information", normRef(image), strings.Split(normRef(image), ":")[0])
	}
	network := p.last("network")
	if network == "" {
		network = f.defaultNet
	} else if !w.hasNetwork(network) {
		return f.fail(125, f.pick("Error: unable to find network with name or ID %s: network not found",
			"docker: Error response from daemon: network %s not found\n\nRun 'docker run --help' for more information"), network)
	}
	for _, d := range p.all("dns") {
		if _, err := netip.ParseAddr(d); err != nil {
			return f.usage("invalid argument %q for \"--dns\" flag: %v", d, err)
		}
	}
	if u := p.last("userns"); u != "" {
		switch {
		case !f.isPodman():
			return f.fail(125, "docker: Error response from daemon: invalid USER namespace mode %q: only host is supported\n\nRun 'docker run --help' for more information", u)
		case u == "keep-id" && !w.Rootless:
			return f.fail(125, "Error: keep-id is only supported in rootless mode")
		}
	}
	if s := p.last("stop-signal"); s != "" && !slices.Contains([]string{"SIGHUP", "HUP", "SIGTERM", "TERM", "SIGINT", "INT", "SIGKILL", "KILL"}, s) {
		return f.usage("invalid signal: %s", s)
	}
	for _, v := range p.all("volume") {
		src, dst, ok := strings.Cut(v, ":")
		if !ok || !strings.HasPrefix(dst, "/") {
			return f.usage("invalid volume specification: %q", v)
		}
		if strings.HasPrefix(src, "/") {
			if _, err := os.Stat(src); err != nil && f.isPodman() {
				return f.fail(125, "Error: statfs %s: no such file or directory", src)
			}
			continue
		}
		if !slices.Contains(w.Volumes, src) {
			w.Volumes = append(w.Volumes, src)
		}
	}
	state := "running"
	if len(command) == 0 && !(p.has("interactive") && p.has("tty")) {
		// The image's default command is an interactive shell: without a
		// terminal and an open standard input it exits at once.
		state = "exited"
	}
	c := Container{Name: name, ID: id("container", name), Image: image, State: state, Networks: []string{network}, Args: p.args, Remove: p.has("rm")}
	w.Containers = append(w.Containers, c)
	fmt.Fprintln(os.Stdout, c.ID)
	return 0
}

func (f *fake) noSuchContainer(name string) int {
	return f.refuse(f.pick("no container with name or ID %q found: no such container", "No such container: %s"), name)
}

// each does what start, stop and rm do to each named container in turn:
// it prints the name when do succeeds and stops at the first failure.
func (f *fake) each(w *World, names []string, do func(name string, c *Container) int) int {
	for _, name := range names {
		c, ok := w.Container(name)
		if !ok {
			return f.noSuchContainer(name)
		}
		if code := do(name, c); code != 0 {
			return code
		}
		fmt.Fprintln(os.Stdout, name)
	}
	return 0
}

func (f *fake) start(w *World, p parsed) int {
	if len(p.pos) == 0 {
		return f.usage("requires at least 1 arg(s), only received 0")
	}
	return f.each(w, p.pos, func(_ string, c *Container) int {
		if c.State == "paused" {
			return f.refuse("cannot start a paused container, try unpause instead")
		}
		c.State = "running"
		return 0
	})
}

func (f *fake) stop(w *World, p parsed) int {
	if t := p.last("time"); t != "" {
		if _, err := strconv.Atoi(t); err != nil {
			return f.usage("invalid argument %q for \"-t, --time\" flag", t)
		}
	}
	if len(p.pos) == 0 {
		return f.usage("requires at least 1 arg(s), only received 0")
	}
	return f.each(w, p.pos, func(_ string, c *Container) int {
		if c.State == "running" || c.State == "paused" {
			c.State = "exited"
		}
		if c.Remove {
			w.remove(c.Name)
		}
		return 0
	})
}

func (f *fake) rm(w *World, p parsed) int {
	return f.each(w, p.pos, func(name string, c *Container) int {
		if c.State == "running" && !p.has("force") {
			return f.refuse("cannot remove container %s as it is running - running or paused containers cannot be removed without force: container state improper", name)
		}
		w.remove(c.Name)
		return 0
	})
}

// exec checks the container under the lock, then, without it, exits with
// ExecCodeEnv's status or, when ExecDirEnv is set, holds a session open.
func (f *fake) exec(args []string) int {
	f.cmd = "exec"
	p, err := flags(true, "interactive:-i,--interactive", "tty:-t,--tty", "detach:-d,--detach",
		"env=-e,--env", "user=-u,--user", "workdir=-w,--workdir").parse(args)
	if err != nil {
		return f.usage("%v", err)
	}
	if len(p.pos) < 2 {
		return f.fail(f.failCode, f.pick("Error: must provide a non-empty command to start an exec session: invalid argument",
			"docker: 'docker exec' requires at least 2 arguments\n\nUsage:  docker exec [OPTIONS] CONTAINER COMMAND [ARG...]"))
	}
	name := p.pos[0]
	code, err := locked(f.dir, func(w *World) int {
		if w.DaemonDown && !f.isPodman() {
			return f.fail(1, noDaemon)
		}
		c, ok := w.Container(name)
		if !ok {
			return f.noSuchContainer(name)
		}
		if c.State != "running" {
			return f.refuse("%s", f.pick("can only create exec sessions on running containers: container state improper", "container "+c.ID+" is not running"))
		}
		return 0
	})
	if err != nil {
		return f.fail(2, "fake %s: %v", f.program, err)
	}
	if code != 0 {
		return code
	}
	dir := os.Getenv(ExecDirEnv)
	if dir == "" {
		return exitCode(os.Getenv(ExecCodeEnv))
	}
	// Stand in for an interactive shell held open by the test (see
	// execsession): it ends with the status the test gives it, or with 137,
	// as a shell killed with its container, when the container stops.
	code, err = execsession.Serve(dir, p.pos[1:], func() bool { return f.running(name) })
	if err != nil {
		return f.fail(2, "fake %s exec: %v", f.program, err)
	}
	return code
}

func exitCode(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// running reports whether the container runs, reading the state under the
// lock; when the state cannot be read it is taken to run.
func (f *fake) running(name string) bool {
	up, err := locked(f.dir, func(w *World) bool {
		c, ok := w.Container(name)
		return ok && c.State == "running"
	})
	return up || err != nil
}
