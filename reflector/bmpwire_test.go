package reflector

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/packet/bmp"
	"github.com/osrg/gobgp/v3/pkg/packet/mrt"
)

// splitBMP parses a run of BMP messages with GoBGP's parser.
func splitBMP(t *testing.T, b []byte) []*bmp.BMPMessage {
	t.Helper()
	var out []*bmp.BMPMessage
	for len(b) > 0 {
		adv, tok, err := bmp.SplitBMP(b, true)
		if err != nil || adv == 0 {
			t.Fatalf("splitting BMP: %v (%d bytes left)", err, len(b))
		}
		m, err := bmp.ParseBMPMessage(tok)
		if err != nil {
			t.Fatalf("GoBGP cannot parse our BMP message: %v", err)
		}
		out = append(out, m)
		b = b[adv:]
	}
	return out
}

func mustSerialize(t *testing.T, m *bgp.BGPMessage) []byte {
	t.Helper()
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBMPEncodersRoundTrip(t *testing.T) {
	ts := time.Unix(1700000000, 123456000)
	p4 := bmpPeer{addr: netip.MustParseAddr("192.0.2.7"), asn: 4200000001, routerID: 0x0a000007}
	p6 := bmpPeer{addr: netip.MustParseAddr("2001:db8::7"), asn: 65001, routerID: 0x0a000008}
	sent := speakerOpen(speakerOpts{asn: 65000, id: "10.255.0.1", hold: 90})
	recv := speakerOpen(speakerOpts{asn: 65001, id: "10.0.0.7", hold: 30})
	upd := mustSerialize(t, ipv4Update("192.0.2.1", pfx("10.1.0.0/24", "10.2.0.0/16")))
	notif := encodeNotification(newNotify(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_RESET, ""))

	var b []byte
	b = appendInitiation(b, "rr1", "bgpfabric route reflector")
	b = appendPeerUp(b, p4, ts, netip.MustParseAddr("192.0.2.1"), 179, 40000, sent, recv)
	b = appendRouteMonitoring(b, p4, ts, upd[headerLen:])
	b = appendStatsReport(b, p6, ts, []bmpStat{{typ: bmpStatRejected, value: 3}, {typ: bmpStatAdjRIBIn, value: 1 << 40}, {typ: bmpStatAdjRIBInAF, fam: famV6, value: 9}})
	b = appendPeerDown(b, p4, ts, bmpDownLocalNotify, notif)
	b = appendPeerDown(b, p6, ts, bmpDownRemoteNoData, nil)
	b = appendTermination(b)
	if n := countBMP(b); n != 7 {
		t.Fatalf("countBMP = %d, want 7", n)
	}
	msgs := splitBMP(t, b)
	if len(msgs) != 7 {
		t.Fatalf("parsed %d messages, want 7", len(msgs))
	}

	init := msgs[0].Body.(*bmp.BMPInitiation)
	var names []string
	for _, tlv := range init.Info {
		s := tlv.(*bmp.BMPInfoTLVString)
		names = append(names, s.Value)
	}
	if d := cmp.Diff([]string{"bgpfabric route reflector", "rr1"}, names); d != "" {
		t.Errorf("initiation TLVs (-want +got):\n%s", d)
	}

	up := msgs[1]
	if up.PeerHeader.PeerAddress.String() != "192.0.2.7" || up.PeerHeader.PeerAS != 4200000001 ||
		up.PeerHeader.PeerBGPID.String() != "10.0.0.7" || up.PeerHeader.Timestamp != 1700000000.123456 {
		t.Errorf("peer header = %+v", up.PeerHeader)
	}
	ub := up.Body.(*bmp.BMPPeerUpNotification)
	if ub.LocalAddress.String() != "192.0.2.1" || ub.LocalPort != 179 || ub.RemotePort != 40000 {
		t.Errorf("peer up = %+v", ub)
	}
	if o := ub.ReceivedOpenMsg.Body.(*bgp.BGPOpen); o.ID.String() != "10.0.0.7" || o.HoldTime != 30 {
		t.Errorf("received OPEN = %+v", o)
	}
	if o := ub.SentOpenMsg.Body.(*bgp.BGPOpen); o.ID.String() != "10.255.0.1" {
		t.Errorf("sent OPEN = %+v", o)
	}

	rm := msgs[2].Body.(*bmp.BMPRouteMonitoring)
	u := rm.BGPUpdate.Body.(*bgp.BGPUpdate)
	var got []string
	for _, n := range u.NLRI {
		got = append(got, n.String())
	}
	if d := cmp.Diff([]string{"10.1.0.0/24", "10.2.0.0/16"}, got); d != "" {
		t.Errorf("route monitoring NLRI (-want +got):\n%s", d)
	}
	if msgs[2].PeerHeader.IsPostPolicy() {
		t.Error("route monitoring says post-policy; want pre-policy")
	}

	st := msgs[3]
	if st.PeerHeader.PeerAddress.String() != "2001:db8::7" || st.PeerHeader.Flags&bmp.BMP_PEER_FLAG_IPV6 == 0 {
		t.Errorf("IPv6 peer header = %+v", st.PeerHeader)
	}
	sb := st.Body.(*bmp.BMPStatisticsReport)
	if sb.Count != 3 || sb.Stats[0].(*bmp.BMPStatsTLV32).Value != 3 || sb.Stats[1].(*bmp.BMPStatsTLV64).Value != 1<<40 {
		t.Errorf("stats = %+v", sb)
	}
	if af := sb.Stats[2].(*bmp.BMPStatsTLVPerAfiSafi64); af.AFI != bgp.AFI_IP6 || af.SAFI != bgp.SAFI_UNICAST || af.Value != 9 {
		t.Errorf("per-AFI stat = %+v", af)
	}

	down := msgs[4].Body.(*bmp.BMPPeerDownNotification)
	n, ok := down.BGPNotification.Body.(*bgp.BGPNotification)
	if down.Reason != bmpDownLocalNotify || !ok || n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_ADMINISTRATIVE_RESET {
		t.Errorf("peer down = %+v", down)
	}
	if d := msgs[5].Body.(*bmp.BMPPeerDownNotification); d.Reason != bmpDownRemoteNoData {
		t.Errorf("peer down reason = %d, want %d", d.Reason, bmpDownRemoteNoData)
	}
	if msgs[6].Header.Type != bmp.BMP_MSG_TERMINATION {
		t.Errorf("last message type %d, want termination", msgs[6].Header.Type)
	}
}

// splitMRT parses a run of MRT records with GoBGP's parser.
func splitMRT(t *testing.T, b []byte) []*mrt.MRTMessage {
	t.Helper()
	var out []*mrt.MRTMessage
	for len(b) > 0 {
		var h mrt.MRTHeader
		if err := h.DecodeFromBytes(b); err != nil {
			t.Fatal(err)
		}
		m, err := mrt.ParseMRTBody(&h, b[mrt.MRT_COMMON_HEADER_LEN:])
		if err != nil {
			t.Fatalf("GoBGP cannot parse our MRT record: %v", err)
		}
		out = append(out, m)
		b = b[mrt.MRT_COMMON_HEADER_LEN+int(h.Len):]
	}
	return out
}

func TestMRTEncodersRoundTrip(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	peers := []mrtPeer{
		{routerID: 0x0a000002, addr: netip.MustParseAddr("192.0.2.2"), asn: 65000},
		{routerID: 0x0a000003, addr: netip.MustParseAddr("2001:db8::3"), asn: 4200000003},
	}
	a4 := newAttrs(attrsInput{list: []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65010, 65020})}),
		bgp.NewPathAttributeLocalPref(200), bgp.NewPathAttributeCommunities([]uint32{65000<<16 | 1}),
	}, nextHop: netip.MustParseAddr("192.0.2.2")})
	a6 := newAttrs(attrsInput{list: []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(2), bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeExtendedCommunities(nil),
	}, nextHop: netip.MustParseAddr("2001:db8::3"), nextHopLL: netip.MustParseAddr("fe80::3")})

	var b []byte
	b = appendPeerIndexTable(b, ts, 0x0aff0001, "", peers)
	b = appendRIBRecord(b, ts, famV4, 0, keyOf(netip.MustParsePrefix("10.1.0.0/24")), []mrtEntry{{peer: 0, originated: 1, attrs: mrtAttrs(a4, false)}, {peer: 1, originated: 2, attrs: mrtAttrs(a4, false)}})
	b = appendRIBRecord(b, ts, famV6, 1, keyOf(netip.MustParsePrefix("2001:db8:1::/48")), []mrtEntry{{peer: 1, originated: 3, attrs: mrtAttrs(a6, false)}})
	upd := mustSerialize(t, ipv4Update("192.0.2.1", pfx("10.9.0.0/24")))
	b = appendBGP4MPMessage(b, ts, 65001, 65000, netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("192.0.2.1"), upd[headerLen:])
	if countMRT(b) != 4 {
		t.Fatalf("countMRT = %d, want 4", countMRT(b))
	}
	recs := splitMRT(t, b)

	pit := recs[0].Body.(*mrt.PeerIndexTable)
	if pit.CollectorBgpId.String() != "10.255.0.1" || len(pit.Peers) != 2 ||
		pit.Peers[0].IpAddress.String() != "192.0.2.2" || pit.Peers[0].BgpId.String() != "10.0.0.2" ||
		pit.Peers[1].IpAddress.String() != "2001:db8::3" || pit.Peers[1].AS != 4200000003 {
		t.Errorf("peer index table = %v", pit)
	}

	r4 := recs[1].Body.(*mrt.Rib)
	if recs[1].Header.SubType != mrtRIBIPv4Unicast || r4.Prefix.String() != "10.1.0.0/24" || len(r4.Entries) != 2 {
		t.Fatalf("IPv4 RIB record = %v", r4)
	}
	var nh, asPath string
	var lp uint32
	for _, pa := range r4.Entries[1].PathAttributes {
		switch v := pa.(type) {
		case *bgp.PathAttributeNextHop:
			nh = v.Value.String()
		case *bgp.PathAttributeLocalPref:
			lp = v.Value
		case *bgp.PathAttributeAsPath:
			asPath = fmt.Sprint(v.Value[0].(*bgp.As4PathParam).AS)
		}
	}
	if nh != "192.0.2.2" || lp != 200 || asPath != "[65010 65020]" || r4.Entries[1].PeerIndex != 1 || r4.Entries[1].OriginatedTime != 2 {
		t.Errorf("IPv4 entry: next hop %q, local pref %d, AS path %q, %+v", nh, lp, asPath, r4.Entries[1])
	}

	r6 := recs[2].Body.(*mrt.Rib)
	if recs[2].Header.SubType != mrtRIBIPv6Unicast || r6.Prefix.String() != "2001:db8:1::/48" || len(r6.Entries) != 1 {
		t.Fatalf("IPv6 RIB record = %v", r6)
	}
	var mp *bgp.PathAttributeMpReachNLRI
	for _, pa := range r6.Entries[0].PathAttributes {
		if v, ok := pa.(*bgp.PathAttributeMpReachNLRI); ok {
			mp = v
		}
	}
	if mp == nil || mp.Nexthop.String() != "2001:db8::3" || mp.LinkLocalNexthop.String() != "fe80::3" {
		t.Errorf("IPv6 entry MP_REACH_NLRI = %v", mp)
	}

	m := recs[3].Body.(*mrt.BGP4MPMessage)
	if recs[3].Header.SubType != mrtBGP4MPMessageAS4 || m.PeerAS != 65001 || m.LocalAS != 65000 ||
		m.PeerIpAddress.String() != "192.0.2.9" || m.LocalIpAddress.String() != "192.0.2.1" {
		t.Errorf("BGP4MP header = %+v", m.BGP4MPHeader)
	}
	if u := m.BGPMessage.Body.(*bgp.BGPUpdate); len(u.NLRI) != 1 || u.NLRI[0].String() != "10.9.0.0/24" {
		t.Errorf("BGP4MP UPDATE = %v", u)
	}
}
