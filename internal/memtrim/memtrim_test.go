package memtrim

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestBinaryMappings(t *testing.T) {
	smaps := `00400000-01418000 r-xp 00000000 fd:01 1234 /bin/x
Size:              16448 kB
Rss:               12704 kB
01418000-02657000 r--p 01018000 fd:01 1234 /bin/x
Rss:               10684 kB
02657000-026eb000 rw-p 02257000 fd:01 1234 /bin/x
Rss:                 528 kB
026eb000-04737000 rw-p 00000000 00:00 0
Rss:                 124 kB
7f0000000000-7f0000010000 r-xp 00000000 fd:01 99 /bin/xy
Rss:                  64 kB
7f0000020000-7f0000030000 r--p 00000000 fd:01 98 /bin/x (deleted)
Rss:                  64 kB
`
	got := binaryMappings([]byte(smaps), "/bin/x")
	want := []mapping{{start: 0x400000, end: 0x1418000, rssKiB: 12704}, {start: 0x1418000, end: 0x2657000, rssKiB: 10684}}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(mapping{})); d != "" {
		t.Errorf("mappings (-want +got):\n%s", d)
	}
}

// binaryRSS is the KiB of this executable's read-only mappings that are
// resident now.
func binaryRSS(t *testing.T) int64 {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var kb int64
	for _, m := range binaryMappings(smaps, exe) {
		kb += m.rssKiB
	}
	return kb
}

// TestTrimDropsTheBinarysPages: after Trim, the executable's pages that
// this process mapped are gone from its RSS, but for what it touched
// since (reading smaps, the test's own code), and the process runs on.
func TestTrimDropsTheBinarysPages(t *testing.T) {
	before := binaryRSS(t)
	if before < 1024 {
		t.Fatalf("the test binary maps only %d KiB of itself: nothing to measure", before)
	}
	res, err := Trim()
	if err != nil {
		t.Fatal(err)
	}
	after := binaryRSS(t)
	t.Logf("binary resident before %d KiB, Trim dropped %d KiB, resident after %d KiB", before, res.BinaryKiB, after)
	if res.BinaryKiB < before/2 {
		t.Errorf("Trim reports %d KiB dropped, want about the %d KiB resident before", res.BinaryKiB, before)
	}
	if after > before*3/4 {
		t.Errorf("binary resident after Trim %d KiB, before %d KiB: not dropped", after, before)
	}
}

func TestAfterReady(t *testing.T) {
	calls := 0
	ready := func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}
	res, err := AfterReady(t.Context(), ready, time.Millisecond, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 {
		t.Errorf("ready called %d times, want 3 (until it passed, then no more)", calls)
	}
	if res.BinaryKiB == 0 {
		t.Error("AfterReady did not trim once ready")
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := AfterReady(ctx, func() error { return errors.New("never") }, time.Millisecond, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("AfterReady on a node never ready, ctx cancelled: %v, want context.Canceled", err)
	}
}
