package apple

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// answer is one scripted reply of the container CLI.
type answer struct {
	stdout string
	code   int
	stderr string
}

// script is a Runner that answers each command line with its replies in
// turn (the last one repeats) and fails the test on any other command, for
// states the fake cannot be brought into.
type script struct {
	t       *testing.T
	replies map[string][]answer
	calls   []string
}

func (s *script) Run(_ context.Context, c proc.Cmd) (proc.Result, error) {
	line := strings.Join(append([]string{c.Name}, c.Args...), " ")
	s.calls = append(s.calls, line)
	rs, ok := s.replies[line]
	if !ok {
		s.t.Fatalf("unexpected command %q", line)
	}
	a := rs[0]
	if len(rs) > 1 {
		s.replies[line] = rs[1:]
	}
	res := proc.Result{Stdout: []byte(a.stdout), Stderr: []byte(a.stderr)}
	if a.code != 0 {
		return res, &proc.ExitError{Cmd: c, Code: a.code, Stderr: a.stderr}
	}
	return res, nil
}

func (s *script) Interactive(ctx context.Context, c proc.Cmd) error {
	_, err := s.Run(ctx, c)
	return err
}

func scripted(t *testing.T, version string, replies map[string][]answer) (*Engine, *script) {
	s := &script{t: t, replies: replies}
	s.replies["container --version"] = []answer{{stdout: "container CLI version " + version + " (build: release, commit: 3c4c59c)\n"}}
	e := New(s)
	e.poll, e.stopWait = time.Millisecond, time.Second
	return e, s
}

const (
	lsStopping = `[{"configuration":{"id":"cc"},"id":"cc","status":{"networks":[],"state":"stopping"}}]`
	lsStopped  = `[{"configuration":{"id":"cc"},"id":"cc","status":{"networks":[],"state":"stopped"}}]`
	lsUnknown  = `[{"configuration":{"id":"cc"},"id":"cc","status":{"networks":[],"state":"unknown"}}]`
)

func TestStateWaitsForAStoppingContainer(t *testing.T) {
	e, s := scripted(t, "1.2.2", map[string][]answer{
		"container list --all --format json": {{stdout: lsStopping}, {stdout: lsStopping}, {stdout: lsStopped}},
	})
	st, err := e.State(context.Background(), "cc")
	if err != nil || st != engine.Stopped {
		t.Errorf("State = %v, %v; want stopped", st, err)
	}
	if n := len(without(s.calls)); n != 3 {
		t.Errorf("listed %d times, want 3", n)
	}
}

func TestStateGivesUpOnAContainerThatKeepsStopping(t *testing.T) {
	e, _ := scripted(t, "1.2.2", map[string][]answer{"container list --all --format json": {{stdout: lsStopping}}})
	e.stopWait = 20 * time.Millisecond
	_, err := e.State(context.Background(), "cc")
	if err == nil || !strings.Contains(err.Error(), "still stopping") || !strings.Contains(err.Error(), "container kill cc") {
		t.Errorf("State error = %v", err)
	}
}

func TestStateRefusesAContainerInStateUnknown(t *testing.T) {
	e, _ := scripted(t, "1.2.2", map[string][]answer{"container list --all --format json": {{stdout: lsUnknown}}})
	_, err := e.State(context.Background(), "cc")
	if err == nil || !strings.Contains(err.Error(), "container rm -f cc") {
		t.Errorf("State error = %v", err)
	}
}

func TestEnsureRunningFallsBackOnTheExitCodeForAnUnknownStatusShape(t *testing.T) {
	// 1.4.1 nests the status document (apple/container PR #1769); a later
	// release might move the status itself.
	tests := []struct {
		name   string
		status answer
		starts bool
	}{
		{"a new shape, exit 0", answer{stdout: `{"apiserver":{"state":"up"}}`}, false},
		{"a new shape, exit 1", answer{stdout: `{"apiserver":{"state":"down"}}`, code: 1}, true},
		{"the known shape saying down with exit 0", answer{stdout: `{"status":"not running"}`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, s := scripted(t, "1.4.1", map[string][]answer{
				"container system status --format json":          {tt.status, {stdout: `{"status":"running"}`}},
				"container system start --enable-kernel-install": {{stdout: "Verifying apiserver is running...\n"}},
			})
			if _, err := e.EnsureRunning(context.Background()); err != nil {
				t.Fatal(err)
			}
			started := strings.Contains(strings.Join(s.calls, "\n"), "system start")
			if started != tt.starts {
				t.Errorf("started = %v, want %v (calls %v)", started, tt.starts, s.calls)
			}
		})
	}
}

