package reflector

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
)

// Route policy on the generic families, on real sessions.

// TestPolicyLiveChangeEVPNVPN: a policy change re-evaluates the EVPN and
// VPNv4 routes already received, without a session reset. Import: A's
// filter starts rejecting EVPN type 2 and VPN prefixes inside 10.2/16, and
// B and C receive withdrawals of exactly those; relaxed, they are
// announced again (from A's Adj-RIB-In: A sends nothing more). Export: B's
// filter starts rejecting RD 65000:2 (EVPN) and route target 65000:1
// (VPN), and B alone receives withdrawals; relaxed, B gets them again; an
// export rule's route target actions change what B is sent.
func TestPolicyLiveChangeEVPNVPN(t *testing.T) {
	const A, R = api.FilterAccept, api.FilterReject
	pc := func(in, out api.BGPFilterSpec) PolicyConfig {
		return PolicyConfig{
			Filters: []*api.BGPFilter{filter("in", in), filter("out", out)},
			Neighbors: map[netip.Addr][]string{
				netip.MustParseAddr(cliA): {"in"},
				netip.MustParseAddr(cliB): {"out"},
			},
		}
	}
	cfg := testConfig(cliA, cliB, cliC)
	fams, err := ParseFamilies([]string{"ipv4-unicast", "l2vpn-evpn", "ipv4-vpn"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	cfg.Policy = pc(api.BGPFilterSpec{}, api.BGPFilterSpec{})
	r, addr := startReflector(t, cfg)
	rfs := []bgp.RouteFamily{bgp.RF_IPv4_UC, bgp.RF_EVPN, bgp.RF_IPv4_VPN}
	eor := genHas("EOR ipv4-unicast", "EOR l2vpn-evpn", "EOR l3vpn-ipv4-unicast")
	var sp [3]*rawSpeaker
	var views [3]map[string]genRoute
	for i, a := range []string{cliA, cliB, cliC} {
		sp[i] = connect(t, addr, a, speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90, fams: rfs})
		views[i] = genCollect(t, sp[i], map[string]genRoute{}, eor)
	}
	t2 := mac2(1, "aa:bb:cc:00:00:01", "10.0.0.1", 100)
	t5 := bgp.NewEVPNIPPrefixRoute(rd(2), bgp.EthernetSegmentIdentifier{}, 0, 24, "10.1.0.0", "0.0.0.0", 5000)
	vpn2 := bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", *bgp.NewMPLSLabelStack(300), rd(1))
	vpn3 := bgp.NewLabeledVPNIPAddrPrefix(24, "10.3.0.0", *bgp.NewMPLSLabelStack(301), rd(2))
	sp[0].send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{t2}, rtAttr(1)),
		mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{t5}, rtAttr(2)),
		mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{vpn2}, rtAttr(1)),
		mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{vpn3}, rtAttr(2)))
	k := func(rf bgp.RouteFamily, p bgp.AddrPrefixInterface) string { return rf.String() + " " + p.String() }
	kT2, kT5, kV2, kV3 := k(bgp.RF_EVPN, t2), k(bgp.RF_EVPN, t5), k(bgp.RF_IPv4_VPN, vpn2), k(bgp.RF_IPv4_VPN, vpn3)
	all := genHas(kT2, kT5, kV2, kV3)
	for i := 1; i < 3; i++ {
		genCollect(t, sp[i], views[i], all)
	}
	since := map[string]time.Time{}
	for _, n := range []string{cliA, cliB, cliC} {
		since[n] = neighborStatus(t, r, n).Since
	}
	only := func(present []string, absent ...string) func(map[string]genRoute) bool {
		return func(m map[string]genRoute) bool {
			for _, a := range absent {
				if _, ok := m[a]; ok {
					return false
				}
			}
			return genHas(present...)(m)
		}
	}

	// Import tightened: type 2 and 10.2/16 rejected; type 5 changed (a
	// route target added: the path is re-announced, its NLRI as sent).
	tight := api.BGPFilterSpec{
		ImportEVPN: []api.BGPFilterRule{{EVPNRouteTypes: []int{2}, Action: R},
			{EVPNRouteTypes: []int{5}, Action: A, AddRouteTargets: []string{"65000:8"}}},
		ImportVPNv4: []api.BGPFilterRule{{CIDR: "10.2.0.0/16", MatchOperator: api.MatchIn, Action: R}},
	}
	if err := r.SetPolicy(pc(tight, api.BGPFilterSpec{})); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		v := genCollect(t, sp[i], views[i], func(m map[string]genRoute) bool {
			return only([]string{kT5, kV3}, kT2, kV2)(m) && m[kT5].RTs == rt(2).String()+" "+rt(8).String()+" "
		})
		if got, want := v[kT5].NLRI, hex.EncodeToString(nlriBytes(t, t5)); got != want || v[kT5].NextHop != "192.0.2.2" {
			t.Errorf("changed type 5 route: NLRI %s next hop %s, want %s, 192.0.2.2", got, v[kT5].NextHop, want)
		}
	}
	if st := neighborStatus(t, r, cliA); st.PrefixesReceived != 4 || st.PrefixesIn != 2 {
		t.Errorf("client A: %d received, %d accepted; want 4, 2", st.PrefixesReceived, st.PrefixesIn)
	}
	// Relaxed: announced again.
	if err := r.SetPolicy(pc(api.BGPFilterSpec{}, api.BGPFilterSpec{})); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		genCollect(t, sp[i], views[i], func(m map[string]genRoute) bool { return all(m) && m[kT5].RTs == rt(2).String()+" " })
	}

	// Export tightened for B: RD 65000:2 (EVPN) and route target 65000:1
	// (VPN) rejected.
	out := api.BGPFilterSpec{
		ExportEVPN:  []api.BGPFilterRule{{RouteDistinguishers: []string{"65000:2"}, Action: R}},
		ExportVPNv4: []api.BGPFilterRule{{RouteTargets: []string{"65000:1"}, Action: R}},
	}
	if err := r.SetPolicy(pc(api.BGPFilterSpec{}, out)); err != nil {
		t.Fatal(err)
	}
	genCollect(t, sp[1], views[1], only([]string{kT2, kV3}, kT5, kV2))
	// Relaxed, with route target actions on the type 2 route.
	out = api.BGPFilterSpec{ExportEVPN: []api.BGPFilterRule{{EVPNRouteTypes: []int{2}, Action: A,
		RemoveRouteTargets: []string{"65000:1"}, AddRouteTargets: []string{"65000:9"}}}}
	if err := r.SetPolicy(pc(api.BGPFilterSpec{}, out)); err != nil {
		t.Fatal(err)
	}
	got := genCollect(t, sp[1], views[1], func(m map[string]genRoute) bool {
		return all(m) && m[kT2].RTs == rt(9).String()+" "
	})
	want := map[string]string{kT2: rt(9).String() + " ", kT5: rt(2).String() + " ", kV2: rt(1).String() + " ", kV3: rt(2).String() + " "}
	for key, rts := range want {
		if got[key].RTs != rts || got[key].NextHop != "192.0.2.2" {
			t.Errorf("B's %s: %+v, want route targets %q, next hop 192.0.2.2", key, got[key], rts)
		}
	}
	// C saw none of the export changes: a probe arrives with C's view as
	// it was.
	probe := mac2(3, "aa:bb:cc:00:00:03", "", 100)
	sp[0].send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{probe}, rtAttr(3)))
	vc := genCollect(t, sp[2], views[2], genHas(k(bgp.RF_EVPN, probe)))
	wantC := []string{kT2, kT5, kV2, kV3, "EOR ipv4-unicast", "EOR l2vpn-evpn", "EOR l3vpn-ipv4-unicast", k(bgp.RF_EVPN, probe)}
	if d := cmp.Diff(slices.Sorted(slices.Values(wantC)), slices.Sorted(maps.Keys(vc))); d != "" {
		t.Errorf("C's routes (-want +got):\n%s", d)
	}
	if vc[kT2].RTs != rt(1).String()+" " {
		t.Errorf("C's type 2 route targets %q, want B's export actions not to apply", vc[kT2].RTs)
	}
	for _, n := range []string{cliA, cliB, cliC} {
		st := neighborStatus(t, r, n)
		if st.State != StateEstablished || !st.Since.Equal(since[n]) {
			t.Errorf("%s: %v since %v, want Established since %v (no reset)", n, st.State, st.Since, since[n])
		}
	}
}

