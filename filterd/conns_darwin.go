package filterd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// pflogIf is the pflog interface our rules log to (pf's default).
const pflogIf = "pflog0"

// watchRefused reads what pf logs on pflog0 through BPF and writes a
// ConnRecord for each packet our anchor dropped, until ctx ends. pflog0 is
// not there after boot (XNU's pflog only attaches its cloner), so it is
// created first; and pf logs nothing while no BPF reader is attached.
//
// Written from XNU's headers (bsd/net/bpf.h, bsd/net/if_pflog.h) and Go's
// syscall BPF calls for darwin; it has not run on a Mac yet.
func watchRefused(ctx context.Context, anchor string, w io.Writer, names *recent, logf func(string, ...any)) error {
	if out, err := exec.CommandContext(ctx, "/sbin/ifconfig", pflogIf, "create").CombinedOutput(); err != nil && !strings.Contains(string(out), "exists") {
		logf("creating %s: %v: %s", pflogIf, err, strings.TrimSpace(string(out)))
	}
	fd, err := openBPF()
	if err != nil {
		return err
	}
	buflen, err := setupBPF(fd)
	if err != nil {
		syscall.Close(fd)
		return err
	}
	go func() {
		<-ctx.Done()
		syscall.Close(fd)
	}()
	go func() {
		buf := make([]byte, buflen)
		for {
			n, err := syscall.Read(fd, buf)
			switch {
			case ctx.Err() != nil:
				return
			case errors.Is(err, syscall.EINTR):
				continue
			case err != nil:
				// pflog0 went away, or worse: refused connections are
				// no longer logged until the filter starts again.
				logf("reading %s: %v; refused connections are no longer logged", pflogIf, err)
				syscall.Close(fd)
				return
			}
			now := time.Now().UTC()
			for _, rec := range refusedByPf(buf[:n], anchor) {
				rec.Time, rec.Names = now, names.of(rec.Addr)
				if b, err := json.Marshal(rec); err == nil {
					w.Write(append(b, '\n'))
				}
			}
		}
	}()
	return nil
}

// openBPF opens the first free BPF device.
func openBPF() (int, error) {
	for i := 0; i < 256; i++ {
		fd, err := syscall.Open(fmt.Sprintf("/dev/bpf%d", i), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			return -1, fmt.Errorf("opening /dev/bpf%d to read %s: %w", i, pflogIf, err)
		}
	}
	return -1, fmt.Errorf("no free BPF device to read %s", pflogIf)
}

// setupBPF attaches fd to pflog0, returns each packet as it comes, and
// returns the read buffer's size.
func setupBPF(fd int) (int, error) {
	if err := syscall.SetBpfInterface(fd, pflogIf); err != nil {
		return 0, fmt.Errorf("attaching BPF to %s: %w", pflogIf, err)
	}
	if err := syscall.SetBpfImmediate(fd, 1); err != nil {
		return 0, fmt.Errorf("BPF on %s: %w", pflogIf, err)
	}
	n, err := syscall.BpfBuflen(fd)
	if err != nil {
		return 0, fmt.Errorf("BPF on %s: %w", pflogIf, err)
	}
	return n, nil
}
