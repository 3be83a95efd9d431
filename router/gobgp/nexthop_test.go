package gobgp

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// TestKeepOriginalNextHopOnTheWire: a reflecting node A (export policy
// NoExternal) learns b's route over iBGP and passes it to two eBGP peers:
// c, with keepOriginalNextHop, receives it with b's next hop; d, without,
// with A's. A's own route reaches c with A's address either way. Changing
// the setting on a live session (UpdatePeer, no reset) re-sends the
// routes with the new next hop, both ways.
func TestKeepOriginalNextHopOnTheWire(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a := New(Config{})
	if err := a.Start(ctx, router.Global{AS: 64512, RouterID: netip.MustParseAddr("127.0.0.1"), ListenPort: port,
		ListenAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, ExportPolicy: router.ExportNoExternal}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	ca := newCollector()
	if err := a.WatchBestPaths(ctx, ca.onBest); err != nil {
		t.Fatal(err)
	}
	b, _ := startSpeaker(t, ctx, "127.0.0.2", port)
	c, cc := startSpeaker(t, ctx, "127.0.0.3", port, 65003)
	d, cd := startSpeaker(t, ctx, "127.0.0.4", port, 65004)
	pc := func(local, peer string, as, peerAS uint32, passive, keep bool) router.PeerConfig {
		return router.PeerConfig{Address: netip.MustParseAddr(peer), Port: uint16(port), PeerAS: peerAS, LocalAS: as,
			LocalAddress: netip.MustParseAddr(local), Passive: passive, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second,
			IPv4: true, KeepOriginalNextHop: keep}
	}
	toC := pc("127.0.0.1", "127.0.0.3", 64512, 65003, true, true)
	must(t, a.AddPeer(ctx, pc("127.0.0.1", "127.0.0.2", 64512, 64512, true, false)))
	must(t, b.AddPeer(ctx, pc("127.0.0.2", "127.0.0.1", 64512, 64512, false, false)))
	must(t, a.AddPeer(ctx, toC))
	must(t, c.AddPeer(ctx, pc("127.0.0.3", "127.0.0.1", 65003, 64512, false, false)))
	must(t, a.AddPeer(ctx, pc("127.0.0.1", "127.0.0.4", 64512, 65004, true, false)))
	must(t, d.AddPeer(ctx, pc("127.0.0.4", "127.0.0.1", 65004, 64512, false, false)))

	fromB := netip.MustParsePrefix("10.65.2.0/26")
	own := netip.MustParsePrefix("10.65.1.0/26")
	addrA, addrB := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	must(t, b.Announce(ctx, []router.LocalRoute{{Prefix: fromB}}))
	must(t, a.Announce(ctx, []router.LocalRoute{{Prefix: own}}))
	nextHop := func(col *collector, p netip.Prefix) func(netip.Addr) func() bool {
		return func(want netip.Addr) func() bool {
			return func() bool { ps := col.best[p]; return len(ps) == 1 && ps[0].NextHop == want }
		}
	}
	ca.wait(t, "b's route at a", func() bool { return len(ca.best[fromB]) == 1 })
	cc.wait(t, "b's route at c with b's next hop (kept)", nextHop(cc, fromB)(addrB))
	cc.wait(t, "a's own route at c with a's next hop", nextHop(cc, own)(addrA))
	cd.wait(t, "b's route at d with a's next hop (next-hop-self)", nextHop(cd, fromB)(addrA))

	// Off on the live session: sent again with a's next hop.
	toC.KeepOriginalNextHop = false
	must(t, a.UpdatePeer(ctx, toC, false))
	cc.wait(t, "b's route at c with a's next hop after turning it off", nextHop(cc, fromB)(addrA))
	// And on again.
	toC.KeepOriginalNextHop = true
	must(t, a.UpdatePeer(ctx, toC, false))
	cc.wait(t, "b's route at c with b's next hop after turning it on", nextHop(cc, fromB)(addrB))
	cd.wait(t, "d still gets a's next hop", nextHop(cd, fromB)(addrA))
	cc.mu.Lock()
	defer cc.mu.Unlock()
	established := 0
	for _, st := range cc.hist[addrA] {
		if st == api.BGPEstablished {
			established++
		}
	}
	if established != 1 || cc.state[addrA] != api.BGPEstablished {
		t.Errorf("c's session went through %v: the changes must not reset it", cc.hist[addrA])
	}
}
