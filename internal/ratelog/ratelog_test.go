package ratelog

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/testlog"
)

func lines(buf *testlog.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// TestOneLinePerKindPerInterval: 1,000 failures of one kind within an
// interval log one line; when the interval ends, one summary line repeats
// the last failure with repeats=999; another kind is not held back by the
// first; Reset lets the next line through at once.
func TestOneLinePerKindPerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf testlog.Buffer
		l := New(Config{Logger: slog.New(slog.NewTextHandler(&buf, nil)), Interval: time.Minute})
		defer l.Close()
		for i := range 1000 {
			l.Warn("writing status failed", "error", "etcdserver: too many requests", "try", i)
			time.Sleep(10 * time.Millisecond)
		}
		l.Warn("granting lease failed")
		if got := lines(&buf); len(got) != 2 {
			t.Fatalf("after 10 s of failures: %d lines, want 2:\n%s", len(got), buf.String())
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		got := lines(&buf)
		if len(got) != 3 || !strings.Contains(got[2], `msg="writing status failed"`) ||
			!strings.Contains(got[2], "try=999") || !strings.Contains(got[2], "repeats=999") {
			t.Fatalf("after the interval: want a summary line of the last failure with repeats=999, got:\n%s", buf.String())
		}
		l.Warn("writing status failed", "error", "etcdserver: too many requests")
		l.Warn("writing status failed", "error", "etcdserver: too many requests")
		if n := len(lines(&buf)); n != 4 {
			t.Fatalf("in the next interval: %d lines, want 4:\n%s", n, buf.String())
		}
		// Reset summarises the one suppressed since, and lets the next
		// line through at once.
		l.Reset("writing status failed")
		l.Warn("writing status failed")
		got = lines(&buf)
		if len(got) != 6 || !strings.Contains(got[4], "repeats=1") || strings.Contains(got[5], "repeats") {
			t.Fatalf("after Reset: want a summary with repeats=1 and the line, got:\n%s", buf.String())
		}
	})
}

// TestPeerFloodSummarised: a peer that sends 20,000 bad messages makes
// Burst lines and one summary with the count of the rest; another peer is
// not held back by it; the next interval lets lines through again.
func TestPeerFloodSummarised(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type sum struct {
			key string
			n   int
		}
		var mu sync.Mutex
		var sums []sum
		l := New(Config{Interval: PeerInterval, Burst: PeerBurst, Summary: func(k string, n int) { mu.Lock(); sums = append(sums, sum{k, n}); mu.Unlock() }})
		defer l.Close()
		passed := 0
		for range 20000 {
			if l.Allow("10.0.0.1") {
				passed++
			}
		}
		if passed != PeerBurst {
			t.Errorf("%d lines of the flood passed, want %d", passed, PeerBurst)
		}
		if !l.Allow("10.0.0.2") {
			t.Error("a line of another key was suppressed")
		}
		time.Sleep(PeerInterval)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if want := []sum{{"10.0.0.1", 20000 - PeerBurst}}; fmt.Sprint(sums) != fmt.Sprint(want) {
			t.Errorf("summaries %v, want %v", sums, want)
		}
		if !l.Allow("10.0.0.1") {
			t.Error("after the summary, a line was suppressed")
		}
	})
}

// TestLogFloodBounded: the same flood through Log (the limiter writes the
// lines) makes a handful of lines, the summary the last one's args.
func TestLogFloodBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf testlog.Buffer
		l := New(Config{Logger: slog.New(slog.NewTextHandler(&buf, nil)), Interval: PeerInterval, Burst: PeerBurst})
		defer l.Close()
		for i := range 20000 {
			l.Log(slog.LevelWarn, "malformed UPDATE", "peer", "10.0.0.1", "n", i)
		}
		time.Sleep(PeerInterval)
		synctest.Wait()
		got := lines(&buf)
		if len(got) != PeerBurst+1 {
			t.Fatalf("%d lines for 20,000 messages, want %d:\n%s", len(got), PeerBurst+1, buf.String())
		}
		if last := got[PeerBurst]; !strings.Contains(last, "n=19999") || !strings.Contains(last, "repeats=19995") || !strings.Contains(last, "level=WARN") {
			t.Errorf("summary %q: want the last message's args, repeats=19995, level WARN", last)
		}
	})
}

