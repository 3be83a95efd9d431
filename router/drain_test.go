package router

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
)

// drainSpeaker records, for every Announce of routes marked for graceful
// shutdown, how many peers were configured at that moment.
type drainSpeaker struct {
	*FakeSpeaker
	mu        sync.Mutex
	gshutWith []int
}

func (d *drainSpeaker) Announce(ctx context.Context, rs []LocalRoute) error {
	for _, r := range rs {
		if r.GracefulShutdown && slices.Contains(r.Communities, api.GracefulShutdownCommunity) {
			d.mu.Lock()
			d.gshutWith = append(d.gshutWith, len(d.PeerConfigs()))
			d.mu.Unlock()
			break
		}
	}
	return d.FakeSpeaker.Announce(ctx, rs)
}

// TestDrain: setting the Node's spec.bgp.drain re-announces the node's
// routes with GRACEFUL_SHUTDOWN while its sessions are still configured,
// closes every session after drainTime, and keeps them closed; clearing
// it brings the sessions back and the routes without the community.
func TestDrain(t *testing.T) {
	ds := &drainSpeaker{FakeSpeaker: NewFakeSpeaker()}
	h := start(t, func(c *Config) { c.Speaker = ds })
	cfg := meshConfig("90s")
	cfg.Spec.DrainTime = "2s"
	self := node("n1", "10.0.0.1/24")
	h.res.snapshot(t, self, node("n2", "10.0.0.2/24"), node("n3", "10.0.0.3/24"), cfg)
	h.fib.ch <- FIBBatch{Snapshot: true, Routes: []FIBEvent{{Route: blackhole("10.65.1.0/26")}}}
	gshut := func() (marked, plain int) {
		for _, r := range ds.Announced() {
			if r.GracefulShutdown && slices.Contains(r.Communities, api.GracefulShutdownCommunity) {
				marked++
			} else if !r.GracefulShutdown && !slices.Contains(r.Communities, api.GracefulShutdownCommunity) {
				plain++
			}
		}
		return marked, plain
	}
	waitUntil(t, "two sessions and the block announced plainly", func() bool {
		_, plain := gshut()
		return len(ds.PeerConfigs()) == 2 && plain == 1
	})

	drained := node("n1", "10.0.0.1/24")
	drained.Spec.BGP.Drain = true
	h.res.put(t, drained)
	waitUntil(t, "the block announced with GRACEFUL_SHUTDOWN", func() bool { m, _ := gshut(); return m == 1 })
	waitUntil(t, "every session closed after drainTime", func() bool { return len(ds.PeerConfigs()) == 0 })
	ds.mu.Lock()
	if len(ds.gshutWith) == 0 || ds.gshutWith[0] != 2 {
		t.Errorf("peers configured at the GRACEFUL_SHUTDOWN announcement: %v, want 2 (before the sessions close)", ds.gshutWith)
	}
	ds.mu.Unlock()
	// A node added while drained gets its session with the others.
	h.res.put(t, node("n4", "10.0.0.4/24"))
	h.res.put(t, node("n1", "10.0.0.1/24"))
	waitUntil(t, "three sessions back and the block announced plainly", func() bool {
		_, plain := gshut()
		return len(ds.PeerConfigs()) == 3 && plain == 1
	})
}