// TestReloadDefaultGenericFamilies: a configuration file reload that
// changes ebgpDefaultPolicy evaluates the generic families' routes of an
// eBGP neighbour again, also those of the families without rule lists
// (labeled unicast, flowspec): under Reject (RFC 8212) the client
// receives their withdrawals, back under Accept their announcements, from
// the Adj-RIB-In, with no session reset.
func TestReloadDefaultGenericFamilies(t *testing.T) {
	conf := func(policy string) Config {
		cfg, err := ParseConfigFile([]byte(`routerID: 10.255.0.1
asNumber: 65000
clusterID: 10.255.255.1
listen: ["127.0.0.1:0"]
ebgpDefaultPolicy: ` + policy + `
neighbors:
- {address: 127.0.0.2, asNumber: 65000, passive: true, families: [ipv4-unicast, l2vpn-evpn, ipv4-labeled-unicast, ipv4-flowspec]}
- {address: 127.0.0.5, asNumber: 65100, passive: true, families: [ipv4-unicast, l2vpn-evpn, ipv4-labeled-unicast, ipv4-flowspec]}
`))
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	r, addr := startReflector(t, conf("Accept"))
	rfs := []bgp.RouteFamily{bgp.RF_IPv4_UC, bgp.RF_EVPN, bgp.RF_IPv4_MPLS, bgp.RF_FS_IPv4_UC}
	eor := genHas("EOR ipv4-unicast", "EOR l2vpn-evpn", "EOR ipv4-labelled-unicast", "EOR ipv4-flowspec")
	a := connect(t, addr, cliA, speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, fams: rfs})
	e := connect(t, addr, ext, speakerOpts{asn: 65100, id: "10.0.0.5", hold: 90, fams: rfs})
	va := genCollect(t, a, map[string]genRoute{}, eor)
	genCollect(t, e, map[string]genRoute{}, eor)
	t2 := mac2(1, "aa:bb:cc:00:00:01", "10.0.0.1", 100)
	lu := bgp.NewLabeledIPAddrPrefix(24, "10.3.0.0", *bgp.NewMPLSLabelStack(16))
	fs := fsDst("10.4.0.0/24")
	ebgpMP := func(nh string, p bgp.AddrPrefixInterface) *bgp.BGPMessage {
		return bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0),
			bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65100})}),
			bgp.NewPathAttributeMpReachNLRI(nh, []bgp.AddrPrefixInterface{p})}, nil)
	}
	e.send(t, ebgpMP("192.0.2.5", t2), ebgpMP("192.0.2.5", lu), ebgpMP("0.0.0.0", fs))
	k := func(rf bgp.RouteFamily, p bgp.AddrPrefixInterface) string { return rf.String() + " " + p.String() }
	keys := []string{k(bgp.RF_EVPN, t2), k(bgp.RF_IPv4_MPLS, lu), k(bgp.RF_FS_IPv4_UC, fs)}
	genCollect(t, a, va, genHas(keys...))
	since := neighborStatus(t, r, ext).Since

	if _, err := r.Reconfigure(conf("Reject")); err != nil {
		t.Fatal(err)
	}
	genCollect(t, a, va, func(m map[string]genRoute) bool {
		for _, key := range keys {
			if _, ok := m[key]; ok {
				return false
			}
		}
		return true
	})
	if st := neighborStatus(t, r, ext); st.PrefixesReceived != 3 || st.PrefixesIn != 0 {
		t.Errorf("E under RFC 8212: %d received, %d accepted; want 3, 0", st.PrefixesReceived, st.PrefixesIn)
	}
	if _, err := r.Reconfigure(conf("Accept")); err != nil {
		t.Fatal(err)
	}
	genCollect(t, a, va, genHas(keys...))
	if st := neighborStatus(t, r, ext); st.State != StateEstablished || !st.Since.Equal(since) || st.PrefixesIn != 3 {
		t.Errorf("E: %v since %v with %d accepted, want Established since %v with 3 (no reset)", st.State, st.Since, st.PrefixesIn, since)
	}
}

