//go:build linux

package app

// The whole `mage dev` path on Linux with nothing stood in for: the real
// podman (rootful, netavark) runs a real container behind the real nftables
// firewall. Everything happens inside network namespaces the test creates:
//
//	container ── podman bridge ── host ── wan0 ─── wan (stands for the
//	             (netavark's        (our table,     internet: servers on
//	              rules)             podman,        addresses on its lo)
//	                                 aardvark-dns)
//
// The `mage dev` stand-in (this test binary, see TestMain) runs with its
// network namespace switched to "host", so podman, netavark and our nftables
// backend all work on that namespace's interfaces and rulesets and never on
// the machine's own. Podman's storage and network configuration live in a
// temporary directory. No packet leaves the machine: every address, even
// those that stand for public hosts, is inside the namespaces.

import (
	"bytes"
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/VerilyPete/claudecontainer/internal/dnstest"
	"github.com/VerilyPete/claudecontainer/internal/netns"

	"golang.org/x/sys/unix"

	"github.com/VerilyPete/claudecontainer/config"
	"github.com/VerilyPete/claudecontainer/engine"
	"github.com/VerilyPete/claudecontainer/engine/oci"
	"github.com/VerilyPete/claudecontainer/internal/proc"
)

// Addresses of the podman test. The link between host and wan and the
// servers come from the documentation and benchmark ranges; the container
// network is private, as claudecontainer requires.
var (
	podmanWANHost   = netip.MustParsePrefix("198.51.100.1/30")
	podmanWANPeer   = netip.MustParsePrefix("198.51.100.2/30")
	podmanAllowed   = netip.MustParseAddrPort("198.18.0.10:443")  // in the allowlist
	podmanDenied    = netip.MustParseAddrPort("203.0.113.10:443") // not in it
	podmanResolver  = netip.MustParseAddrPort("203.0.113.53:53")  // a public resolver
	podmanAllowlist = "198.18.0.0/24"
	podmanSubnet    = netip.MustParsePrefix("10.213.79.0/24")
)

// dnsDeadline bounds how long the container's shell waits for the
// gateway's DNS server to answer its first query.
const dnsDeadline = 60 * time.Second

// TestE2EDevWithRealPodmanBehindNftables runs `mage dev` with a real podman
// container behind the real nftables firewall, a script standing in for the
// user at the shell: the allowlisted server answers, the other one and a
// resolver on the internet are refused at once, the gateway's DNS answers,
// and when the shell exits the container is stopped and our table is gone.
func TestE2EDevWithRealPodmanBehindNftables(t *testing.T) { podmanDev(t, false) }

// TestE2EDevWithRealPodmanBehindTheDNSFilter is the same with the DNS
// filter on (the daemon is this test binary, started by the `mage dev`
// stand-in in the host namespace): the container's resolver is the
// gateway, whose port 53 our rules send to the filter; an allowed name
// resolves through it (asked of an upstream on the internet) and its
// address, closed before, opens; a blocked name, and a TXT question sent
// straight to a resolver on the internet, get NXDOMAIN and never reach the
// upstream; and the daemon is gone when the shell leaves.
func TestE2EDevWithRealPodmanBehindTheDNSFilter(t *testing.T) { podmanDev(t, true) }

// Addresses of the DNS filter variant: public ones (the filter opens no
// other), inside the wan namespace like the rest.
var (
	podmanNamed    = netip.MustParseAddrPort("23.192.0.10:443") // what allowed.example resolves to
	podmanLater    = netip.MustParseAddrPort("23.192.0.20:443") // refused until `mage allow`
	podmanUpstream = netip.MustParseAddrPort("23.192.0.53:53")  // the filter's upstream resolver
)

