package apple

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
)

// Version is a parsed `container --version`. Builds between releases
// (`0.9.0-35-g899081d`) compare as the release they follow, which has at
// least that release's features.
type Version struct {
	Major, Minor, Patch int
	Raw                 string // as printed, e.g. "1.2.2" or "0.9.0-35-g899081d"
}

var (
	versionLine = regexp.MustCompile(`version (\S+) \(`)
	versionNum  = regexp.MustCompile(`^(\d{1,4})\.(\d{1,4})\.(\d{1,4})(?:[-+][0-9A-Za-z.+-]{1,64})?$`)
)

// ParseVersion reads the output of `container --version`, such as
// "container CLI version 1.2.2 (build: release, commit: 3c4c59c)".
func ParseVersion(out []byte) (Version, error) {
	m := versionLine.FindSubmatch(out)
	if m == nil {
		return Version{}, fmt.Errorf("cannot find a version in `container --version` output %q", engine.Clip(out))
	}
	raw := string(m[1])
	n := versionNum.FindStringSubmatch(raw)
	if n == nil {
		return Version{}, fmt.Errorf("`container --version` printed version %q, want MAJOR.MINOR.PATCH", raw)
	}
	v := Version{Raw: raw}
	v.Major, _ = strconv.Atoi(n[1])
	v.Minor, _ = strconv.Atoi(n[2])
	v.Patch, _ = strconv.Atoi(n[3])
	return v, nil
}

// AtLeast reports whether v is the release major.minor.patch or later.
func (v Version) AtLeast(major, minor, patch int) bool {
	return cmp.Or(cmp.Compare(v.Major, major), cmp.Compare(v.Minor, minor), cmp.Compare(v.Patch, patch)) >= 0
}

func (v Version) String() string { return v.Raw }

// supported fails for releases older than 1.0.0, the oldest this driver
// reads: 1.0.0 changed the JSON of every list command (apple/container
// PR #1611, "align JSON output with shape for container resource") and the
// driver keeps no reader for the shapes before it.
func (v Version) supported() error {
	if v.AtLeast(1, 0, 0) {
		return nil
	}
	return fmt.Errorf("container %s is installed; claudecontainer needs 1.0 or later: stop the service (`container system stop`), "+
		"then install the current release from https://github.com/apple/container/releases (or `brew upgrade container` if Homebrew installed it)", v)
}

// release returns the installed release, once per Engine: from VersionFile
// when it was recorded for the program file that PATH finds now, else by
// asking `container --version` (and then recording the answer). A release
// older than 1.0.0 is an error that says to upgrade.
//
// Skipping the question is safe: the answer is the program's own (the CLI
// prints its version, compiled in), so the same file gives the same answer,
// and an upgrade or a downgrade replaces the file, which changes its
// identity. The release decides only the refusal of releases before 1.0.0
// and what error messages say: every parser checks each key it reads, so a
// record that lied could not make the driver accept output it does not know.
func (e *Engine) release(ctx context.Context) (Version, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.version.Raw != "" || e.versionErr != nil {
		return e.version, e.versionErr
	}
	id := programID(Program)
	if v, ok := e.recordedVersion(id); ok {
		e.version = v
		return v, nil
	}
	out, err := e.run(ctx, "--version")
	if err != nil {
		if ctx.Err() == nil {
			e.versionErr = err
		}
		return Version{}, err
	}
	v, err := ParseVersion(out)
	if err == nil {
		err = v.supported()
	}
	if err != nil {
		e.versionErr = err
		return Version{}, err
	}
	e.version = v
	e.recordVersion(id, out)
	return v, nil
}

// versionRecord is the content of Engine.VersionFile.
type versionRecord struct {
	Program string `json:"program"` // programID of the file that printed Output
	Output  string `json:"output"`  // what `container --version` printed
}

// recordedVersion returns the release read from the `container --version`
// output recorded for the program with identity id, when there is such a
// record and the release is supported.
func (e *Engine) recordedVersion(id string) (Version, bool) {
	if e.VersionFile == "" || id == "" {
		return Version{}, false
	}
	var r versionRecord
	b, err := os.ReadFile(e.VersionFile)
	if err != nil || json.Unmarshal(b, &r) != nil || r.Program != id {
		return Version{}, false
	}
	v, err := ParseVersion([]byte(r.Output))
	return v, err == nil && v.supported() == nil
}

// recordVersion records out as the output of the program with identity id.
// A record that cannot be written only costs the next run the question.
func (e *Engine) recordVersion(id string, out []byte) {
	if e.VersionFile == "" || id == "" {
		return
	}
	b, err := json.Marshal(versionRecord{Program: id, Output: string(out)})
	if err != nil || os.MkdirAll(filepath.Dir(e.VersionFile), 0o700) != nil {
		return
	}
	atomicfile.Write(e.VersionFile, append(b, '\n'), 0o600)
}

// programID names the file that running name finds on PATH: its path with
// symbolic links resolved, its size, modification time, device and inode.
// It is "" when the program cannot be found.
func programID(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	if p, err = filepath.EvalSymlinks(p); err != nil {
		return ""
	}
	if p, err = filepath.Abs(p); err != nil {
		return ""
	}
	fi, err := os.Stat(p)
	if err != nil {
		return ""
	}
	id := fmt.Sprintf("%s size=%d mtime=%d", p, fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id += fmt.Sprintf(" dev=%d ino=%d", st.Dev, st.Ino)
	}
	return id
}
