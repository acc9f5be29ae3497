package pf

// The anchors checked by a real pf parser: pfparse is FreeBSD 9.3's pfctl
// (OpenBSD parse.y 1.554, the OpenBSD 4.x grammar Apple's pfctl was forked
// from) built for Linux, always in no-action mode (pfctl -n). It prints
// pfctl's own "FILE:LINE: message" errors with exit status 1, or the parsed,
// expanded rules as `pfctl -nv` does. Apple-only keywords and the kernel's
// own checks are beyond it (see its README); the grammar Render uses is the
// same in both.

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/VerilyPete/claudecontainer/policy"
	"github.com/VerilyPete/claudecontainer/policy/policytest"
)

// pfparse returns the path of the pfparse binary named by $PFPARSE, or skips
// the test.
func pfparse(t *testing.T) string {
	t.Helper()
	const how = "build the real pf parser with shared/tools/pfparse/build.sh (shared/ lies beside the clone; " +
		".ci/run builds it) and set PFPARSE to the bin/pfparse it reports"
	path := os.Getenv("PFPARSE")
	if path == "" {
		t.Skip("PFPARSE is not set: " + how)
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Skipf("PFPARSE=%s is not an executable file: %s", path, how)
	}
	return path
}

// parseWithPfctl writes text to a file called name and loads it with pfparse
// as our anchor, com.apple/<testAnchor>, the way pfctl -a <anchor> -f loads
// it. It returns the file's path, what pfparse printed, and an error when it
// exited with a non-zero status.
func parseWithPfctl(t *testing.T, bin, name, text string) (file, stdout, stderr string, err error) {
	t.Helper()
	file = filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "-v", "-a", AnchorPath(testAnchor), "-f", file)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running %s: %v", bin, err)
	}
	return file, out.String(), errOut.String(), err
}

// pfparsePolicies are the policies rendered fresh for the parser: every kind
// of network Render meets, and DNS servers of either family.
func pfparsePolicies() map[string]policy.Policy {
	ipv6DNS := policytest.DualStack()
	ipv6DNS.DNS = []netip.Addr{netip.MustParseAddr("fd5e:9a3b:1c2d:4e5f::53")}
	bothDNS := policytest.DualStackNoInterface()
	bothDNS.DNS = []netip.Addr{netip.MustParseAddr("192.168.64.1"), netip.MustParseAddr("2001:db8::53")}
	ipv6DNSNoSubnet := policytest.IPv4Only()
	ipv6DNSNoSubnet.DNS = []netip.Addr{netip.MustParseAddr("192.168.218.1"), netip.MustParseAddr("2001:db8::53")}
	return map[string]policy.Policy{
		"ipv4-only":                          policytest.IPv4Only(),
		"dual-stack":                         policytest.DualStack(),
		"dual-stack-no-interface":            policytest.DualStackNoInterface(),
		"custom-dns":                         policytest.CustomDNS(),
		"ipv6-dns-server":                    ipv6DNS,
		"dns-servers-of-both-families":       bothDNS,
		"ipv6-dns-server-on-an-ipv4-network": ipv6DNSNoSubnet,
		"macos15":                            policytest.MacOS15(),
		"dns-filter-ipv4-only":               withFilter(policytest.IPv4Only()),
		"dns-filter-dual-stack":              withFilter(policytest.DualStack()),
		"dns-filter-dual-stack-no-interface": withFilter(policytest.DualStackNoInterface()),
		"dns-filter-custom-dns":              withFilter(policytest.CustomDNS()),
		"dns-filter-ipv6-dns-server":         withFilter(ipv6DNS),
		"dns-filter-macos15":                 withFilter(policytest.MacOS15()),
	}
}

func TestTheRealPfParserAcceptsEveryAnchorRenderCanProduce(t *testing.T) {
	bin := pfparse(t)
	anchors := map[string]string{}
	goldenFiles, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(goldenFiles) == 0 {
		t.Fatalf("no golden files in testdata (%v)", err)
	}
	for _, f := range goldenFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		anchors["golden/"+filepath.Base(f)] = string(b)
	}
	for name, p := range pfparsePolicies() {
		text, err := Render(p, Options{Anchor: testAnchor})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		anchors["rendered/"+name+".anchor"] = text
	}
	for name, text := range anchors {
		t.Run(name, func(t *testing.T) {
			file, stdout, stderr, err := parseWithPfctl(t, bin, filepath.Base(name), text)
			if err != nil {
				t.Fatalf("pfctl refused the anchor (%v):\n%s\n%s", err, stderr, numbered(text))
			}
			if stderr != "" {
				t.Errorf("pfctl accepted the anchor but warned:\n%s", stderr)
			}
			// Every rule must survive into what pfctl would load: a list
			// whose members all have the wrong address family, say, expands
			// to nothing without an error.
			for _, l := range labels(text) {
				if !strings.Contains(stdout, fmt.Sprintf("label %q", l)) {
					t.Errorf("pfctl loaded no rule labelled %q from %s:\n%s", l, file, stdout)
				}
			}
			// Translation rules carry no label: each must expand to one
			// loaded rule per protocol.
			for _, l := range ruleLines(text) {
				if !strings.HasPrefix(l, "rdr ") && !strings.HasPrefix(l, "no rdr ") {
					continue
				}
				head, _, _ := strings.Cut(l, " proto ")
				head = strings.Replace(head, "$ctr_if", "bridge100", 1)
				for _, proto := range []string{"tcp", "udp"} {
					if want := head + " proto " + proto + " from "; !strings.Contains(stdout, want) {
						t.Errorf("pfctl loaded no %q rule from %s:\n%s", want, file, stdout)
					}
				}
			}
		})
	}
}

