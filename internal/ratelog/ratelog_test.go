package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestOneLinePerKindPerInterval: 1,000 failures of one kind within an
// interval log one line; the next interval's first line carries the
// count; another kind is not held back by the first.
func TestOneLinePerKindPerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute)
		for range 1000 {
			l.Warn("writing status failed", "error", "etcdserver: too many requests")
			time.Sleep(10 * time.Millisecond)
		}
		l.Warn("granting lease failed")
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 2 {
			t.Fatalf("after 10 s of failures: %d lines, want 2:\n%s", len(lines), buf.String())
		}
		time.Sleep(time.Minute)
		l.Warn("writing status failed", "error", "etcdserver: too many requests")
		lines = strings.Split(strings.TrimSpace(buf.String()), "\n")
		if len(lines) != 3 || !strings.Contains(lines[2], "repeats=1000") {
			t.Fatalf("after the interval: want a third line with repeats=1000, got:\n%s", buf.String())
		}
		l.Reset("writing status failed")
		l.Warn("writing status failed")
		if n := strings.Count(buf.String(), "\n"); n != 4 {
			t.Fatalf("after Reset: %d lines, want 4", n)
		}
	})
}
