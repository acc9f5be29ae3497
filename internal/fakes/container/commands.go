package container

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/fakes/execsession"
)

var (
	networkNameRE   = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9._-]{0,61}[a-z0-9])?$`)
	containerNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	volumeNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	// A size as Measurement.parse reads it
	// (1.2.2:Sources/ContainerPersistence/Measurement+Parse.swift): a number,
	// then an optional unit b, k, m, g, t or p, optionally followed by "b" or
	// "ib", in any case. Without a unit the number is bytes.
	memoryRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]*)?)\s*(?:([bkmgtp])(?:i?b)?)?$`)
)

const xpcDown = "interrupted: \"XPC connection error: Connection invalid\"\n" +
	"Ensure container system service has been started with `container system start`."

const noKernel = `notFound: "default kernel not configured for architecture arm64, please use the ` +
	"`container system kernel set` command to configure it\""

// aliases maps alternative command names to canonical ones.
var aliases = map[string]string{"ls": "list", "rm": "delete", "i": "image", "images": "image", "n": "network", "s": "system"}

func canon(word string) string { return cmp.Or(aliases[word], word) }

func (c *cli) out(b []byte) { c.stdout.Write(b); c.stdout.Write([]byte("\n")) }

// command is how a command runs: its options, parsed before run is called,
// and its number of positional arguments after which the rest is kept as is
// (0: none). A raw command takes its arguments unparsed, and ignores them.
type command struct {
	flags       []flag
	passthrough int
	raw         bool
	run         func(c *cli, p parsed) *exit
}

// commands maps each command, by its canonical path, to how it runs.
var commands = map[string]command{
	"system start":   {flags: systemStartFlags, run: (*cli).systemStart},
	"system stop":    {raw: true, run: (*cli).systemStop},
	"system status":  {flags: []flag{valueFlag("--format"), valueFlag("-p", "--prefix")}, run: (*cli).systemStatus},
	"network list":   {flags: formatFlags, run: (*cli).networkList},
	"network create": {flags: networkCreateFlags, run: (*cli).networkCreate},
	"network delete": {run: (*cli).networkDelete},
	"image list":     {flags: append([]flag{boolFlag("-v", "--verbose")}, formatFlags...), run: (*cli).imageList},
	"build":          {flags: buildFlags, run: (*cli).build},
	"run":            {flags: runFlags, passthrough: 1, run: func(c *cli, p parsed) *exit { return c.run("run", p) }},
	"create":         {flags: runFlags, passthrough: 1, run: func(c *cli, p parsed) *exit { return c.run("create", p) }},
	"list":           {flags: append([]flag{boolFlag("-a", "--all")}, formatFlags...), run: (*cli).listContainers},
	"start":          {flags: []flag{boolFlag("-a", "--attach"), boolFlag("-i", "--interactive")}, run: (*cli).startContainer},
	"stop":           {flags: []flag{boolFlag("-a", "--all"), valueFlag("-s", "--signal"), valueFlag("-t", "--time")}, run: (*cli).stopContainers},
	"delete":         {flags: []flag{boolFlag("-f", "--force"), boolFlag("-a", "--all")}, run: (*cli).deleteContainers},
	"exec":           {flags: execFlags, passthrough: 1, run: (*cli).exec},
}

func (c *cli) dispatch(args []string) *exit {
	if len(args) == 0 {
		fmt.Fprintln(c.stdout, "OVERVIEW: A container platform for macOS")
		return nil
	}
	if args[0] == "--version" {
		fmt.Fprintf(c.stdout, "container CLI version %s (build: release, commit: %s)\n", c.v.raw, c.commit())
		return nil
	}
	cmd := canon(args[0])
	rest := args[1:]
	group := ""
	switch cmd {
	case "network", "image", "system":
		group = cmd
		if cmd == "network" && c.macos == 15 {
			// Not registered before macOS 26 (Application.swift), so the
			// word is taken for a plugin's name.
			return pluginNotFound(args[0])
		}
		if len(rest) == 0 {
			return usage(cmd, "Missing subcommand")
		}
		cmd, rest = cmd+" "+canon(rest[0]), rest[1:]
	}
	if e := injected(cmd); e != nil {
		return e
	}
	if group != "system" { // every other command needs the service
		if s, e := c.snapshot(); e == nil && s.Service != "running" {
			return fail("%s", xpcDown)
		}
	}
	if command, ok := commands[cmd]; ok {
		p := parsed{args: rest}
		if !command.raw {
			var e *exit
			if p, e = c.parseFlags(cmd, rest, command.flags, command.passthrough); e != nil {
				return e
			}
		}
		return command.run(c, p)
	}
	if group != "" {
		path := strings.SplitN(cmd, " ", 2)
		return usage(path[0], "Unexpected argument '%s'", path[1])
	}
	return pluginNotFound(args[0])
}