// TestTheRealPfParserRefusesABrokenAnchor shows that the test above can
// fail: each broken rendering is refused, with pfctl's message on the line
// that was broken.
func TestTheRealPfParserRefusesABrokenAnchor(t *testing.T) {
	bin := pfparse(t)
	good, err := Render(policytest.DualStack(), Options{Anchor: testAnchor})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, rule, old, new string
	}{
		{"a misspelt keyword", `"claude-deny6"`, " quick ", " quik "},
		{"an ICMPv6 type pfctl does not know", `"claude-rs6"`, "routersol", "routersolicit"},
		{"a port on a rule for every protocol", `"claude-deny"`, "to any", "to any port 53"},
		{"an IPv4 source with an IPv6 destination", `"claude-host-to-ctr"`, "$ctr_net4", "$ctr_net6"},
		{"an undefined macro", `"claude-nd6"`, "$ctr_if", "$ctr_bridge"},
		{"an unclosed list", `"claude-allow"`, "{ tcp udp }", "{ tcp udp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			refuseBroken(t, bin, good, "label "+c.rule, c.old, c.new)
		})
	}
}

// TestTheRealPfParserRefusesABrokenRedirect shows the same for the
// translation rules of an anchor with the DNS filter, which pfctl also
// refuses after a filter rule.
func TestTheRealPfParserRefusesABrokenRedirect(t *testing.T) {
	bin := pfparse(t)
	good, err := Render(withFilter(policytest.DualStack()), Options{Anchor: testAnchor})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, rule, old, new string
	}{
		{"a label, which translation rules cannot carry", "-> 127.0.0.1 port 5380", "port 5380", `port 5380 label "claude-dns-filter"`},
		{"quick, which translation rules cannot carry", "-> ::1 port 5380", "rdr pass on", "rdr pass quick on"},
		{"an IPv4 target for IPv6 queries", "-> ::1 port 5380", "-> ::1", "-> 127.0.0.1"},
		{"a missing target", "-> ::1 port 5380", " -> ::1 port 5380", ""},
		{"a pass on a no rdr", "to any port 53", "no rdr on", "no rdr pass on"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			refuseBroken(t, bin, good, c.rule, c.old, c.new)
		})
	}
	t.Run("a redirect after the filter rules", func(t *testing.T) {
		var rules, rdrs []string
		for _, l := range strings.Split(good, "\n") {
			if strings.HasPrefix(l, "rdr ") {
				rdrs = append(rdrs, l)
			} else {
				rules = append(rules, l)
			}
		}
		file, _, stderr, err := parseWithPfctl(t, bin, "late-rdr.anchor", strings.Join(append(rules, rdrs...), "\n"))
		if err == nil || !strings.Contains(stderr, fmt.Sprintf("%s:%d: Rules must be in order", file, len(rules)+1)) {
			t.Errorf("pfctl accepted a redirect after the filter rules (%v):\n%s", err, stderr)
		}
	})
}

// refuseBroken replaces old with new in the last line of good that ends
// with suffix, or (failing that) contains it, and checks that pfctl refuses
// the result with a message on that line.
func refuseBroken(t *testing.T, bin, good, suffix, old, new string) {
	t.Helper()
	lines := strings.Split(good, "\n")
	at := -1
	for i, l := range lines {
		if strings.HasSuffix(l, suffix) || (at < 0 && strings.Contains(l, suffix) && !strings.HasPrefix(l, "#")) {
			at = i
		}
	}
	if at < 0 || !strings.Contains(lines[at], old) {
		t.Fatalf("no rule ending with %s containing %q in the rendering", suffix, old)
	}
	lines[at] = strings.Replace(lines[at], old, new, 1)
	file, _, stderr, err := parseWithPfctl(t, bin, "broken.anchor", strings.Join(lines, "\n"))
	if err == nil {
		t.Fatalf("pfctl accepted it:\n%s", lines[at])
	}
	if want := fmt.Sprintf("%s:%d: ", file, at+1); !strings.Contains(stderr, want) {
		t.Errorf("pfctl's errors do not point at line %d (%q):\n%s", at+1, want, stderr)
	}
}

// numbered returns text with line numbers, to read pfctl's messages against.
func numbered(text string) string {
	var b strings.Builder
	for i, l := range strings.Split(text, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}
