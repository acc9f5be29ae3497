package image_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/VerilyPete/claudecontainer/image"
)

// instruction is one parsed Dockerfile instruction.
type instruction struct {
	cmd   string   // lower case: from, run, copy, …
	args  []string // for ENV: name, value, "=" for each pair
	flags []string // --chmod=0755, …
	json  bool     // exec (JSON array) form
	line  int
}

// dockerfile parses ../Dockerfile with BuildKit's own parser.
func dockerfile(t *testing.T) ([]instruction, []byte) {
	t.Helper()
	src, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		t.Fatalf("parsing the Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile line %v: %s", w.Location, w.Short)
	}
	var ins []instruction
	for _, n := range res.AST.Children {
		in := instruction{cmd: strings.ToLower(n.Value), flags: n.Flags, json: n.Attributes["json"], line: n.StartLine}
		for a := n.Next; a != nil; a = a.Next {
			in.args = append(in.args, a.Value)
		}
		ins = append(ins, in)
	}
	return ins, src
}

func only(ins []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func last(t *testing.T, ins []instruction, cmd string) instruction {
	t.Helper()
	all := only(ins, cmd)
	if len(all) == 0 {
		t.Fatalf("the Dockerfile has no %s", strings.ToUpper(cmd))
	}
	return all[len(all)-1]
}

// envOf returns the variables the Dockerfile's ENV instructions set.
func envOf(t *testing.T, ins []instruction) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, in := range only(ins, "env") {
		if len(in.args)%3 != 0 {
			t.Fatalf("line %d: ENV %q is not name=value pairs", in.line, in.args)
		}
		for i := 0; i < len(in.args); i += 3 {
			vars[in.args[i]] = in.args[i+1]
		}
	}
	return vars
}

// Apple's container (1.0 and later) refuses a Dockerfile of 16 KiB or more.
func TestTheDockerfileStaysUnderAppleContainersSizeLimit(t *testing.T) {
	t.Parallel()
	_, src := dockerfile(t)
	if len(src) >= 16*1024 {
		t.Errorf("the Dockerfile is %d bytes; Apple's container refuses 16384 or more", len(src))
	}
}

var alpineRef = regexp.MustCompile(`^alpine:(\d+)\.(\d+)(\.\d+)?(@sha256:[0-9a-f]{64})?$`)

func TestTheBaseImageIsAPinnedAlpineRelease(t *testing.T) {
	t.Parallel()
	ins, _ := dockerfile(t)
	from := only(ins, "from")
	if len(from) != 1 || len(from[0].args) != 1 {
		t.Fatalf("want one FROM with one image, got %+v", from)
	}
	m := alpineRef.FindStringSubmatch(from[0].args[0])
	if m == nil {
		t.Fatalf("FROM %s: want alpine:MAJOR.MINOR (a release, never latest or edge)", from[0].args[0])
	}
	// Claude Code's musl builds need statx and posix_getdents, which Alpine's
	// musl has from 3.24 on.
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < 3 || major == 3 && minor < 24 {
		t.Errorf("FROM %s: want Alpine 3.24 or later", from[0].args[0])
	}
	if ins[0].cmd != "from" {
		t.Errorf("the first instruction is %s, want FROM", strings.ToUpper(ins[0].cmd))
	}
}

func TestTheImageEndsAsTheNonRootUserInTheWorkspace(t *testing.T) {
	t.Parallel()
	ins, _ := dockerfile(t)
	if u := last(t, ins, "user"); len(u.args) != 1 || u.args[0] != "claude" {
		t.Errorf("the last USER is %q, want claude", u.args)
	}
	if w := last(t, ins, "workdir"); len(w.args) != 1 || w.args[0] != "/workspace" {
		t.Errorf("the last WORKDIR is %q, want /workspace", w.args)
	}
}

