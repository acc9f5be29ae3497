package image_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/internal/fakebin"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// shellFiles returns the files in this directory that start with a #!/bin/sh
// line: the scripts copied into the image.
func shellFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		first, _ := bufio.NewReader(f).ReadString('\n')
		f.Close()
		if strings.HasPrefix(first, "#!/bin/sh") {
			files = append(files, e.Name())
		}
	}
	if len(files) == 0 {
		t.Fatal("found no shell scripts")
	}
	return files
}

// userland is a shell and the tools the scripts use (ls, awk, …) to run
// them with.
type userland struct {
	sh  []string // the shell's argv
	env []string // extra environment, such as a PATH
}

// userlands are the ones present here: sh and this system's tools, and
// BusyBox's ash and applets, as in the Alpine image, when BusyBox is
// installed. The fakes stay first on PATH.
func userlands(t *testing.T) map[string]userland {
	t.Helper()
	u := map[string]userland{"sh": {sh: []string{"sh"}}}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return u
	}
	// A BusyBox built as a standalone shell (Debian's busybox-static) runs
	// its own applets before anything on PATH, so the fakes would never be
	// called; only a BusyBox that honours PATH, as Alpine's does, can stand in.
	probe := t.TempDir()
	if err := os.WriteFile(filepath.Join(probe, "id"), []byte("#!/bin/sh\necho fake\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("env", "PATH="+probe+string(os.PathListSeparator)+os.Getenv("PATH"), busybox, "sh", "-c", "id").Output()
	if strings.TrimSpace(string(out)) != "fake" {
		t.Log("BusyBox here prefers its applets to PATH (busybox-static?); install Debian's busybox to run the scripts as on Alpine")
		return u
	}
	applets := t.TempDir()
	for _, name := range []string{"ls", "awk", "printf", "cat", "sh"} {
		if err := os.Symlink(busybox, filepath.Join(applets, name)); err != nil {
			t.Fatal(err)
		}
	}
	fakes, rest, _ := strings.Cut(os.Getenv("PATH"), string(os.PathListSeparator))
	path := strings.Join([]string{fakes, applets, rest}, string(os.PathListSeparator))
	u["busybox"] = userland{sh: []string{"busybox", "sh"}, env: []string{"PATH=" + path}}
	return u
}

type result struct {
	stdout, stderr string
	code           int
	calls          []string
}

// run runs argv with the extra environment variables env (and a fresh fake
// call log) through env(1), so that nothing global changes.
func run(t *testing.T, env []string, argv ...string) result {
	t.Helper()
	return runWithInput(t, "", env, argv...)
}

// runWithInput is run with stdin as the standard input.
func runWithInput(t *testing.T, stdin string, env []string, argv ...string) result {
	t.Helper()
	log := filepath.Join(t.TempDir(), "calls.log")
	// A fake is this test binary; built with -race it would sleep a second
	// on exit (the race runtime's atexit_sleep_ms) on every call.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	args := append([]string{fakebin.LogEnv + "=" + log, "GORACE=" + gorace}, env...)
	res, err := proc.Exec{}.Run(context.Background(), proc.Cmd{Name: "env", Args: append(args, argv...), Stdin: []byte(stdin)})
	r := result{stdout: string(res.Stdout), stderr: string(res.Stderr)}
	if err != nil {
		if r.code = proc.ExitCode(err); r.code < 0 {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(log); err == nil {
		r.calls = strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	}
	return r
}

func TestEveryShellScriptPassesShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck is not on PATH (apt-get install shellcheck); CI installs it")
	}
	for _, f := range shellFiles(t) {
		t.Run(f, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, "shellcheck", "--shell=sh", "--severity=style", f)
			if r.code != 0 {
				t.Errorf("shellcheck %s: exit status %d\n%s%s", f, r.code, r.stdout, r.stderr)
			}
		})
	}
}

func TestTheZshSettingsParse(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("zsh is not on PATH (apt-get install zsh)")
	}
	if r := run(t, nil, "zsh", "-n", "zshrc"); r.code != 0 {
		t.Errorf("zsh -n zshrc: exit status %d\n%s", r.code, r.stderr)
	}
}

func TestTheZshSettingsMakeNoNetworkCall(t *testing.T) {
	b, err := os.ReadFile("zshrc")
	if err != nil {
		t.Fatal(err)
	}
	for _, word := range []string{"curl", "wget", "http://", "https://", "nc "} {
		if strings.Contains(string(b), word) {
			t.Errorf("zshrc contains %q: a shell must start without touching the network", word)
		}
	}
}

