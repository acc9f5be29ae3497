package filterd

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// How long Control waits for the daemon.
const (
	startWait  = 10 * time.Second
	reloadWait = 5 * time.Second
	stopWait   = 5 * time.Second
	pollEvery  = 20 * time.Millisecond
)

// Control starts, reloads and stops the daemon of one state directory.
type Control struct {
	// Dir is the state directory.
	Dir string
	// Command is the daemon's program and its arguments before STATEDIR
	// TOKEN; nil means this executable with Arg. Tests run their own
	// binary.
	Command []string
	// Runner runs kill (through sudo when this process is not root) and, on
	// macOS, ps; nil means proc.Exec{}.
	Runner proc.Runner
	// Euid is the effective user id; nil means os.Geteuid.
	Euid func() int
}

func (c *Control) runner() proc.Runner {
	if c.Runner == nil {
		return proc.Exec{}
	}
	return c.Runner
}

func (c *Control) root() bool {
	if c.Euid != nil {
		return c.Euid() == 0
	}
	return os.Geteuid() == 0
}

// Running returns the status of the daemon when one of ours runs, and ok
// false when none does. A status file whose pid is gone or is another
// program is stale: it is removed.
func (c *Control) Running(ctx context.Context) (st Status, ok bool, err error) {
	path := filepath.Join(c.Dir, statusFile)
	if err := readJSON(path, &st); errors.Is(err, fs.ErrNotExist) {
		return Status{}, false, nil
	} else if err != nil {
		os.Remove(path)
		return Status{}, false, nil
	}
	if st.Pid <= 1 || st.Spec.Token == "" {
		os.Remove(path)
		return Status{}, false, nil
	}
	ours, err := c.ours(ctx, st.Pid, st.Spec.Token)
	if err != nil {
		return Status{}, false, err
	}
	if !ours {
		os.Remove(path)
		return Status{}, false, nil
	}
	return st, true, nil
}

// ours reports whether pid runs and its command line carries token.
func (c *Control) ours(ctx context.Context, pid int, token string) (bool, error) {
	kerr := syscall.Kill(pid, 0)
	if errors.Is(kerr, syscall.ESRCH) {
		return false, nil
	}
	var cmdline []byte
	if runtime.GOOS == "linux" {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if errors.Is(err, fs.ErrNotExist) && kerr == nil {
			return false, nil // gone between the two looks
		}
		if errors.Is(err, fs.ErrNotExist) {
			// It runs (EPERM) but /proc hides it (hidepid): whether it is
			// the filter cannot be told, so it is left alone and said so.
			return false, fmt.Errorf("process %d runs, but /proc does not show whose it is (mounted with hidepid?): cannot tell whether it is the DNS filter", pid)
		}
		if err != nil {
			return false, fmt.Errorf("reading the command line of process %d: %w", pid, err)
		}
		cmdline = b
	} else {
		res, err := c.runner().Run(ctx, proc.Cmd{Name: "ps", Args: []string{"-ww", "-o", "command=", "-p", strconv.Itoa(pid)}})
		if err != nil {
			if proc.ExitCode(err) == 1 { // no such process
				return false, nil
			}
			return false, err
		}
		cmdline = res.Stdout
	}
	return bytes.Contains(cmdline, []byte(Arg)) && bytes.Contains(cmdline, []byte(token)), nil
}

// Ensure makes the daemon run with spec (its Token is filled in here): a
// daemon that runs with the same settings reads the names again; one with
// other settings is stopped and a new one started. It returns once the
// daemon serves, with an error that quotes the daemon's log when it does
// not.
func (c *Control) Ensure(ctx context.Context, spec Spec) (started bool, err error) {
	st, ok, err := c.Running(ctx)
	if err != nil {
		return false, err
	}
	if ok {
		spec.Token = st.Spec.Token
		if sameServing(spec, st.Spec) {
			if err := writeJSON(filepath.Join(c.Dir, specFile), spec, 0o600); err != nil {
				return false, fmt.Errorf("writing the DNS filter's settings: %w", err)
			}
			return false, c.reload(ctx, st)
		}
		if err := c.Stop(ctx); err != nil {
			return false, err
		}
	}
	return true, c.start(ctx, spec)
}

// sameServing reports whether a and b differ at most in what a reload
// takes up (Watch).
func sameServing(a, b Spec) bool {
	a.Watch, b.Watch = nil, nil
	return reflect.DeepEqual(a, b)
}