// TestLLGRGenericFamilies: long-lived graceful restart (RFC 9494) for
// EVPN and VPNv4. A client that negotiated it for both goes away; when its
// 1 s restart time ends its routes stay, with LLGR_STALE, at a neighbour
// that negotiated LLGR for the families, and are withdrawn at one that
// did not; its NO_LLGR route goes everywhere. Back, it re-announces one
// route (LLGR_STALE gone) and sends End-of-RIB per family: the others go.
func TestLLGRGenericFamilies(t *testing.T) {
	cfg := grConfig(cliA, cliB, cliC)
	fams, err := ParseFamilies([]string{"l2vpn-evpn", "ipv4-vpn"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
		cfg.Neighbors[i].LongLivedStaleTime = time.Hour
	}
	r, addr := startReflector(t, cfg)
	rfs := []bgp.RouteFamily{bgp.RF_EVPN, bgp.RF_IPv4_VPN}
	eor := genHas("EOR l2vpn-evpn", "EOR l3vpn-ipv4-unicast")
	ao := speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, fams: rfs, gr: true, grTime: 1, llgr: 3600, grFams: rfs}
	a := connect(t, addr, cliA, ao)
	llgrMon := connect(t, addr, cliB, speakerOpts{asn: testASN, id: "10.0.0.3", hold: 90, fams: rfs, gr: true, llgr: 3600, grFams: rfs})
	// plainMon negotiated LLGR for IPv4 unicast only, which the session
	// does not carry: for its families it has none.
	plainMon := connect(t, addr, cliC, speakerOpts{asn: testASN, id: "10.0.0.4", hold: 90, fams: rfs, gr: true, llgr: 3600})
	genCollect(t, a, map[string]genRoute{}, eor)
	// The reflector offers LLGR for both families, so that its clients
	// keep its routes through its own restarts too.
	var offered []string
	for _, p := range a.open.OptParams {
		if pc, ok := p.(*bgp.OptionParameterCapability); ok {
			for _, c := range pc.Capability {
				if ll, ok := c.(*bgp.CapLongLivedGracefulRestart); ok {
					for _, tu := range ll.Tuples {
						offered = append(offered, fmt.Sprintf("%s F=%v %d", bgp.AfiSafiToRouteFamily(tu.AFI, tu.SAFI), tu.Flags&0x80 != 0, tu.RestartTime))
					}
				}
			}
		}
	}
	if d := cmp.Diff([]string{"l2vpn-evpn F=true 3600", "l3vpn-ipv4-unicast F=true 3600"}, offered); d != "" {
		t.Errorf("LLGR capability offered (-want +got):\n%s", d)
	}
	lv := genCollect(t, llgrMon, map[string]genRoute{}, eor)
	pv := genCollect(t, plainMon, map[string]genRoute{}, eor)
	t2 := mac2(1, "aa:bb:cc:00:00:01", "10.0.0.1", 100)
	t2b := mac2(1, "aa:bb:cc:00:00:02", "10.0.0.2", 100)
	noLL := mac2(1, "aa:bb:cc:00:00:03", "10.0.0.3", 100)
	vpn := bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", *bgp.NewMPLSLabelStack(300), rd(1))
	a.send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{t2, t2b}, rtAttr(1)),
		mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{noLL}, rtAttr(1), bgp.NewPathAttributeCommunities([]uint32{noLLGRCommunity})),
		mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{vpn}, rtAttr(2)))
	k := func(rf bgp.RouteFamily, p bgp.AddrPrefixInterface) string { return rf.String() + " " + p.String() }
	kT2, kT2b, kNo, kV := k(bgp.RF_EVPN, t2), k(bgp.RF_EVPN, t2b), k(bgp.RF_EVPN, noLL), k(bgp.RF_IPv4_VPN, vpn)
	commIs := func(comm string, keys ...string) func(map[string]genRoute) bool {
		return func(m map[string]genRoute) bool {
			for _, key := range keys {
				if r, ok := m[key]; !ok || r.Comms != comm {
					return false
				}
			}
			return true
		}
	}
	gone := func(keys ...string) func(map[string]genRoute) bool {
		return func(m map[string]genRoute) bool {
			for _, key := range keys {
				if _, ok := m[key]; ok {
					return false
				}
			}
			return true
		}
	}
	genCollect(t, llgrMon, lv, genHas(kT2, kT2b, kNo, kV))
	genCollect(t, plainMon, pv, genHas(kT2, kT2b, kNo, kV))

	a.conn.Close() // a restart: no NOTIFICATION
	const stale = "65535:6 "
	genCollect(t, llgrMon, lv, func(m map[string]genRoute) bool { return commIs(stale, kT2, kT2b, kV)(m) && gone(kNo)(m) })
	if nh := lv[kV].NextHop; nh != "192.0.2.2" || lv[kV].NLRI != hex.EncodeToString(nlriBytes(t, vpn)) {
		t.Errorf("LLGR-stale VPN route %+v, want its NLRI and next hop as sent", lv[kV])
	}
	genCollect(t, plainMon, pv, gone(kT2, kT2b, kNo, kV))
	if n := neighborStatus(t, r, cliA); n.PrefixesIn != 3 {
		t.Errorf("A holds %d routes in the RIB, want its 3 LLGR-stale ones", n.PrefixesIn)
	}

	a2 := connect(t, addr, cliA, ao)
	genCollect(t, a2, map[string]genRoute{}, eor)
	a2.send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{t2}, rtAttr(1)))
	genCollect(t, llgrMon, lv, commIs("", kT2))
	genCollect(t, plainMon, pv, genHas(kT2))
	if !commIs(stale, kT2b, kV)(lv) {
		t.Errorf("LLGR-stale routes changed before End-of-RIB: %v", lv)
	}
	a2.send(t, bgp.NewEndOfRib(bgp.RF_EVPN))
	genCollect(t, llgrMon, lv, gone(kT2b))
	if !commIs(stale, kV)(lv) {
		t.Errorf("the VPN route changed at EVPN's End-of-RIB: %v", lv[kV])
	}
	a2.send(t, bgp.NewEndOfRib(bgp.RF_IPv4_VPN))
	genCollect(t, llgrMon, lv, gone(kV))
	if !commIs("", kT2)(lv) {
		t.Errorf("after End-of-RIB: %+v, want the re-announced route fresh", lv[kT2])
	}
}

