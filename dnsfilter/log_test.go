package dnsfilter

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestAFloodOfRefusalsKeepsTheLogWithinItsLimit(t *testing.T) {
	const limit = 8192
	path := filepath.Join(t.TempDir(), "refusals.jsonl")
	lf, err := OpenLog(path, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	f := startFilter(t, Config{Upstreams: []string{"127.0.0.1:9"}, Log: lf}) // no upstream is asked

	// 10,000 refusals straight into the handler, from 8 goroutines, checking
	// the files' sizes as they go.
	req := func(i int) *dns.Msg {
		m := new(dns.Msg).SetQuestion(fmt.Sprintf("x%d-%s.evil.example.", i, strings.Repeat("a", i%50)), dns.TypeTXT)
		return m
	}
	client := netip.MustParseAddr("127.0.0.1")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < 10_000; i += 8 {
				f.h.answer(t.Context(), client, req(i))
				if i%500 == 0 {
					checkSizes(t, path, limit)
				}
			}
		})
	}
	wg.Wait()
	checkSizes(t, path, limit)

	var warnings []error
	recs, err := ReadLog(path, func(err error) { warnings = append(warnings, err) })
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Errorf("a log written by LogFile reads with warnings: %v", warnings)
	}
	if len(recs) < 20 || len(recs) > 10_000 {
		t.Errorf("%d records read back", len(recs))
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 2 {
		t.Errorf("the log directory holds %d files, want refusals.jsonl and refusals.jsonl.1", len(ents))
	}
	last := recs[len(recs)-1]
	if last.Reason != "not on the allowlist" || last.Type != "TXT" || !strings.HasSuffix(last.Name, ".evil.example") {
		t.Errorf("last record %+v", last)
	}
}

func checkSizes(t *testing.T, path string, limit int64) {
	t.Helper()
	for _, p := range []string{path, path + ".1"} {
		if fi, err := os.Stat(p); err == nil && fi.Size() > limit {
			t.Errorf("%s is %d bytes, over the limit of %d", filepath.Base(p), fi.Size(), limit)
		}
	}
}

func TestReadLogSkipsMalformedLinesWithAWarning(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "refusals.jsonl")
	good := func(name string) string {
		return `{"time":"2026-03-04T05:06:07.123456789Z","client":"10.88.0.5","name":"` + name + `","type":"A","reason":"not on the allowlist"}` + "\n"
	}
	write(t, path+".1", good("old.example")+"not json\n")
	write(t, path, good("a.example")+
		`{"time":"yesterday","client":"10.88.0.5"}`+"\n"+
		`{"client":"10.88.0.5","name":"x.example"}`+"\n"+
		`{"time":"2026-03-04T05:06:07Z","client":"not an address"}`+"\n"+
		"\n"+
		good("b.example")+
		`{"time":"2026-03-04T05:06:08Z","cli`) // being written

	var warnings []string
	recs, err := ReadLog(path, func(err error) { warnings = append(warnings, err.Error()) })
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	if diff := cmp.Diff([]string{"old.example", "a.example", "b.example"}, names); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	want := []string{
		"refusals.jsonl.1:2: not a record",
		"refusals.jsonl:2: not a record",
		"refusals.jsonl:3: not a record: no time",
		"refusals.jsonl:4: not a record",
		"refusals.jsonl:5: not a record",
	}
	if len(warnings) != len(want) {
		t.Fatalf("warnings %q, want %d", warnings, len(want))
	}
	for i, w := range want {
		if !strings.Contains(warnings[i], w) {
			t.Errorf("warning %q does not say %q", warnings[i], w)
		}
	}
	wantRec := Record{
		Time:   time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC),
		Client: netip.MustParseAddr("10.88.0.5"), Name: "old.example", Type: "A", Reason: "not on the allowlist",
	}
	if diff := cmp.Diff(wantRec, recs[0], cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("first record (-want +got):\n%s", diff)
	}

	if recs, err := ReadLog(filepath.Join(dir, "missing.jsonl"), nil); err != nil || len(recs) != 0 {
		t.Errorf("a missing log: %v, %v; want no records and no error", recs, err)
	}
}

func TestOpenLogEndsAHalfLineLeftByACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refusals.jsonl")
	write(t, path, `{"time":"2026-03-04T05:06:07Z","client":"10.88.0.5","name":"a.example","type":"A","reason":"r"}`+"\n"+`{"time":"2026-03-04T05:06`)
	lf, err := OpenLog(path, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lf.Write([]byte(`{"time":"2026-03-04T05:06:09Z","client":"10.88.0.5","name":"b.example","type":"A","reason":"r"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	var warnings int
	recs, err := ReadLog(path, func(error) { warnings++ })
	if err != nil || len(recs) != 2 || recs[1].Name != "b.example" || warnings != 1 {
		t.Errorf("records %+v, %d warnings, error %v; want a.example and b.example, and one warning for the half line", recs, warnings, err)
	}
	if _, err := lf.Write([]byte("x\n")); err == nil {
		t.Error("a write after Close succeeded")
	}
}

func TestLogFileRotatesToOneOlderFileAndRefusesLinesOverTheLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "refusals.jsonl")
	if _, err := OpenLog(path, 100); err == nil {
		t.Error("a limit of 100 bytes was accepted")
	}
	lf, err := OpenLog(path, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	line := strings.Repeat("a", 999) + "\n" // 1000 bytes: four to a file
	for i := range 9 {
		if _, err := lf.Write([]byte(line)); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	for p, want := range map[string]int64{path: 1000, path + ".1": 4000} {
		if fi, err := os.Stat(p); err != nil || fi.Size() != want {
			t.Errorf("%s: %v, %v; want %d bytes", filepath.Base(p), fi.Size(), err, want)
		}
	}
	if _, err := lf.Write([]byte(strings.Repeat("b", 4096) + "\n")); err == nil {
		t.Error("a line over the limit was written")
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOpenLogRefusesALinkPlantedInItsPlace(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	path := filepath.Join(dir, "refused.log")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	if l, err := OpenLog(path, 8192); err == nil {
		l.Close()
		t.Fatal("OpenLog followed a symbolic link")
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("the link's target was created (%v)", err)
	}
}

func TestOpenLogRefusesAHardLink(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(dir, "sudoers")
	if err := os.WriteFile(other, []byte("root ALL=(ALL) ALL\n"), 0o440); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "refused.log")
	if err := os.Link(other, path); err != nil {
		t.Skipf("cannot make a hard link here: %v", err)
	}
	if l, err := OpenLog(path, 8192); err == nil {
		l.Close()
		t.Fatal("OpenLog opened a hard link to another file")
	}
	if b, _ := os.ReadFile(other); string(b) != "root ALL=(ALL) ALL\n" {
		t.Errorf("the linked file changed: %q", b)
	}
}
