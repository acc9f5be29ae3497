package dnsfilter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
)

// minLogLimit is the smallest size limit OpenLog accepts: room for a few
// records of the longest kind (a 253-byte name, escaped, and a reason).
const minLogLimit = 4096

// LogFile is the refusal log: path, and path.1 for the lines before. A
// write that would take path past the limit first renames path to path.1
// (replacing it) and starts path anew, so neither file ever exceeds the
// limit and the two together never exceed twice it.
//
// Each Write should be whole lines, as the Handler writes them; each goes
// to the file in one write(2). A reader (ReadLog) that meets the last line
// while it is being written ignores it, because it has no newline yet.
// LogFile is safe for concurrent use.
type LogFile struct {
	path  string
	limit int64

	mu     sync.Mutex
	f      *os.File // nil after a failed rotation, until it is opened again
	size   int64
	closed bool
}

// OpenLog opens the log at path for appending, creating it if need be.
// limit is the most bytes a file may hold, at least 4096. A file ending in
// a half line (left by a crash) gets a newline, so the next record starts
// on a line of its own and the half line reads back as malformed.
func OpenLog(path string, limit int64) (*LogFile, error) {
	if limit < minLogLimit {
		return nil, fmt.Errorf("dnsfilter: log size limit %d is below %d bytes", limit, minLogLimit)
	}
	l := &LogFile{path: path, limit: limit}
	if err := l.open(os.O_APPEND); err != nil {
		return nil, err
	}
	if l.size > 0 {
		last := make([]byte, 1)
		if _, err := l.f.ReadAt(last, l.size-1); err != nil {
			l.f.Close()
			return nil, fmt.Errorf("dnsfilter: reading %s: %w", path, err)
		}
		if last[0] != '\n' && l.size < l.limit {
			if _, err := l.f.Write([]byte{'\n'}); err != nil {
				l.f.Close()
				return nil, fmt.Errorf("dnsfilter: writing %s: %w", path, err)
			}
			l.size++
		} else if last[0] != '\n' {
			l.size = l.limit // full anyway: the next write rotates
		}
	}
	return l, nil
}

// open opens l.path with flag (os.O_APPEND, or os.O_TRUNC after a
// rotation) and notes its size.
func (l *LogFile) open(flag int) error {
	// O_NOFOLLOW: the daemon is root and the directory is the user's; a
	// link planted there must not make it write elsewhere.
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_RDWR|os.O_APPEND|syscall.O_NOFOLLOW|flag, 0o644)
	if err != nil {
		return fmt.Errorf("dnsfilter: opening the log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("dnsfilter: opening the log: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return fmt.Errorf("dnsfilter: log %s is not a regular file", l.path)
	}
	// A hard link to another file (the daemon is root; the directory is
	// the user's, and macOS lets anyone link to a file it cannot write).
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink != 1 {
		f.Close()
		return fmt.Errorf("dnsfilter: log %s has %d names: a link to another file?", l.path, st.Nlink)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would take the file past the
// limit. A p longer than the limit is not written at all.
func (l *LogFile) Write(p []byte) (int, error) {
	if int64(len(p)) > l.limit {
		return 0, fmt.Errorf("dnsfilter: log line of %d bytes exceeds the limit of %d", len(p), l.limit)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, fs.ErrClosed
	}
	if l.f == nil {
		if err := l.open(os.O_APPEND); err != nil {
			return 0, err
		}
	}
	if l.size+int64(len(p)) > l.limit {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// rotate renames the log to path.1 and starts an empty one. When the
// rename fails the log is left as it is, and nothing more is written to it
// until a later rotation succeeds; when the new file cannot be opened, the
// next Write tries again.
func (l *LogFile) rotate() error {
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("dnsfilter: rotating the log: %w", err)
	}
	l.f.Close()
	l.f = nil
	return l.open(os.O_TRUNC)
}

// Close closes the log.
func (l *LogFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fs.ErrClosed
	}
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// ReadLog reads the refusal log at path: path.1 first, then path, oldest
// record first. A missing file counts as empty. A line that is not a
// record is skipped and reported to warn (when not nil) with its file and
// line number; a last line without a newline is being written and is
// skipped silently. A rotation while ReadLog runs may make it miss or
// repeat some records.
func ReadLog(path string, warn func(error)) ([]Record, error) {
	return ReadLines(path, warn, func(r Record) error {
		if r.Time.IsZero() {
			return errors.New("no time")
		}
		return nil
	})
}

// ReadLines reads a log of JSON lines of type T, kept as LogFile keeps it,
// as ReadLog does; check says why a decoded line is not a record.
func ReadLines[T any](path string, warn func(error), check func(T) error) ([]T, error) {
	var out []T
	for _, p := range []string{path + ".1", path} {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dnsfilter: reading the log: %w", err)
		}
		out = append(out, parseLines(p, data, warn, check)...)
	}
	return out, nil
}

func parseLines[T any](file string, data []byte, warn func(error), check func(T) error) []T {
	var out []T
	r := bufio.NewReader(bytes.NewReader(data))
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			return out // a last line without newline is still being written
		}
		var rec T
		if err := json.Unmarshal(line, &rec); err != nil || check(rec) != nil {
			if warn != nil {
				if err == nil {
					err = check(rec)
				}
				warn(fmt.Errorf("%s:%d: not a record: %w", file, n, err))
			}
			continue
		}
		out = append(out, rec)
	}
}
