package apple

import (
	"fmt"
	"regexp"
	"strconv"
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
		return Version{}, fmt.Errorf("cannot find a version in `container --version` output %q", clip(out))
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

// Features of the container CLI that this driver depends on, by the release
// that introduced them (see the apple/container sources of each tag).
func (v Version) hasNetworkCommand() bool  { return v.AtLeast(0, 2, 0) }
func (v Version) hasSystemStatus() bool    { return v.AtLeast(0, 2, 0) }
func (v Version) hasStatusJSON() bool      { return v.AtLeast(0, 10, 0) }
func (v Version) hasNamedVolumes() bool    { return v.AtLeast(0, 4, 0) }
func (v Version) autoCreatesVolumes() bool { return v.AtLeast(0, 6, 0) }
func (v Version) hasSubnetFlag() bool      { return v.AtLeast(0, 6, 0) }
func (v Version) limitsDockerfile() bool   { return v.AtLeast(1, 0, 0) }

// clip shortens command output quoted in an error message.
func clip(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
