package reflector

import (
	"context"
	"io"
	"testing"
	"time"
)

// BenchmarkMonitorDumps measures how long the RIB loop is held by an MRT
// snapshot and by a BMP collector's dump of 100,000 paths (one peer, one
// attribute set): go test -run '^$' -bench BenchmarkMonitorDumps -benchtime 10x ./reflector/
func BenchmarkMonitorDumps(b *testing.B) {
	r, addr := startReflector(b, testConfig("127.0.0.2"))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	a, err := dialSpeaker(ctx, addr, "127.0.0.2", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90})
	if err != nil {
		b.Fatal(err)
	}
	defer a.conn.Close()
	go io.Copy(io.Discard, a.conn)
	const n = 100000
	for _, base := range []string{"20.0.0.0", "21.0.0.0"} {
		ps := manyPrefixes(base, n/2)
		for len(ps) > 0 {
			k := min(500, len(ps))
			a.send(b, ipv4Update("192.0.2.2", ps[:k]))
			ps = ps[k:]
		}
	}
	for {
		s, ok := r.RIBStats(ctx)
		if !ok {
			b.Fatal("RIB not running")
		}
		if s.Paths == n {
			break
		}
		select {
		case <-ctx.Done():
			b.Fatalf("the RIB holds %d paths, want %d", s.Paths, n)
		case <-time.After(20 * time.Millisecond): // the RIB has no event for "holds n paths"
		}
	}
	b.Run("MRTSnapshot", func(b *testing.B) {
		var size int
		for b.Loop() {
			r.env.rib.call(ctx, func(rl *ribLoop) { buf, _ := rl.mrtSnapshot(time.Now(), 1); size = len(buf) })
		}
		b.ReportMetric(float64(size), "bytes")
	})
	b.Run("BMPDump", func(b *testing.B) {
		var size int
		for b.Loop() {
			c := &bmpCollector{q: newBMPQueue(1 << 30)}
			r.env.rib.call(ctx, func(rl *ribLoop) {
				rl.mon = &monitor{peers: map[*ribPeer]*monPeer{}}
				for _, rp := range rl.peers {
					rl.mon.peers[rp] = &monPeer{m: rp.member}
				}
				rl.monAttach(c, nil)
				rl.mon = nil
			})
			size = len(c.q.chunks[0].b)
		}
		b.ReportMetric(float64(size), "bytes")
	})
}
