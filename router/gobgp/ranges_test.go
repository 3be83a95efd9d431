package gobgp

import (
	"context"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	gobgpapi "github.com/osrg/gobgp/v3/api"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// activePeer is B's configuration of A: it connects (A only waits).
func activePeer(local, peer string, port int32, password string) router.PeerConfig {
	return router.PeerConfig{
		Address: netip.MustParseAddr(peer), Port: uint16(port), PeerAS: 64512, LocalAS: 64512,
		LocalAddress: netip.MustParseAddr(local), HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second,
		IPv4: true, Password: password,
	}
}

func loopbackRange(password string) router.PeerRangeConfig {
	return router.PeerRangeConfig{
		Prefix: netip.MustParsePrefix("127.0.0.0/24"), PeerAS: 64512, LocalAS: 64512,
		HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, Password: password,
		GracefulRestart: router.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, StaleRoutesTime: 120 * time.Second},
	}
}

// peerList renders a speaker's peers as "addr state dynamic|configured".
func peerList(t *testing.T, s *Speaker) []string {
	t.Helper()
	ps, err := s.Peers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		kind := "configured"
		if p.Dynamic {
			kind = "dynamic"
		}
		out = append(out, p.Address.String()+" "+string(p.State)+" "+kind)
	}
	slices.Sort(out)
	return out
}

// TestDynamicNeighborsOnLoopback: speaker A accepts any router from
// 127.0.0.0/24 (a range with a TCP MD5 key for the whole prefix, on A's
// listener bound to 127.0.0.1); B, at 127.0.0.2, has A as an ordinary
// active neighbour. The session comes up, routes pass both ways with
// next-hop-self, A lists B as a dynamic neighbour; C, at 127.0.1.1,
// outside the range, is refused; deleting the range ends B's session and
// drops its routes, and nothing else.
func TestDynamicNeighborsOnLoopback(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	b, cb := startSpeaker(t, ctx, "127.0.0.2", port)
	c, cc := startSpeaker(t, ctx, "127.0.1.1", port)
	// A configured peer of A's beside the range, to show it is untouched.
	d, cd := startSpeaker(t, ctx, "127.0.2.1", port, 65002)
	const pw = "range-md5"
	must(t, a.AddPeerRange(ctx, loopbackRange(pw)))
	must(t, b.AddPeer(ctx, activePeer("127.0.0.2", "127.0.0.1", port, pw)))
	must(t, a.AddPeer(ctx, router.PeerConfig{Address: netip.MustParseAddr("127.0.2.1"), Port: uint16(port), PeerAS: 65002, LocalAS: 64512,
		LocalAddress: netip.MustParseAddr("127.0.0.1"), Passive: true, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true}))
	must(t, d.AddPeer(ctx, router.PeerConfig{Address: netip.MustParseAddr("127.0.0.1"), Port: uint16(port), PeerAS: 64512, LocalAS: 65002,
		LocalAddress: netip.MustParseAddr("127.0.2.1"), HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true}))

	addrA, addrB, addrC := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.1.1")
	ca.wait(t, "B established at A (dynamic, TCP MD5 on the prefix)", func() bool { return ca.state[addrB] == api.BGPEstablished })
	cb.wait(t, "A established at B", func() bool { return cb.state[addrA] == api.BGPEstablished })
	cd.wait(t, "A established at D", func() bool { return cd.state[addrA] == api.BGPEstablished })

	// Routes both ways: B's reach A (and are A's to install), A's own
	// reach B with A's address as next hop.
	fromB, fromA := netip.MustParsePrefix("10.65.2.0/26"), netip.MustParsePrefix("10.65.1.0/26")
	must(t, b.Announce(ctx, []router.LocalRoute{{Prefix: fromB}}))
	must(t, a.Announce(ctx, []router.LocalRoute{{Prefix: fromA}}))
	ca.wait(t, "B's route at A", func() bool {
		ps := ca.best[fromB]
		return len(ps) == 1 && ps[0].NextHop == addrB && ps[0].Peer == addrB && !ps[0].Local
	})
	cb.wait(t, "A's route at B", func() bool {
		ps := cb.best[fromA]
		return len(ps) == 1 && ps[0].NextHop == addrA && ps[0].Peer == addrA
	})
	cd.wait(t, "A's route at D", func() bool { return len(cd.best[fromA]) == 1 })
	// No transit: B's route does not go on to D.
	if len(cd.best[fromB]) != 0 {
		t.Errorf("D learned B's route through A")
	}

	want := []string{"127.0.0.2 Established dynamic", "127.0.2.1 Established configured"}
	if got := peerList(t, a); !slices.Equal(got, want) {
		t.Errorf("A's peers = %v, want %v", got, want)
	}
	ps, err := a.Peers(ctx)
	must(t, err)
	for _, p := range ps {
		if p.Address == addrB && (p.PeerAS != 64512 || p.PrefixesReceived != 1 || p.PrefixesAdvertised != 1) {
			t.Errorf("A's status of B = %+v, want AS 64512 and one prefix each way", p)
		}
	}

	// C, outside the range, connects and is turned away.
	must(t, c.AddPeer(ctx, activePeer("127.0.1.1", "127.0.0.1", port, "")))
	cc.wait(t, "C's connection accepted and closed", func() bool {
		h := cc.hist[addrA]
		i := slices.Index(h, api.BGPOpenSent)
		return i >= 0 && len(h) > i+1
	})
	cc.mu.Lock()
	if slices.Contains(cc.hist[addrA], api.BGPEstablished) {
		t.Errorf("C, outside the range, got a session: %v", cc.hist[addrA])
	}
	cc.mu.Unlock()
	if got := peerList(t, a); !slices.Equal(got, want) {
		t.Errorf("after C tried, A's peers = %v, want %v", got, want)
	}
	ca.mu.Lock()
	if _, ok := ca.state[addrC]; ok {
		t.Errorf("A reported a session with C: %v", ca.hist[addrC])
	}
	ca.mu.Unlock()

	// Deleting the range ends B's session, and B's route goes; D stays.
	must(t, a.DeletePeerRange(ctx, loopbackRange(pw).Prefix))
	cb.wait(t, "B's session ended", func() bool { return cb.state[addrA] != api.BGPEstablished })
	ca.wait(t, "B's route gone at A", func() bool { return len(ca.best[fromB]) == 0 })
	if got, want := peerList(t, a), []string{"127.0.2.1 Established configured"}; !slices.Equal(got, want) {
		t.Errorf("after the range's deletion, A's peers = %v, want %v", got, want)
	}
	cd.mu.Lock()
	if h := cd.hist[addrA]; h[len(h)-1] != api.BGPEstablished || slices.Index(h, api.BGPEstablished) != len(h)-1 {
		t.Errorf("D's session with A moved: %v", h)
	}
	cd.mu.Unlock()
	// Deleting it again is nothing to do; so is a range never added.
	must(t, a.DeletePeerRange(ctx, loopbackRange(pw).Prefix))
	must(t, a.DeletePeerRange(ctx, netip.MustParsePrefix("10.9.0.0/16")))
}