func (c *Control) start(ctx context.Context, spec Spec) error {
	spec.Token = newToken()
	if err := spec.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(c.Dir, specFile), spec, 0o600); err != nil {
		return fmt.Errorf("writing the DNS filter's settings: %w", err)
	}
	argv := c.Command
	if argv == nil {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding this program, to run the DNS filter: %w", err)
		}
		argv = []string{exe, Arg}
	}
	argv = append(append([]string(nil), argv...), c.Dir, spec.Token)
	if !c.root() {
		// -n: the firewall was just loaded through sudo, so its
		// credentials are fresh; a prompt here could not be answered.
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	logPath := filepath.Join(c.Dir, LogFile)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, 2)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: Ctrl-C in mage's terminal is not for it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the DNS filter: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startWait)
	for {
		if st, ok, err := c.Running(ctx); err != nil {
			c.abandon(cmd.Process.Pid, spec.Token, exited)
			return err
		} else if ok && st.Spec.Token == spec.Token {
			return nil
		}
		select {
		case err := <-exited:
			why := tail(logPath, logStart)
			if strings.Contains(why, "password is required") {
				why += " (sudo wants your password again: run `sudo -v`, then the same mage command)"
			}
			return fmt.Errorf("the DNS filter stopped as it started (%v): %s", err, why)
		case <-ctx.Done():
			c.abandon(cmd.Process.Pid, spec.Token, exited)
			return ctx.Err()
		case <-time.After(pollEvery):
		}
		if time.Now().After(deadline) {
			c.abandon(cmd.Process.Pid, spec.Token, exited)
			return fmt.Errorf("the DNS filter did not start serving within %s: %s", startWait, tail(logPath, logStart))
		}
	}
}

// abandon ends a start that is given up. The process started is sudo when
// this process is not root, which passes SIGTERM on to the daemon (not
// SIGKILL), so the daemon gets SIGTERM: by its own pid when it recorded
// itself, through sudo otherwise, and SIGKILL only when that is not enough.
func (c *Control) abandon(pid int, token string, exited <-chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), stopWait)
	defer cancel()
	if st, ok, _ := c.Running(ctx); ok && st.Spec.Token == token {
		c.signal(ctx, st.Pid, syscall.SIGTERM)
	}
	select {
	case <-exited:
		return // reaped: its pid may be another process's by now
	default:
	}
	c.signal(ctx, pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-ctx.Done():
		c.signal(context.Background(), pid, syscall.SIGKILL)
	}
}

// tail returns what the log holds after offset, trimmed, or a pointer to
// the log when that is nothing.
func tail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) <= offset {
		return "see " + path
	}
	s := strings.TrimSpace(string(b[offset:]))
	if len(s) > 2000 {
		s = "..." + s[len(s)-2000:]
	}
	return s
}

// reload sends SIGHUP and waits for the daemon to record it.
func (c *Control) reload(ctx context.Context, st Status) error {
	if err := c.signal(ctx, st.Pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("asking the DNS filter to read the names again: %w", err)
	}
	deadline := time.Now().Add(reloadWait)
	for {
		now, ok, err := c.Running(ctx)
		switch {
		case err != nil:
			return err
		case !ok:
			return errors.New("the DNS filter stopped while reading the names again; `mage dev` starts it again")
		case now.Reloads > st.Reloads:
			if now.ReloadError != "" {
				return fmt.Errorf("the DNS filter, reading the names again: %s", now.ReloadError)
			}
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("the DNS filter did not read the names again within %s (see %s)", reloadWait, filepath.Join(c.Dir, LogFile))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// Stop stops our daemon, when one runs, and waits for it to end (SIGKILL
// after stopWait). It removes the settings and status files; the logs stay.
func (c *Control) Stop(ctx context.Context) error {
	st, ok, err := c.Running(ctx)
	if err != nil {
		return err
	}
	if ok {
		if err := c.signal(ctx, st.Pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stopping the DNS filter (process %d): %w", st.Pid, err)
		}
		deadline := time.Now().Add(stopWait)
		for {
			alive, err := c.ours(ctx, st.Pid, st.Spec.Token)
			if err != nil {
				return err
			}
			if !alive {
				break
			}
			if time.Now().After(deadline) {
				c.signal(ctx, st.Pid, syscall.SIGKILL)
				deadline = time.Now().Add(stopWait)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(pollEvery):
			}
		}
	}
	for _, f := range []string{statusFile, specFile} {
		if err := os.Remove(filepath.Join(c.Dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// signal sends sig to pid: directly as root, through `sudo kill` otherwise
// (the daemon runs as root).
func (c *Control) signal(ctx context.Context, pid int, sig syscall.Signal) error {
	if c.root() {
		return syscall.Kill(pid, sig)
	}
	_, err := c.runner().Run(ctx, proc.Cmd{Name: "kill", Args: []string{"-" + strconv.Itoa(int(sig)), strconv.Itoa(pid)}, Privileged: true})
	return err
}

func newToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
