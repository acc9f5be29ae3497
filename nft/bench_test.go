package nft

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"go4.org/netipx"
)

func BenchmarkRenderAndFillTwentyThousandPrefixes(b *testing.B) {
	p := goldenPolicies(b)["dual-stack"]
	set := manyPrefixes(b, 15000, 5000)
	b.ResetTimer()
	for b.Loop() {
		script, err := Render(p, "")
		if err != nil {
			b.Fatal(err)
		}
		var s strings.Builder
		s.WriteString(script)
		fill(&s, DefaultTable, p.Table, set, true)
	}
}

// benchBackend loads the dual-stack policy with n4 IPv4 and n6 IPv6
// prefixes into a fresh network namespace and returns its backend.
func benchBackend(b *testing.B, n4, n6 int) *Backend {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		b.Skip("nft is not installed")
	}
	ns := "ccnft-bench-" + randomID()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		b.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	b.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	be, err := New(nsRunner(ns), Config{StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	if err := be.Up(context.Background(), goldenPolicies(b)["dual-stack"], manyPrefixes(b, n4, n6)); err != nil {
		b.Fatal(err)
	}
	return be
}

var benchSizes = []struct {
	name   string
	n4, n6 int
}{{"2000", 1500, 500}, {"20000", 15000, 5000}}

// BenchmarkReplace measures a whole refresh: flush and refill both sets in
// one transaction, then list them back and compare.
func BenchmarkReplace(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			be := benchBackend(b, size.n4, size.n6)
			sets := []*netipx.IPSet{manyPrefixes(b, size.n4, size.n6), manyPrefixes(b, size.n4-10, size.n6)}
			i := 0
			for b.Loop() {
				if err := be.Replace(context.Background(), sets[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAddOnePrefix measures Add of one new address: nft reads the set
// back to merge intervals, so the cost grows with the set.
func BenchmarkAddOnePrefix(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(size.name, func(b *testing.B) {
			be := benchBackend(b, size.n4, size.n6)
			i := 0
			for b.Loop() {
				i++
				p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32)
				if err := be.Add(context.Background(), []netip.Prefix{p}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