// TestGenericAdjRIBInGracefulRestart: an EVPN route that A's import
// policy rejected is kept (as sent) in the Adj-RIB-In through A's
// graceful restart as stale, and goes at A's End-of-RIB when A does not
// send it again: a policy relaxed afterwards does not bring it back, and
// A's received count drops.
func TestGenericAdjRIBInGracefulRestart(t *testing.T) {
	cfg := grConfig(cliA, cliB)
	fams, err := ParseFamilies([]string{"l2vpn-evpn"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	pc := func(spec api.BGPFilterSpec) PolicyConfig {
		return PolicyConfig{Filters: []*api.BGPFilter{filter("in", spec)}, Neighbors: map[netip.Addr][]string{netip.MustParseAddr(cliA): {"in"}}}
	}
	cfg.Policy = pc(api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{{EVPNRouteTypes: []int{3}, Action: api.FilterReject}}})
	r, addr := startReflector(t, cfg)
	rfs := []bgp.RouteFamily{bgp.RF_EVPN}
	eor := genHas("EOR l2vpn-evpn")
	ao := speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, fams: rfs, gr: true, grFams: rfs}
	a := connect(t, addr, cliA, ao)
	b := connect(t, addr, cliB, speakerOpts{asn: testASN, id: "10.0.0.3", hold: 90, fams: rfs})
	genCollect(t, a, map[string]genRoute{}, eor)
	vb := genCollect(t, b, map[string]genRoute{}, eor)
	t2 := mac2(1, "aa:bb:cc:00:00:01", "10.0.0.1", 100)
	t3 := bgp.NewEVPNMulticastEthernetTagRoute(rd(1), 0, "192.0.2.2")
	k := func(p bgp.AddrPrefixInterface) string { return bgp.RF_EVPN.String() + " " + p.String() }
	a.send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{t2, t3}, rtAttr(1)))
	genCollect(t, b, vb, genHas(k(t2)))
	if st := neighborStatus(t, r, cliA); st.PrefixesReceived != 2 || st.PrefixesIn != 1 {
		t.Fatalf("A: %d received, %d accepted; want 2, 1", st.PrefixesReceived, st.PrefixesIn)
	}

	a.conn.Close() // graceful: no NOTIFICATION
	waitState(t, r, cliA, StateEstablished, true)
	a2 := connect(t, addr, cliA, ao)
	genCollect(t, a2, map[string]genRoute{}, eor)
	a2.send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{t2}, rtAttr(1)), bgp.NewEndOfRib(bgp.RF_EVPN))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	waitFor(t, ctx, "A's stale rejected route swept at End-of-RIB", func() bool {
		st := neighborStatus(t, r, cliA)
		return st.PrefixesReceived == 1 && st.PrefixesIn == 1
	})
	if err := r.SetPolicy(pc(api.BGPFilterSpec{})); err != nil {
		t.Fatal(err)
	}
	probe := mac2(2, "aa:bb:cc:00:00:09", "", 100)
	a2.send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{probe}, rtAttr(1)))
	genCollect(t, b, vb, genHas(k(probe)))
	if _, ok := vb[k(t3)]; ok {
		t.Errorf("B got the type 3 route that A did not send again after its restart: %v", vb)
	}
}