// TestPeerRangeChanges: changing a range ends the sessions it accepted,
// which come back with the new settings; a configured peer at the address
// of a dynamic neighbour replaces it; Stop and Start leave no peer group
// behind, so the range can be added again.
func TestPeerRangeChanges(t *testing.T) {
	nstest.SkipShort(t, "waits for reconnections (GoBGP's idle hold time, 5 s)")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	b, cb := startSpeaker(t, ctx, "127.0.0.2", port)
	addrA, addrB := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	must(t, a.AddPeerRange(ctx, loopbackRange("")))
	must(t, b.AddPeer(ctx, activePeer("127.0.0.2", "127.0.0.1", port, "")))
	// up waits until both ends had n sessions Established, the last one
	// still up (B can be Established a moment before A, which is still
	// waiting for B's KEEPALIVE in OpenConfirm).
	up := func(what string, n int) {
		t.Helper()
		established := func(c *collector, peer netip.Addr) func() bool {
			return func() bool {
				k := 0
				for _, s := range c.hist[peer] {
					if s == api.BGPEstablished {
						k++
					}
				}
				return k >= n && c.state[peer] == api.BGPEstablished
			}
		}
		cb.wait(t, what+" at B", established(cb, addrA))
		ca.wait(t, what+" at A", established(ca, addrB))
	}
	t.Cleanup(func() {
		if t.Failed() {
			ca.mu.Lock()
			cb.mu.Lock()
			t.Logf("A's states of B: %v\nB's states of A: %v", ca.hist[addrB], cb.hist[addrA])
			cb.mu.Unlock()
			ca.mu.Unlock()
		}
	})
	up("session up", 1)

	// A new hold time: the session restarts and negotiates it.
	r := loopbackRange("")
	r.HoldTime, r.KeepaliveTime = 6*time.Second, 2*time.Second
	must(t, a.UpdatePeerRange(ctx, r))
	up("session up again", 2)
	var hold uint64
	must(t, a.srv.ListPeer(ctx, &gobgpapi.ListPeerRequest{Address: addrB.String()}, func(p *gobgpapi.Peer) {
		hold = p.GetTimers().GetConfig().GetHoldTime()
	}))
	if hold != 6 {
		t.Errorf("B's hold time at A after the update = %d, want 6", hold)
	}

	// B configured at A explicitly: the dynamic session gives way.
	must(t, a.AddPeer(ctx, router.PeerConfig{Address: addrB, Port: uint16(port), PeerAS: 64512, LocalAS: 64512,
		LocalAddress: addrA, Passive: true, HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second, IPv4: true}))
	up("session up with the configured peer", 3)
	if got, want := peerList(t, a), []string{"127.0.0.2 Established configured"}; !slices.Equal(got, want) {
		t.Errorf("A's peers = %v, want %v", got, want)
	}
	must(t, a.DeletePeer(ctx, addrB))
	up("session up as a dynamic neighbour again", 4)

	// Stop with a range and a dynamic neighbour, start again: the range
	// can be added again (GoBGP's StopBgp keeps peer groups).
	must(t, a.Stop(ctx))
	g := router.Global{AS: 64512, RouterID: addrA, ListenPort: port, ListenAddresses: []netip.Addr{addrA}}
	must(t, a.Start(ctx, g))
	must(t, a.AddPeerRange(ctx, loopbackRange("")))
	up("session up after A's restart", 5)
}

