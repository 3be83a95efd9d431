//go:debug multipathtcp=0

package gobgp

import (
	"context"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/testport"
	"github.com/bgpfabric/bgpfabric/router"
)

// freePort returns a TCP port for the speakers of a test, free on every
// loopback address they use and one no other socket can take meanwhile
// (internal/testport).
func freePort(t *testing.T) int32 {
	t.Helper()
	return int32(testport.Pick(t, "127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.1.1", "127.0.2.1"))
}

type collector struct {
	mu    sync.Mutex
	best  map[netip.Prefix][]router.Path
	state map[netip.Addr]api.BGPState
	hist  map[netip.Addr][]api.BGPState // every state, in order
	eor   map[netip.Addr][]int          // per End-of-RIB, the routes known then
	errs  []string
	ch    chan struct{}
}

func newCollector() *collector {
	return &collector{best: map[netip.Prefix][]router.Path{}, state: map[netip.Addr]api.BGPState{}, hist: map[netip.Addr][]api.BGPState{}, eor: map[netip.Addr][]int{}, ch: make(chan struct{}, 1)}
}

func (c *collector) poke() {
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) onBest(ds []router.Destination) {
	c.mu.Lock()
	for _, d := range ds {
		if d.EndOfRIB.IsValid() {
			// What the table held when the End-of-RIB came.
			c.eor[d.EndOfRIB] = append(c.eor[d.EndOfRIB], len(c.best))
			continue
		}
		if len(d.Paths) == 0 {
			delete(c.best, d.Prefix)
		} else {
			c.best[d.Prefix] = d.Paths
		}
	}
	c.mu.Unlock()
	c.poke()
}

func (c *collector) onPeer(e router.PeerEvent) {
	c.mu.Lock()
	if e.State != "" {
		c.state[e.Address] = e.State
		c.hist[e.Address] = append(c.hist[e.Address], e.State)
	}
	if e.Err != "" {
		c.errs = append(c.errs, e.Err)
	}
	c.mu.Unlock()
	c.poke()
}

// wait blocks until cond holds, re-checking on every event.
func (c *collector) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

func startSpeaker(t *testing.T, ctx context.Context, id string, port int32, as ...uint32) (*Speaker, *collector) {
	t.Helper()
	s := New(Config{})
	asn := uint32(64512)
	if len(as) > 0 {
		asn = as[0]
	}
	g := router.Global{AS: asn, RouterID: netip.MustParseAddr(id), ListenPort: port, ListenAddresses: []netip.Addr{netip.MustParseAddr(id)}}
	if err := s.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	c := newCollector()
	if err := s.WatchBestPaths(ctx, c.onBest); err != nil {
		t.Fatal(err)
	}
	if err := s.WatchPeers(ctx, c.onPeer); err != nil {
		t.Fatal(err)
	}
	return s, c
}