func TestTheEntrypointIsTheCopiedScriptAndTheCommandIsZsh(t *testing.T) {
	t.Parallel()
	ins, _ := dockerfile(t)
	ep := last(t, ins, "entrypoint")
	if !ep.json || len(ep.args) != 1 {
		t.Fatalf("ENTRYPOINT %q: want the exec form with one path, so that CMD becomes its arguments", ep.args)
	}
	var source string
	for _, c := range only(ins, "copy") {
		if n := len(c.args); n == 2 && c.args[1] == ep.args[0] {
			source = c.args[0]
		}
	}
	if source != "image/entrypoint.sh" {
		t.Errorf("ENTRYPOINT %s is copied from %q, want image/entrypoint.sh", ep.args[0], source)
	}
	if _, err := os.Stat("entrypoint.sh"); err != nil {
		t.Error(err)
	}
	cmd := last(t, ins, "cmd")
	if diff := cmp.Diff([]string{"/bin/zsh"}, cmd.args); !cmd.json || diff != "" {
		t.Errorf("CMD %q (exec form %v): want [\"/bin/zsh\"]", cmd.args, cmd.json)
	}
}

// excluded reports whether .dockerignore's rules keep name (slash separated)
// out of the build context: the last rule matching it or a directory above
// it decides, and a rule starting with ! lets it back in. A leading **/
// matches any number of directories.
func excluded(rules []string, name string) bool {
	out := false
	for _, rule := range rules {
		negate := strings.HasPrefix(rule, "!")
		pattern := strings.TrimPrefix(rule, "!")
		if matches(pattern, name) {
			out = !negate
		}
	}
	return out
}

func matches(pattern, name string) bool {
	for p := name; p != "." && p != "/"; p = path.Dir(p) {
		if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
			parts := strings.Split(p, "/")
			for i := range parts {
				if ok, _ := path.Match(rest, strings.Join(parts[i:], "/")); ok {
					return true
				}
			}
		} else if ok, _ := path.Match(pattern, p); ok {
			return true
		}
	}
	return false
}

