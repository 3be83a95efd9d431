package bfd

import (
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// BenchmarkSessions runs 1,000 sessions between two Servers in this
// process over loopback addresses (127.0.0.1 against 127.1.x.y) and
// measures the process's CPU time (user + system, both ends together) per
// session-second once all are Up. One op is one millisecond of wall time:
// run with -benchtime=10000x for ten seconds.
func BenchmarkSessions(b *testing.B) {
	for _, c := range []struct {
		n  int
		iv time.Duration
	}{{1000, 300 * time.Millisecond}, {1000, 100 * time.Millisecond}, {200, 100 * time.Millisecond}} {
		b.Run(fmt.Sprintf("n=%d/interval=%v", c.n, c.iv), func(b *testing.B) { benchSessions(b, c.n, c.iv) })
	}
}

func benchSessions(b *testing.B, n int, iv time.Duration) {
	sa, sb := serverPair(b)
	for i := range n {
		peer := netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)})
		cfg := Config{MinTx: iv, MinRx: iv, Multiplier: 5}
		cfg.Peer, cfg.Local = peer, lo1
		if _, err := sa.AddSession(cfg); err != nil {
			b.Fatal(err)
		}
		cfg.Peer, cfg.Local = lo1, peer
		if _, err := sb.AddSession(cfg); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		up := 0
		for _, st := range sa.Sessions() {
			if st.State == StateUp && st.TxInterval == iv {
				up++
			}
		}
		if up == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sessions Up at %v after 2 minutes", up, n, iv)
		}
		time.Sleep(100 * time.Millisecond) // polling a snapshot: no event for "all Up"
	}
	downs := func() (d uint64) {
		for _, st := range sa.Sessions() {
			d += st.Counters.Downs
		}
		return d
	}
	downs0 := downs()
	cpu0, wall0 := cpuTime(b), time.Now()
	b.ResetTimer()
	time.Sleep(time.Duration(b.N) * time.Millisecond) // one wakeup: its own CPU stays out of the count
	b.StopTimer()
	cpu, wall := cpuTime(b)-cpu0, time.Since(wall0)
	sessionSeconds := float64(n) * wall.Seconds()
	b.ReportMetric(float64(cpu.Nanoseconds())/sessionSeconds, "cpu-ns/session-s")
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	b.ReportMetric(float64(downs()-downs0), "flaps")
	b.ReportMetric(0, "ns/op")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