// TestTwoSpeakersOnLoopback runs two speakers on 127.0.0.1 and 127.0.0.2
// (no root needed): a session comes up, announced routes with communities
// arrive with the sender's next hop, and withdrawals remove them.
func TestTwoSpeakersOnLoopback(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	b, cb := startSpeaker(t, ctx, "127.0.0.2", port)
	mk := func(local, peer string, passive bool) router.PeerConfig {
		return router.PeerConfig{
			Address: netip.MustParseAddr(peer), Port: uint16(port), PeerAS: 64512, LocalAS: 64512,
			LocalAddress: netip.MustParseAddr(local), Passive: passive, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second,
			IPv4: true, Password: "md5-" + strconv.Itoa(int(port)),
		}
	}
	if err := a.AddPeer(ctx, mk("127.0.0.1", "127.0.0.2", true)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(ctx, mk("127.0.0.2", "127.0.0.1", false)); err != nil {
		t.Fatal(err)
	}
	peerB := netip.MustParseAddr("127.0.0.2")
	ca.wait(t, "established (with TCP MD5)", func() bool { return ca.state[peerB] == api.BGPEstablished })
	block := netip.MustParsePrefix("10.65.1.0/26")
	comm := api.Community{Global: 64512, Local1: 7}
	if err := b.Announce(ctx, []router.LocalRoute{{Prefix: block, Communities: []api.Community{comm}}}); err != nil {
		t.Fatal(err)
	}
	ca.wait(t, "route learned", func() bool {
		ps := ca.best[block]
		return len(ps) == 1 && ps[0].NextHop == peerB && ps[0].Peer == peerB && len(ps[0].Communities) == 1 && ps[0].Communities[0] == comm
	})
	// The sender sees its own route as local.
	cb.wait(t, "own route local", func() bool { ps := cb.best[block]; return len(ps) == 1 && ps[0].Local })
	rib, err := a.RIB(ctx)
	if err != nil || len(rib) != 1 || rib[0].Prefix != block {
		t.Fatalf("RIB = %+v, %v", rib, err)
	}
	ps, err := a.Peers(ctx)
	if err != nil || len(ps) != 1 || ps[0].State != api.BGPEstablished || ps[0].PrefixesReceived != 1 {
		t.Fatalf("Peers = %+v, %v", ps, err)
	}
	if err := b.Withdraw(ctx, []netip.Prefix{block}); err != nil {
		t.Fatal(err)
	}
	ca.wait(t, "route withdrawn", func() bool { return len(ca.best[block]) == 0 })
	// Removing the peer ends the session; its side reports why.
	if err := a.DeletePeer(ctx, peerB); err != nil {
		t.Fatal(err)
	}
	peerA := netip.MustParseAddr("127.0.0.1")
	cb.wait(t, "session down at the other end", func() bool { return cb.state[peerA] != api.BGPEstablished && len(cb.errs) > 0 })
}

// TestNoTransit checks the default export policy: a route learned from
// one peer is not passed on to another.
func TestNoTransit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port) // in the middle
	b, _ := startSpeaker(t, ctx, "127.0.0.2", port)
	c, cc := startSpeaker(t, ctx, "127.0.0.3", port, 65003)
	pc := func(local, peer string, as, peerAS uint32, passive bool) router.PeerConfig {
		return router.PeerConfig{Address: netip.MustParseAddr(peer), Port: uint16(port), PeerAS: peerAS, LocalAS: as,
			LocalAddress: netip.MustParseAddr(local), Passive: passive, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true}
	}
	// a-b iBGP, a-c eBGP.
	must(t, a.AddPeer(ctx, pc("127.0.0.1", "127.0.0.2", 64512, 64512, true)))
	must(t, b.AddPeer(ctx, pc("127.0.0.2", "127.0.0.1", 64512, 64512, false)))
	must(t, a.AddPeer(ctx, pc("127.0.0.1", "127.0.0.3", 64512, 65003, true)))
	must(t, c.AddPeer(ctx, pc("127.0.0.3", "127.0.0.1", 65003, 64512, false)))
	own := netip.MustParsePrefix("10.65.1.0/26")
	transit := netip.MustParsePrefix("10.65.2.0/26")
	must(t, b.Announce(ctx, []router.LocalRoute{{Prefix: transit}}))
	ca.wait(t, "b's route at a", func() bool { return len(ca.best[transit]) == 1 })
	// a sends c its table in order: with b's route already in it, a's
	// own route arriving at c means b's would have come first.
	must(t, a.Announce(ctx, []router.LocalRoute{{Prefix: own}}))
	cc.wait(t, "a's own route at c", func() bool { return len(cc.best[own]) == 1 })
	if len(cc.best[transit]) != 0 {
		t.Errorf("c learned b's route through a: transit")
	}
}

// TestAdvertisedCountWithGracefulRestart: with graceful restart on the
// session, GoBGP counts an End-of-RIB marker among the advertised paths of
// each family; the speaker's count is the prefixes alone.
func TestAdvertisedCountWithGracefulRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	b, _ := startSpeaker(t, ctx, "127.0.0.2", port)
	gr := router.GracefulRestart{Enabled: true, RestartTime: time.Minute, StaleRoutesTime: time.Minute}
	mk := func(local, peer string, passive bool) router.PeerConfig {
		return router.PeerConfig{
			Address: netip.MustParseAddr(peer), Port: uint16(port), PeerAS: 64512, LocalAS: 64512,
			LocalAddress: netip.MustParseAddr(local), Passive: passive, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second,
			IPv4: true, GracefulRestart: gr,
		}
	}
	blocks := []netip.Prefix{netip.MustParsePrefix("10.65.1.0/26"), netip.MustParsePrefix("10.65.2.0/26")}
	if err := b.Announce(ctx, []router.LocalRoute{{Prefix: blocks[0]}, {Prefix: blocks[1]}}); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPeer(ctx, mk("127.0.0.1", "127.0.0.2", true)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(ctx, mk("127.0.0.2", "127.0.0.1", false)); err != nil {
		t.Fatal(err)
	}
	ca.wait(t, "both routes learned", func() bool { return len(ca.best[blocks[0]]) == 1 && len(ca.best[blocks[1]]) == 1 })
	ps, err := b.Peers(ctx)
	if err != nil || len(ps) != 1 || ps[0].State != api.BGPEstablished {
		t.Fatalf("Peers = %+v, %v", ps, err)
	}
	if ps[0].PrefixesAdvertised != 2 {
		t.Errorf("PrefixesAdvertised = %d, want 2 (the End-of-RIB marker is not a prefix)", ps[0].PrefixesAdvertised)
	}
	if ps, err := a.Peers(ctx); err != nil || len(ps) != 1 || ps[0].PrefixesReceived != 2 || ps[0].PrefixesAdvertised != 0 {
		t.Errorf("receiver's Peers = %+v, %v; want 2 received, 0 advertised", ps, err)
	}
}
