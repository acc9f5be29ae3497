package allowlist

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go4.org/netipx"
)

// renderedFile is the allowlist file Render writes for a report of four
// sources (as in file_test.go).
const renderedFile = "# claudecontainer allowlist, written by `mage allowlist`: one CIDR per line.\n" +
	"# Changes here are lost on the next run; add your own entries to the local allowlist file (CLAUDECONTAINER_LOCAL_FILE).\n" +
	"# generated 2026-03-04T05:06:07Z: 6 entries merged into 4 CIDRs (3 IPv4, 1 IPv6)\n" +
	"# github     4 prefixes (412ms)\n" +
	"# sentry     0 prefixes with warnings (1.2s)\n" +
	"#   warning: fetching: HTTP 503 Service Unavailable\n" +
	"140.82.112.0/20\n160.79.104.10/32\n192.30.252.0/22\n2606:50c0::/32\n"

// FuzzParseFile checks that ParseFile gives either an error or a set of
// valid prefixes that Render writes back into a file ParseFile reads as the
// same set, and that checkReplaceable lets Update replace: what `mage
// allowlist` writes, the firewall can load and the next run can rewrite.
func FuzzParseFile(f *testing.F) {
	f.Add([]byte(renderedFile))
	f.Add([]byte("# comment\n10.0.0.0/8\n2001:db8::/32\n"))
	f.Add([]byte("1.2.3.4/32\n1.2.3.5/32\n1.2.3.6/31\n"))
	f.Add([]byte("10.0.0.5/8\n"))
	f.Add([]byte("::ffff:1.2.3.4/128\n"))
	f.Add([]byte("2001:DB8::/32\n"))
	f.Add([]byte("0.0.0.0/0\n"))
	f.Add([]byte("1.2.3.0/24"))
	f.Add([]byte("# only comments\n"))
	path := filepath.Join(f.TempDir(), "allowlist")
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseFile(data)
		if err != nil {
			if set != nil {
				t.Fatalf("error %v came with a set", err)
			}
			return
		}
		ps := set.Prefixes()
		if len(ps) == 0 {
			t.Fatal("no error and an empty set")
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
				t.Fatalf("set holds %v", p)
			}
		}
		out, err := Render(&Report{Set: set, Generated: time.Unix(0, 0)})
		if err != nil {
			t.Fatalf("Render of a set ParseFile read: %v", err)
		}
		again, err := ParseFile(out)
		if err != nil {
			t.Fatalf("ParseFile refuses what Render wrote for the set it read: %v\n%s", err, out)
		}
		if !again.Equal(set) {
			t.Fatalf("the file read back holds %v, want %v", again.Prefixes(), ps)
		}
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := checkReplaceable(path); err != nil {
			t.Fatalf("Update would refuse to replace the file Render wrote: %v", err)
		}
	})
}

// FuzzVet checks the vetting of any prefix from outside: what it allows lies
// inside the entry, is masked and no broader than the family's minimum, and
// touches no special range outside the private ones a user wrote by hand;
// together with what it cut out, it covers the whole entry.
func FuzzVet(f *testing.F) {
	for _, s := range []string{"140.82.112.0/20", "10.0.0.0/8", "0.0.0.0/0", "192.0.0.0/2", "100.0.0.0/8",
		"2001:db8::/32", "::ffff:10.0.0.0/104", "fc00::/7", "2000::/3", "224.0.0.1/32", "::/0"} {
		p := netip.MustParsePrefix(s)
		a16 := p.Addr().As16()
		f.Add(a16[:], p.Addr().Is4(), p.Bits(), false)
		f.Add(a16[:], p.Addr().Is4(), p.Bits(), true)
	}
	f.Fuzz(func(t *testing.T, addr []byte, is4 bool, bits int, literal bool) {
		var a netip.Addr
		if is4 {
			if len(addr) < 4 {
				return
			}
			a = netip.AddrFrom4([4]byte(addr[:4]))
		} else {
			if len(addr) < 16 {
				return
			}
			a = netip.AddrFrom16([16]byte(addr[:16]))
		}
		p := netip.PrefixFrom(a, bits) // invalid when bits is out of range
		v := vet(p, literal)
		if (v.refused == "") == (len(v.allowed) == 0) {
			t.Fatalf("vet(%v): refused %q but allowed %v", p, v.refused, v.allowed)
		}
		if v.refused != "" {
			return
		}
		entry := v.entry
		if !entry.IsValid() || entry != entry.Masked() || entry.Addr().Is4In6() {
			t.Fatalf("vet(%v): entry %v", p, entry)
		}
		min := minBits4
		if entry.Addr().Is6() {
			min = minBits6
		}
		var whole netipx.IPSetBuilder
		for _, q := range v.allowed {
			if !q.IsValid() || q != q.Masked() || q.Addr().Is4In6() || q.Bits() < min || !entry.Contains(q.Addr()) || q.Bits() < entry.Bits() {
				t.Fatalf("vet(%v): allows %v", p, q)
			}
			// A private range the user wrote is kept even where a broader
			// special range covers it (fc00::/7 inside 8000::/1); the rest
			// of q must miss every special range.
			var rest netipx.IPSetBuilder
			rest.AddPrefix(q)
			for _, s := range specials {
				if literal && s.private {
					rest.RemovePrefix(s.prefix)
				}
			}
			left, err := rest.IPSet()
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range specials {
				if !(literal && s.private) && left.OverlapsPrefix(s.prefix) {
					t.Fatalf("vet(%v, literal %v): allows %v, which overlaps %v (%s)", p, literal, q, s.prefix, s.what)
				}
			}
			whole.AddPrefix(q)
		}
		for _, c := range v.removed {
			whole.AddPrefix(c.part)
		}
		got, err := whole.IPSet()
		if err != nil {
			t.Fatal(err)
		}
		var want netipx.IPSetBuilder
		want.AddPrefix(entry)
		if w, _ := want.IPSet(); !got.Equal(w) {
			t.Fatalf("vet(%v): allowed %v and removed %v do not make up %v", p, v.allowed, v.removed, entry)
		}
	})
}
