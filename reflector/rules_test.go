package reflector

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

func TestComparePaths(t *testing.T) {
	peerA := &ribPeer{addr: netip.MustParseAddr("10.0.0.1"), routerID: 1}
	peerB := &ribPeer{addr: netip.MustParseAddr("10.0.0.2"), routerID: 2}
	ebgp := &ribPeer{addr: netip.MustParseAddr("10.0.0.3"), routerID: 3, ebgp: true}
	base := attrs{localPref: 100, asPathLen: 2, firstAS: 65001}
	with := func(f func(*attrs)) *attrs { a := base; f(&a); return &a }
	tests := []struct {
		name string
		x, y path
		want int // -1: x wins
	}{
		{"higher local pref", path{src: peerB, a: with(func(a *attrs) { a.localPref = 200 })}, path{src: peerA, a: &base}, -1},
		{"shorter as path", path{src: peerB, a: with(func(a *attrs) { a.asPathLen = 1 })}, path{src: peerA, a: &base}, -1},
		{"lower origin", path{src: peerA, a: with(func(a *attrs) { a.origin = 1 })}, path{src: peerB, a: &base}, 1},
		{"lower med same AS", path{src: peerB, a: with(func(a *attrs) { a.med = 5 })}, path{src: peerA, a: with(func(a *attrs) { a.med = 10 })}, -1},
		{"med ignored across AS", path{src: peerB, a: with(func(a *attrs) { a.med = 5; a.firstAS = 65002 })}, path{src: peerA, a: with(func(a *attrs) { a.med = 10 })}, 1},
		{"ebgp over ibgp", path{src: ebgp, a: &base}, path{src: peerA, a: &base}, -1},
		{"originator id instead of router id", path{src: peerA, a: with(func(a *attrs) { a.hasOriginator, a.originatorID = true, 9 })}, path{src: peerB, a: &base}, 1},
		{"shorter cluster list", path{src: peerB, a: with(func(a *attrs) { a.hasOriginator, a.originatorID = true, 1 })},
			path{src: peerA, a: with(func(a *attrs) { a.clusterList = []uint32{1} })}, -1},
		{"lowest neighbour address", path{src: peerA, a: with(func(a *attrs) { a.hasOriginator, a.originatorID = true, 7 })},
			path{src: peerB, a: with(func(a *attrs) { a.hasOriginator, a.originatorID = true, 7 })}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := comparePaths(&tc.x, &tc.y); got != tc.want {
				t.Errorf("comparePaths = %d, want %d", got, tc.want)
			}
			if got := comparePaths(&tc.y, &tc.x); got != -tc.want {
				t.Errorf("reversed comparePaths = %d, want %d", got, -tc.want)
			}
		})
	}
}

func TestExportable(t *testing.T) {
	client := &ribPeer{client: true}
	nonClient := &ribPeer{}
	ebgp := &ribPeer{ebgp: true}
	got := map[string]bool{}
	for sn, src := range map[string]*ribPeer{"client": client, "non-client": nonClient, "ebgp": ebgp} {
		for _, to := range []roleClass{roleClient, roleNonClient, roleEBGP} {
			got[sn+"->"+to.String()] = exportable(src, to)
		}
	}
	want := map[string]bool{
		"client->client": true, "client->non-client": true, "client->ebgp": true,
		"non-client->client": true, "non-client->non-client": false, "non-client->ebgp": true,
		"ebgp->client": true, "ebgp->non-client": true, "ebgp->ebgp": true,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("exportable (-want +got):\n%s", d)
	}
}

// TestReflectionRules runs clients and a non-client on loopback: non-client
// routes reach clients only; looped routes are dropped.
func TestReflectionRules(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.Neighbors = append(cfg.Neighbors, NeighborConfig{Address: netip.MustParseAddr("127.0.0.4"), ASN: testASN, Passive: true})
	r, addr := startReflector(t, cfg)
	ctx := context.Background()
	var sp [3]*rawSpeaker
	for i := range sp {
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.0.%d", i+2), speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90})
		if err != nil {
			t.Fatal(err)
		}
		defer s.conn.Close()
		sp[i] = s
		collect(t, s, false, hasEORs)
	}
	client1, client2, nonClient := sp[0], sp[1], sp[2]
	// A non-client's route reaches the clients, not other non-clients.
	nonClient.send(t, ipv4Update("192.0.2.4", pfx("10.4.0.0/24")))
	collect(t, client1, false, hasKeys("10.4.0.0/24"))
	// Looped routes (our router id as ORIGINATOR_ID, our cluster id in
	// CLUSTER_LIST) are dropped; a clean route after them proves it.
	client1.send(t,
		ipv4Update("192.0.2.2", pfx("10.5.0.0/24"), bgp.NewPathAttributeOriginatorId("10.255.0.1")),
		ipv4Update("192.0.2.2", pfx("10.6.0.0/24"), bgp.NewPathAttributeClusterList([]string{"10.9.9.9", "10.255.255.1"})),
		ipv4Update("192.0.2.2", pfx("10.7.0.0/24"), bgp.NewPathAttributeOriginatorId("10.0.0.99")),
	)
	got := collect(t, client2, false, hasKeys("10.7.0.0/24"))
	want := map[string]route{
		"10.4.0.0/24": {Prefix: "10.4.0.0/24", NextHop: "192.0.2.4", OriginatorID: "10.0.0.4", ClusterList: "[10.255.255.1]", LocalPref: 100},
		"10.7.0.0/24": {Prefix: "10.7.0.0/24", NextHop: "192.0.2.2", OriginatorID: "10.0.0.99", ClusterList: "[10.255.255.1]", LocalPref: 100},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("client2 routes (-want +got):\n%s", d)
	}
	// The non-client got client1's clean route but never its own.
	got = collect(t, nonClient, false, hasKeys("10.7.0.0/24"))
	if _, ok := got["10.4.0.0/24"]; ok || len(got) != 1 {
		t.Errorf("non-client got %v, want only 10.7.0.0/24", got)
	}
	st, _ := r.RIBStats(ctx)
	if st.Prefixes[0] != 2 || st.UpdateGroups != 2 {
		t.Errorf("RIB stats %+v, want 2 IPv4 prefixes and 2 update groups", st)
	}
}
