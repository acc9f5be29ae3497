package app

import (
	"os/exec"
	"testing"

	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

func TestWithoutPodmanDockerRunsUnlessPodmanWasChosen(t *testing.T) {
	onlyDocker := func(file string) (string, error) {
		if file == "docker" {
			return "/usr/bin/docker", nil
		}
		return "", exec.ErrNotFound
	}
	for setting, want := range map[string]string{"": "docker", "podman": "podman"} {
		t.Setenv(config.Prefix+"RUNTIME", setting)
		e := &env{cfg: config.Config{Runtime: "podman"}, runner: proc.Exec{}, lookPath: onlyDocker}
		eng, err := e.newEngine()
		if err != nil {
			t.Fatal(err)
		}
		if eng.Name() != want {
			t.Errorf("RUNTIME=%q with only docker installed: %s runs, want %s", setting, eng.Name(), want)
		}
	}
}
