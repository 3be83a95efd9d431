package gobgp

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	bfapi "github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

func loopPeer(local, peer string, port int32, as, peerAS uint32, passive bool) router.PeerConfig {
	return router.PeerConfig{Address: netip.MustParseAddr(peer), Port: uint16(port), PeerAS: peerAS, LocalAS: as,
		LocalAddress: netip.MustParseAddr(local), Passive: passive, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestNextHopSelfOnTheWire: a reflecting node A passes b's route to its
// route-reflector client c over iBGP. Without nextHopMode Self it keeps
// b's next hop (iBGP); with it, c receives A's address. The change is
// applied on the live session (no reset), both ways.
func TestNextHopSelfOnTheWire(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a := New(Config{})
	must(t, a.Start(ctx, router.Global{AS: 64512, RouterID: netip.MustParseAddr("127.0.0.1"), ListenPort: port,
		ListenAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, ExportPolicy: router.ExportNoExternal}))
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	b, _ := startSpeaker(t, ctx, "127.0.0.2", port)
	c, cc := startSpeaker(t, ctx, "127.0.0.3", port)
	toC := loopPeer("127.0.0.1", "127.0.0.3", port, 64512, 64512, true)
	toC.RouteReflectorClient, toC.ClusterID = true, netip.MustParseAddr("127.0.0.1")
	must(t, a.AddPeer(ctx, loopPeer("127.0.0.1", "127.0.0.2", port, 64512, 64512, true)))
	must(t, b.AddPeer(ctx, loopPeer("127.0.0.2", "127.0.0.1", port, 64512, 64512, false)))
	must(t, a.AddPeer(ctx, toC))
	must(t, c.AddPeer(ctx, loopPeer("127.0.0.3", "127.0.0.1", port, 64512, 64512, false)))
	fromB := netip.MustParsePrefix("10.65.2.0/26")
	addrA, addrB := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	must(t, b.Announce(ctx, []router.LocalRoute{{Prefix: fromB}}))
	nextHop := func(want netip.Addr) func() bool {
		return func() bool { ps := cc.best[fromB]; return len(ps) == 1 && ps[0].NextHop == want }
	}
	cc.wait(t, "b's route at c with b's next hop (Auto, iBGP)", nextHop(addrB))
	toC.NextHopSelf = true
	must(t, a.UpdatePeer(ctx, toC, false))
	cc.wait(t, "b's route at c with a's next hop (Self)", nextHop(addrA))
	toC.NextHopSelf = false
	must(t, a.UpdatePeer(ctx, toC, false))
	cc.wait(t, "b's route at c with b's next hop again", nextHop(addrB))
	cc.wait(t, "c's session reported established", func() bool { return cc.state[addrA] == bfapi.BGPEstablished })
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if n := slices.Index(cc.hist[addrA], bfapi.BGPEstablished); n < 0 || slices.Contains(cc.hist[addrA][n+1:], bfapi.BGPEstablished) {
		t.Errorf("c's session went through %v: the changes must not reset it", cc.hist[addrA])
	}
}

// TestLocalASOnTheWire: A (AS 64512) uses AS 65111 on its session with e
// (BGPPeer localASNumber): e, configured for 65111, establishes and
// receives A's route with AS path 65111.
func TestLocalASOnTheWire(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, _ := startSpeaker(t, ctx, "127.0.0.1", port, 64512)
	e, ce := startSpeaker(t, ctx, "127.0.0.2", port, 65005)
	must(t, a.AddPeer(ctx, loopPeer("127.0.0.1", "127.0.0.2", port, 65111, 65005, true)))
	must(t, e.AddPeer(ctx, loopPeer("127.0.0.2", "127.0.0.1", port, 65005, 65111, false)))
	own := netip.MustParsePrefix("10.65.1.0/26")
	must(t, a.Announce(ctx, []router.LocalRoute{{Prefix: own}}))
	ce.wait(t, "a's route at e from AS 65111", func() bool {
		ps := ce.best[own]
		return len(ps) == 1 && slices.Equal(ps[0].ASPath, []uint32{65111}) && ps[0].PeerAS == 65111
	})
}

// TestGracefulShutdownOnTheWire: sending, a route announced for a drain
// (GracefulShutdown, with 65535:0) reaches an iBGP peer with LOCAL_PREF 0
// and the community; receiving, of two equal eBGP paths the one with
// 65535:0 gets LOCAL_PREF GShutLocalPref and loses: the best path (and
// multipath set) is the other one.
func TestGracefulShutdownOnTheWire(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port, 64512)
	b, cb := startSpeaker(t, ctx, "127.0.0.2", port, 64512)
	f, _ := startSpeaker(t, ctx, "127.0.0.3", port, 65006)
	g, _ := startSpeaker(t, ctx, "127.0.0.4", port, 65006)
	for _, p := range []struct {
		s           *Speaker
		local, peer string
		as, peerAS  uint32
		passive     bool
	}{
		{a, "127.0.0.1", "127.0.0.2", 64512, 64512, true}, {b, "127.0.0.2", "127.0.0.1", 64512, 64512, false},
		{a, "127.0.0.1", "127.0.0.3", 64512, 65006, true}, {f, "127.0.0.3", "127.0.0.1", 65006, 64512, false},
		{a, "127.0.0.1", "127.0.0.4", 64512, 65006, true}, {g, "127.0.0.4", "127.0.0.1", 65006, 64512, false},
	} {
		must(t, p.s.AddPeer(ctx, loopPeer(p.local, p.peer, port, p.as, p.peerAS, p.passive)))
	}
	gshut := bfapi.GracefulShutdownCommunity
	// b shows what it receives: without its own honouring of 65535:0
	// (which would set GShutLocalPref).
	must(t, b.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: importAssignment, Direction: api.PolicyDirection_IMPORT, DefaultAction: api.RouteAction_ACCEPT}}))

	// Sending.
	own := netip.MustParsePrefix("10.65.1.0/26")
	must(t, a.Announce(ctx, []router.LocalRoute{{Prefix: own}}))
	cb.wait(t, "a's route at b with LOCAL_PREF 100", func() bool {
		ps := cb.best[own]
		return len(ps) == 1 && ps[0].LocalPref == 100 && !slices.Contains(ps[0].Communities, gshut)
	})
	must(t, a.Announce(ctx, []router.LocalRoute{{Prefix: own, Communities: []bfapi.Community{gshut}, GracefulShutdown: true}}))
	cb.wait(t, "a's route at b with LOCAL_PREF 0 and 65535:0", func() bool {
		ps := cb.best[own]
		return len(ps) == 1 && ps[0].LocalPref == 0 && slices.Contains(ps[0].Communities, gshut)
	})

	// Receiving.
	svc := netip.MustParsePrefix("192.0.2.7/32")
	must(t, g.Announce(ctx, []router.LocalRoute{{Prefix: svc}}))
	must(t, f.Announce(ctx, []router.LocalRoute{{Prefix: svc}}))
	addrF, addrG := netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4")
	nextHops := func() []netip.Addr {
		var out []netip.Addr
		for _, p := range ca.best[svc] {
			out = append(out, p.NextHop)
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return out
	}
	ca.wait(t, "both paths at a", func() bool {
		hs := nextHops()
		// Multipath or not, f must be among the best without the community.
		return len(ca.best[svc]) > 0 && slices.Contains(hs, addrF)
	})
	must(t, f.Announce(ctx, []router.LocalRoute{{Prefix: svc, Communities: []bfapi.Community{gshut}}}))
	ca.wait(t, "only g's path best at a", func() bool { return slices.Equal(nextHops(), []netip.Addr{addrG}) })
	rib, err := a.RIB(ctx)
	must(t, err)
	for _, d := range rib {
		if d.Prefix != svc {
			continue
		}
		for _, p := range d.Paths {
			if p.NextHop == addrF && p.LocalPref != GShutLocalPref {
				t.Errorf("f's path with 65535:0 has LOCAL_PREF %d, want %d", p.LocalPref, GShutLocalPref)
			}
		}
	}
}