// pluginNotFound is DefaultCommand's answer to a word that is neither a
// command nor an installed plugin (1.0.0 to 1.2.2:
// Sources/ContainerCommands/DefaultCommand.swift, run), a ValidationError.
// The paths are those of an install under /usr/local.
func pluginNotFound(word string) *exit {
	return &exit{code: 64, msg: fmt.Sprintf("Plugin 'container-%s' not found.\n\n"+
		"- If system services are not running, start them with: container system start\n"+
		"- If the plugin isn't installed, ensure it exists under:\n\n"+
		"Check to see that the plugin exists under:\n"+
		"  - /usr/local/libexec/container-plugins/%s\n"+
		"  - /usr/local/libexec/container/plugins/%s\n", word, word, word)}
}

// ---- system ----

func (c *cli) systemStart(p parsed) *exit {
	fmt.Fprintln(c.stdout, "Verifying apiserver is running...")
	return c.locked(func(s *state) (bool, *exit) {
		if s.Service != "running" {
			s.Service = "running"
			if os.Getenv(EnvDrift) == "1" && c.macos == 26 {
				for _, n := range s.Networks {
					if n.Configured == "" && n.Name != "default" {
						n.Subnet = subnetFor(s, n.Subnet)
					}
				}
			}
		}
		if s.Kernel {
			return true, nil
		}
		switch {
		case p.has("--enable-kernel-install"):
		case p.has("--disable-kernel-install"):
			return true, nil
		default:
			fmt.Fprintln(c.stdout, "No default kernel configured.")
			fmt.Fprint(c.stdout, "Install the recommended default kernel from [https://github.com/kata-containers/kata-containers/releases/download/3.17.0/kata-static-3.17.0-arm64.tar.xz]? [Y/n]: ")
			line, err := bufio.NewReader(c.stdin).ReadString('\n')
			if err != nil && line == "" {
				return true, fail(`internalError: "Failed to read user input"`)
			}
			if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "" {
				fmt.Fprintln(c.stdout, "Please use the `container system kernel set --recommended` command to configure the default kernel")
				return true, nil
			}
		}
		fmt.Fprintln(c.stdout, "Installing kernel...")
		s.Kernel = true
		return true, nil
	})
}

func (c *cli) systemStop(parsed) *exit {
	return c.locked(func(s *state) (bool, *exit) {
		for _, ct := range s.running("") {
			s.stop(ct)
		}
		s.Service = "unregistered"
		return true, nil
	})
}

func (c *cli) systemStatus(p parsed) *exit {
	s, e := c.snapshot()
	if e != nil {
		return e
	}
	if p.last("--format") == "json" {
		c.out(c.statusJSON(s))
	} else {
		switch s.Service {
		case "running": // a FIELD/VALUE table; the fake prints its first rows
			fmt.Fprintf(c.stdout, "FIELD   VALUE\nstatus  running\n")
		case "unregistered":
			fmt.Fprintln(c.stdout, "apiserver is not running and not registered with launchd")
		default:
			fmt.Fprintln(c.stdout, "apiserver is not running")
		}
	}
	if s.Service != "running" {
		return &exit{code: 1}
	}
	return nil
}

// ---- networks ----

func (c *cli) networkList(p parsed) *exit {
	s, e := c.snapshot()
	if e != nil {
		return e
	}
	list(c, p, s.Networks, c.networkJSON, "%-16s%-10s%s\n", []any{"NETWORK", "STATE", "SUBNET"},
		func(n *network) []any { return []any{n.Name, "running", n.Subnet} })
	return nil
}