// TestPeerRangeErrors: a range that is not a network prefix, or added
// twice, is refused, and so is one whose TCP MD5 key the kernel refuses
// (GoBGP only logs that); the failed range leaves nothing behind.
func TestPeerRangeErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := startSpeaker(t, ctx, "127.0.0.1", freePort(t))
	r := loopbackRange("")
	r.Prefix = netip.MustParsePrefix("127.0.0.1/24")
	if err := a.AddPeerRange(ctx, r); err == nil {
		t.Error("a prefix with host bits was accepted")
	}
	if err := a.AddPeerRange(ctx, loopbackRange("")); err != nil {
		t.Fatal(err)
	}
	if err := a.AddPeerRange(ctx, loopbackRange("")); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("adding a range twice: %v", err)
	}
	// TCP_MD5SIG keys are at most 80 bytes.
	long := loopbackRange(strings.Repeat("k", 81))
	long.Prefix = netip.MustParsePrefix("127.0.3.0/24")
	err := a.AddPeerRange(ctx, long)
	t.Logf("too long a key: %v", err)
	if err == nil || !strings.Contains(err.Error(), "TCP MD5") {
		t.Errorf("a key the kernel refuses: %v, want an error about TCP MD5", err)
	}
	// Nothing left: the same prefix with a good key works.
	long.Password = "ok"
	if err := a.AddPeerRange(ctx, long); err != nil {
		t.Errorf("adding the range again after a failure: %v", err)
	}
	// A speaker that does not listen cannot accept anyone.
	deaf := New(Config{})
	if err := deaf.Start(ctx, router.Global{AS: 64512, RouterID: netip.MustParseAddr("127.0.0.9"), ListenPort: -1}); err != nil {
		t.Fatal(err)
	}
	defer deaf.Stop(context.Background())
	if err := deaf.AddPeerRange(ctx, loopbackRange("")); err == nil || !strings.Contains(err.Error(), "does not listen") {
		t.Errorf("a range on a speaker that does not listen: %v", err)
	}
}

// TestDynamicNeighborHoldExpiry: with graceful restart, a dynamic
// neighbour that falls silent until its hold timer expires loses its
// routes at once (as a configured peer does, see endHoldExpired), and is
// not added back: it is no configured peer.
func TestDynamicNeighborHoldExpiry(t *testing.T) {
	nstest.SkipShort(t, "waits out a hold timer (3 s)")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	port := freePort(t)
	a, ca := startSpeaker(t, ctx, "127.0.0.1", port)
	r := loopbackRange("")
	r.HoldTime, r.KeepaliveTime = 3*time.Second, time.Second
	if err := a.AddPeerRange(ctx, r); err != nil {
		t.Fatal(err)
	}
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	conn, err := dl.DialContext(ctx, "tcp4", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)).String())
	if err != nil {
		t.Fatal(err)
	}
	p := openGRPeer(t, conn, 64512, "10.0.0.2")
	stop := make(chan struct{})
	go p.keepalives(stop)
	block := netip.MustParsePrefix("10.65.9.0/26")
	p.announce(block, "127.0.0.2")
	ca.wait(t, "route learned from the dynamic neighbour", func() bool { return len(ca.best[block]) == 1 })
	close(stop)
	ended := time.Now()
	ca.wait(t, "route withdrawn after the hold time", func() bool { return len(ca.best[block]) == 0 })
	t.Logf("route withdrawn %s after the dynamic neighbour fell silent (hold time 3 s)", time.Since(ended).Round(time.Millisecond))
	if took := time.Since(ended); took > 8*time.Second {
		t.Errorf("route withdrawn after %s, well past the 3 s hold time", took)
	}
	if got := peerList(t, a); len(got) != 0 {
		t.Errorf("after the hold-timer expiry, A's peers = %v; want none (a dynamic neighbour is not added back)", got)
	}
}
