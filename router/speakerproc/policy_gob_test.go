package speakerproc

import (
	"bytes"
	"encoding/gob"
	"net/netip"
	"reflect"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/routepolicy"
	"github.com/bgpfabric/bgpfabric/router"
)

// TestPolicyCrossesTheSocket: a peer's route policy reaches the child
// whole (gob drops nothing: operators, lengths, set actions, defaults).
func TestPolicyCrossesTheSocket(t *testing.T) {
	lp, med := uint32(50), uint32(7)
	f, err := routepolicy.Compile(&api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{{CIDR: "0.0.0.0/0", MatchOperator: api.MatchEqual, Action: api.FilterAccept, LocalPref: &lp, MED: &med}},
		ExportV6: []api.BGPFilterRule{{CIDR: "fd00::/8", MatchOperator: api.MatchNotIn, Communities: []string{"65000:1:2"}, Action: api.FilterReject}},
		ExportV4: []api.BGPFilterRule{{Action: api.FilterAccept, AddCommunities: []string{"65000:1"},
			PrependASPath: &api.BGPFilterASPathPrepend{ASNumber: 64512, Repeat: 3}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	pc := router.PeerConfig{Address: netip.MustParseAddr("10.0.0.1"), Policy: routepolicy.Policy{
		Import: routepolicy.Chain{Filters: []*routepolicy.Filter{f}, Reject: true},
		Export: routepolicy.Chain{Filters: []*routepolicy.Filter{f}},
	}}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(request{ID: 1, Op: opAddPeer, Peer: &pc}); err != nil {
		t.Fatal(err)
	}
	var got request
	if err := gob.NewDecoder(&buf).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Peer.Policy, pc.Policy) {
		t.Errorf("policy after gob:\n%+v\nwant\n%+v", got.Peer.Policy, pc.Policy)
	}
}

// TestAdvertisementFieldsCrossTheSocket: the next-hop mode, local AS and
// a drained route's graceful-shutdown marking reach the child.
func TestAdvertisementFieldsCrossTheSocket(t *testing.T) {
	pc := router.PeerConfig{Address: netip.MustParseAddr("10.0.0.1"), LocalAS: 65111, NextHopSelf: true}
	rc := router.PeerRangeConfig{Prefix: netip.MustParsePrefix("10.0.0.0/24"), LocalAS: 65111, NextHopSelf: true}
	routes := []router.LocalRoute{{Prefix: netip.MustParsePrefix("10.65.1.0/26"), GracefulShutdown: true,
		Communities: []api.Community{api.GracefulShutdownCommunity, {Large: true, Global: 65000, Local1: 1, Local2: 1}}}}
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	for _, r := range []request{{ID: 1, Op: opAddPeer, Peer: &pc}, {ID: 2, Op: opAddPeerRange, Range: &rc}, {ID: 3, Op: opAnnounce, Routes: routes}} {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	dec := gob.NewDecoder(&buf)
	var got [3]request
	for i := range got {
		if err := dec.Decode(&got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(*got[0].Peer, pc) || !reflect.DeepEqual(*got[1].Range, rc) || !reflect.DeepEqual(got[2].Routes, routes) {
		t.Errorf("after gob: %+v %+v %+v", *got[0].Peer, *got[1].Range, got[2].Routes)
	}
}