func (c *cli) networkCreate(p parsed) *exit {
	if len(p.args) != 1 {
		return usage("network create", "Missing expected argument '<name>'")
	}
	name := p.args[0]
	if !networkNameRE.MatchString(name) {
		return fail("invalid network name: %s", name)
	}
	if name == "none" {
		return fail("network name none is reserved")
	}
	configured := p.last("--subnet")
	want, err := netip.ParsePrefix(configured)
	if configured != "" && (err != nil || !want.Addr().Is4()) {
		return usage("network create", "The value '%s' is invalid for '--subnet <subnet>'", configured)
	}
	return c.locked(func(s *state) (bool, *exit) {
		if s.network(name) != nil {
			return false, fail("network %s already exists", name)
		}
		n := &network{Name: name, Mode: "nat", Labels: map[string]string{}, Created: now(), NextHost: 2}
		if p.has("--internal") {
			n.Mode = "hostOnly"
		}
		for _, l := range p.opts["--label"] {
			k, v, _ := strings.Cut(l, "=")
			n.Labels[k] = v
		}
		if configured != "" {
			if o := s.overlapping(want.Masked()); o != nil {
				return false, fail("IPv4 subnet %s overlaps an existing network with subnet %s", configured, o.Subnet)
			}
			n.Configured = configured
			n.Subnet = want.Masked().String()
		} else {
			n.Subnet = subnetFor(s, "")
		}
		if c.macos == 26 {
			n.Subnet6 = fmt.Sprintf("fd12:3456:789a:%x::/64", len(s.Networks))
			if v6 := p.last("--subnet-v6"); v6 != "" {
				n.Subnet6 = v6
			}
		}
		s.Networks = append(s.Networks, n)
		fmt.Fprintln(c.stdout, name)
		return true, nil
	})
}

func (c *cli) networkDelete(p parsed) *exit {
	return c.locked(func(s *state) (bool, *exit) {
		for _, name := range p.args {
			if name == "default" {
				return false, fail("cannot delete builtin network: default")
			}
			n := s.network(name)
			if n == nil {
				return false, fail("network %s not found", name)
			}
			if attached := s.running(name); len(attached) > 0 {
				return false, fail("cannot delete network %s: container %s is attached", name, attached[0].ID)
			}
			s.Networks = slices.DeleteFunc(s.Networks, func(o *network) bool { return o == n })
			fmt.Fprintln(c.stdout, name)
		}
		return true, nil
	})
}

// ---- images ----

func (c *cli) imageList(p parsed) *exit {
	if p.last("--format") == "json" && (p.has("-q") || p.has("-v")) {
		return usage("image list", "Cannot use flag --quiet or --verbose along with --format json")
	}
	s, e := c.snapshot()
	if e != nil {
		return e
	}
	list(c, p, s.Images, c.imageJSON, "%-40s%-10s%s\n", []any{"NAME", "TAG", "DIGEST"}, func(img *image) []any {
		name, tag, _ := strings.Cut(strings.TrimPrefix(img.Ref, "docker.io/library/"), ":")
		return []any{name, tag, strings.TrimPrefix(img.Digest, "sha256:")[:12]}
	})
	return nil
}

