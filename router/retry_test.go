package router

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// refusingSpeaker is a FakeSpeaker whose AddPeer fails for the addresses
// in refuse, for as long as they are there.
type refusingSpeaker struct {
	*FakeSpeaker
	mu     sync.Mutex
	refuse map[netip.Addr]error
}

func (s *refusingSpeaker) AddPeer(ctx context.Context, p PeerConfig) error {
	s.mu.Lock()
	err := s.refuse[p.Address]
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.FakeSpeaker.AddPeer(ctx, p)
}

func (s *refusingSpeaker) accept(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refuse, a)
}

// callLog accumulates the fake speaker's calls.
type callLog struct {
	sp    *FakeSpeaker
	calls []string
}

// count is how many calls so far start with prefix.
func (c *callLog) count(prefix string) int {
	c.calls = append(c.calls, c.sp.Calls()...)
	n := 0
	for _, s := range c.calls {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// waitRetry is waitUntil for what takes a retry (testRetryDelay) and a
// reconcile: with room for a loaded machine.
func waitRetry(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testRetryDelay keeps the retry tests short; the retries' logic does
// not depend on the delay's length.
const testRetryDelay = 200 * time.Millisecond

// TestFailedPeerRetried: every speaker call that fails is tried again
// (after Config.RetryDelay) until it succeeds: starting the speaker, adding a
// session (whose status says why meanwhile), announcing, withdrawing and
// removing a session.
func TestFailedPeerRetried(t *testing.T) {
	sp := &refusingSpeaker{FakeSpeaker: NewFakeSpeaker(), refuse: map[netip.Addr]error{
		addr("10.0.0.3"): errors.New("peer refused by the speaker"),
	}}
	h := start(t, func(c *Config) { c.Speaker = sp })
	h.sp = sp.FakeSpeaker
	log := &callLog{sp: sp.FakeSpeaker}
	sp.FailNext("Start", errors.New("speaker would not start"))
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), node("n3", "10.0.0.3/24"), meshConfig("90s"))

	// Start fails once, then succeeds.
	waitRetry(t, "the speaker started on the second try", func() bool { _, ok := sp.Started(); return ok })
	if n := log.count("Start "); n != 2 {
		t.Errorf("Start called %d times, want 2 (one failure, one retry)", n)
	}

	// n3's session fails while the speaker refuses it: the status says
	// why, and the router keeps trying.
	waitUntil(t, "n2's session configured", func() bool { return peerAddrs(sp.FakeSpeaker) == "10.0.0.2/90" })
	waitUntil(t, "the status names n3's error", func() bool {
		st := h.status.get()
		if st == nil {
			return false
		}
		i := slices.IndexFunc(st.Status.Peers, func(p api.BGPPeerStatus) bool { return p.PeerIP == "10.0.0.3" })
		return i >= 0 && st.Status.Peers[i].LastError == "peer refused by the speaker"
	})
	// Once the speaker accepts it, the next retry adds it.
	sp.accept(addr("10.0.0.3"))
	waitRetry(t, "n3's session configured on a retry", func() bool { return peerAddrs(sp.FakeSpeaker) == "10.0.0.2/90 10.0.0.3/90" })
	waitUntil(t, "the status clears n3's error", func() bool {
		st := h.status.get()
		i := slices.IndexFunc(st.Status.Peers, func(p api.BGPPeerStatus) bool { return p.PeerIP == "10.0.0.3" })
		return i >= 0 && st.Status.Peers[i].LastError == ""
	})

	// Announcing fails once.
	sp.FailNext("Announce", errors.New("announce refused"))
	h.fib.ch <- FIBBatch{Snapshot: true, Routes: []FIBEvent{{Route: blackhole("10.65.1.0/26")}}}
	waitRetry(t, "the block announced on a retry", func() bool { return len(sp.Announced()) == 1 })
	if n := log.count("Announce 10.65.1.0/26"); n != 2 {
		t.Errorf("Announce called %d times, want 2", n)
	}

	// Withdrawing fails once; then removing a session, each alone, so
	// that one's retry does not do the other's work.
	sp.FailNext("Withdraw", errors.New("withdraw refused"))
	h.fib.ch <- FIBBatch{Routes: []FIBEvent{{Route: blackhole("10.65.1.0/26"), Deleted: true}}}
	waitRetry(t, "the block withdrawn on a retry", func() bool { return len(sp.Announced()) == 0 })
	if n := log.count("Withdraw 10.65.1.0/26"); n != 2 {
		t.Errorf("Withdraw called %d times, want 2", n)
	}
	sp.FailNext("DeletePeer", errors.New("delete refused"))
	h.res.del(t, api.KindNode, "n3")
	waitRetry(t, "n3's session removed on a retry", func() bool { return peerAddrs(sp.FakeSpeaker) == "10.0.0.2/90" })
	if n := log.count("DeletePeer 10.0.0.3"); n != 2 {
		t.Errorf("DeletePeer called %d times, want 2", n)
	}
	if n := log.count("AddPeer 10.0.0.2"); n != 1 {
		t.Errorf("n2's session added %d times; want once: retries redo only what failed", n)
	}
}
