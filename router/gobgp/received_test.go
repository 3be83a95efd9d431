package gobgp

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/routepolicy"
	"github.com/bgpfabric/bgpfabric/router"
)

// received collects WatchReceived's stream as the router keeps it: the
// current path per prefix and peer.
type received struct {
	mu    sync.Mutex
	paths map[netip.Prefix]map[netip.Addr]router.Path
	eor   int
	log   []netip.Prefix // every path and withdrawal, in order
	wd    int            // withdrawals
	ch    chan struct{}
}

func (r *received) on(rs []router.Received) {
	r.mu.Lock()
	for _, x := range rs {
		switch {
		case x.EndOfRIB.IsValid():
			r.eor++
		case x.Withdrawn:
			r.log = append(r.log, x.Prefix)
			r.wd++
			delete(r.paths[x.Prefix], x.Peer)
			if len(r.paths[x.Prefix]) == 0 {
				delete(r.paths, x.Prefix)
			}
		default:
			r.log = append(r.log, x.Prefix)
			if r.paths[x.Prefix] == nil {
				r.paths[x.Prefix] = map[netip.Addr]router.Path{}
			}
			r.paths[x.Prefix][x.Peer] = x.Path
		}
	}
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *received) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("timed out waiting until %s; have %v", what, r.paths)
		}
	}
}

// TestWatchReceived: with an import policy that accepts everything
// (the router evaluates the filters), every path an eBGP peer sends is
// reported with its peer, AS path, origin and LOCAL_PREF 100 (the eBGP
// peer sent none), also one that an export-only policy of the session
// would not matter to; a withdrawal is reported as one, and so is every
// path of a session that ends. The node's own paths are not reported. An
// import policy in GoBGP (a reflecting node's) reports what it rejects as
// withdrawn.
func TestWatchReceived(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, _ := startSpeaker(t, ctx, "127.0.0.1", port, 64512)
	b, _ := startSpeaker(t, ctx, "127.0.0.2", port, 65000)
	rec := &received{paths: map[netip.Prefix]map[netip.Addr]router.Path{}, ch: make(chan struct{}, 1)}
	if err := a.WatchReceived(ctx, rec.on); err != nil {
		t.Fatal(err)
	}
	mk := func(local, peer string, peerAS uint32, passive bool) router.PeerConfig {
		return router.PeerConfig{
			Address: netip.MustParseAddr(peer), Port: uint16(port), PeerAS: peerAS,
			LocalAddress: netip.MustParseAddr(local), Passive: passive, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second,
			IPv4: true,
		}
	}
	pa := mk("127.0.0.1", "127.0.0.2", 65000, true)
	if err := a.AddPeer(ctx, pa); err != nil {
		t.Fatal(err)
	}
	// eBGP both ways: b needs an export policy that accepts (RFC 8212
	// is the router's default, not GoBGP's; here there is none).
	if err := b.AddPeer(ctx, mk("127.0.0.2", "127.0.0.1", 64512, false)); err != nil {
		t.Fatal(err)
	}
	own, p1, p2 := netip.MustParsePrefix("10.65.1.0/26"), netip.MustParsePrefix("10.200.1.0/24"), netip.MustParsePrefix("10.200.2.0/24")
	if err := a.Announce(ctx, []router.LocalRoute{{Prefix: own}}); err != nil {
		t.Fatal(err)
	}
	if err := b.Announce(ctx, []router.LocalRoute{{Prefix: p1}, {Prefix: p2}}); err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddr("127.0.0.2")
	rec.wait(t, "both paths received", func() bool { return len(rec.paths[p1]) == 1 && len(rec.paths[p2]) == 1 })
	got := rec.paths[p1][peer]
	if got.Peer != peer || got.PeerAS != 65000 || got.LocalPref != 100 || len(got.ASPath) != 1 || got.ASPath[0] != 65000 ||
		got.Origin != 0 || got.NextHop != peer || got.Local {
		t.Errorf("received path %+v", got)
	}
	rec.mu.Lock()
	if _, ok := rec.paths[own]; ok {
		t.Error("the node's own path reported as received")
	}
	rec.mu.Unlock()

	if err := b.Withdraw(ctx, []netip.Prefix{p1}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the withdrawal reported", func() bool { return len(rec.paths[p1]) == 0 && len(rec.paths[p2]) == 1 })

	// An export-only change (the router evaluates the import filters)
	// does not evaluate the Adj-RIB-In again: p2 is not reported again
	// before the next path b sends.
	rec.mu.Lock()
	rec.log = nil
	rec.mu.Unlock()
	pa.Policy = routepolicy.Policy{Export: routepolicy.Chain{Reject: true}}
	if err := a.UpdatePeer(ctx, pa, false); err != nil {
		t.Fatal(err)
	}
	p3 := netip.MustParsePrefix("10.200.3.0/24")
	if err := b.Announce(ctx, []router.LocalRoute{{Prefix: p3}}); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the next path received", func() bool { return len(rec.paths[p3]) == 1 })
	rec.mu.Lock()
	if len(rec.log) != 1 || rec.log[0] != p3 {
		t.Errorf("after an export-only change, received %v, want only %s", rec.log, p3)
	}
	rec.mu.Unlock()

	// An import policy in GoBGP (a reflecting node): what it rejects
	// leaves the stream as withdrawn, on the soft reset in.
	filter := &routepolicy.Filter{Name: "in"}
	filter.Rules[routepolicy.Import][0] = []routepolicy.Rule{{CIDR: p2, Op: routepolicy.OpEqual, MinLen: 24, MaxLen: 32}}
	pa.Policy = routepolicy.Policy{Import: routepolicy.Chain{Filters: []*routepolicy.Filter{filter}}}
	if err := a.UpdatePeer(ctx, pa, false); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the rejected path withdrawn", func() bool { return len(rec.paths[p2]) == 0 })

	pa.Policy = routepolicy.Policy{}
	if err := a.UpdatePeer(ctx, pa, false); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the path back", func() bool { return len(rec.paths[p2]) == 1 })
	// The session ends: its paths are withdrawn.
	if err := a.DeletePeer(ctx, peer); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the ended session's paths withdrawn", func() bool { return len(rec.paths) == 0 })

	// The watch spans a Stop and a Start: the new speaker's paths come.
	// (Stop itself reports no withdrawals: the watcher forgets a
	// stopped speaker's paths; here there are none left.)
	if err := a.AddPeer(ctx, pa); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the paths again", func() bool { return len(rec.paths) == 2 })
	rec.mu.Lock()
	rec.log = nil
	wd := rec.wd
	rec.mu.Unlock()
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx, router.Global{AS: 64512, RouterID: netip.MustParseAddr("127.0.0.1"), ListenPort: port,
		ListenAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPeer(ctx, pa); err != nil {
		t.Fatal(err)
	}
	rec.wait(t, "the restarted speaker's paths", func() bool { return len(rec.log) >= 2 })
	rec.mu.Lock()
	for _, p := range rec.log {
		if p != p2 && p != p3 {
			t.Errorf("after a restart, %s reported", p)
		}
	}
	if len(rec.paths) != 2 || rec.wd != wd {
		t.Errorf("after a restart, paths %v, %d withdrawals reported", rec.paths, rec.wd-wd)
	}
	rec.mu.Unlock()
}