func (c *cli) build(p parsed) *exit {
	dir := "."
	if len(p.args) > 0 {
		dir = p.args[0]
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fail("context directory %s does not exist", dir)
	}
	file := p.last("-f")
	if file == "" {
		file = filepath.Join(dir, "Dockerfile")
		if _, err := os.Stat(file); err != nil {
			file = filepath.Join(dir, "Containerfile")
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return fail("failed to read dockerfile %s: no such file", file)
	}
	if len(data) >= 16*1024 {
		return fail("dockerfile %s is %d bytes; the maximum is 16 KiB", file, len(data))
	}
	for _, a := range p.opts["--build-arg"] {
		if k, _, _ := strings.Cut(a, "="); k == "" {
			return fail("invalid build argument: %s", a)
		}
	}
	entrypoint, cmd := dockerfileCommands(string(data))
	return c.locked(func(s *state) (bool, *exit) {
		if !s.Kernel {
			return false, fail("%s", noKernel)
		}
		c.ensureBuilder(s)
		fmt.Fprintf(c.stderr, "[+] Building 1.0s (3/3) FINISHED\n => [internal] load build definition from %s\n => exporting to oci image format\n", filepath.Base(file))
		tags := p.opts["-t"]
		if len(tags) == 0 {
			tags = []string{fmt.Sprintf("sha256:%064x", s.next())}
		}
		for _, t := range tags {
			s.addImage(normalize(t), cmd, entrypoint)
			fmt.Fprintf(c.stdout, "Successfully built %s\n", t)
		}
		return true, nil
	})
}

// ensureBuilder starts the BuildKit builder container, which every build
// runs in; it shows up in `container ls` as "buildkit" on the default network.
func (c *cli) ensureBuilder(s *state) {
	b := s.container("buildkit")
	if b == nil {
		b = &ctr{ID: "buildkit", Image: "ghcr.io/apple/container-builder-shim/builder:0.6.1",
			ImageDigest: fmt.Sprintf("sha256:%064x", 0xb1d), ImageSize: 4212, Networks: []string{"default"},
			Executable: "/usr/local/bin/container-builder-shim", Args: []string{"--debug", "--vsock"},
			Workdir: "/", CPUs: 2, Memory: 2 << 30, Created: now()}
		s.Containers = append(s.Containers, b)
	}
	if b.Status != "running" {
		s.start(b)
	}
}

// dockerfileCommands reads the last ENTRYPOINT and CMD of a Dockerfile.
func dockerfileCommands(df string) (entrypoint, cmd []string) {
	// The exec form is a JSON array of strings, anything else the shell form.
	parse := func(rest string) []string {
		var words []string
		if err := json.Unmarshal([]byte(rest), &words); err != nil {
			return []string{"/bin/sh", "-c", strings.TrimSpace(rest)}
		}
		if len(words) == 0 {
			return nil
		}
		return words
	}
	for _, line := range strings.Split(df, "\n") {
		word, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(word) {
		case "ENTRYPOINT":
			entrypoint = parse(rest)
		case "CMD":
			cmd = parse(rest)
		case "FROM":
			entrypoint, cmd = nil, nil
		}
	}
	if entrypoint == nil && cmd == nil {
		cmd = []string{"/bin/sh"}
	}
	return entrypoint, cmd
}

// ---- containers ----

// run runs `run` or `create` (path), which makes the container without
// starting it.
func (c *cli) run(path string, p parsed) *exit {
	start := path == "run"
	ct, e := c.newCtr(path, p)
	if e != nil {
		return e
	}
	foreground := false
	e = c.locked(func(s *state) (bool, *exit) {
		if e := c.admit(s, ct, p); e != nil {
			return false, e
		}
		s.Containers = append(s.Containers, ct)
		if !start {
			fmt.Fprintln(c.stdout, ct.ID)
			return true, nil
		}
		s.start(ct)
		if exitsAtOnce(ct.entry, ct.command, ct.Terminal) {
			s.stop(ct)
		}
		if p.has("-d") {
			fmt.Fprintln(c.stdout, ct.ID)
		} else {
			foreground = ct.Status == "running"
		}
		return true, nil
	})
	if e != nil || !foreground {
		return e
	}
	// Attached: the process runs on this terminal until it ends, and the
	// container stops with it.
	e = c.session(ct.ID, append([]string{ct.Executable}, ct.Args...))
	c.locked(func(s *state) (bool, *exit) {
		if ct := s.container(ct.ID); ct != nil && ct.Status == "running" {
			s.stop(ct)
		}
		return true, nil
	})
	return e
}

// newCtr makes the container `run` or `create` (path) asks for with the
// flags and arguments p, before anything is checked against the state.
func (c *cli) newCtr(path string, p parsed) (*ctr, *exit) {
	if len(p.args) == 0 {
		return nil, usage(path, "Missing expected argument '<image>'")
	}
	id := cmp.Or(p.last("--name"), fmt.Sprintf("%08x-0000-4000-8000-%012x", time.Now().UnixNano()&0xffffffff, os.Getpid()))
	if !containerNameRE.MatchString(id) || (c.v.atLeast(1, 1, 0) && len(id) > 63) {
		return nil, fail("invalid container name %s", id)
	}
	ct := &ctr{ID: id, Image: normalize(p.args[0]), Status: "stopped", CPUs: 4, Memory: 1 << 30, Workdir: cmp.Or(p.last("-w"), "/"),
		Terminal: p.has("-t"), Remove: p.has("--rm"), DNS: p.opts["--dns"], Labels: map[string]string{},
		DNSDomain: p.last("--dns-domain"), Created: now(),
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	if m := p.last("-m"); m != "" {
		n, ok := memoryBytes(m)
		if !ok {
			return nil, fail("invalid size")
		}
		ct.Memory = n
	}
	if cpus := p.last("-c"); cpus != "" {
		n, err := strconv.Atoi(cpus)
		if err != nil || n < 1 {
			return nil, usage(path, "The value '%s' is invalid for '-c <cpus>'", cpus)
		}
		ct.CPUs = n
	}
	for _, kv := range p.opts["-e"] {
		if !strings.Contains(kv, "=") {
			kv += "=" + os.Getenv(kv)
		}
		ct.Env = append(ct.Env, kv)
	}
	for _, l := range p.opts["-l"] {
		k, v, _ := strings.Cut(l, "=")
		ct.Labels[k] = v
	}
	for _, n := range p.opts["--network"] {
		name, _, _ := strings.Cut(n, ",") // NAME[,mac=…]
		ct.Networks = append(ct.Networks, name)
	}
	if ct.Networks == nil {
		ct.Networks = []string{"default"}
	}
	return ct, nil
}

// admit checks the new container ct against the state as the service
// does, and completes it from its image: mounts, entrypoint and command.
func (c *cli) admit(s *state, ct *ctr, p parsed) *exit {
	if !s.Kernel {
		return fail("%s", noKernel)
	}
	if s.container(ct.ID) != nil {
		return fail("container with id %s already exists", ct.ID)
	}
	img := s.image(ct.Image)
	if img == nil {
		return fail(`notFound: "image %s not found in the local store and it could not be pulled"`, ct.Image)
	}
	ct.ImageDigest, ct.ImageSize = img.Digest, 9218
	// 1.2.2:Sources/Services/ContainerAPIService/Server/Containers/ContainersService.swift, create.
	if ct.Memory < 200<<20 {
		return fail("invalidArgument: \"minimum memory amount allowed is 200 MiB (got %d bytes)\"", ct.Memory)
	}
	for _, n := range ct.Networks {
		if c.macos == 15 && n != "default" {
			return fail("non-default network configuration requires macOS 26 or newer")
		}
		if s.network(n) == nil {
			return fail(`notFound: "network %s not found"`, n)
		}
	}
	for _, spec := range p.opts["-v"] {
		m, e := parseVolume(spec)
		if e != nil {
			return e
		}
		ct.Mounts = append(ct.Mounts, m)
	}
	ct.entry, ct.command = img.Entrypoint, img.Cmd
	if ep := p.last("--entrypoint"); ep != "" {
		ct.entry = []string{ep}
	}
	if len(p.args) > 1 {
		ct.command = p.args[1:]
	}
	argv := append(append([]string(nil), ct.entry...), ct.command...)
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
	}
	ct.Executable, ct.Args = argv[0], argv[1:]
	return nil
}

// exitsAtOnce reports whether the container's process ends as soon as it
// starts: a bare shell without a terminal reads end-of-file and exits. An
// entrypoint is taken to exec its arguments ("$@") when it has some.
func exitsAtOnce(entrypoint, command []string, tty bool) bool {
	final := command
	if len(final) == 0 {
		final = entrypoint
	}
	shells := []string{"sh", "bash", "zsh", "ash", "dash", "ksh", "fish"}
	return len(final) == 1 && !tty && slices.Contains(shells, filepath.Base(final[0]))
}

// memoryBytes is what `--memory` asks for: the size in whole MiB, as
// Parser.resources keeps it (memoryStringAsMiB truncates, then .mib()), so
// "4096", 4096 bytes, comes out as 0.
func memoryBytes(s string) (int64, bool) {
	m := memoryRE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50}[m[2]]
	return int64(n*float64(uint64(1)<<shift)) >> 20 << 20, true
}