// TestKeysBounded: keys beyond MaxKeys share one entry, so the map stays
// bounded; the shared entry's summary names OverflowKey.
func TestKeysBounded(t *testing.T) {
	var buf testlog.Buffer
	l := New(Config{Logger: slog.New(slog.NewTextHandler(&buf, nil)), Interval: time.Hour, MaxKeys: 8})
	passed := 0
	for i := range 1000 {
		if l.Allow(fmt.Sprintf("peer-%d", i)) {
			passed++
		}
	}
	l.Log(slog.LevelWarn, "peer-x")
	if n := len(l.keys); n > 8 {
		t.Errorf("%d keys tracked, bound 8", n)
	}
	if passed != 8 {
		t.Errorf("%d lines passed, want 8 (7 keys and the shared entry)", passed)
	}
	if buf.String() != "" {
		t.Errorf("a line of a key beyond the bound was written:\n%s", buf.String())
	}
	l.Close()
	got := lines(&buf)
	if len(got) != 1 || !strings.Contains(got[0], "msg=\""+MsgSuppressed+"\"") || !strings.Contains(got[0], "key="+OverflowKey) ||
		!strings.Contains(got[0], "repeats=993") {
		t.Errorf("want the overflow's summary with repeats=993, got:\n%s", buf.String())
	}
}

// TestFlushAndClose: Flush writes what was suppressed so far, once;
// Close flushes and stops the timers, so nothing is written after it.
func TestFlushAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf testlog.Buffer
		l := New(Config{Logger: slog.New(slog.NewTextHandler(&buf, nil)), Interval: PeerInterval})
		for range 5 {
			l.Warn("a")
		}
		l.Warn("b")
		l.Flush()
		l.Flush()
		got := lines(&buf)
		if len(got) != 3 || !strings.Contains(got[2], "msg=a") || !strings.Contains(got[2], "repeats=4") {
			t.Fatalf("want a, b and one summary of a with repeats=4, got:\n%s", buf.String())
		}
		l.Warn("a") // still in a's interval: suppressed
		l.Close()
		if got := lines(&buf); len(got) != 4 || !strings.Contains(got[3], "repeats=1") {
			t.Fatalf("Close: want a summary with repeats=1, got:\n%s", buf.String())
		}
		l.Warn("a")
		time.Sleep(2 * PeerInterval)
		synctest.Wait()
		if n := len(lines(&buf)); n != 4 {
			t.Fatalf("a timer wrote after Close: %d lines:\n%s", n, buf.String())
		}
		// Closed: the summary comes with the key's next interval.
		l.Warn("a")
		if got := lines(&buf); len(got) != 6 || !strings.Contains(got[4], "repeats=1") {
			t.Fatalf("after Close, the next interval: want the summary, then the line, got:\n%s", buf.String())
		}
	})
}

// TestConcurrent: Allow, Log, Flush and the timers from several
// goroutines (for the race detector); every line is either passed or
// counted in a summary.
func TestConcurrent(t *testing.T) {
	var mu sync.Mutex
	suppressed := 0
	l := New(Config{Interval: time.Millisecond, Burst: 2, MaxKeys: 4, Summary: func(_ string, n int) { mu.Lock(); suppressed += n; mu.Unlock() }})
	var wg sync.WaitGroup
	var passed [8]int
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				if l.Allow(fmt.Sprint(i % 6)) {
					passed[g]++
				}
				if i%500 == 0 {
					l.Flush()
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	mu.Lock()
	defer mu.Unlock()
	total := suppressed
	for _, n := range passed {
		total += n
	}
	if total != 8*2000 {
		t.Errorf("passed + summarised = %d, want %d", total, 8*2000)
	}
}
