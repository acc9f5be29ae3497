package apple

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/VerilyPete/claudecontainer/engine"
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
	if v.Major != major {
		return v.Major > major
	}
	if v.Minor != minor {
		return v.Minor > minor
	}
	return v.Patch >= patch
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
