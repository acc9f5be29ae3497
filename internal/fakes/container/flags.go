package container

import (
	"slices"
	"strings"
)

// flag is one option of a command.
type flag struct {
	names []string // "--name", "-n"
	value bool     // takes a value
}

// parsed is a command line after option parsing: the values of each option
// by its first name, and the positional arguments.
type parsed struct {
	opts map[string][]string
	args []string
}

func (p parsed) has(name string) bool { _, ok := p.opts[name]; return ok }

// last is the value given last for the option name, or "".
func (p parsed) last(name string) string {
	if v := p.opts[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// parseFlags parses args like ArgumentParser does for the command at path.
// With passthrough, everything after the first positional argument (the
// image of `run`, the container of `exec`) is kept as is.
func (c *cli) parseFlags(path string, args []string, flags []flag, passthrough int) (parsed, *exit) {
	p := parsed{opts: map[string][]string{}}
	lookup := func(name string) (*flag, *exit) {
		for i := range flags {
			if slices.Contains(flags[i].names, name) {
				return &flags[i], nil
			}
		}
		return nil, usage(path, "Unknown option '%s'", name)
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if passthrough > 0 && len(p.args) >= passthrough {
			p.args = append(p.args, args[i:]...)
			break
		}
		// next takes the argument after a as the value of the option name.
		next := func(name string) (string, *exit) {
			if i+1 >= len(args) {
				return "", usage(path, "Missing value for '%s <value>'", name)
			}
			i++
			return args[i], nil
		}
		switch {
		case a == "--":
			p.args = append(p.args, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a, "=")
			f, e := lookup(name)
			if e == nil && f.value && !hasVal {
				val, e = next(name)
			}
			if e != nil {
				return p, e
			}
			p.opts[f.names[0]] = append(p.opts[f.names[0]], val)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			for j := 1; j < len(a); j++ {
				name := "-" + string(a[j])
				f, e := lookup(name)
				val := ""
				if e == nil && f.value {
					val, j = a[j+1:], len(a) // the rest of the word, else the next argument
					if val == "" {
						val, e = next(name)
					}
				}
				if e != nil {
					return p, e
				}
				p.opts[f.names[0]] = append(p.opts[f.names[0]], val)
			}
		default:
			p.args = append(p.args, a)
		}
	}
	return p, nil
}

func boolFlag(names ...string) flag  { return flag{names: names} }
func valueFlag(names ...string) flag { return flag{names: names, value: true} }

var formatFlags = []flag{valueFlag("--format"), boolFlag("-q", "--quiet")}

var runFlags = []flag{
	valueFlag("--name"), boolFlag("-d", "--detach"), boolFlag("-i", "--interactive"),
	boolFlag("-t", "--tty"), boolFlag("--rm", "--remove"), valueFlag("--network"),
	valueFlag("--dns"), valueFlag("--dns-domain"), valueFlag("--dns-search"),
	valueFlag("--dns-option"), boolFlag("--no-dns"),
	valueFlag("-v", "--volume"), valueFlag("--mount"), valueFlag("--tmpfs"),
	valueFlag("-m", "--memory"), valueFlag("-c", "--cpus"),
	valueFlag("-e", "--env"), valueFlag("--env-file"), valueFlag("--entrypoint"),
	valueFlag("-u", "--user"), valueFlag("-w", "--workdir", "--cwd"),
	valueFlag("-l", "--label"), valueFlag("-p", "--publish"), boolFlag("--init"),
	boolFlag("--read-only"), valueFlag("--platform"), valueFlag("-a", "--arch"),
	valueFlag("--os"), valueFlag("-k", "--kernel"),
}

var execFlags = []flag{
	boolFlag("-i", "--interactive"), boolFlag("-t", "--tty"), boolFlag("-d", "--detach"),
	valueFlag("-e", "--env"), valueFlag("-u", "--user"), valueFlag("-w", "--workdir", "--cwd"),
}

var buildFlags = []flag{
	valueFlag("-t", "--tag"), valueFlag("-f", "--file"), valueFlag("--build-arg"),
	boolFlag("--no-cache"), valueFlag("--target"), valueFlag("-c", "--cpus"),
	valueFlag("-m", "--memory"), valueFlag("--platform"), valueFlag("-a", "--arch"),
	valueFlag("--os"), valueFlag("--progress"), boolFlag("-q", "--quiet"),
	valueFlag("-l", "--label"),
}

var networkCreateFlags = []flag{
	valueFlag("--label"), valueFlag("--subnet"), valueFlag("--subnet-v6"),
	boolFlag("--internal"), valueFlag("--option"), valueFlag("--plugin"),
}

var systemStartFlags = []flag{
	valueFlag("-a", "--app-root"), valueFlag("--install-root"), boolFlag("--debug"),
	boolFlag("--enable-kernel-install"), boolFlag("--disable-kernel-install"),
	valueFlag("--timeout"),
}