func podmanDev(t *testing.T, filter bool) {
	const setupHint = "apt-get install -y podman netavark aardvark-dns iptables runc busybox nftables iproute2 util-linux"
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("end-to-end test: needs root for network namespaces and rootful podman")
	}
	var missing []string
	for _, prog := range []string{"podman", "nft", "ip", "nsenter", "busybox"} {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
		}
	}
	if len(missing) > 0 {
		t.Skipf("end-to-end test: %s not installed (%s)", strings.Join(missing, ", "), setupHint)
	}
	busybox, _ := exec.LookPath("busybox")
	files, err := elfWithLibraries(busybox)
	if err != nil {
		t.Skipf("end-to-end test: cannot gather busybox's libraries for the test image: %v", err)
	}

	id := hex.EncodeToString(randomID())
	hostNS, wanNS := "ccdev-"+id+"-host", "ccdev-"+id+"-wan"
	var (
		image     = "localhost/claudecontainer-dev-test-" + id + ":latest"
		network   = "ccdev-" + id
		container = "ccdev-shell-" + id
	)
	tmp := t.TempDir()
	isolatePodman(t, tmp)
	podman := func(args ...string) (string, error) {
		out, err := exec.Command("nsenter", append([]string{"--net=/run/netns/" + hostNS, "podman"}, args...)...).CombinedOutput()
		return string(out), err
	}

	// Registered before the namespaces exist, so it runs after they are
	// removed: nothing of this test is left.
	t.Cleanup(func() {
		out, _ := exec.Command("ip", "netns", "list").Output()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, id) {
				t.Errorf("namespace %s is still there after the test", line)
			}
		}
	})
	for _, ns := range []string{hostNS, wanNS} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Skipf("end-to-end test: cannot create network namespaces here: %v: %s", err, out)
		}
		t.Cleanup(func() {
			// Whatever podman started in the namespace (aardvark-dns,
			// conmon) goes with it.
			if out, _ := exec.Command("ip", "netns", "pids", ns).Output(); len(out) > 0 {
				for _, f := range strings.Fields(string(out)) {
					if pid, err := strconv.Atoi(f); err == nil {
						t.Logf("ending process %d, left in namespace %s", pid, ns)
						unix.Kill(pid, unix.SIGKILL)
					}
				}
			}
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("removing namespace %s: %v: %s", ns, err, out)
			}
		})
	}
	mustIP(t, "-n", hostNS, "link", "set", "lo", "up")
	mustIP(t, "-n", wanNS, "link", "set", "lo", "up")
	mustIP(t, "-n", hostNS, "link", "add", "wan0", "type", "veth", "peer", "name", "eth0", "netns", wanNS)
	mustIP(t, "-n", hostNS, "addr", "add", podmanWANHost.String(), "dev", "wan0")
	mustIP(t, "-n", wanNS, "addr", "add", podmanWANPeer.String(), "dev", "eth0")
	mustIP(t, "-n", hostNS, "link", "set", "wan0", "up")
	mustIP(t, "-n", wanNS, "link", "set", "eth0", "up")
	mustIP(t, "-n", hostNS, "route", "add", "default", "via", podmanWANPeer.Addr().String())
	mustIP(t, "-n", wanNS, "route", "add", "default", "via", podmanWANHost.Addr().String())
	greetings := map[netip.AddrPort]string{
		podmanAllowed:  "hello from the allowlisted host",
		podmanDenied:   "hello from a host not on the allowlist",
		podmanResolver: "hello from a resolver on the internet",
	}
	var upstream *countingZone
	if filter {
		greetings[podmanNamed] = "hello from the host allowed.example names"
		greetings[podmanLater] = "hello from the host allowed later"
		upstream = &countingZone{asked: map[string]int{}, answer: podmanNamed.Addr()}
		mustIP(t, "-n", wanNS, "addr", "add", netip.PrefixFrom(podmanUpstream.Addr(), 32).String(), "dev", "lo")
		serveDNS(t, wanNS, podmanUpstream, upstream)
	}
	for ap, greeting := range greetings {
		mustIP(t, "-n", wanNS, "addr", "add", netip.PrefixFrom(ap.Addr(), 32).String(), "dev", "lo")
		serveGreeting(t, wanNS, ap, greeting)
	}
	// The servers answer the host before any firewall is up: what the
	// container is refused later is refused on its way through the host.
	for ap, greeting := range greetings {
		if got, err := dialGreeting(hostNS, ap); err != nil || got != greeting {
			t.Fatalf("from the host namespace, %s answers %q, %v; the topology is broken", ap, got, err)
		}
	}

	// The image: busybox and its libraries, /bin/zsh a script that runs
	// busybox's shell (an applet link named zsh would not run: busybox
	// picks the applet by the name it is called with).
	buildDir := filepath.Join(tmp, "build")
	rootfs := filepath.Join(buildDir, "rootfs")
	for _, f := range files {
		dst := filepath.Join(rootfs, f)
		if f == busybox {
			dst = filepath.Join(rootfs, "bin", "busybox")
		}
		copyFile(t, f, dst, 0o755)
	}
	for _, applet := range []string{"sh", "sleep", "cat", "nc", "nslookup", "echo", "date"} {
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(rootfs, "bin", "zsh"), "#!/bin/sh\nexec /bin/sh \"$@\"\n", 0o755)
	containerfile := filepath.Join(buildDir, "Containerfile")
	writeFile(t, containerfile, "FROM scratch\nCOPY rootfs/ /\nCMD [\"/bin/zsh\"]\n", 0o644)
	t.Cleanup(func() {
		// Whatever happened, nothing of ours stays in podman's storage;
		// the storage itself goes with the temporary directory.
		podman("rm", "-f", "-t", "0", container)
		podman("network", "rm", "-f", network)
		podman("volume", "rm", "-f", "alpine-home", "claude-history")
		podman("rmi", "-f", image)
		if out, err := podman("ps", "-a", "--format", "{{.Names}}"); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("containers left in the test's podman storage: %q, %v", out, err)
		}
	})
	if out, err := podman("build", "-q", "-f", containerfile, "-t", image, buildDir); err != nil {
		t.Fatalf("building the test image: %v: %s", err, out)
	}
	// Detached: podman 4.3 waits 20 s on its own cleanup after an attached
	// run.
	probe := "ccdev-probe-" + id
	out, err := podman("run", "-d", "--name", probe, "--network", "none", image, "/bin/sleep", "60")
	podman("rm", "-f", "-t", "0", probe)
	if err != nil {
		t.Skipf("end-to-end test: podman cannot run containers on this machine (%v): %s", err, out)
	}

	allow := filepath.Join(tmp, "allowed_destinations")
	writeFile(t, allow, "# claudecontainer allowlist for the podman end-to-end test\n#name allowed.example\n"+podmanAllowlist+"\n", 0o644)
	filterSetting := "off"
	if filter {
		filterSetting = "on"
		t.Setenv(config.Prefix+"DNS_UPSTREAM", podmanUpstream.String())
		// `mage allow` refetches: from the local file alone here (no
		// network), which holds one address for ever.
		t.Setenv(config.Prefix+"SOURCES", "local")
		writeFile(t, filepath.Join(tmp, "local"), "# the test's own\n23.192.0.99\n", 0o644)
		// A fresh copy of CloudFront's ranges, so that `mage allow` does
		// not fetch AWS's list.
		writeFile(t, filepath.Join(tmp, "cache", "cloudfront-ranges.txt"), "13.32.0.0/15\n", 0o644)
	}
	for k, v := range map[string]string{
		"FIREWALL": "nftables", "RUNTIME": "podman", "DNS_FILTER": filterSetting, "NETWORK": network, "SUBNET": podmanSubnet.String(),
		"IMAGE": image, "CONTAINER": container, "MEMORY": "256m", "CPUS": "1",
		"ALLOWLIST_FILE": allow, "ALLOWLIST_MAX_AGE": "1h", "STATE_DIR": filepath.Join(tmp, "state"),
		"CACHE_DIR": filepath.Join(tmp, "cache"), "LOCAL_FILE": filepath.Join(tmp, "local"), "WORKSPACE": filepath.Join(tmp, "workspace"),
		"DNS": "", "ANCHOR": "claude_firewall", "TABLE": "allowed_destinations",
	} {
		t.Setenv(config.Prefix+k, v)
	}

	// What the user types at the shell. Each probe ends with a line the
	// test reads back; nc's -w bounds a probe that meets a silent drop.
	//
	// The gateway's DNS server may not answer yet when the shell starts:
	// aardvark-dns 1.4 tells netavark it is ready as soon as it has written
	// its pid file, before it reads its configuration and binds its sockets
	// (src/commands/run.rs at v1.4.0), so podman can start the container
	// first, and under load the first queries are refused. The shell asks
	// until an answer comes or the deadline passes, and says which.
	gateway := podmanSubnet.Addr().Next()
	script := fmt.Sprintf(`echo "shell: started"
nc -w 5 %[1]s %[2]d </dev/null 2>&1; echo "allowed: exit $?"
nc -w 5 %[3]s %[4]d </dev/null 2>&1; echo "denied: exit $?"
nc -w 5 %[5]s %[6]d </dev/null 2>&1; echo "resolver: exit $?"
deadline=$(($(date +%%s) + %[8]d)); tries=1
until nslookup %[7]s >/dev/null 2>&1; do
	if [ "$(date +%%s)" -ge "$deadline" ]; then echo "gateway dns: no answer"; break; fi
	tries=$((tries + 1)); sleep 0.1
done
echo "gateway dns: asked $tries times"
nslookup %[7]s 2>&1; echo "gateway dns: exit $?"
cat /etc/resolv.conf
exit 7
`, podmanAllowed.Addr(), podmanAllowed.Port(), podmanDenied.Addr(), podmanDenied.Port(),
		podmanResolver.Addr(), podmanResolver.Port(), container, int(dnsDeadline/time.Second))
	if filter {
		// The filter serves before the container starts: no waiting.
		script = fmt.Sprintf(`echo "shell: started"
nc -w 5 %[1]s %[2]d </dev/null 2>&1; echo "named before: exit $?"
nslookup allowed.example 2>&1; echo "allowed name: exit $?"
nc -w 5 %[1]s %[2]d </dev/null 2>&1; echo "named: exit $?"
nslookup secret.blocked.example 2>&1; echo "blocked name: exit $?"
nslookup -type=txt mfrggzdfmztwq2lk.blocked.example %[3]s 2>&1; echo "direct txt: exit $?"
nc -w 5 %[4]s %[5]d </dev/null 2>&1; echo "allowed: exit $?"
nslookup late.allowed2.example 2>&1; echo "late name before: exit $?"
nc -w 5 %[6]s %[7]d </dev/null 2>&1; echo "later before: exit $?"
echo "waiting for allow"
i=0; until [ -e /workspace/allowed ] || [ $i -ge 600 ]; do sleep 0.1; i=$((i+1)); done
nslookup late.allowed2.example 2>&1; echo "late name after: exit $?"
nc -w 5 %[6]s %[7]d </dev/null 2>&1; echo "later after: exit $?"
echo "waiting for remove"
i=0; until [ -e /workspace/removed ] || [ $i -ge 600 ]; do sleep 0.1; i=$((i+1)); done
nslookup other.allowed2.example 2>&1; echo "late name removed: exit $?"
nc -w 5 %[6]s %[7]d </dev/null 2>&1; echo "later removed: exit $?"
cat /etc/resolv.conf
exit 7
`, podmanNamed.Addr(), podmanNamed.Port(), podmanResolver.Addr(), podmanAllowed.Addr(), podmanAllowed.Port(), podmanLater.Addr(), podmanLater.Port())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	outFile, err := os.Create(filepath.Join(tmp, "dev.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	// nsenter switches only the network namespace: the stand-in and the
	// podman it runs share this process's mounts, so the container's
	// network namespace file and podman's mounts stay visible to the
	// clean-up.
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+hostNS, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperDevEnv+"=1")
	cmd.Stdin = strings.NewReader(script)
	// A file, not a pipe: conmon, which outlives podman run, must not keep
	// the test waiting for the end of its output.
	cmd.Stdout, cmd.Stderr = outFile, outFile
	var steps stepsOutput
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if filter {
		steps = allowWhileAttached(t, outFile.Name(), hostNS, filepath.Join(tmp, "workspace"))
	}
	runErr := cmd.Wait()
	b, err := os.ReadFile(outFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	output := string(b)
	t.Logf("the `mage dev` stand-in's output:\n%s", output)
	if runErr != nil {
		t.Fatalf("the `mage dev` stand-in failed: %v", runErr)
	}

	line := func(prefix string) string {
		for _, l := range strings.Split(output, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		return ""
	}
	if line("shell: started") == "" {
		t.Fatal("the shell in the container never ran the script")
	}
	if filter {
		checkFilterSession(t, output, line, upstream, tmp)
		checkAllowSession(t, line, steps)
	} else {
		if line("allowed: exit 0") == "" || !strings.Contains(output, greetings[podmanAllowed]) {
			t.Errorf("the allowlisted server %s did not answer the container (%q)", podmanAllowed, line("allowed:"))
		}
		for _, c := range []struct {
			name string
			ap   netip.AddrPort
		}{{"denied", podmanDenied}, {"resolver", podmanResolver}} {
			if strings.Contains(output, greetings[c.ap]) || line(c.name+": exit 0") != "" {
				t.Errorf("the container reached %s (%s), which is not on the allowlist", c.ap, c.name)
			}
			// A reset, not a timeout: the refusal is told at once.
			if !regexp.MustCompile(`(?m)^nc: can't connect to remote host \(` + regexp.QuoteMeta(c.ap.Addr().String()) + `\): Connection refused$`).MatchString(output) {
				t.Errorf("connecting to %s (%s) was not refused with a reset", c.ap, c.name)
			}
		}
		if !strings.Contains(output, "nameserver "+gateway.String()) {
			t.Errorf("the container's resolver is not the gateway %s", gateway)
		}
		switch {
		case line("gateway dns: no answer") != "":
			t.Errorf("the gateway's DNS server %s did not answer the container within %s (%s; nslookup's last try is in the output above)",
				gateway, dnsDeadline, strings.TrimPrefix(line("gateway dns: asked"), "gateway dns: "))
		case line("gateway dns: exit 0") == "":
			t.Errorf("the gateway's DNS server %s answered the container once, then not (%q)", gateway, line("gateway dns: exit"))
		default:
			t.Logf("the gateway's DNS server answered; %s", strings.TrimPrefix(line("gateway dns: asked"), "gateway dns: "))
		}
	}
	for _, want := range []string{"firewall up and verified", "shell exited with status 7", "stopping container " + container, "lifting the firewall"} {
		if !strings.Contains(output, want) {
			t.Errorf("the output lacks %q", want)
		}
	}

	// Nothing of the session is left up: the container is stopped and our
	// table is gone from the host namespace.
	st, err := oci.New(proc.Exec{}, oci.Podman).State(context.Background(), container)
	if err != nil || st != engine.Stopped {
		t.Errorf("container %s after the shell left: %q, %v; want stopped", container, st, err)
	}
	tables, err := exec.Command("ip", "netns", "exec", hostNS, "nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v: %s", err, tables)
	}
	if strings.Contains(string(tables), "claude_firewall") {
		t.Errorf("our table is still loaded in the host namespace:\n%s", tables)
	}
}

// isolatePodman points podman, through the environment this process and its
// children share, at storage and network configuration in dir.
func isolatePodman(t *testing.T, dir string) {
	t.Helper()
	// Lower limits than podman's defaults, which a root without
	// CAP_SYS_RESOURCE (a container, a sandbox) cannot raise to; runc where
	// installed, as crun refuses hybrid cgroup hierarchies.
	conf := fmt.Sprintf("[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\n[network]\nnetwork_config_dir = %q\n\n[engine]\ntmp_dir = %q\n",
		filepath.Join(dir, "networks"), filepath.Join(dir, "libpod"))
	if runc, err := exec.LookPath("runc"); err == nil {
		conf += fmt.Sprintf("runtime = %q\n", runc)
	}
	storage := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "graph"), filepath.Join(dir, "run"))
	writeFile(t, filepath.Join(dir, "containers.conf"), conf, 0o644)
	writeFile(t, filepath.Join(dir, "storage.conf"), storage, 0o644)
	t.Setenv("CONTAINERS_CONF", filepath.Join(dir, "containers.conf"))
	t.Setenv("CONTAINERS_STORAGE_CONF", filepath.Join(dir, "storage.conf"))
}

