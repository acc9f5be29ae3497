package oci_test

import (
	"context"
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/engine/oci"
	fakeoci "github.com/VerilyPete/claudecontainer/internal/fakes/oci"
)

// The fakes follow podman 5.4 and docker 28.2; World.Version and
// World.NetworkBackend make them report older releases the way those
// releases' `info` does (podman 3 has no networkBackend key).
func TestEnsureRunningRefusesReleasesOlderThanSupported(t *testing.T) {
	tests := []struct {
		name, program string
		world         fakeoci.World
		want          string
	}{
		{"podman 3", oci.Podman, fakeoci.World{Version: "3.4.4", NetworkBackend: "-"},
			"podman 3.4.4 is installed; claudecontainer needs podman 4 or later with the netavark network backend"},
		{"podman 4 on CNI", oci.Podman, fakeoci.World{Version: "4.3.1", NetworkBackend: "cni"},
			`podman 4.3.1 reports the "cni" network backend; claudecontainer needs netavark`},
		{"podman without a network backend", oci.Podman, fakeoci.World{Version: "4.0.0", NetworkBackend: "-"},
			"podman 4.0.0 reports no network backend; claudecontainer needs netavark"},
		{"podman with a version it cannot read", oci.Podman, fakeoci.World{Version: "four"},
			`reports podman version "four"`},
		{"docker 23", oci.Docker, fakeoci.World{Version: "23.0.6"},
			"Docker Engine 23.0.6 is installed; claudecontainer needs 24 or later"},
		{"docker 20.10 from Debian", oci.Docker, fakeoci.World{Version: "20.10.24+dfsg1"},
			"Docker Engine 20.10.24+dfsg1 is installed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, calls, _ := setup(t, tt.program, tt.world)
			_, err := e.EnsureRunning(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("EnsureRunning = %v, want an error containing %q", err, tt.want)
			}
			if got := calls(); len(got) != 1 || !strings.HasPrefix(got[0], tt.program+" info") {
				t.Errorf("calls %q, want only `%s info`", got, tt.program)
			}
		})
	}
}

func TestEnsureRunningAcceptsTheOldestSupportedReleases(t *testing.T) {
	for _, tt := range []struct {
		program string
		world   fakeoci.World
	}{
		{oci.Podman, fakeoci.World{Version: "4.0.0"}},
		{oci.Podman, fakeoci.World{Version: "4.3.1"}}, // Debian 12
		{oci.Docker, fakeoci.World{Version: "24.0.0"}},
		{oci.Docker, fakeoci.World{Version: "28.2.2"}},
	} {
		e, _, _ := setup(t, tt.program, tt.world)
		if _, err := e.EnsureRunning(context.Background()); err != nil {
			t.Errorf("%s %s: EnsureRunning = %v", tt.program, tt.world.Version, err)
		}
	}
}
