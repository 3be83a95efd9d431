package router_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// peerStatuses reads the node's BGPStatus: peer IP → its status.
func (f *fabric) peerStatuses(node string) map[string]api.BGPPeerStatus {
	statusMu.Lock()
	defer statusMu.Unlock()
	r, err := f.client.Get(context.Background(), api.KindBGPStatus, "", node)
	if err != nil {
		return nil
	}
	out := map[string]api.BGPPeerStatus{}
	for _, p := range r.(*api.BGPStatus).Status.Peers {
		out[p.PeerIP] = p
	}
	return out
}

// waitPeer waits on a datastore watch until cond holds for the node's
// status of peer.
func (f *fabric) waitPeer(node, peer, what string, timeout time.Duration, cond func(api.BGPPeerStatus) bool) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w := f.client.Watch(ctx, api.KindBGPStatus, "", 0)
	for {
		if cond(f.peerStatuses(node)[peer]) {
			return
		}
		select {
		case _, ok := <-w:
			if !ok {
				f.t.Fatalf("%s: %s: watch ended", node, what)
			}
		case <-ctx.Done():
			f.t.Fatalf("%s: timed out waiting until %s; peer %s: %+v", node, what, peer, f.peerStatuses(node)[peer])
		}
	}
}

// TestBFDLinkFailure: two nodes' routers (each with its speaker in a
// child process, as `bgpfabric node` runs it) with a 90 s hold time and
// BFD at 300 ms × 3. When n2's link goes down on the bridge side (n1's
// own link stays up, so the kernel keeps n1's route through it), n1
// withdraws the route learned from n2 after BFD's detection time, not
// the hold time: graceful restart is on, but our BFD's C bit is clear, so
// BFD Down ends the session and its routes at once (RFC 5882 §4.3). When
// the link comes back, BFD comes Up, the session is re-established and
// the route returns.
func TestBFDLinkFailure(t *testing.T) {
	f := newFabric(t)
	cfg := &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}}
	cfg.Spec.HoldTime = "90s"
	cfg.Spec.BFD = &api.BFD{Enabled: ptrTo(true), MinTx: "300ms", MinRx: "300ms", Multiplier: ptrTo(3)}
	f.apply(cfg)
	n1, n2 := f.addNode("n1", "10.0.0.1/24"), f.addNode("n2", "10.0.0.2/24")
	block := netip.MustParsePrefix("10.65.2.0/26")
	addBlackhole(t, n2.ns, block.String())
	f.start(n1, "BF_SPEAKER_PROC=1")
	f.start(n2, "BF_SPEAKER_PROC=1")
	via := fmt.Sprintf("via %s proto %d", n2.addr.Addr(), router.ProtoRouter)
	waitRoute(t, n1.ns, block, via, 60*time.Second)
	f.waitPeer("n1", "10.0.0.2", "BFD Up", 30*time.Second, func(p api.BGPPeerStatus) bool {
		return p.BFD == "Up" && p.State == api.BGPEstablished
	})

	port, err := f.bridge.Netlink.LinkByName("vn2")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.bridge.Netlink.LinkSetDown(port); err != nil {
		t.Fatal(err)
	}
	// Far below the 90 s hold time (and the 360 s stale-routes time of
	// graceful restart); the detection time is 0.9 s.
	took := waitRoute(t, n1.ns, block, "", 20*time.Second)
	t.Logf("route withdrawn %v after the link went down (BFD detection time 900ms, hold time 90s)", took)
	f.waitPeer("n1", "10.0.0.2", "BFD Down in the status", 30*time.Second, func(p api.BGPPeerStatus) bool {
		return p.BFD == "Down" && p.State != api.BGPEstablished
	})
	if st := f.peerStatuses("n1")["10.0.0.2"]; st.LastError == "" {
		t.Errorf("status of n2 on n1 gives no reason: %+v", st)
	}

	if err := f.bridge.Netlink.LinkSetUp(port); err != nil {
		t.Fatal(err)
	}
	back := waitRoute(t, n1.ns, block, via, 60*time.Second)
	t.Logf("route back %v after the link came up", back)
	f.waitPeer("n1", "10.0.0.2", "BFD Up again", 30*time.Second, func(p api.BGPPeerStatus) bool {
		return p.BFD == "Up" && p.State == api.BGPEstablished
	})
}
