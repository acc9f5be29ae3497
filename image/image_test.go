package image_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/image"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// localtime makes a symlink to target standing in for /etc/localtime.
func localtime(t *testing.T, target string) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "localtime")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	return link
}

func TestBuildArgsTakesTheZoneFromTheLocaltimeLink(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, target, want string
	}{
		{"macOS", "/var/db/timezone/zoneinfo/Europe/Berlin", "Europe/Berlin"},
		{"Linux", "/usr/share/zoneinfo/America/New_York", "America/New_York"},
		{"a relative link", "../usr/share/zoneinfo/Asia/Kolkata", "Asia/Kolkata"},
		{"three levels", "/usr/share/zoneinfo/America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"},
		{"a sign in the name", "/usr/share/zoneinfo/Etc/GMT+5", "Etc/GMT+5"},
		{"a hyphen in the name", "/usr/share/zoneinfo/America/Port-au-Prince", "America/Port-au-Prince"},
		{"a single word", "/usr/share/zoneinfo/UTC", "UTC"},
		{"the posix directory", "/usr/share/zoneinfo/posix/Europe/Paris", "Europe/Paris"},
		{"the right directory", "/usr/share/zoneinfo/right/Europe/Paris", "Europe/Paris"},
		{"NixOS", "/etc/zoneinfo/Australia/Sydney", "Australia/Sydney"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := image.BuildArgs(env(map[string]string{"TZ": "Asia/Tokyo"}), 501, 20, localtime(t, tc.target))
			if a.TZ != tc.want {
				t.Errorf("TZ = %q, want %q", a.TZ, tc.want)
			}
			if len(a.Notes) != 0 {
				t.Errorf("notes = %q, want none", a.Notes)
			}
		})
	}
}

func TestBuildArgsFollowsAChainOfLinksToTheZoneFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	zone := filepath.Join(dir, "zoneinfo", "Europe", "Oslo")
	if err := os.MkdirAll(filepath.Dir(zone), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zone, []byte("TZif"), 0o644); err != nil {
		t.Fatal(err)
	}
	middle := filepath.Join(dir, "alternatives-localtime")
	if err := os.Symlink(zone, middle); err != nil {
		t.Fatal(err)
	}
	a := image.BuildArgs(env(nil), 1000, 1000, localtime(t, middle))
	if a.TZ != "Europe/Oslo" {
		t.Errorf("TZ = %q, want Europe/Oslo (notes %q)", a.TZ, a.Notes)
	}
}

func TestBuildArgsFallsBackToTheTZVariableThenUTC(t *testing.T) {
	t.Parallel()
	notLink := filepath.Join(t.TempDir(), "localtime")
	if err := os.WriteFile(notLink, []byte("TZif"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		localtime string
		tz        string
		want      string
		wantNote  string // a part of the one note expected, or "" for none
	}{
		{"a copied zone file and TZ set", notLink, "Europe/Lisbon", "Europe/Lisbon", ""},
		{"no localtime and TZ set", filepath.Join(t.TempDir(), "missing"), "Africa/Nairobi", "Africa/Nairobi", ""},
		{"TZ with POSIX's colon", notLink, ":Europe/Rome", "Europe/Rome", ""},
		{"TZ naming a zone file", notLink, ":/usr/share/zoneinfo/Europe/Madrid", "Europe/Madrid", ""},
		{"TZ with spaces around it", notLink, " Europe/Vienna\n", "Europe/Vienna", ""},
		{"nothing to go on", notLink, "", "UTC", "TZ is not set"},
		{"a POSIX rule in TZ", notLink, "CET-1CEST,M3.5.0,M10.5.0/3", "UTC", `TZ="CET-1CEST,M3.5.0,M10.5.0/3" is not a time zone name`},
		{"a shell command in TZ", notLink, "Europe/Berlin; rm -rf /", "UTC", "is not a time zone name"},
		{"a path climbing out in TZ", notLink, "../../etc/passwd", "UTC", "is not a time zone name"},
		{"a link to no zone", localtime(t, "/etc/hostname"), "", "UTC", `points to "/etc/hostname", which names no time zone`},
		{"a link to no zone and TZ set", localtime(t, "/tmp/x"), "Pacific/Auckland", "Pacific/Auckland", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := image.BuildArgs(env(map[string]string{"TZ": tc.tz}), 1000, 1000, tc.localtime)
			if a.TZ != tc.want {
				t.Errorf("TZ = %q, want %q", a.TZ, tc.want)
			}
			switch {
			case tc.wantNote == "" && len(a.Notes) != 0:
				t.Errorf("notes = %q, want none", a.Notes)
			case tc.wantNote != "" && (len(a.Notes) != 1 || !strings.Contains(a.Notes[0], tc.wantNote) || !strings.Contains(a.Notes[0], "uses UTC")):
				t.Errorf("notes = %q, want one saying %q and that UTC is used", a.Notes, tc.wantNote)
			}
		})
	}
}