// parseVolume reads a -v SRC:DST[:opts]: a source with a '/' (or . or ..)
// is a host path that must exist, anything else a named volume, created
// when missing.
func parseVolume(spec string) (m mount, e *exit) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[1] == "" {
		return m, fail("invalid volume specification %s", spec)
	}
	src, dst := parts[0], parts[1]
	m = mount{Source: src, Destination: dst, ReadOnly: len(parts) == 3 && parts[2] == "ro"}
	if strings.Contains(src, "/") || src == "." || src == ".." {
		if _, err := os.Stat(src); err != nil {
			return m, fail("path '%s' does not exist", src)
		}
		return m, nil
	}
	if !volumeNameRE.MatchString(src) {
		return m, fail("invalid volume name '%s'", src)
	}
	m.Volume = src
	m.Source = "/Users/me/Library/Application Support/com.apple.container/volumes/" + src + "/volume.img"
	return m, nil
}

func (c *cli) listContainers(p parsed) *exit {
	s, e := c.snapshot()
	if e != nil {
		return e
	}
	shown := s.running("")
	if p.has("-a") {
		shown = s.Containers
	}
	if p.has("-q") && p.last("--format") != "json" {
		for _, ct := range shown {
			fmt.Fprintln(c.stdout, ct.ID)
		}
		return nil
	}
	list(c, p, shown, c.containerJSON, "%-16s%-40s%-6s%-6s%-9s%s\n", []any{"ID", "IMAGE", "OS", "ARCH", "STATE", "ADDR"}, func(ct *ctr) []any {
		addr := ""
		if len(ct.Attach) > 0 {
			addr = ct.Attach[0].Address
		}
		return []any{ct.ID, ct.Image, "linux", "arm64", ct.Status, addr}
	})
	return nil
}