func dockerignore(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rules []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			rules = append(rules, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rules
}

func TestEveryCopiedFileIsInTheBuildContext(t *testing.T) {
	t.Parallel()
	ins, _ := dockerfile(t)
	if add := only(ins, "add"); len(add) > 0 {
		t.Errorf("line %d: ADD can fetch URLs and unpack archives; use COPY", add[0].line)
	}
	rules := dockerignore(t)
	var sources []string
	for _, c := range only(ins, "copy") {
		for _, f := range c.flags {
			if strings.HasPrefix(f, "--from") {
				t.Errorf("line %d: COPY %s copies from another image", c.line, f)
			}
		}
		if len(c.args) < 2 {
			t.Fatalf("line %d: COPY %q has no destination", c.line, c.args)
		}
		for _, src := range c.args[:len(c.args)-1] {
			sources = append(sources, src)
			if st, err := os.Stat(filepath.Join("..", filepath.FromSlash(src))); err != nil || !st.Mode().IsRegular() {
				t.Errorf("line %d: COPY source %s is not a file in the checkout", c.line, src)
			}
			if excluded(rules, src) {
				t.Errorf("line %d: COPY source %s is left out of the build context by .dockerignore", c.line, src)
			}
		}
	}
	if excluded(rules, "Dockerfile") {
		t.Error(".dockerignore leaves out the Dockerfile")
	}
	for _, name := range []string{".git/config", "image/image.go", "sources/testdata/meta.json", "go.sum"} {
		if !excluded(rules, name) {
			t.Errorf(".dockerignore lets %s into the build context", name)
		}
	}
	// Locate checks for these files, so the list must follow the Dockerfile.
	if diff := cmp.Diff(image.Files, sources); diff != "" {
		t.Errorf("image.Files differs from the COPY sources (-Files +Dockerfile):\n%s", diff)
	}
}

func TestTheBuildArgsAreExactlyTheOnesMageBuildPasses(t *testing.T) {
	t.Parallel()
	ins, _ := dockerfile(t)
	var declared []string
	for _, a := range only(ins, "arg") {
		for _, kv := range a.args {
			name, _, _ := strings.Cut(kv, "=")
			declared = append(declared, name)
		}
	}
	var passed []string
	for name := range image.BuildArgs(func(string) string { return "" }, 501, 20, "/nonexistent").Map() {
		passed = append(passed, name)
	}
	slices.Sort(declared)
	slices.Sort(passed)
	if diff := cmp.Diff(passed, declared); diff != "" {
		t.Errorf("ARG names (-passed by BuildArgs +declared in the Dockerfile):\n%s", diff)
	}
}

// The tools of the image this one replaces, by their Alpine 3.24 package
// names (procps is now procps-ng).
var tools = []string{
	"curl", "ca-certificates", "git", "zsh", "bash", "fzf", "github-cli", "jq", "lazygit", "micro", "vim",
	"sudo", "less", "procps-ng", "mandoc", "man-pages", "unzip", "gnupg", "wget", "tmux", "libgcc",
	"libstdc++", "ripgrep", "tzdata",
}

func TestTheImageInstallsEveryToolOfTheOldImage(t *testing.T) {
	t.Parallel()
	ins, _ := dockerfile(t)
	installed := map[string]bool{}
	for _, r := range only(ins, "run") {
		words := strings.Fields(strings.Join(r.args, " "))
		for i := 0; i+1 < len(words); i++ {
			if words[i] == "apk" && words[i+1] == "add" {
				for _, w := range words[i+2:] {
					if w == "&&" || w == ";" {
						break
					}
					if !strings.HasPrefix(w, "-") {
						installed[w] = true
					}
				}
			}
		}
	}
	for _, tool := range tools {
		if !installed[tool] {
			t.Errorf("no apk add installs %s", tool)
		}
	}
}

func TestTheEnvironmentIsTheOldImagesPlusTheUpdaterSwitchedOff(t *testing.T) {
	t.Parallel()
	ins, _ := dockerfile(t)
	want := map[string]string{
		"LANG":                "C.UTF-8",
		"LC_ALL":              "C.UTF-8",
		"TZ":                  "$TZ",
		"DEVCONTAINER":        "true",
		"EDITOR":              "micro",
		"VISUAL":              "micro",
		"SHELL":               "/bin/zsh",
		"COMMAND_HISTORY_DIR": "/commandhistory",
		"DISABLE_AUTOUPDATER": "1",
		"USE_BUILTIN_RIPGREP": "0",
	}
	if diff := cmp.Diff(want, envOf(t, ins)); diff != "" {
		t.Errorf("ENV (-want +got):\n%s", diff)
	}
}

func TestClaudeCodeComesFromTheNativeInstallerWithoutAPipeThatHidesFailures(t *testing.T) {
	t.Parallel()
	ins, src := dockerfile(t)
	if bytes.Contains(src, []byte("api.github.com/zen")) {
		t.Error("the Dockerfile still calls api.github.com/zen")
	}
	found := false
	for _, r := range only(ins, "run") {
		script := strings.Join(r.args, " ")
		if strings.Contains(script, "https://claude.ai/install.sh") {
			found = true
			if !strings.Contains(script, "/usr/local/bin/claude") {
				t.Errorf("line %d: the installed claude is not put in /usr/local/bin", r.line)
			}
		}
		// Without pipefail, `curl … | sh` succeeds when the download fails.
		if regexp.MustCompile(`\|\s*(ba)?sh\b`).MatchString(script) && !strings.Contains(script, "set -o pipefail") {
			t.Errorf("line %d: a download is piped into a shell without set -o pipefail", r.line)
		}
	}
	if !found {
		t.Error("no RUN runs https://claude.ai/install.sh")
	}
}

func TestEveryRunScriptPassesShellcheck(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck is not on PATH (apt-get install shellcheck); CI installs it")
	}
	ins, _ := dockerfile(t)
	for _, r := range only(ins, "run") {
		if r.json {
			continue
		}
		script := filepath.Join(t.TempDir(), "run-line-"+strconv.Itoa(r.line)+".sh")
		if err := os.WriteFile(script, []byte("#!/bin/sh\n"+strings.Join(r.args, " ")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if res := run(t, nil, "shellcheck", "--shell=sh", "--severity=style", script); res.code != 0 {
			t.Errorf("the RUN on line %d: shellcheck exit status %d\n%s%s", r.line, res.code, res.stdout, res.stderr)
		}
	}
}
