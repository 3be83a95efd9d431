package ui

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// hubSnap is a small snapshot with one node in a given state.
func hubSnap(graph, state string) Snapshot {
	s := Snapshot{Graph: graph, Nodes: []Node{{Name: "n-1", State: state}}}
	s.look()
	return s
}

// next reads one event, failing the test if none comes.
func next(t *testing.T, c *Client) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("no event: %v", err)
	}
	return e
}

// pending reports whether the client has an event ready without waiting.
func pending(c *Client) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Next(ctx)
	return err == nil
}

func TestHubSnapshotThenChanges(t *testing.T) {
	h := NewHub(8)
	h.Update(hubSnap("g", StateStarting))
	c := h.Subscribe()
	defer c.Close()
	e := next(t, c)
	if e.Type != "snapshot" || e.Snapshot.Nodes[0].State != StateStarting {
		t.Fatalf("first event: %+v", e)
	}
	first := e.Seq
	h.Update(hubSnap("g", StateReady))
	e = next(t, c)
	if e.Type != "node" || e.Node.State != StateReady || e.Node.Class != "node role- agent- state-ready" || e.Seq <= first {
		t.Fatalf("change: %+v (snapshot seq %d)", e, first)
	}
	// No change, no event.
	h.Update(hubSnap("g", StateReady))
	if pending(c) {
		t.Fatal("an update without a change sent an event")
	}
	// A new drawing is sent whole.
	h.Update(hubSnap("g2", StateReady))
	if e = next(t, c); e.Type != "snapshot" || e.Snapshot.Graph != "g2" {
		t.Fatalf("after the drawing changed: %+v", e)
	}
}

// TestHubSlowClientResyncs: a client that does not read is never waited
// for; once its buffer is full it gets nothing more until it reads, and
// then it gets one snapshot of the current state, not the stale events;
// a client that keeps up gets every change in order.
func TestHubSlowClientResyncs(t *testing.T) {
	const buffer = 4
	h := NewHub(buffer)
	h.Update(hubSnap("g", StateStarting))
	slow, fast := h.Subscribe(), h.Subscribe()
	defer slow.Close()
	defer fast.Close()
	next(t, slow)
	last := next(t, fast).Seq

	states := []string{StateConverging, StateReady, StateDown}
	const updates = 30
	done := make(chan struct{})
	var got []Event
	go func() {
		defer close(done)
		for i := range updates {
			h.Update(hubSnap("g", states[i%len(states)]))
			// The fast client reads as it goes; the slow one never does.
			got = append(got, next(t, fast))
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Update blocked on a client that does not read")
	}
	for i, e := range got {
		if e.Type != "node" || e.Seq != last+1 || e.Node.State != states[i%len(states)] {
			t.Fatalf("fast client's event %d: %+v (after seq %d)", i, e, last)
		}
		last = e.Seq
	}
	if r := h.Resyncs(); r != 1 {
		t.Fatalf("resyncs = %d, want 1 (the slow client once)", r)
	}
	e := next(t, slow)
	want := states[(updates-1)%len(states)]
	if e.Type != "snapshot" || e.Seq != last || e.Snapshot.Nodes[0].State != want {
		t.Fatalf("slow client after falling behind: type %s seq %d (want snapshot at %d with state %s): %+v", e.Type, e.Seq, last, want, e.Snapshot)
	}
	if pending(slow) {
		t.Fatal("the slow client still has stale events after its snapshot")
	}
	// Back in step: it gets the next change.
	h.Update(hubSnap("g", StateStarting))
	if e := next(t, slow); e.Type != "node" || e.Seq != last+1 {
		t.Fatalf("slow client after resync: %+v", e)
	}
}

// TestHubManyClientsDoNotBlock: clients that never read do not slow the
// publisher down into blocking, and each costs at most its buffer.
func TestHubManyClientsDoNotBlock(t *testing.T) {
	h := NewHub(2)
	for range 50 {
		c := h.Subscribe()
		defer c.Close()
		next(t, c) // the snapshot: from here on it is sent changes
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			h.Update(hubSnap("g", fmt.Sprint(i)))
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Update blocked")
	}
	for c := range h.clients {
		if len(c.ch) > 2 {
			t.Fatalf("a client holds %d events, over its buffer", len(c.ch))
		}
	}
	if r := h.Resyncs(); r != 50 {
		t.Fatalf("resyncs = %d, want one per client", r)
	}
}
