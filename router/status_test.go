package router

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// countingStatus is a status sink that counts its writes.
type countingStatus struct {
	fakeStatus
	puts atomic.Int64
}

func (s *countingStatus) Put(ctx context.Context, r *api.BGPStatus) error {
	s.puts.Add(1)
	return s.fakeStatus.Put(ctx, r)
}

// countingSpeaker counts the counter refreshes (Peers calls) of the loop.
type countingSpeaker struct {
	*FakeSpeaker
	refreshes atomic.Int64
}

func (s *countingSpeaker) Peers(ctx context.Context) ([]PeerStatus, error) {
	s.refreshes.Add(1)
	return s.FakeSpeaker.Peers(ctx)
}

// TestStatusWrittenOnChangeOnly: the router refreshes its counters every
// StatusInterval, but an unchanged status (only its timestamp moves) is
// not written again, however many refreshes and seconds go by; a session
// state change is.
func TestStatusWrittenOnChangeOnly(t *testing.T) {
	st := &countingStatus{}
	var sp *countingSpeaker
	h := start(t, func(c *Config) {
		c.StatusInterval = 10 * time.Millisecond
		sp = &countingSpeaker{FakeSpeaker: c.Speaker.(*FakeSpeaker)}
		c.Speaker = sp
		c.Status = st
	})
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"))
	h.fib.ch <- FIBBatch{Snapshot: true}
	waitUntil(t, "ready", func() bool { return h.r.Ready() == nil })
	h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: api.BGPEstablished})
	waitUntil(t, "status Established", func() bool {
		s := st.get()
		return s != nil && len(s.Status.Peers) == 1 && s.Status.Peers[0].State == api.BGPEstablished
	})
	// The Established status is out; from here on nothing changes.
	before, refreshed, began := st.puts.Load(), sp.refreshes.Load(), time.Now()
	// 100 refreshes and at least 2.5 s: the timestamp (whole seconds)
	// moves at least twice, which a writer without the comparison would
	// write. (A deadline of its own: on a loaded machine the ticks come
	// late.)
	deadline := time.Now().Add(30 * time.Second)
	for sp.refreshes.Load() < refreshed+100 || time.Since(began) < 2500*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("only %d counter refreshes in 30 s", sp.refreshes.Load()-refreshed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := st.puts.Load() - before; n != 0 {
		t.Fatalf("an unchanged status was written %d times over %d refreshes", n, sp.refreshes.Load()-refreshed)
	}
	h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: api.BGPIdle})
	waitUntil(t, "status Idle", func() bool {
		s := st.get()
		return len(s.Status.Peers) == 1 && s.Status.Peers[0].State == api.BGPIdle
	})
	if n := st.puts.Load() - before; n != 1 {
		t.Fatalf("a state change: %d writes, want 1", n)
	}
}