// home makes a home directory with the given subdirectories.
func home(t *testing.T, subdirs ...string) string {
	t.Helper()
	h := t.TempDir()
	for _, d := range subdirs {
		if err := os.MkdirAll(filepath.Join(h, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// canChown reports whether this process can give files away, as the tests
// that need directories owned by another user must.
func canChown() bool { return os.Geteuid() == 0 }

func TestTheEntrypointExecsItsArgumentsUnchanged(t *testing.T) {
	t.Parallel()
	for name, u := range userlands(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := home(t)
			me := strconv.Itoa(os.Getuid())
			// The command prints its arguments and its parent's pid: when
			// the entrypoint execs it, its parent is this test process.
			argv := append(slices.Clone(u.sh), "entrypoint.sh", "sh", "-c",
				`printf '%s|' "$@"; awk '/^PPid:/ { print $2 }' /proc/$$/status; exit 7`,
				"argv0", "two words", "", "*")
			r := run(t, append([]string{"HOME=" + h, "FAKE_UID=" + me, "FAKE_GID=" + strconv.Itoa(os.Getgid()),
				"COMMAND_HISTORY_DIR=" + filepath.Join(h, "nohistory")}, u.env...), argv...)
			if r.code != 7 {
				t.Fatalf("exit status %d, want the command's 7; stderr:\n%s", r.code, r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stdout), "|")
			if diff := cmp.Diff([]string{"two words", "", "*", strconv.Itoa(os.Getpid())}, lines); diff != "" {
				t.Errorf("the command saw (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTheEntrypointRunsZshWhenGivenNoCommand(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/bin/zsh"); err != nil {
		t.Skip("/bin/zsh is not installed (apt-get install zsh)")
	}
	h := home(t)
	r := runWithInput(t, "echo zsh $ZSH_NAME\n", []string{"HOME=" + h, "FAKE_UID=" + strconv.Itoa(os.Getuid()), "FAKE_GID=" + strconv.Itoa(os.Getgid()),
		"COMMAND_HISTORY_DIR=" + filepath.Join(h, "none")}, "sh", "entrypoint.sh")
	if r.code != 0 || r.stdout != "zsh zsh\n" {
		t.Errorf("exit status %d, stdout %q; want zsh to read the commands on its input", r.code, r.stdout)
	}
}

func TestTheEntrypointTakesBackRootOwnedVolumesWithSudo(t *testing.T) {
	t.Parallel()
	if os.Getuid() == 1000 {
		t.Skip("the test needs directories owned by someone other than UID 1000")
	}
	for name, u := range userlands(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := home(t, ".config/gh", ".ssh")
			hist := filepath.Join(t.TempDir(), "commandhistory")
			if err := os.Mkdir(hist, 0o755); err != nil {
				t.Fatal(err)
			}
			r := run(t, append([]string{"HOME=" + h, "FAKE_UID=1000", "FAKE_GID=20", "COMMAND_HISTORY_DIR=" + hist}, u.env...),
				append(slices.Clone(u.sh), "entrypoint.sh", "true")...)
			if r.code != 0 {
				t.Fatalf("exit status %d; stderr:\n%s", r.code, r.stderr)
			}
			want := []string{
				"id -u", "id -g",
				"sudo -n chown -- 1000:20 " + h, "chown -- 1000:20 " + h,
				"sudo -n chown -R -- 1000:20 " + h + "/.config", "chown -R -- 1000:20 " + h + "/.config",
				"sudo -n chown -R -- 1000:20 " + h + "/.ssh", "chown -R -- 1000:20 " + h + "/.ssh",
				"sudo -n chown -R -- 1000:20 " + hist, "chown -R -- 1000:20 " + hist,
			}
			if diff := cmp.Diff(want, r.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if r.stderr != "" {
				t.Errorf("stderr = %q, want nothing", r.stderr)
			}
		})
	}
}

func TestTheEntrypointLeavesDirectoriesTheUserOwnsAlone(t *testing.T) {
	t.Parallel()
	if !canChown() {
		t.Skip("setting up directories owned by UID 1000 needs root")
	}
	h := home(t, ".config", ".ssh")
	hist := t.TempDir()
	for _, d := range []string{h, filepath.Join(h, ".config"), filepath.Join(h, ".ssh"), hist} {
		if err := os.Chown(d, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, []string{"HOME=" + h, "FAKE_UID=1000", "FAKE_GID=1000", "COMMAND_HISTORY_DIR=" + hist}, "sh", "entrypoint.sh", "true")
	if r.code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.code, r.stderr)
	}
	if diff := cmp.Diff([]string{"id -u", "id -g"}, r.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestTheEntrypointAsRootChownsWithoutSudo(t *testing.T) {
	t.Parallel()
	if !canChown() {
		t.Skip("setting up a directory owned by another user needs root")
	}
	h := home(t)
	if err := os.Chown(h, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	r := run(t, []string{"HOME=" + h, "FAKE_UID=0", "FAKE_GID=0", "COMMAND_HISTORY_DIR=" + filepath.Join(h, "none")}, "sh", "entrypoint.sh", "true")
	if r.code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.code, r.stderr)
	}
	if diff := cmp.Diff([]string{"id -u", "id -g", "chown -- 0:0 " + h}, r.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestTheEntrypointStillStartsTheShellWhenSudoRefuses(t *testing.T) {
	t.Parallel()
	if os.Getuid() == 1000 {
		t.Skip("the test needs directories owned by someone other than UID 1000")
	}
	h := home(t)
	r := run(t, []string{"HOME=" + h, "FAKE_UID=1000", "FAKE_GID=1000", "FAKE_SUDO_EXIT=1",
		"COMMAND_HISTORY_DIR=" + filepath.Join(h, "none")}, "sh", "entrypoint.sh", "echo", "started")
	if r.code != 0 || r.stdout != "started\n" {
		t.Fatalf("exit status %d, stdout %q; want the command to run anyway", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "could not take ownership of "+h) || !strings.Contains(r.stderr, "sudo chown -R 1000:1000 "+h) {
		t.Errorf("stderr = %q, want it to name the directory and the fix", r.stderr)
	}
}

func TestTheEntrypointGivesANewHomeAStubZshrc(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		existing string // a startup file already in the home, or ""
		want     bool   // whether a stub .zshrc is written
	}{
		{"empty home", "", true},
		{"home with .zshrc", ".zshrc", false},
		{"home with .zshenv", ".zshenv", false},
		{"home with .zprofile", ".zprofile", false},
		{"home with .zlogin", ".zlogin", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := home(t)
			if tc.existing != "" {
				if err := os.WriteFile(filepath.Join(h, tc.existing), []byte("# mine\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := run(t, []string{"HOME=" + h, "FAKE_UID=" + strconv.Itoa(os.Getuid()), "FAKE_GID=" + strconv.Itoa(os.Getgid()),
				"COMMAND_HISTORY_DIR=" + filepath.Join(h, "none")}, "sh", "entrypoint.sh", "true")
			if r.code != 0 {
				t.Fatalf("exit status %d; stderr:\n%s", r.code, r.stderr)
			}
			b, err := os.ReadFile(filepath.Join(h, ".zshrc"))
			stub := err == nil && strings.Contains(string(b), "/etc/zsh/zshrc.d/claudecontainer.zsh")
			if stub != tc.want {
				t.Errorf("stub .zshrc written = %v, want %v (.zshrc: %q)", stub, tc.want, b)
			}
			if tc.existing == ".zshrc" && string(b) != "# mine\n" {
				t.Errorf("the user's .zshrc became %q", b)
			}
		})
	}
}

const (
	allGood = "api.anthropic.com=404 api.github.com=200 registry.npmjs.org=200 example.com=exit7 1.1.1.1=exit28"
)

func TestTheCheckPassesWhenAllowedHostsAnswerAndOthersAreRefused(t *testing.T) {
	t.Parallel()
	for name, u := range userlands(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := run(t, append([]string{"FAKE_CURL=" + allGood}, u.env...), append(slices.Clone(u.sh), "claudecontainer-check")...)
			want := `OK   https://api.anthropic.com answered (HTTP 404)
OK   https://api.github.com answered (HTTP 200)
OK   https://registry.npmjs.org answered (HTTP 200)
OK   https://example.com refused (connection refused)
OK   https://1.1.1.1 refused (timed out after 5s)
OK   the firewall lets the allowlisted hosts through and refuses the rest
`
			if diff := cmp.Diff(want, r.stdout); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
			if r.code != 0 {
				t.Errorf("exit status %d, want 0; stderr:\n%s", r.code, r.stderr)
			}
		})
	}
}

func TestTheCheckVerdicts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		answers  string
		wantCode int
		wantLine string // a line the output must have
	}{
		{
			name:     "a blocked host that answers is a leak",
			answers:  "api.anthropic.com=200 api.github.com=200 registry.npmjs.org=200 example.com=200 1.1.1.1=exit7",
			wantCode: 1,
			wantLine: "FAIL https://example.com answered (HTTP 200); the firewall should refuse it",
		},
		{
			name:     "a blocked host reached but failing TLS is a leak",
			answers:  "api.anthropic.com=200 api.github.com=200 registry.npmjs.org=200 example.com=exit7 1.1.1.1=exit35",
			wantCode: 1,
			wantLine: "FAIL https://1.1.1.1 was reached (TLS handshake failed); the firewall should refuse it",
		},
		{
			name:     "a blocked host whose name does not resolve is refused",
			answers:  "api.anthropic.com=200 api.github.com=200 registry.npmjs.org=200 1.1.1.1=exit7",
			wantCode: 0,
			wantLine: "OK   https://example.com refused (could not resolve the host)",
		},
		{
			name:     "an allowlisted host that is refused fails with its own status",
			answers:  "api.anthropic.com=exit7 api.github.com=200 registry.npmjs.org=200 example.com=exit7 1.1.1.1=exit7",
			wantCode: 2,
			wantLine: "FAIL https://api.anthropic.com did not answer (connection refused); it should be allowlisted",
		},
		{
			name:     "an allowlisted host that times out fails",
			answers:  "api.anthropic.com=200 api.github.com=200 registry.npmjs.org=exit28 example.com=exit7 1.1.1.1=exit7",
			wantCode: 2,
			wantLine: "FAIL 1 allowlisted host(s) did not answer: run 'mage status' on the host, or check them with -a.",
		},
		{
			name:     "a missing host says how to see and allow what was refused",
			answers:  "api.anthropic.com=200 api.github.com=200 registry.npmjs.org=exit6 example.com=exit7 1.1.1.1=exit7",
			wantCode: 2,
			wantLine: "     On the host, 'mage blocked' lists what was refused and 'mage allow NAME' allows it at once.",
		},
		{
			name:     "a leak outweighs a missing allowlisted host",
			answers:  "api.anthropic.com=exit7 api.github.com=200 registry.npmjs.org=200 example.com=301 1.1.1.1=exit7",
			wantCode: 1,
			wantLine: "FAIL the firewall lets 1 blocked host(s) through: is it up? Run 'mage status' on the host.",
		},
		{
			name:     "with the firewall down everything answers",
			answers:  "api.anthropic.com=200 api.github.com=200 registry.npmjs.org=200 example.com=200 1.1.1.1=200",
			wantCode: 1,
			wantLine: "FAIL the firewall lets 2 blocked host(s) through: is it up? Run 'mage status' on the host.",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, []string{"FAKE_CURL=" + tc.answers}, "sh", "claudecontainer-check")
			if r.code != tc.wantCode {
				t.Errorf("exit status %d, want %d; output:\n%s%s", r.code, tc.wantCode, r.stdout, r.stderr)
			}
			if !containsLine(r.stdout, tc.wantLine) {
				t.Errorf("output lacks the line %q:\n%s", tc.wantLine, r.stdout)
			}
		})
	}
}

func containsLine(out, line string) bool {
	for _, l := range strings.Split(out, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func TestTheCheckProbesOnlyTheHostsGivenWithTheTimeLimitGiven(t *testing.T) {
	t.Parallel()
	r := run(t, []string{"FAKE_CURL=internal.example=200 blocked.example=exit7"},
		"sh", "claudecontainer-check", "-t", "9", "-a", "https://internal.example/health?full=1", "-b", "http://blocked.example:8080")
	if r.code != 0 {
		t.Fatalf("exit status %d; output:\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := []string{
		"curl -sS -g -o /dev/null -w %{http_code} --max-time 9 https://internal.example/health?full=1",
		"curl -sS -g -o /dev/null -w %{http_code} --max-time 9 http://blocked.example:8080",
	}
	if diff := cmp.Diff(want, r.calls); diff != "" {
		t.Errorf("curl calls (-want +got):\n%s", diff)
	}
}

func TestTheCheckRefusesBadUsageWithoutProbing(t *testing.T) {
	t.Parallel()
	tests := map[string][]string{
		"a URL that is not http(s)":   {"-a", "ftp://example.com"},
		"a URL that is a curl option": {"-b", "-o/etc/passwd"},
		"a URL with a space":          {"-a", "https://a.example/ b"},
		"a URL with a quote":          {"-a", "https://a.example/'"},
		"a time limit of zero":        {"-t", "0"},
		"a time limit that is a word": {"-t", "five"},
		"an unknown option":           {"-x"},
		"a stray argument":            {"example.com"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := run(t, []string{"FAKE_CURL=" + allGood}, append([]string{"sh", "claudecontainer-check"}, args...)...)
			if r.code != 3 {
				t.Errorf("exit status %d, want 3", r.code)
			}
			if !strings.Contains(r.stderr, "usage: claudecontainer-check") {
				t.Errorf("stderr lacks the usage:\n%s", r.stderr)
			}
			if len(r.calls) != 0 {
				t.Errorf("curl ran: %q", r.calls)
			}
		})
	}
}

func TestTheCheckExplainsItselfWithH(t *testing.T) {
	t.Parallel()
	r := run(t, nil, "sh", "claudecontainer-check", "-h")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: claudecontainer-check") {
		t.Errorf("exit status %d, stdout %q", r.code, r.stdout)
	}
}
