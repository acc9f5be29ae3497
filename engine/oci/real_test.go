package oci_test

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/engine/oci"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// realPodman is the podman found on PATH before the fakes were put first.
var realPodman = func() string {
	p, _ := exec.LookPath("podman")
	return p
}()

// pathRunner runs every command through the program at an absolute path,
// past the fakes on PATH.
type pathRunner struct {
	proc.Runner
	path string
}

func (r pathRunner) Run(ctx context.Context, c proc.Cmd) (proc.Result, error) {
	c.Name = r.path
	return r.Runner.Run(ctx, c)
}

func (r pathRunner) Interactive(ctx context.Context, c proc.Cmd) error {
	c.Name = r.path
	return r.Runner.Interactive(ctx, c)
}

// withLibraries returns the ELF program at path and, when it is dynamically
// linked, its interpreter and every shared library it needs, found in the
// usual library directories: the files an image built from nothing needs
// to run it.
func withLibraries(path string) ([]string, error) {
	files := []string{path}
	seen := map[string]bool{path: true}
	for i := 0; i < len(files); i++ {
		f, err := elf.Open(files[i])
		if err != nil {
			return nil, err
		}
		var needed []string
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				b := make([]byte, prog.Filesz)
				if _, err := prog.ReadAt(b, 0); err != nil {
					f.Close()
					return nil, err
				}
				needed = append(needed, strings.TrimRight(string(b), "\x00"))
			}
		}
		libs, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, lib := range libs {
			found := ""
			for _, dir := range []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"} {
				if _, err := os.Stat(filepath.Join(dir, lib)); err == nil {
					found = filepath.Join(dir, lib)
					break
				}
			}
			if found == "" {
				return nil, fmt.Errorf("%s needs %s, which is in no library directory", files[i], lib)
			}
			needed = append(needed, found)
		}
		for _, n := range needed {
			if !seen[n] {
				seen[n] = true
				files = append(files, n)
			}
		}
	}
	return files, nil
}

// TestRealPodmanRunsTheContainerOnItsNetwork drives the podman installed on
// this machine, as root, through a whole session: build an image from local
// files, create the network, read it back, run the container on it, exec into
// it, stop and start it. Its storage and network configuration live in
// temporary directories, so it leaves nothing behind.
func TestRealPodmanRunsTheContainerOnItsNetwork(t *testing.T) {
	const setupHint = "apt-get install podman netavark aardvark-dns iptables runc busybox"
	if realPodman == "" {
		t.Skip("podman is not installed; to run this check: " + setupHint)
	}
	if os.Geteuid() != 0 {
		t.Skip("this check runs rootful podman, whose bridge the host firewall sees; run the tests as root")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox, to build the test image from, is not installed; " + setupHint)
	}
	files, err := withLibraries(busybox)
	if err != nil {
		t.Skipf("cannot gather busybox's libraries for the test image: %v", err)
	}

	tmp := t.TempDir()
	conf := filepath.Join(tmp, "containers.conf")
	// Lower limits than podman's defaults, which a root without
	// CAP_SYS_RESOURCE (a container, a sandbox) cannot raise to; runc where
	// installed, as crun refuses hybrid cgroup hierarchies.
	confText := fmt.Sprintf("[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\n[network]\nnetwork_config_dir = %q\n\n[engine]\ntmp_dir = %q\n",
		filepath.Join(tmp, "networks"), filepath.Join(tmp, "libpod"))
	if runc, err := exec.LookPath("runc"); err == nil {
		confText += fmt.Sprintf("runtime = %q\n", runc)
	}
	storage := filepath.Join(tmp, "storage.conf")
	storageText := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(tmp, "graph"), filepath.Join(tmp, "run"))
	for path, text := range map[string]string{conf: confText, storage: storageText} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CONTAINERS_CONF", conf)
	t.Setenv("CONTAINERS_STORAGE_CONF", storage)

	realSession(t, oci.Podman, realPodman, netip.MustParsePrefix("10.213.77.0/24"), busybox, files)
}

// realDocker is the docker found on PATH before the fakes were put first.
var realDocker = func() string {
	p, _ := exec.LookPath("docker")
	return p
}()