func TestValidZoneAcceptsOnlyZoneNames(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"Europe/Berlin":                  true,
		"America/Argentina/Buenos_Aires": true,
		"Etc/GMT-14":                     true,
		"EST5EDT":                        true,
		"UTC":                            true,
		"":                               false,
		"/Europe/Berlin":                 false,
		"Europe/":                        false,
		"Europe//Berlin":                 false,
		"Europe/../Berlin":               false,
		"Europe/Berlin\n":                false,
		"Europe/Berlin UTC":              false,
		"$(reboot)":                      false,
		"-Europe":                        false,
		"A/B/C/D":                        false,
		strings.Repeat("A", 65):          false,
	}
	for name, want := range tests {
		if got := image.ValidZone(name); got != want {
			t.Errorf("ValidZone(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestBuildArgsKeepsTheHostUsersIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		uid, gid         int
		wantUID, wantGID int
		wantNotes        []string // parts of the notes, in order
	}{
		{"a macOS user", 501, 20, 501, 20, nil},
		{"a Linux user", 1000, 1000, 1000, 1000, nil},
		{"a directory user", 123456, 50000, 123456, 50000, nil},
		{"root", 0, 0, 1000, 1000, []string{"root's (UID 0)", "root's (GID 0)"}},
		{"root's group only", 1001, 0, 1001, 1000, []string{"GID 1000 instead"}},
		{"no ID at all", -1, -1, 1000, 1000, []string{"UID -1, which is not a usable ID", "GID -1, which is not a usable ID"}},
		{"an ID past 2^31-2", 1 << 31, 1000, 1000, 1000, []string{"UID 2147483648, which is not a usable ID"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := image.BuildArgs(env(map[string]string{"TZ": "UTC"}), tc.uid, tc.gid, filepath.Join(t.TempDir(), "none"))
			if a.UID != tc.wantUID || a.GID != tc.wantGID {
				t.Errorf("UID, GID = %d, %d; want %d, %d", a.UID, a.GID, tc.wantUID, tc.wantGID)
			}
			if len(a.Notes) != len(tc.wantNotes) {
				t.Fatalf("notes = %q, want %d", a.Notes, len(tc.wantNotes))
			}
			for i, part := range tc.wantNotes {
				if !strings.Contains(a.Notes[i], part) {
					t.Errorf("note %d = %q, want it to say %q", i, a.Notes[i], part)
				}
			}
		})
	}
}

func TestArgsBecomeBuildArgPairs(t *testing.T) {
	t.Parallel()
	a := image.Args{TZ: "Europe/Berlin", UID: 501, GID: 20}
	want := map[string]string{"TZ": "Europe/Berlin", "USER_UID": "501", "USER_GID": "20"}
	if diff := cmp.Diff(want, a.Map()); diff != "" {
		t.Errorf("Map() (-want +got):\n%s", diff)
	}
}

func TestLocateFindsTheCheckoutFromASubdirectory(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, start := range []string{"..", ".", "testdata-that-does-not-exist/.."} {
		c, err := image.Locate(start)
		if err != nil {
			t.Fatalf("Locate(%q): %v", start, err)
		}
		want := image.Context{Dir: root, Dockerfile: filepath.Join(root, "Dockerfile")}
		if diff := cmp.Diff(want, c); diff != "" {
			t.Errorf("Locate(%q) (-want +got):\n%s", start, diff)
		}
	}
}

func TestLocateSaysWhatIsMissing(t *testing.T) {
	t.Parallel()
	noDockerfile := t.TempDir()
	partial := t.TempDir()
	if err := os.WriteFile(filepath.Join(partial, "Dockerfile"), []byte("FROM alpine:3.24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(partial, "image"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(partial, "image", "zshrc"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, want string
	}{
		{"no Dockerfile anywhere", noDockerfile, "no Dockerfile in " + noDockerfile + " or above it"},
		{"a Dockerfile without its files", partial, "has no image/entrypoint.sh, image/claudecontainer-check"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := image.Locate(tc.dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Locate(%s) = %v, want an error saying %q", tc.dir, err, tc.want)
			}
		})
	}
}

func TestSpecBuildsTheTaggedImageFromTheContext(t *testing.T) {
	t.Parallel()
	c := image.Context{Dir: "/src/claudecontainer", Dockerfile: "/src/claudecontainer/Dockerfile"}
	a := image.Args{TZ: "UTC", UID: 1000, GID: 1000}
	want := engine.BuildSpec{
		Context:    "/src/claudecontainer",
		Dockerfile: "/src/claudecontainer/Dockerfile",
		Tag:        "claudepine:latest",
		Args:       map[string]string{"TZ": "UTC", "USER_UID": "1000", "USER_GID": "1000"},
	}
	if diff := cmp.Diff(want, image.Spec(c, "claudepine:latest", a)); diff != "" {
		t.Errorf("Spec (-want +got):\n%s", diff)
	}
}