func (c *cli) startContainer(p parsed) *exit {
	if len(p.args) != 1 {
		return usage("start", "Missing expected argument '<container-id>'")
	}
	id := p.args[0]
	return c.locked(func(s *state) (bool, *exit) {
		ct := s.container(id)
		if ct == nil {
			return false, fail(`notFound: "container %s not found"`, id)
		}
		if ct.Status != "running" {
			s.start(ct)
			if exitsAtOnce(nil, append([]string{ct.Executable}, ct.Args...), ct.Terminal) {
				s.stop(ct)
			}
		}
		fmt.Fprintln(c.stdout, id)
		return true, nil
	})
}

// targets returns the containers named in p, or with -a (--all) the ids of
// all.
func targets(p parsed, all []*ctr) []string {
	if !p.has("-a") {
		return p.args
	}
	var ids []string
	for _, ct := range all {
		ids = append(ids, ct.ID)
	}
	return ids
}

func (c *cli) stopContainers(p parsed) *exit {
	return c.locked(func(s *state) (bool, *exit) {
		for _, id := range targets(p, s.running("")) {
			ct := s.container(id)
			if ct == nil {
				return true, fail(`notFound: "container %s not found"`, id)
			}
			if ct.Status == "running" {
				s.stop(ct)
			}
			fmt.Fprintln(c.stdout, id)
		}
		return true, nil
	})
}

func (c *cli) deleteContainers(p parsed) *exit {
	return c.locked(func(s *state) (bool, *exit) {
		var failed []string
		for _, id := range targets(p, s.Containers) {
			ct := s.container(id)
			switch {
			case ct == nil:
				failed = append(failed, fmt.Sprintf("container %s not found", id))
			case ct.Status == "running" && !p.has("-f"):
				failed = append(failed, fmt.Sprintf("container %s is running; stop it first or use --force", id))
			default:
				if ct.Status == "running" {
					ct.Remove = false
					s.stop(ct)
				}
				s.remove(id)
				fmt.Fprintln(c.stdout, id)
			}
		}
		if failed != nil {
			return true, fail("%s", strings.Join(failed, "\n"))
		}
		return true, nil
	})
}

// ---- exec ----

func (c *cli) exec(p parsed) *exit {
	if len(p.args) < 2 {
		return usage("exec", "Missing expected argument '<arguments> ...'")
	}
	id, argv := p.args[0], p.args[1:]
	s, e := c.snapshot()
	if e != nil {
		return e
	}
	ct := s.container(id)
	if ct == nil {
		return fail("get failed: container %s not found", id)
	}
	if ct.Status != "running" {
		return fail("container %s is not running", id)
	}
	if p.has("-d") {
		return nil
	}
	return c.session(id, argv)
}

// session stands in for an interactive process in the container.
func (c *cli) session(id string, argv []string) *exit {
	dir := os.Getenv(EnvExecDir)
	if dir == "" {
		fmt.Fprintf(c.stdout, "fake exec in %s: %s\n", id, strings.Join(argv, " "))
		code, _ := strconv.Atoi(strings.TrimSpace(os.Getenv(EnvExecExit)))
		return &exit{code: code}
	}
	code, err := execsession.Serve(dir, argv, func() bool {
		s, e := c.snapshot()
		if e != nil {
			return true
		}
		ct := s.container(id)
		return ct != nil && ct.Status == "running"
	})
	if err != nil {
		return fail("fake exec: %v", err)
	}
	return &exit{code: code}
}