// TestRealDockerRunsTheContainerOnItsNetwork drives the Docker daemon that
// answers here (DOCKER_HOST or the default socket) through the same session
// as the podman check. It skips when no daemon answers.
func TestRealDockerRunsTheContainerOnItsNetwork(t *testing.T) {
	if realDocker == "" {
		t.Skip("docker is not installed")
	}
	if _, err := (proc.Exec{}).Run(context.Background(), proc.Cmd{Name: realDocker, Args: []string{"info"}}); err != nil {
		t.Skipf("no Docker daemon answers here (start one to run this check): %v", err)
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox, to build the test image from, is not installed")
	}
	files, err := withLibraries(busybox)
	if err != nil {
		t.Skipf("cannot gather busybox's libraries for the test image: %v", err)
	}
	realSession(t, oci.Docker, realDocker, netip.MustParsePrefix("10.213.78.0/24"), busybox, files)
}

// realSession runs the whole session against the real program at path:
// build, network, create, exec, stop, start.
func realSession(t *testing.T, program, path string, subnet netip.Prefix, busybox string, files []string) {
	tmp := t.TempDir()
	ctx := context.Background()
	raw := func(args ...string) (string, error) {
		res, err := proc.Exec{}.Run(ctx, proc.Cmd{Name: path, Args: args})
		return string(res.Stdout), err
	}
	e := oci.New(pathRunner{proc.Exec{}, path}, program)

	var (
		image     = "localhost/claudecontainer-oci-test-" + program + ":latest"
		network   = "cctest-" + program
		container = "cctest-shell-" + program
		probe     = "cctest-probe-" + program
	)
	rm := []string{"rm", "-f"}
	if program == oci.Podman {
		rm = append(rm, "-t", "0")
	}
	t.Cleanup(func() {
		raw(append(rm, container)...)
		raw(append(rm, probe)...)
		raw("network", "rm", network)
		raw("rmi", "-f", image)
		raw("volume", "rm", "-f", "cctest-home-"+program)
	})

	if _, err := e.EnsureRunning(ctx); err != nil {
		t.Skipf("%s does not work on this machine: %v", program, err)
	}
	if rootless, err := e.Rootless(ctx); err != nil || rootless {
		t.Fatalf("Rootless = %t, %v; want false as root", rootless, err)
	}

	// An image from nothing but local files: busybox (with its libraries
	// when it is not static), an interactive shell as the default command.
	buildDir := filepath.Join(tmp, "build")
	rootfs := filepath.Join(buildDir, "rootfs")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(rootfs, f)
		if f == busybox {
			dst = filepath.Join(rootfs, "bin", "busybox")
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, applet := range []string{"sh", "sleep", "touch", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	dockerfile := filepath.Join(buildDir, "Containerfile")
	if err := os.WriteFile(dockerfile, []byte("FROM scratch\nARG NOTE=none\nLABEL note=$NOTE\nCOPY rootfs/ /\nCMD [\"/bin/sh\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	if ok, err := e.ImageExists(ctx, image); err != nil || ok {
		t.Fatalf("ImageExists before Build = %t, %v; want false", ok, err)
	}
	if err := e.Build(ctx, engine.BuildSpec{Context: buildDir, Dockerfile: dockerfile, Tag: image, Args: map[string]string{"NOTE": "built by the oci test"}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.ImageExists(ctx, image); err != nil || !ok {
		t.Fatalf("ImageExists after Build = %t, %v; want true", ok, err)
	}
	if label, err := raw("image", "inspect", "--format", "{{.Config.Labels.note}}", image); err != nil || strings.TrimSpace(label) != "built by the oci test" {
		t.Errorf("the build argument did not reach the build: label %q, %v", label, err)
	}
	// Detached: podman 4.3 waits 20 s on its own cleanup after an attached
	// run.
	out, err := raw("run", "-d", "--name", probe, "--network", "none", image, "/bin/sleep", "60")
	raw(append(rm, probe)...)
	if err != nil {
		t.Skipf("podman cannot run containers on this machine (%v): %s", err, out)
	}

	if _, err := e.Network(ctx, network); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Network before CreateNetwork: %v; want engine.ErrNotFound", err)
	}
	if err := e.CreateNetwork(ctx, network, subnet); err != nil {
		t.Fatal(err)
	}
	n, err := e.Network(ctx, network)
	if err != nil {
		t.Fatal(err)
	}
	if n.IPv4 != subnet || n.Gateway4 != subnet.Addr().Next() || n.IPv6.IsValid() || n.Interface == "" {
		t.Fatalf("Network = %+v", n)
	}
	t.Logf("network %s: %s via %s on %s", n.Name, n.IPv4, n.Gateway4, n.Interface)

	if st, err := e.State(ctx, container); err != nil || st != engine.Absent {
		t.Fatalf("State before Create = %q, %v; want absent", st, err)
	}
	workspace := t.TempDir()
	// The container's user may not be root: let it write.
	if err := os.Chmod(workspace, 0o777); err != nil {
		t.Fatal(err)
	}
	spec := engine.RunSpec{
		Name:    container,
		Image:   image,
		Network: network,
		DNS:     []netip.Addr{n.Gateway4},
		Volumes: []engine.Volume{{Source: "cctest-home-" + program, Target: "/home/claude"}, {Source: workspace, Target: "/workspace"}},
		Memory:  "256m",
		CPUs:    1,
	}
	if err := e.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if st, err := e.State(ctx, container); err != nil || st != engine.Running {
		t.Fatalf("State after Create = %q, %v; want running (the default command must stay alive)", st, err)
	}
	if got, err := e.RunningOn(ctx, network); err != nil || len(got) != 1 || got[0] != container {
		t.Fatalf("RunningOn = %q, %v; want [%s]", got, err, container)
	}

	// Rootful podman puts the bridge in the host's network namespace, where
	// the firewall can match it, with the gateway address on it.
	iface, err := net.InterfaceByName(n.Interface)
	if err != nil {
		t.Fatalf("bridge %s is not in the host's network namespace: %v", n.Interface, err)
	}
	addrs, _ := iface.Addrs()
	if !strings.Contains(fmt.Sprint(addrs), n.Gateway4.String()+"/24") {
		t.Errorf("bridge %s addresses %v lack the gateway %s", n.Interface, addrs, n.Gateway4)
	}

	if err := e.Exec(ctx, container, "/bin/sh", "-c", "touch /workspace/hello && exit 3"); proc.ExitCode(err) != 3 {
		t.Errorf("Exec = %v; want exit status 3", err)
	}
	if _, err := os.Stat(filepath.Join(workspace, "hello")); err != nil {
		t.Errorf("a file made in /workspace is not in the host directory: %v", err)
	}
	if program == oci.Docker {
		// docker answers on 127.0.0.11 inside the container and forwards,
		// from the container's network namespace, to the --dns servers.
		if dns, err := raw("container", "inspect", "--format", "{{json .HostConfig.Dns}}", container); err != nil || strings.TrimSpace(dns) != `["`+n.Gateway4.String()+`"]` {
			t.Errorf("HostConfig.Dns = %q, %v; want the gateway", dns, err)
		}
	} else if resolv, err := raw("exec", container, "/bin/cat", "/etc/resolv.conf"); err != nil || !strings.Contains(resolv, "nameserver "+n.Gateway4.String()) {
		t.Errorf("/etc/resolv.conf = %q, %v; want the gateway as nameserver", resolv, err)
	}

	if err := e.Stop(ctx, container); err != nil {
		t.Fatal(err)
	}
	if st, err := e.State(ctx, container); err != nil || st != engine.Stopped {
		t.Fatalf("State after Stop = %q, %v; want stopped", st, err)
	}
	if got, err := e.RunningOn(ctx, network); err != nil || len(got) != 0 {
		t.Fatalf("RunningOn after Stop = %q, %v; want none", got, err)
	}
	if err := e.Start(ctx, container); err != nil {
		t.Fatal(err)
	}
	if st, err := e.State(ctx, container); err != nil || st != engine.Running {
		t.Fatalf("State after Start = %q, %v; want running", st, err)
	}
	if err := e.Stop(ctx, container); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "cctest-missing-"+program); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Start of a missing container: %v; want engine.ErrNotFound", err)
	}
}
