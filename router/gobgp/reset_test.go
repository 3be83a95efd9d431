package gobgp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// TestResetPeer: ResetPeer sends the peer a NOTIFICATION Cease with
// subcode 4 (Administrative Reset), the session leaves Established at both
// ends and comes back by itself, with the routes; a peer that is not
// configured is an error.
func TestResetPeer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	b, cb := startSpeaker(t, ctx, "127.0.0.2", port)
	mk := func(local, peer string, passive bool) router.PeerConfig {
		return router.PeerConfig{Address: netip.MustParseAddr(peer), Port: uint16(port), PeerAS: 64512, LocalAS: 64512,
			LocalAddress: netip.MustParseAddr(local), Passive: passive, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true}
	}
	if err := a.AddPeer(ctx, mk("127.0.0.1", "127.0.0.2", false)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddPeer(ctx, mk("127.0.0.2", "127.0.0.1", false)); err != nil {
		t.Fatal(err)
	}
	peerA, peerB := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	block := netip.MustParsePrefix("10.65.1.0/26")
	if err := b.Announce(ctx, []router.LocalRoute{{Prefix: block}}); err != nil {
		t.Fatal(err)
	}
	ca.wait(t, "established with b's route", func() bool { return ca.state[peerB] == api.BGPEstablished && len(ca.best[block]) == 1 })
	cb.wait(t, "established at b", func() bool { return cb.state[peerA] == api.BGPEstablished })
	histA, histB := len(ca.hist[peerB]), len(cb.hist[peerA])

	if err := a.ResetPeer(ctx, peerB); err != nil {
		t.Fatal(err)
	}
	received := func() bool {
		return slices.ContainsFunc(cb.errs, func(e string) bool {
			return strings.HasPrefix(e, "received notification") && strings.Contains(e, "code 6, subcode 4")
		})
	}
	cb.wait(t, "b received the Cease, Administrative Reset", received)
	// Both ends left Established and are back in it, with the route.
	backUp := func(hist []api.BGPState, from int) bool {
		h := hist[from:]
		down := slices.IndexFunc(h, func(s api.BGPState) bool { return s != api.BGPEstablished })
		return down >= 0 && slices.Contains(h[down:], api.BGPEstablished) && h[len(h)-1] == api.BGPEstablished
	}
	ca.wait(t, "a's session down and up again, b's route back", func() bool {
		return backUp(ca.hist[peerB], histA) && len(ca.best[block]) == 1
	})
	cb.wait(t, "b's session down and up again", func() bool { return backUp(cb.hist[peerA], histB) })

	if err := a.ResetPeer(ctx, netip.MustParseAddr("127.0.0.9")); err == nil {
		t.Error("ResetPeer of a peer that is not configured: no error")
	}
}
