package router_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// TestFilterChangeOnTheWire: a node (its speaker in a child process, as
// `bgpfabric node` runs it: the received paths cross the socketpair) has
// an eBGP ToR (BIRD) that sends 10.201.0.0/24 and 10.202.0.0/24. Its
// BGPFilter accepts the first only: the first is in the kernel, the
// second is not, and the node's BGP table (`bgpfabric routes`) lists the
// accepted one only.
// Changing the filter to accept the second only swaps them in the kernel
// without resetting the session (BIRD's session does not restart).
// Deleting the filter leaves RFC 8212's reject: both leave the kernel.
func TestFilterChangeOnTheWire(t *testing.T) {
	f := newFabric(t)
	cfg := fastTimers()
	off := false
	cfg.Spec.NodeToNodeMeshEnabled = &off
	filter := func(cidr string) *api.BGPFilter {
		return &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "tor-in"}, Spec: api.BGPFilterSpec{
			ImportV4: []api.BGPFilterRule{{CIDR: cidr, MatchOperator: api.MatchEqual, Action: api.FilterAccept}},
		}}
	}
	f.apply(cfg, filter("10.201.0.0/24"),
		&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{Node: "n1", PeerIP: "10.99.0.101", ASNumber: ptrTo(uint32(65101)), Filters: []string{"tor-in"}}})
	n1 := f.addNode("n1", "10.99.0.1/24")
	f.apply(&api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{
		IPv4Address: n1.addr.String(), ASNumber: ptrTo(uint32(65001))}}})
	birdNS := f.addHost("bird", "10.99.0.101/24")
	birdConf := filepath.Join(f.dir, "bird.conf")
	birdSock := filepath.Join(f.dir, "bird.ctl")
	writeFile(t, birdConf, `router id 10.99.0.101;
protocol device {}
protocol static { ipv4; route 10.201.0.0/24 blackhole; route 10.202.0.0/24 blackhole; }
protocol bgp n1 {
	local 10.99.0.101 as 65101;
	neighbor 10.99.0.1 as 65001;
	hold time 9;
	keepalive time 3;
	connect retry time 1;
	ipv4 { import all; export all; };
}
`)
	startDaemon(t, f, birdNS, "bird", "bird", "-f", "-c", birdConf, "-s", birdSock, "-P", filepath.Join(f.dir, "bird.pid"))
	f.start(n1, "BF_SPEAKER_PROC=1")

	via := fmt.Sprintf("via 10.99.0.101 proto %d", router.ProtoRouter)
	first, second := netip.MustParsePrefix("10.201.0.0/24"), netip.MustParsePrefix("10.202.0.0/24")
	waitRoute(t, n1.ns, first, via, 60*time.Second)
	waitRoute(t, n1.ns, second, "", 5*time.Second)
	f.checkTable(n1, first)
	since := f.peerSince("n1", "10.99.0.101")

	f.apply(filter("10.202.0.0/24"))
	waitRoute(t, n1.ns, second, via, 30*time.Second)
	waitRoute(t, n1.ns, first, "", 30*time.Second)
	f.checkTable(n1, second)
	if got := f.peerSince("n1", "10.99.0.101"); got != since {
		t.Errorf("the session restarted on a filter change: established since %q, then %q", since, got)
	}

	if err := f.client.Delete(context.Background(), api.KindBGPFilter, "", "tor-in", ""); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, n1.ns, second, "", 30*time.Second)
	f.checkTable(n1)
}

// checkTable checks that the node's BGP table (its control socket's
// report) has paths for want and no other prefix.
func (f *fabric) checkTable(n *fabricNode, want ...netip.Prefix) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rep, err := router.FetchRoutes(ctx, router.ControlSocketPath(f.dir, n.name))
	if err != nil {
		f.t.Fatal(err)
	}
	var got []netip.Prefix
	for _, d := range rep.BGP {
		got = append(got, d.Prefix)
	}
	if !slices.Equal(got, want) {
		f.t.Errorf("%s: BGP table has %v, want %v", n.name, got, want)
	}
}

// peerSince is when the node's session with peer entered its state.
func (f *fabric) peerSince(node, peer string) string {
	if st := f.peerStatus(node, peer); st != nil {
		return st.Since
	}
	return ""
}

func (f *fabric) peerStatus(node, peer string) *api.BGPPeerStatus {
	statusMu.Lock()
	defer statusMu.Unlock()
	r, err := f.client.Get(context.Background(), api.KindBGPStatus, "", node)
	if err != nil {
		return nil
	}
	for _, p := range r.(*api.BGPStatus).Status.Peers {
		if p.PeerIP == peer {
			return &p
		}
	}
	return nil
}
