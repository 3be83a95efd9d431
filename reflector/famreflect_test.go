package reflector

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// genRoute is a received route of any family: its NLRI as sent (labels and
// all), next hop and the attributes that reflection changes.
type genRoute struct {
	NLRI         string // hex
	NextHop      string
	OriginatorID string
	ClusterList  string
	RTs          string
	Comms        string // standard communities
}

// genCollect reads UPDATEs into view (keyed by family and route key, as
// GoBGP renders it) until until(view) holds.
func genCollect(t *testing.T, s *rawSpeaker, view map[string]genRoute, until func(map[string]genRoute) bool) map[string]genRoute {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer s.conn.SetReadDeadline(time.Time{})
	for !until(view) {
		u, err := s.nextUpdate(false)
		if err != nil {
			t.Fatalf("reading: %v (have %v)", err, view)
		}
		if eor, rf := u.IsEndOfRib(); eor {
			view["EOR "+rf.String()] = genRoute{}
			continue
		}
		var r genRoute
		var reach []bgp.AddrPrefixInterface
		var rf bgp.RouteFamily
		for _, a := range u.PathAttributes {
			switch v := a.(type) {
			case *bgp.PathAttributeOriginatorId:
				r.OriginatorID = v.Value.String()
			case *bgp.PathAttributeClusterList:
				r.ClusterList = fmt.Sprint(v.Value)
			case *bgp.PathAttributeExtendedCommunities:
				for _, c := range v.Value {
					r.RTs += c.String() + " "
				}
			case *bgp.PathAttributeCommunities:
				for _, c := range v.Value {
					r.Comms += fmt.Sprintf("%d:%d ", c>>16, c&0xffff)
				}
			case *bgp.PathAttributeMpReachNLRI:
				r.NextHop = v.Nexthop.String()
				rf = bgp.AfiSafiToRouteFamily(v.AFI, v.SAFI)
				reach = v.Value
			case *bgp.PathAttributeMpUnreachNLRI:
				for _, w := range v.Value {
					delete(view, bgp.AfiSafiToRouteFamily(v.AFI, v.SAFI).String()+" "+w.String())
				}
			}
		}
		for _, p := range reach {
			b, _ := p.Serialize()
			rr := r
			rr.NLRI = hex.EncodeToString(b)
			view[rf.String()+" "+p.String()] = rr
		}
	}
	return view
}

func genHas(keys ...string) func(map[string]genRoute) bool {
	return func(m map[string]genRoute) bool {
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				return false
			}
		}
		return true
	}
}

func genGone(key string) func(map[string]genRoute) bool {
	return func(m map[string]genRoute) bool { _, ok := m[key]; return !ok }
}

func mpUpdate(nh string, nlri []bgp.AddrPrefixInterface, extra ...bgp.PathAttributeInterface) *bgp.BGPMessage {
	attrs := append([]bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(100),
		bgp.NewPathAttributeMpReachNLRI(nh, nlri),
	}, extra...)
	return bgp.NewBGPUpdateMessage(nil, attrs, nil)
}

func mpWithdraw(nlri []bgp.AddrPrefixInterface) *bgp.BGPMessage {
	return bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeMpUnreachNLRI(nlri)}, nil)
}

func rtAttr(ns ...uint32) *bgp.PathAttributeExtendedCommunities {
	var cs []bgp.ExtendedCommunityInterface
	for _, n := range ns {
		cs = append(cs, rt(n))
	}
	return bgp.NewPathAttributeExtendedCommunities(cs)
}

var evpnVPNFams = []bgp.RouteFamily{bgp.RF_IPv4_UC, bgp.RF_EVPN, bgp.RF_IPv4_VPN, bgp.RF_FS_IPv4_UC}