func mustIP(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func writeFile(t *testing.T, path, text string, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, perm os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(b), perm)
}

func randomID() []byte {
	b := make([]byte, 3)
	rand.Read(b)
	return b
}

var inNetns = netns.Do

// serveGreeting listens on ap inside namespace ns and writes greeting to
// every connection, until the test ends.
func serveGreeting(t *testing.T, ns string, ap netip.AddrPort, greeting string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", ap.String())
		return err
	}); err != nil {
		t.Fatalf("listening on %s in %s: %v", ap, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, greeting+"\n")
			c.Close()
		}
	}()
}

// dialGreeting connects to ap from namespace ns and returns the first line
// it reads.
func dialGreeting(ns string, ap netip.AddrPort) (string, error) {
	var got string
	err := inNetns(ns, func() error {
		c, err := net.DialTimeout("tcp", ap.String(), 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		got = strings.TrimSpace(string(b))
		return err
	})
	return got, err
}

// elfWithLibraries returns the ELF program at path and, when it is
// dynamically linked, its interpreter and every shared library it needs,
// found in the usual library directories: the files an image built from
// nothing needs to run it.
func elfWithLibraries(path string) ([]string, error) {
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
				needed = append(needed, string(bytes.TrimRight(b, "\x00")))
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

// checkFilterSession checks the shell's output of the DNS filter variant,
// the questions the upstream saw, and that no daemon is left.
func checkFilterSession(t *testing.T, output string, line func(string) string, upstream *countingZone, tmp string) {
	t.Helper()
	if line("named before: exit 0") != "" {
		t.Errorf("the container reached %s before any answer held it", podmanNamed)
	}
	if line("allowed name: exit 0") == "" || !strings.Contains(output, podmanNamed.Addr().String()) {
		t.Errorf("allowed.example did not resolve to %s through the filter (%q)", podmanNamed.Addr(), line("allowed name:"))
	}
	if line("named: exit 0") == "" || !strings.Contains(output, "hello from the host allowed.example names") {
		t.Errorf("the container could not reach %s right after the filter answered (%q)", podmanNamed, line("named:"))
	}
	for _, l := range []string{"blocked name:", "direct txt:"} {
		if line(l+" exit 0") != "" {
			t.Errorf("%s answered: %q", l, line(l))
		}
	}
	if !strings.Contains(output, "NXDOMAIN") {
		t.Error("no NXDOMAIN for the blocked names in the output")
	}
	if line("allowed: exit 0") == "" {
		t.Errorf("the allowlist's own server %s is not reachable with the filter on", podmanAllowed)
	}
	if n := upstream.count("allowed.example"); n == 0 {
		t.Error("the upstream never saw allowed.example: who answered it?")
	}
	for _, name := range []string{"secret.blocked.example", "mfrggzdfmztwq2lk.blocked.example"} {
		if n := upstream.count(name); n != 0 {
			t.Errorf("the upstream saw %s %d times: a blocked name left the host", name, n)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "state", "dnsfilter.json")); !os.IsNotExist(err) {
		t.Errorf("the DNS filter's status file is left after the session (%v)", err)
	}
	for _, want := range []string{"DNS filter serving on"} {
		if !strings.Contains(output, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
}

// countingZone answers every A question with one address and counts the
// questions by name (lower case, no trailing dot).
type countingZone struct {
	mu     sync.Mutex
	asked  map[string]int
	answer netip.Addr
}

func (z *countingZone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	name := strings.TrimSuffix(strings.ToLower(q.Question[0].Name), ".")
	z.mu.Lock()
	z.asked[name]++
	z.mu.Unlock()
	m := new(dns.Msg).SetReply(q)
	if q.Question[0].Qtype == dns.TypeA {
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: z.answer.AsSlice()})
	}
	w.WriteMsg(m)
}

func (z *countingZone) count(name string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.asked[name]
}

// serveDNS runs h on UDP and TCP at ap inside namespace ns until the test
// ends.
func serveDNS(t *testing.T, ns string, ap netip.AddrPort, h dns.Handler) {
	t.Helper()
	if err := inNetns(ns, func() error { return dnstest.ServeOn(t, ap.String(), h) }); err != nil {
		t.Fatalf("in %s: %v", ns, err)
	}
}

// stepsOutput is what `mage blocked` and `mage allow` printed during the
// session.
type stepsOutput struct{ blocked, allow, remove string }

// allowWhileAttached waits for the shell to reach its first wait, runs
// `mage blocked` and `mage allow` in the host namespace as a user would in
// another terminal, lets the shell go on, and does the same with `mage
// allow -remove`.
func allowWhileAttached(t *testing.T, outPath, hostNS, workspace string) stepsOutput {
	t.Helper()
	var s stepsOutput
	target := func(what string) string {
		cmd := exec.Command("nsenter", "--net=/run/netns/"+hostNS, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperTargetEnv+"="+what)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("mage %s: %v\n%s", what, err, out)
		}
		return string(out)
	}
	waitFor := func(marker string) bool {
		for range 1200 {
			if b, _ := os.ReadFile(outPath); strings.Contains(string(b), marker) {
				return true
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("the shell never printed %q", marker)
		return false
	}
	if !waitFor("waiting for allow") {
		return s
	}
	// NFLOG is asynchronous: give the daemon a moment to write the refusal.
	for range 50 {
		if s.blocked = target("blocked"); strings.Contains(s.blocked, podmanLater.Addr().String()) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.allow = target("allow:*.allowed2.example," + podmanLater.Addr().String())
	writeFile(t, filepath.Join(workspace, "allowed"), "", 0o644)
	if !waitFor("waiting for remove") {
		return s
	}
	s.remove = target("remove:*.allowed2.example," + podmanLater.Addr().String())
	writeFile(t, filepath.Join(workspace, "removed"), "", 0o644)
	return s
}

// checkAllowSession checks the blocked → allow → remove round.
func checkAllowSession(t *testing.T, line func(string) string, s stepsOutput) {
	t.Helper()
	t.Logf("mage blocked:\n%s\nmage allow:\n%s\nmage allow -remove:\n%s", s.blocked, s.allow, s.remove)
	for _, want := range []string{"late.allowed2.example", "mage allow late.allowed2.example", podmanLater.Addr().String(), "tcp 443", "mage allow " + podmanLater.Addr().String()} {
		if !strings.Contains(s.blocked, want) {
			t.Errorf("mage blocked lacks %q", want)
		}
	}
	if line("late name before: exit 0") != "" || line("later before: exit 0") != "" {
		t.Error("the name or the address worked before `mage allow`")
	}
	if !strings.Contains(s.allow, "live allowlist replaced") {
		t.Error("mage allow did not apply the change to the live firewall")
	}
	if line("late name after: exit 0") == "" {
		t.Errorf("late.allowed2.example did not resolve right after `mage allow` (%q)", line("late name after:"))
	}
	if line("later after: exit 0") == "" {
		t.Errorf("%s was not reachable right after `mage allow` (%q)", podmanLater, line("later after:"))
	}
	if line("late name removed: exit 0") != "" {
		t.Error("a name under *.allowed2.example still resolved after `mage allow -remove`")
	}
	if line("later removed: exit 0") != "" {
		t.Errorf("%s was still reachable after `mage allow -remove`", podmanLater)
	}
}