func TestEnsureRunningReportsAStatusCommandThatFailsOtherwise(t *testing.T) {
	e, _ := scripted(t, "1.2.2", map[string][]answer{
		"container system status --format json": {{code: 64, stderr: "Error: Unknown option '--format'"}},
	})
	_, err := e.EnsureRunning(context.Background())
	if err == nil || !strings.Contains(err.Error(), "asking whether the container service runs") {
		t.Errorf("EnsureRunning error = %v", err)
	}
}

func TestEnsureRunningReportsAServiceThatStaysDown(t *testing.T) {
	e, _ := scripted(t, "1.2.2", map[string][]answer{
		"container system status --format json":          {{stdout: `{"status":"unregistered"}`, code: 1}},
		"container system start --enable-kernel-install": {{}},
	})
	_, err := e.EnsureRunning(context.Background())
	if err == nil || !strings.Contains(err.Error(), "still does not run") {
		t.Errorf("EnsureRunning error = %v", err)
	}
}

func TestEnsureRunningGivesTheStartNoInput(t *testing.T) {
	var got []proc.Cmd
	status := proc.Cmd{Name: "container", Args: []string{"system", "status", "--format", "json"}}
	up := false
	r := recorder{f: func(c proc.Cmd) (proc.Result, error) {
		got = append(got, c)
		switch c.Args[0] {
		case "--version":
			return proc.Result{Stdout: []byte("container CLI version 1.4.1 (build: release, commit: 1)")}, nil
		case "system":
			if c.Args[1] == "start" {
				up = true
			} else if !up {
				return proc.Result{Stdout: []byte(`{"status":"not running"}`)}, &proc.ExitError{Cmd: c, Code: 1}
			}
		}
		return proc.Result{Stdout: []byte(`{"status":"running"}`)}, nil
	}}
	if _, err := New(r).EnsureRunning(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []proc.Cmd{{Name: "container", Args: []string{"--version"}}, status,
		{Name: "container", Args: []string{"system", "start", "--enable-kernel-install"}, Stdin: []byte{}}, status}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("commands mismatch (-want +got):\n%s", diff)
	}
}

type recorder struct {
	f func(proc.Cmd) (proc.Result, error)
}

func (r recorder) Run(_ context.Context, c proc.Cmd) (proc.Result, error) { return r.f(c) }
func (r recorder) Interactive(_ context.Context, c proc.Cmd) error {
	_, err := r.f(c)
	return err
}

func TestNetworkOnMacOS15ReadsTheDefaultNetworkFromTheContainers(t *testing.T) {
	ls := `[{"id":"aa","status":{"state":"running","networks":[{"network":"default","hostname":"aa","ipv4Address":"192.168.66.5/24","ipv4Gateway":"192.168.66.1"}]}},` +
		`{"id":"bb","status":{"state":"running","networks":[{"network":"default","hostname":"bb","ipv4Address":"192.168.67.5/24","ipv4Gateway":"192.168.67.1"}]}}]`
	e, _ := scripted(t, "1.2.2", map[string][]answer{
		"container list --all --format json": {{stdout: ls}},
		"container network list --format json": {{code: 64, stderr: "Error: Plugin 'container-network' not found.\n\n" +
			"- If system services are not running, start them with: container system start\n"}},
	})
	_, err := e.Network(context.Background(), "default")
	if err == nil || !strings.Contains(err.Error(), "disagree on its subnet") {
		t.Errorf("Network error = %v", err)
	}
}

func TestAMissingProgramSaysHowToInstallIt(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := New(proc.Exec{}).release(context.Background())
	if err == nil || !strings.Contains(err.Error(), "install Apple's container tool") {
		t.Errorf("release error = %v", err)
	}
}