// TestReflectsEVPNAndVPN: EVPN type 2 and 5, VPNv4 and flowspec routes go
// from one client to the others with their labels, ESIs and next hops as
// sent; a withdrawal (whose label differs) withdraws; a second path of a
// route replaces the first; and a client not configured for the families
// does not negotiate them and receives none of them.
func TestReflectsEVPNAndVPN(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4")
	fams, err := ParseFamilies([]string{"ipv4-unicast", "l2vpn-evpn", "ipv4-vpn", "ipv4-flowspec"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Neighbors[0].Families, cfg.Neighbors[1].Families = fams, fams
	r, addr := startReflector(t, cfg)
	ctx := context.Background()
	var sp [3]*rawSpeaker
	eors := genHas("EOR ipv4-unicast", "EOR l2vpn-evpn", "EOR l3vpn-ipv4-unicast", "EOR ipv4-flowspec")
	for i := range sp {
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.0.%d", i+2), speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90, fams: evpnVPNFams})
		if err != nil {
			t.Fatal(err)
		}
		defer s.conn.Close()
		sp[i] = s
		if i < 2 {
			genCollect(t, s, map[string]genRoute{}, eors)
		} else {
			genCollect(t, s, map[string]genRoute{}, genHas("EOR ipv4-unicast"))
		}
	}
	t2 := bgp.NewEVPNMacIPAdvertisementRoute(rd(1), esi1, 0, "aa:bb:cc:00:00:01", "10.0.0.1", []uint32{100, 5000})
	t5 := bgp.NewEVPNIPPrefixRoute(rd(1), bgp.EthernetSegmentIdentifier{}, 0, 24, "10.1.0.0", "0.0.0.0", 5000)
	vpn := bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", *bgp.NewMPLSLabelStack(300), rd(1))
	fs := fsDst("10.4.0.0/24")
	sp[0].send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{t2, t5}, rtAttr(1)),
		mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{vpn}, rtAttr(2)),
		bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil),
			bgp.NewPathAttributeLocalPref(100), bgp.NewPathAttributeMpReachNLRI("0.0.0.0", []bgp.AddrPrefixInterface{fs})}, nil))
	hexOf := func(p bgp.AddrPrefixInterface) string { return hex.EncodeToString(nlriBytes(t, p)) }
	refl := genRoute{NextHop: "192.0.2.2", OriginatorID: "10.0.0.2", ClusterList: "[10.255.255.1]"}
	want := map[string]genRoute{}
	add := func(rf bgp.RouteFamily, p bgp.AddrPrefixInterface, rts string) {
		r := refl
		r.NLRI, r.RTs = hexOf(p), rts
		want[rf.String()+" "+p.String()] = r
	}
	add(bgp.RF_EVPN, t2, rt(1).String()+" ")
	add(bgp.RF_EVPN, t5, rt(1).String()+" ")
	add(bgp.RF_IPv4_VPN, vpn, rt(2).String()+" ")
	add(bgp.RF_FS_IPv4_UC, fs, "")
	fsKey := bgp.RF_FS_IPv4_UC.String() + " " + fs.String()
	fr := want[fsKey]
	fr.NextHop = "<nil>" // flowspec: no next hop
	want[fsKey] = fr
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	got := genCollect(t, sp[1], map[string]genRoute{}, genHas(keys...))
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("reflected routes (-want +got):\n%s", d)
	}
	// Status and metrics count them by family.
	for _, n := range r.Neighbors() {
		if n.Address != "127.0.0.2" {
			continue
		}
		wantN := map[string]int64{"ipv4-unicast": 0, "l2vpn-evpn": 2, "ipv4-vpn": 1, "ipv4-flowspec": 1}
		if d := cmp.Diff(wantN, n.FamilyPrefixes); d != "" {
			t.Errorf("neighbour's family prefixes (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]string{"ipv4-unicast", "l2vpn-evpn", "ipv4-vpn", "ipv4-flowspec"}, n.Families); d != "" {
			t.Errorf("neighbour's families (-want +got):\n%s", d)
		}
	}
	if st, ok := r.RIBStats(ctx); !ok || st.FamilyPrefixes["l2vpn-evpn"] != 2 || st.FamilyPrefixes["ipv4-vpn"] != 1 || st.Prefixes != [2]int{} {
		t.Errorf("RIB stats %+v", st)
	}
	// `reflector show routes --family l2vpn-evpn` and `show summary` see
	// them: the NLRI as GoBGP renders it, labels and ESI included.
	var evpn []string
	if err := r.Routes(ctx, RouteQuery{Family: "l2vpn-evpn"}, func(ds []RouteDestination) error {
		for _, d := range ds {
			if d.Prefix.IsValid() || len(d.Paths) != 1 || d.Paths[0].Peer.String() != "127.0.0.2" {
				t.Errorf("show routes: %+v, want an NLRI with one path from 127.0.0.2", d)
			}
			evpn = append(evpn, d.NLRI)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(evpn)
	if wantE := []string{t2.String(), t5.String()}; !slices.Equal(evpn, slices.Sorted(slices.Values(wantE))) {
		t.Errorf("show routes --family l2vpn-evpn: %q, want %q", evpn, wantE)
	}
	sum, err := r.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gotF := map[string]int{}
	for _, fc := range sum.Families {
		gotF[fc.Family] = fc.Prefixes
	}
	if d := cmp.Diff(map[string]int{"ipv4-unicast": 0, "ipv6-unicast": 0, "l2vpn-evpn": 2, "ipv4-vpn": 1, "ipv4-flowspec": 1}, gotF); d != "" {
		t.Errorf("show summary's families (-want +got):\n%s", d)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r.Collector())
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP bgpfabric_reflector_peer_family_prefixes_received The neighbour's paths in the RIB by address family.
# TYPE bgpfabric_reflector_peer_family_prefixes_received gauge
bgpfabric_reflector_peer_family_prefixes_received{family="ipv4-flowspec",peer="127.0.0.2"} 1
bgpfabric_reflector_peer_family_prefixes_received{family="ipv4-flowspec",peer="127.0.0.3"} 0
bgpfabric_reflector_peer_family_prefixes_received{family="ipv4-unicast",peer="127.0.0.2"} 0
bgpfabric_reflector_peer_family_prefixes_received{family="ipv4-unicast",peer="127.0.0.3"} 0
bgpfabric_reflector_peer_family_prefixes_received{family="ipv4-unicast",peer="127.0.0.4"} 0
bgpfabric_reflector_peer_family_prefixes_received{family="ipv4-vpn",peer="127.0.0.2"} 1
bgpfabric_reflector_peer_family_prefixes_received{family="ipv4-vpn",peer="127.0.0.3"} 0
bgpfabric_reflector_peer_family_prefixes_received{family="l2vpn-evpn",peer="127.0.0.2"} 2
bgpfabric_reflector_peer_family_prefixes_received{family="l2vpn-evpn",peer="127.0.0.3"} 0
`), "bgpfabric_reflector_peer_family_prefixes_received"); err != nil {
		t.Error(err)
	}

	// A new label for the VPN route replaces it; a withdrawal with
	// another label withdraws it.
	vpn2 := bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", *bgp.NewMPLSLabelStack(301), rd(1))
	sp[0].send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{vpn2}, rtAttr(2)))
	vkey := bgp.RF_IPv4_VPN.String() + " " + vpn.String()
	got = genCollect(t, sp[1], got, func(m map[string]genRoute) bool { return m[vkey].NLRI == hexOf(vpn2) })
	sp[0].send(t, mpWithdraw([]bgp.AddrPrefixInterface{bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", *bgp.NewMPLSLabelStack(0), rd(1))}))
	got = genCollect(t, sp[1], got, genGone(vkey))
	t2key := bgp.RF_EVPN.String() + " " + t2.String()
	sp[0].send(t, mpWithdraw([]bgp.AddrPrefixInterface{bgp.NewEVPNMacIPAdvertisementRoute(rd(1), bgp.EthernetSegmentIdentifier{}, 0, "aa:bb:cc:00:00:01", "10.0.0.1", []uint32{0})}))
	genCollect(t, sp[1], got, genGone(t2key))

	// The unicast-only client negotiated none of the families: a unicast
	// probe after them arrives alone.
	sp[0].send(t, ipv4Update("192.0.2.2", pfx("10.9.0.0/24")))
	if got := collect(t, sp[2], false, hasKeys("10.9.0.0/24")); len(got) != 1 {
		t.Errorf("the unicast-only client received %v", got)
	}
	for _, fam := range []bgp.RouteFamily{bgp.RF_EVPN, bgp.RF_IPv4_VPN} {
		for _, c := range sp[2].open.OptParams[0].(*bgp.OptionParameterCapability).Capability {
			if mp, ok := c.(*bgp.CapMultiProtocol); ok && mp.CapValue == fam {
				t.Errorf("the reflector offered %v to a neighbour not configured for it", fam)
			}
		}
	}
}

// TestFamiliesConfig: the families list is checked with field paths and
// defaults to IPv4 and IPv6 unicast.
func TestFamiliesConfig(t *testing.T) {
	if got := (FamilySet(0)).Names(); !cmp.Equal(got, []string{"ipv4-unicast", "ipv6-unicast"}) {
		t.Errorf("default families %v", got)
	}
	_, err := ParseConfigFile([]byte(`{"routerID": "10.0.0.1", "asNumber": 65000,
		"neighbors": [{"address": "10.0.0.2", "families": ["l2vpn-evpn", "ipv4-mcast"]}],
		"dynamicNeighbors": [{"prefix": "10.1.0.0/16", "families": ["rtc", "rtc"]}]}`))
	for _, want := range []string{`neighbors[0].families[1]: unknown family "ipv4-mcast"`, "dynamicNeighbors[0].families[1]: rtc is listed twice"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one naming %q", err, want)
		}
	}
	c, err := ParseConfigFile([]byte(`{"routerID": "10.0.0.1", "asNumber": 65000,
		"neighbors": [{"address": "10.0.0.2", "families": ["l2vpn-evpn", "ipv4-vpn"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Neighbors[0].Families.Names(); !cmp.Equal(got, []string{"l2vpn-evpn", "ipv4-vpn"}) {
		t.Errorf("families %v", got)
	}
	n := NeighborConfig{Families: c.Neighbors[0].Families}
	if f := n.families(); f.has(famV4) || !f.has(famEVPN) {
		t.Errorf("configured families %b", f)
	}
}

func manyMACs(n int, label uint32) []bgp.AddrPrefixInterface {
	var out []bgp.AddrPrefixInterface
	for i := range n {
		out = append(out, mac2(1, fmt.Sprintf("aa:bb:cc:00:%02x:%02x", i>>8, i&0xff), fmt.Sprintf("10.5.%d.%d", i>>8, i&0xff), label))
	}
	return out
}

// readRoutes reads raw messages until n EVPN routes have arrived and
// returns the longest message's length.
func readRoutes(t *testing.T, s *rawSpeaker, n int) (longest int) {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer s.conn.SetReadDeadline(time.Time{})
	seen := map[string]bool{}
	for len(seen) < n {
		b, err := s.rawMessage()
		if err != nil {
			t.Fatalf("reading: %v (have %d routes)", err, len(seen))
		}
		longest = max(longest, len(b))
		m, err := bgp.ParseBGPMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := m.Body.(*bgp.BGPNotification); ok {
			t.Fatalf("notification %d/%d", n.ErrorCode, n.ErrorSubcode)
		}
		if u, ok := m.Body.(*bgp.BGPUpdate); ok {
			for _, a := range u.PathAttributes {
				if r, ok := a.(*bgp.PathAttributeMpReachNLRI); ok {
					for _, p := range r.Value {
						seen[p.String()] = true
					}
				}
			}
		}
	}
	return longest
}

// TestExtendedMessages: with RFC 8654 negotiated, an UPDATE over 4,096
// bytes is accepted and the reflector sends UPDATEs over 4,096 bytes; to
// a neighbour without it every message stays within 4,096 bytes, and from
// one such a message ends the session with Bad Message Length.
func TestExtendedMessages(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
	fams, _ := ParseFamilies([]string{"l2vpn-evpn"})
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	_, addr := startReflector(t, cfg)
	ctx := context.Background()
	var sp [4]*rawSpeaker
	for i := range sp {
		o := speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90, fams: []bgp.RouteFamily{bgp.RF_EVPN}, extMsg: i < 2}
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.0.%d", i+2), o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.conn.Close()
		sp[i] = s
		genCollect(t, s, map[string]genRoute{}, genHas("EOR l2vpn-evpn"))
	}
	const n = 400
	b := longUpdate(t, mpUpdate("192.0.2.2", manyMACs(n, 100), rtAttr(1)))
	if len(b) <= maxMsgLen {
		t.Fatalf("test UPDATE of %d bytes is not extended", len(b))
	}
	if _, err := sp[0].conn.Write(b); err != nil {
		t.Fatal(err)
	}
	if l := readRoutes(t, sp[1], n); l <= maxMsgLen {
		t.Errorf("longest UPDATE to an extended-message neighbour: %d bytes, want over %d", l, maxMsgLen)
	}
	if l := readRoutes(t, sp[2], n); l > maxMsgLen {
		t.Errorf("an UPDATE of %d bytes went to a neighbour without extended messages", l)
	}
	if _, err := sp[3].conn.Write(b); err != nil {
		t.Fatal(err)
	}
	sp[3].conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		m, err := sp[3].next()
		if err != nil {
			t.Fatalf("reading: %v; want a NOTIFICATION", err)
		}
		if nt, ok := m.Body.(*bgp.BGPNotification); ok {
			if nt.ErrorCode != bgp.BGP_ERROR_MESSAGE_HEADER_ERROR || nt.ErrorSubcode != bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH {
				t.Errorf("notification %d/%d, want 1/2", nt.ErrorCode, nt.ErrorSubcode)
			}
			break
		}
	}
}

// longUpdate encodes an UPDATE of any length (the codec refuses over
// 4,096 bytes).
func longUpdate(t *testing.T, m *bgp.BGPMessage) []byte {
	t.Helper()
	var attrs []byte
	for _, a := range m.Body.(*bgp.BGPUpdate).PathAttributes {
		b, err := a.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		attrs = append(attrs, b...)
	}
	return rawUpdate(attrs)
}

// TestReflectsLabeledAndVPNv6: IPv6 VPN routes (next hop RD and IPv6
// address, 24 bytes) and IPv4 and IPv6 labeled unicast routes go through
// with their labels and next hops as sent; a new label replaces a path.
func TestReflectsLabeledAndVPNv6(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	fams, _ := ParseFamilies([]string{"ipv6-vpn", "ipv4-labeled-unicast", "ipv6-labeled-unicast"})
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	_, addr := startReflector(t, cfg)
	rfs := []bgp.RouteFamily{bgp.RF_IPv6_VPN, bgp.RF_IPv4_MPLS, bgp.RF_IPv6_MPLS}
	var sp [2]*rawSpeaker
	for i := range sp {
		sp[i] = connect(t, addr, fmt.Sprintf("127.0.0.%d", i+2), speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90, fams: rfs})
		genCollect(t, sp[i], map[string]genRoute{}, genHas("EOR l3vpn-ipv6-unicast", "EOR ipv4-labelled-unicast", "EOR ipv6-labelled-unicast"))
	}
	lbl := func(l uint32) bgp.MPLSLabelStack { return *bgp.NewMPLSLabelStack(l) }
	v6 := bgp.NewLabeledVPNIPv6AddrPrefix(48, "2001:db8:1::", lbl(100), rd(1))
	lu4 := bgp.NewLabeledIPAddrPrefix(32, "10.3.0.1", lbl(16))
	lu6 := bgp.NewLabeledIPv6AddrPrefix(128, "2001:db8::1", lbl(17))
	sp[0].send(t, mpUpdate("2001:db8::2", []bgp.AddrPrefixInterface{v6}), mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{lu4}),
		mpUpdate("2001:db8::2", []bgp.AddrPrefixInterface{lu6}))
	k := func(rf bgp.RouteFamily, p bgp.AddrPrefixInterface) string { return rf.String() + " " + p.String() }
	got := genCollect(t, sp[1], map[string]genRoute{}, genHas(k(bgp.RF_IPv6_VPN, v6), k(bgp.RF_IPv4_MPLS, lu4), k(bgp.RF_IPv6_MPLS, lu6)))
	for _, c := range []struct {
		rf bgp.RouteFamily
		p  bgp.AddrPrefixInterface
		nh string
	}{{bgp.RF_IPv6_VPN, v6, "2001:db8::2"}, {bgp.RF_IPv4_MPLS, lu4, "192.0.2.2"}, {bgp.RF_IPv6_MPLS, lu6, "2001:db8::2"}} {
		r := got[k(c.rf, c.p)]
		if r.NLRI != hex.EncodeToString(nlriBytes(t, c.p)) || r.NextHop != c.nh || r.OriginatorID != "10.0.0.2" {
			t.Errorf("%v %v: %+v", c.rf, c.p, r)
		}
	}
	lu4b := bgp.NewLabeledIPAddrPrefix(32, "10.3.0.1", lbl(18))
	sp[0].send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{lu4b}))
	genCollect(t, sp[1], got, func(m map[string]genRoute) bool {
		return m[k(bgp.RF_IPv4_MPLS, lu4)].NLRI == hex.EncodeToString(nlriBytes(t, lu4b))
	})
}

// rawUpdate frames path attributes as they are, encoded by hand, into an
// UPDATE message with no withdrawn routes and no IPv4 NLRI.
func rawUpdate(attrs []byte) []byte {
	b := appendHeader(nil, bgp.BGP_MSG_UPDATE)
	b = append(b, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attrs)))
	b = append(b, attrs...)
	binary.BigEndian.PutUint16(b[16:], uint16(len(b)))
	return b
}
