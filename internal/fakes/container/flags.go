package container

import "strings"

// flag is one option of a command, with the release that introduced it.
type flag struct {
	names []string // "--name", "-n"
	value bool     // takes a value
	since [3]int
}

// parsed is a command line after option parsing: the values of each option
// by its first name, and the positional arguments.
type parsed struct {
	opts map[string][]string
	args []string
}

func (p parsed) has(name string) bool { _, ok := p.opts[name]; return ok }

func (p parsed) last(name string) string {
	v := p.opts[name]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// parseFlags parses args like ArgumentParser does for the command at path.
// With passthrough, everything after the first positional argument (the
// image of `run`, the container of `exec`) is kept as is.
func (c *cli) parseFlags(path string, args []string, flags []flag, passthrough int) (parsed, *exit) {
	p := parsed{opts: map[string][]string{}}
	lookup := func(name string) *flag {
		for i := range flags {
			f := &flags[i]
			for _, n := range f.names {
				if n == name && c.v.atLeast(f.since[0], f.since[1], f.since[2]) {
					return f
				}
			}
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if passthrough > 0 && len(p.args) >= passthrough {
			p.args = append(p.args, args[i:]...)
			break
		}
		switch {
		case a == "--":
			p.args = append(p.args, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a, "=")
			f := lookup(name)
			if f == nil {
				return p, usage(path, "Unknown option '%s'", name)
			}
			if f.value && !hasVal {
				if i+1 >= len(args) {
					return p, usage(path, "Missing value for '%s <value>'", name)
				}
				i++
				val = args[i]
			}
			p.opts[f.names[0]] = append(p.opts[f.names[0]], val)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				name := "-" + string(a[j])
				f := lookup(name)
				if f == nil {
					return p, usage(path, "Unknown option '%s'", name)
				}
				if !f.value {
					p.opts[f.names[0]] = append(p.opts[f.names[0]], "")
					continue
				}
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return p, usage(path, "Missing value for '%s <value>'", name)
					}
					i++
					val = args[i]
				}
				p.opts[f.names[0]] = append(p.opts[f.names[0]], val)
				break
			}
		default:
			p.args = append(p.args, a)
		}
	}
	return p, nil
}

func boolFlag(since [3]int, names ...string) flag { return flag{names: names, since: since} }
func valueFlag(since [3]int, names ...string) flag {
	return flag{names: names, value: true, since: since}
}

var (
	v010  = [3]int{0, 1, 0}
	v020  = [3]int{0, 2, 0}
	v030  = [3]int{0, 3, 0}
	v050  = [3]int{0, 5, 0}
	v060  = [3]int{0, 6, 0}
	v080  = [3]int{0, 8, 0}
	v090  = [3]int{0, 9, 0}
	v0100 = [3]int{0, 10, 0}
)

var formatFlags = []flag{valueFlag(v010, "--format"), boolFlag(v010, "-q", "--quiet")}

var runFlags = []flag{
	valueFlag(v010, "--name"), boolFlag(v010, "-d", "--detach"), boolFlag(v010, "-i", "--interactive"),
	boolFlag(v010, "-t", "--tty"), boolFlag(v010, "--rm", "--remove"), valueFlag(v020, "--network"),
	valueFlag(v010, "--dns"), valueFlag(v010, "--dns-domain"), valueFlag(v010, "--dns-search"),
	valueFlag(v010, "--dns-option"), boolFlag(v010, "--no-dns"),
	valueFlag(v010, "-v", "--volume"), valueFlag(v010, "--mount"), valueFlag(v010, "--tmpfs"),
	valueFlag(v010, "-m", "--memory"), valueFlag(v010, "-c", "--cpus"),
	valueFlag(v010, "-e", "--env"), valueFlag(v010, "--env-file"), valueFlag(v010, "--entrypoint"),
	valueFlag(v010, "-u", "--user"), valueFlag(v010, "-w", "--workdir", "--cwd"),
	valueFlag(v010, "-l", "--label"), valueFlag(v030, "-p", "--publish"), boolFlag(v0100, "--init"),
	boolFlag(v080, "--read-only"), valueFlag(v010, "--platform"), valueFlag(v010, "-a", "--arch"),
	valueFlag(v010, "--os"), valueFlag(v010, "-k", "--kernel"),
}

var execFlags = []flag{
	boolFlag(v010, "-i", "--interactive"), boolFlag(v010, "-t", "--tty"), boolFlag(v090, "-d", "--detach"),
	valueFlag(v010, "-e", "--env"), valueFlag(v010, "-u", "--user"), valueFlag(v010, "-w", "--workdir", "--cwd"),
}

var buildFlags = []flag{
	valueFlag(v010, "-t", "--tag"), valueFlag(v010, "-f", "--file"), valueFlag(v010, "--build-arg"),
	boolFlag(v010, "--no-cache"), valueFlag(v010, "--target"), valueFlag(v010, "-c", "--cpus"),
	valueFlag(v010, "-m", "--memory"), valueFlag(v010, "--platform"), valueFlag(v010, "-a", "--arch"),
	valueFlag(v010, "--os"), valueFlag(v010, "--progress"), boolFlag(v010, "-q", "--quiet"),
	valueFlag(v010, "-l", "--label"),
}

var networkCreateFlags = []flag{
	valueFlag(v050, "--label"), valueFlag(v060, "--subnet"), valueFlag(v080, "--subnet-v6"),
	boolFlag(v090, "--internal"),
}

var systemStartFlags = []flag{
	valueFlag(v010, "-a", "--app-root"), valueFlag(v010, "--install-root"), boolFlag(v010, "--debug"),
	boolFlag(v010, "--enable-kernel-install"), boolFlag(v010, "--disable-kernel-install"),
	valueFlag(v010, "--timeout"),
}
