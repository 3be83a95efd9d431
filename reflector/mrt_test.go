package reflector

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// ribPaths lists the RIB's paths as "peer prefix next-hop", sorted: the
// RIB as the reflector holds it.
func ribPaths(t *testing.T, r *Reflector) []string {
	t.Helper()
	var out []string
	ok := r.env.rib.call(context.Background(), func(rl *ribLoop) {
		rl.flush()
		for _, tb := range rl.tables {
			tb.each(func(k pfxKey, n uint32) {
				for _, pa := range tb.paths(n) {
					out = append(out, fmt.Sprintf("%s %s %s", pa.src.addr, k.prefix(tb.fam), pa.a.nextHop))
				}
			})
		}
	})
	if !ok {
		t.Fatal("the RIB loop is not running")
	}
	slices.Sort(out)
	return out
}

// mrtFixture runs a reflector with two clients holding IPv4 and IPv6
// routes, some prefixes from both; it returns the reflector and the
// number of paths.
func mrtFixture(t *testing.T, cfg Config) (*Reflector, int) {
	t.Helper()
	r, addr := startReflector(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := dialSpeaker(ctx, addr, "127.0.0.2", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.conn.Close() })
	b, err := dialSpeaker(ctx, addr, "127.0.0.3", speakerOpts{asn: testASN, id: "10.0.0.3", hold: 90})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.conn.Close() })
	go io.Copy(io.Discard, a.conn)
	go io.Copy(io.Discard, b.conn)
	v4 := manyPrefixes("40.0.0.0", 1000)
	sendMany(t, a, "192.0.2.2", v4)
	sendMany(t, b, "192.0.2.3", v4[:300])
	v6 := []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48"), netip.MustParsePrefix("2001:db8:2::/48")}
	a.send(t, ipv6Update("2001:db8::2", v6[0].String()), ipv6Update("2001:db8::2", v6[1].String()))
	b.send(t, ipv6Update("2001:db8::3", v6[0].String()))
	paths := 1000 + 300 + 2 + 1
	waitFor(t, ctx, "the RIB to hold every path", func() bool {
		s, ok := r.RIBStats(ctx)
		return ok && s.Paths == paths
	})
	return r, paths
}

// TestMRTSnapshotBgpdump: bgpdump reads the snapshot and lists exactly
// the RIB's paths.
func TestMRTSnapshotBgpdump(t *testing.T) {
	bin := nstest.RequireCommand(t, "bgpdump")
	r, paths := mrtFixture(t, testConfig("127.0.0.2", "127.0.0.3"))
	file := filepath.Join(t.TempDir(), "rib.mrt")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.WriteMRT(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if sum.Paths != paths || sum.Prefixes != 1002 || sum.Peers != 2 {
		t.Errorf("summary %+v, want %d paths, 1002 prefixes, 2 peers", sum, paths)
	}
	cmd := exec.Command(bin, "-m", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bgpdump: %v\n%s", err, stderr.String())
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// TABLE_DUMP2|time|B|peer|peer AS|prefix|AS path|origin|next hop|...
		f := strings.Split(line, "|")
		if len(f) < 9 || f[0] != "TABLE_DUMP2" {
			t.Fatalf("bgpdump line %q", line)
		}
		if f[4] != fmt.Sprint(testASN) {
			t.Errorf("bgpdump line %q: peer AS %s, want %d", line, f[4], testASN)
		}
		got = append(got, fmt.Sprintf("%s %s %s", f[3], f[5], f[8]))
	}
	slices.Sort(got)
	if d := cmp.Diff(ribPaths(t, r), got); d != "" {
		t.Errorf("bgpdump's paths differ from the RIB's (-rib +bgpdump):\n%s", d)
	}
}

// TestMRTPeriodicDumpsRotate: snapshots are written every DumpInterval
// and only the newest Keep stay.
func TestMRTPeriodicDumpsRotate(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.MRT = MRTConfig{Dir: dir, DumpInterval: time.Second, Keep: 2}
	_, paths := mrtFixture(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen := map[string]bool{}
	var last []byte
	waitFor(t, ctx, "three snapshots", func() bool {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var ribs []string
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "rib.") {
				ribs = append(ribs, e.Name())
				seen[e.Name()] = true
			}
		}
		if len(ribs) > 2 {
			t.Fatalf("%d snapshots kept, want at most 2: %v", len(ribs), ribs)
		}
		if len(ribs) > 0 {
			slices.Sort(ribs)
			last, _ = os.ReadFile(filepath.Join(dir, ribs[len(ribs)-1]))
		}
		return len(seen) >= 3
	})
	var n int
	for _, m := range splitMRT(t, last) {
		if rib, ok := m.Body.(*mrt.Rib); ok {
			n += len(rib.Entries)
		}
	}
	if n != paths {
		t.Errorf("the last snapshot holds %d paths, want %d", n, paths)
	}
}

// TestMRTUpdateLog: every received UPDATE lands in the update log as a
// BGP4MP_MESSAGE_AS4 record that bgpdump reads.
func TestMRTUpdateLog(t *testing.T) {
	bin := nstest.RequireCommand(t, "bgpdump")
	dir := t.TempDir()
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.MRT = MRTConfig{Dir: dir, UpdateLog: true}
	mrtFixture(t, cfg)
	want := map[string]bool{}
	for _, p := range manyPrefixes("40.0.0.0", 1000) {
		want["127.0.0.2 "+p.String()] = true
	}
	for _, p := range manyPrefixes("40.0.0.0", 300) {
		want["127.0.0.3 "+p.String()] = true
	}
	want["127.0.0.2 2001:db8:1::/48"], want["127.0.0.2 2001:db8:2::/48"], want["127.0.0.3 2001:db8:1::/48"] = true, true, true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var got map[string]bool
	waitFor(t, ctx, "the update log to hold every announcement", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "updates.*.mrt"))
		if len(files) != 1 {
			return false
		}
		out, err := exec.Command(bin, "-m", files[0]).Output()
		if err != nil {
			t.Fatalf("bgpdump: %v", err)
		}
		got = map[string]bool{}
		for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
			// BGP4MP|time|A|peer|peer AS|prefix|...
			f := strings.Split(line, "|")
			if len(f) > 5 && f[0] == "BGP4MP" && f[2] == "A" {
				got[f[3]+" "+f[5]] = true
			}
		}
		return len(got) >= len(want)
	})
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("update log announcements (-want +got):\n%s", d)
	}
}

// TestMRTUpdateLogBounded: records that do not fit the update log's
// buffer are dropped and counted; the RIB does not wait for the log.
func TestMRTUpdateLogBounded(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.MRT = MRTConfig{Dir: dir, UpdateLog: true, UpdateLogBuffer: 64} // smaller than any record
	r, _ := mrtFixture(t, cfg)
	// mrtFixture's clients sent 2 + 1 IPv4 UPDATEs and 2 + 1 IPv6 ones.
	const updates = 2 + 1 + 2 + 1
	got := testutil.ToFloat64(r.env.rib.mon.updLog.dropped)
	if got != updates {
		t.Errorf("mrt_update_log_dropped_total = %v, want %d", got, updates)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "updates.*")); len(files) != 0 {
		t.Errorf("update log files %v, want none (everything was dropped)", files)
	}
}
