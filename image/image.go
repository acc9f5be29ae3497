// Package image works out what `mage build` needs to build claudecontainer's
// container image: where the Dockerfile and its build context are, and the
// build arguments taken from the host (its time zone and the user's IDs).
//
// The Dockerfile sits at the root of the checkout, so that a plain
// `container build -t claudepine:latest .` still works; the files it copies
// into the image are in this directory.
package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/VerilyPete/claudecontainer/engine"
)

// Names of the build arguments the Dockerfile declares.
const (
	ArgTZ  = "TZ"
	ArgUID = "USER_UID"
	ArgGID = "USER_GID"
)

// Defaults used when the host's values cannot be used.
const (
	DefaultTZ = "UTC"
	DefaultID = 1000
)

// Dockerfile is the Dockerfile's name at the root of the build context.
const Dockerfile = "Dockerfile"

// Files lists the files the Dockerfile copies, relative to the build context.
var Files = []string{"image/entrypoint.sh", "image/claudecontainer-check", "image/zshrc"}

// Args are the values of the Dockerfile's build arguments.
type Args struct {
	TZ  string // IANA zone name, such as Europe/Berlin
	UID int    // of the container's user
	GID int    // of the container's user's group

	// Notes says, one sentence each, where a host value could not be used
	// and what was used instead; `mage build` prints them.
	Notes []string
}

// Map returns the arguments as `--build-arg` pairs.
func (a Args) Map() map[string]string {
	return map[string]string{
		ArgTZ:  a.TZ,
		ArgUID: strconv.Itoa(a.UID),
		ArgGID: strconv.Itoa(a.GID),
	}
}

// BuildArgs computes the build arguments for the host user with the given
// IDs (os.Getuid and os.Getgid). The time zone comes from the target of the
// localtime symlink (/etc/localtime), else from $TZ read through getenv, else
// it is UTC. Nothing unvalidated is passed on: a zone name must look like an
// IANA name, and an ID must be a positive user ID other than root's; anything
// else is replaced by a default and explained in Notes.
func BuildArgs(getenv func(string) string, uid, gid int, localtime string) Args {
	var a Args
	a.TZ, a.Notes = timeZone(getenv, localtime)
	a.UID = id("UID", "user", uid, &a.Notes)
	a.GID = id("GID", "group", gid, &a.Notes)
	return a
}

// maxID is the largest ID used: 2^31-2, as user namespaces and most tools
// handle it; -1 (2^32-1) and the like mean "no ID".
const maxID = 1<<31 - 2

func id(kind, what string, v int, notes *[]string) int {
	switch {
	case v == 0:
		*notes = append(*notes, fmt.Sprintf("the host %s is root's (%s 0): the container's user gets %s %d instead, and files it writes in /workspace belong to that %s",
			what, kind, kind, DefaultID, kind))
	case v < 0 || v > maxID:
		*notes = append(*notes, fmt.Sprintf("the host %s has %s %d, which is not a usable ID: the container's user gets %s %d instead",
			what, kind, v, kind, DefaultID))
	default:
		return v
	}
	return DefaultID
}

// zoneName matches IANA time zone names: Europe/Berlin, America/Argentina/Salta,
// Etc/GMT+5, UTC, EST5EDT.
var zoneName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z][A-Za-z0-9_+-]*){0,2}$`)

// ValidZone reports whether name looks like an IANA time zone name. It does
// not check that the zone exists.
func ValidZone(name string) bool {
	return len(name) <= 64 && zoneName.MatchString(name)
}

func timeZone(getenv func(string) string, localtime string) (string, []string) {
	var why []string
	if target, err := os.Readlink(localtime); err == nil {
		if name, ok := zoneFromPath(target); ok {
			return name, nil
		}
		// A chain of links (through /etc/alternatives, say) may still end
		// in a zone file.
		if end, err := filepath.EvalSymlinks(localtime); err == nil {
			if name, ok := zoneFromPath(end); ok {
				return name, nil
			}
		}
		why = append(why, fmt.Sprintf("%s points to %q, which names no time zone", localtime, target))
	} else {
		why = append(why, fmt.Sprintf("%s is not a link to a zone file", localtime))
	}
	tz := strings.TrimSpace(getenv("TZ"))
	if tz == "" {
		why = append(why, "TZ is not set")
	} else {
		// POSIX lets TZ start with ':' before a zone name or a zone file.
		name := strings.TrimPrefix(tz, ":")
		if strings.HasPrefix(name, "/") {
			name, _ = zoneFromPath(name)
		}
		if ValidZone(name) {
			return name, nil
		}
		why = append(why, fmt.Sprintf("TZ=%q is not a time zone name such as Europe/Berlin", tz))
	}
	return DefaultTZ, []string{"the container uses " + DefaultTZ + ": " + strings.Join(why, ", and ")}
}

// zoneFromPath returns the zone name in the path of a zone file, such as
// /usr/share/zoneinfo/Europe/Berlin or, on macOS,
// /var/db/timezone/zoneinfo/Europe/Berlin.
func zoneFromPath(path string) (string, bool) {
	path = filepath.ToSlash(filepath.Clean(path))
	i := strings.LastIndex(path, "zoneinfo/")
	if i < 0 {
		return "", false
	}
	name := path[i+len("zoneinfo/"):]
	// posix/ and right/ hold the same zones with and without leap seconds.
	for _, dir := range []string{"posix/", "right/"} {
		name = strings.TrimPrefix(name, dir)
	}
	if !ValidZone(name) {
		return "", false
	}
	return name, true
}

// Context is where the image is built from.
type Context struct {
	Dir        string // the build context: the checkout's root
	Dockerfile string // the Dockerfile in it
}

// Locate finds the build context: dir or the nearest directory above it that
// holds the Dockerfile, and checks that the files it copies are there.
func Locate(dir string) (Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Context{}, fmt.Errorf("image: %w", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		df := filepath.Join(d, Dockerfile)
		if st, err := os.Stat(df); err == nil && st.Mode().IsRegular() {
			var missing []string
			for _, f := range Files {
				if _, err := os.Stat(filepath.Join(d, filepath.FromSlash(f))); err != nil {
					missing = append(missing, f)
				}
			}
			if len(missing) > 0 {
				return Context{}, fmt.Errorf("image: %s has no %s: run mage from a complete claudecontainer checkout",
					d, strings.Join(missing, ", "))
			}
			return Context{Dir: d, Dockerfile: df}, nil
		}
		if filepath.Dir(d) == d {
			return Context{}, errors.New("image: no Dockerfile in " + abs + " or above it: run mage from the claudecontainer checkout")
		}
	}
}

// Spec returns the build of the image tagged tag from c with the arguments a.
func Spec(c Context, tag string, a Args) engine.BuildSpec {
	return engine.BuildSpec{Context: c.Dir, Dockerfile: c.Dockerfile, Tag: tag, Args: a.Map()}
}
