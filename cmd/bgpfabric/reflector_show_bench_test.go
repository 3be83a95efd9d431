package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"
)

// liveRecorder is a flushRecorder that measures the live heap (after a
// collection) at some flushes.
type liveRecorder struct {
	flushRecorder
	every    int
	peakLive uint64
}

func (m *liveRecorder) Flush() {
	m.flushRecorder.Flush()
	if m.flushes%m.every != m.every/2 {
		return
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.peakLive = max(m.peakLive, ms.HeapAlloc)
}

// BenchmarkShowRoutesDump1M dumps a RIB of 1M paths through GET
// /show/routes and reports the live heap during the dump above the RIB's
// own (sampled after a collection every 100 chunks), and the longest a
// RIBStats call waited for the RIB loop meanwhile:
//
//	go test -run '^$' -bench BenchmarkShowRoutesDump1M -benchtime 3x ./cmd/bgpfabric/
func BenchmarkShowRoutesDump1M(b *testing.B) {
	const n = 1000000
	ctx, r := reflectorWithRoutes(b, 10*time.Minute, n, func(i int) string { return fmt.Sprintf("%d.%d.%d.0/24", 20+i>>16, (i>>8)&0xff, i&0xff) })
	mux := http.NewServeMux()
	registerShowHandlers(mux, fileEngine{r}, slog.New(slog.DiscardHandler))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var worst time.Duration
	b.ResetTimer()
	for range b.N {
		rec := &liveRecorder{every: 100}
		stopProbe := make(chan struct{})
		probed := make(chan time.Duration)
		go func() {
			var w time.Duration
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				t0 := time.Now()
				r.RIBStats(ctx)
				w = max(w, time.Since(t0))
				select {
				case <-stopProbe:
					probed <- w
					return
				case <-t.C:
				}
			}
		}()
		mux.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/show/routes", nil))
		close(stopProbe)
		worst = max(worst, <-probed)
		if rec.total != n {
			b.Fatalf("dumped %d of %d", rec.total, n)
		}
		b.ReportMetric(float64(int64(rec.peakLive)-int64(base))/1024, "live-KiB-above-RIB")
	}
	b.ReportMetric(float64(worst.Microseconds()), "worst-loop-wait-µs")
}
