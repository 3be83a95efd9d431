package reflector

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/bmp"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestBMPDumpGenericFamilies: the dump on a collector's connect carries
// the routes of every family from the RIB, EVPN, VPN and flowspec as
// MP_REACH_NLRI UPDATEs with their NLRI as received (labels, ESI) and
// next hop, then one End-of-RIB per family each session carries; with
// LocRIB, the best paths of every family too, with an End-of-RIB per
// family. A's import policy rejects its EVPN type 5 route and adds a
// route target to its VPN route: A's pre-policy dump has both as A sent
// them (from the Adj-RIB-In), the Loc-RIB neither the type 5 route nor
// the VPN route unchanged.
func TestBMPDumpGenericFamilies(t *testing.T) {
	ln := listenCollector(t)
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	fams, err := ParseFamilies([]string{"ipv4-unicast", "l2vpn-evpn", "ipv4-vpn", "ipv4-flowspec"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Neighbors[0].Families, cfg.Neighbors[1].Families = fams, fams
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	cfg.BMP = BMPConfig{Collectors: []BMPCollector{{Address: ln.Addr().String()}}, LocRIB: true}
	cfg.Policy = PolicyConfig{
		Filters: []*api.BGPFilter{filter("in", api.BGPFilterSpec{
			ImportEVPN:  []api.BGPFilterRule{{EVPNRouteTypes: []int{5}, Action: api.FilterReject}},
			ImportVPNv4: []api.BGPFilterRule{{Action: api.FilterAccept, AddRouteTargets: []string{"65000:9"}}},
		})},
		Neighbors: map[netip.Addr][]string{netip.MustParseAddr("127.0.0.2"): {"in"}},
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := r.env.rib.mon.collectors[0]
	c.retryMin, c.retryMax = 10*time.Millisecond, 50*time.Millisecond
	addr := startPrepared(t, r)
	first := acceptOne(t, ln) // connected at start, before any route
	ctx := context.Background()
	var sp [2]*rawSpeaker
	for i := range sp {
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.0.%d", i+2), speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90, fams: evpnVPNFams})
		if err != nil {
			t.Fatal(err)
		}
		defer s.conn.Close()
		go io.Copy(io.Discard, s.conn)
		sp[i] = s
	}
	t2 := bgp.NewEVPNMacIPAdvertisementRoute(rd(1), esi1, 0, "aa:bb:cc:00:00:01", "10.0.0.1", []uint32{100, 5000})
	t5 := bgp.NewEVPNIPPrefixRoute(rd(1), bgp.EthernetSegmentIdentifier{}, 0, 24, "10.1.0.0", "0.0.0.0", 5000)
	vpn := func(label uint32) bgp.AddrPrefixInterface {
		return bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", *bgp.NewMPLSLabelStack(label), rd(1))
	}
	fs := fsDst("10.4.0.0/24")
	sp[0].send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{t2, t5}, rtAttr(1)),
		mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{vpn(300)}, rtAttr(2)),
		bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
			bgp.NewPathAttributeLocalPref(100), bgp.NewPathAttributeMpReachNLRI("0.0.0.0", []bgp.AddrPrefixInterface{fs})}, nil),
		ipv4Update("192.0.2.2", pfx("10.9.0.0/24")))
	// b's VPN path has another label; a's is the best (lower router ID).
	sp[1].send(t, mpUpdate("192.0.2.3", []bgp.AddrPrefixInterface{vpn(301)}, rtAttr(2)))
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	waitFor(t, wctx, "the routes in the RIB", func() bool {
		s, ok := r.RIBStats(wctx)
		return ok && s.FamilyPrefixes["l2vpn-evpn"] == 1 && s.FamilyPrefixes["ipv4-vpn"] == 1 &&
			s.FamilyPrefixes["ipv4-flowspec"] == 1 && s.Paths == 5 && neighborStatus(t, r, "127.0.0.2").PrefixesReceived == 5
	})

	first.Close() // the reconnection's dump carries the routes
	stream := bmpStream(acceptOne(t, ln))
	got := map[string][]string{} // peer ("loc-rib" for the Loc-RIB) → "family nlri-hex next-hop route-targets"
	eors := map[string][]string{}
	done := func() bool {
		return len(eors["127.0.0.2"]) == 4 && len(eors["127.0.0.3"]) == 4 && len(eors["loc-rib"]) == int(numFamilies)
	}
	timeout := time.After(30 * time.Second)
	for !done() {
		var m *bmp.BMPMessage
		select {
		case m = <-stream:
			if m == nil {
				t.Fatalf("collector stream ended; End-of-RIBs %v", eors)
			}
		case <-timeout:
			t.Fatalf("timed out waiting for the dump's End-of-RIBs; have %v", eors)
		}
		rm, ok := m.Body.(*bmp.BMPRouteMonitoring)
		if !ok {
			continue
		}
		peer := m.PeerHeader.PeerAddress.String()
		if m.PeerHeader.PeerType == bmpPeerLocRIB {
			peer = "loc-rib"
		}
		u := rm.BGPUpdate.Body.(*bgp.BGPUpdate)
		if eor, rf := u.IsEndOfRib(); eor {
			eors[peer] = append(eors[peer], rf.String())
			continue
		}
		for _, n := range u.NLRI {
			got[peer] = append(got[peer], fmt.Sprintf("ipv4-unicast %s", n))
		}
		rts := "-"
		for _, a := range u.PathAttributes {
			if ec, ok := a.(*bgp.PathAttributeExtendedCommunities); ok {
				rts = ""
				for _, c := range ec.Value {
					rts += c.String() + ","
				}
			}
		}
		for _, a := range u.PathAttributes {
			if mp, ok := a.(*bgp.PathAttributeMpReachNLRI); ok {
				for _, n := range mp.Value {
					b, _ := n.Serialize()
					got[peer] = append(got[peer], fmt.Sprintf("%s %s %s %s", bgp.AfiSafiToRouteFamily(mp.AFI, mp.SAFI), hex.EncodeToString(b), mp.Nexthop, rts))
				}
			}
		}
	}
	h := func(p bgp.AddrPrefixInterface) string { return hex.EncodeToString(nlriBytes(t, p)) }
	rt1, rt2 := rt(1).String()+",", rt(2).String()+","
	evpnT2 := "l2vpn-evpn " + h(t2) + " 192.0.2.2 " + rt1
	evpnT5 := "l2vpn-evpn " + h(t5) + " 192.0.2.2 " + rt1
	vpnA := "l3vpn-ipv4-unicast " + h(vpn(300)) + " 192.0.2.2 " + rt2
	vpnAChanged := "l3vpn-ipv4-unicast " + h(vpn(300)) + " 192.0.2.2 " + rt2 + rt(9).String() + ","
	vpnB := "l3vpn-ipv4-unicast " + h(vpn(301)) + " 192.0.2.3 " + rt2
	flow := "ipv4-flowspec " + h(fs) + " <nil> -"
	want := map[string][]string{
		"127.0.0.2": {evpnT2, evpnT5, flow, "ipv4-unicast 10.9.0.0/24", vpnA},
		"127.0.0.3": {vpnB},
		"loc-rib":   {evpnT2, flow, "ipv4-unicast 10.9.0.0/24", vpnAChanged},
	}
	for _, v := range got {
		slices.Sort(v)
	}
	for _, v := range want {
		slices.Sort(v)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("dumped routes (-want +got):\n%s", d)
	}
	wantEoR := []string{"ipv4-unicast", "l2vpn-evpn", "l3vpn-ipv4-unicast", "ipv4-flowspec"}
	for _, p := range []string{"127.0.0.2", "127.0.0.3"} {
		if d := cmp.Diff(wantEoR, eors[p]); d != "" {
			t.Errorf("End-of-RIBs of %s (-want +got):\n%s", p, d)
		}
	}
}
