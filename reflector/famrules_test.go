package reflector

import (
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestGenericRules: the compiled rules of the VPN and EVPN lists decide
// each family's routes on their keys and attrs: every match (route
// target of each form, RD of each form, EVPN route type, the VPN prefix
// with each operator and length, communities, several conditions at
// once), the first matching rule deciding, the lists of one family never
// seeing another's routes, and the default for routes that no rule
// decides (also the families without lists).
func TestGenericRules(t *testing.T) {
	const A, R = api.FilterAccept, api.FilterReject
	lbl := *bgp.NewMPLSLabelStack(100)
	rdIP := bgp.NewRouteDistinguisherIPAddressAS("192.0.2.1", 7)
	rd4 := bgp.NewRouteDistinguisherFourOctetAS(4200000000, 7)
	rtIP := bgp.NewIPv4AddressSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, "192.0.2.1", 300, true)
	rt4 := bgp.NewFourOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 4200000000, 5, true)
	origin := bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_ORIGIN, 65000, 1, true) // not a route target
	type route struct {
		f     family
		nlri  bgp.AddrPrefixInterface
		attrs []bgp.PathAttributeInterface
	}
	ext := func(cs ...bgp.ExtendedCommunityInterface) []bgp.PathAttributeInterface {
		return []bgp.PathAttributeInterface{bgp.NewPathAttributeExtendedCommunities(cs)}
	}
	var (
		t2     = route{famEVPN, mac2(1, "aa:bb:cc:00:00:01", "10.0.0.1", 100), ext(rt(1))}
		t2IP   = route{famEVPN, bgp.NewEVPNMacIPAdvertisementRoute(rdIP, bgp.EthernetSegmentIdentifier{}, 0, "aa:bb:cc:00:00:02", "", []uint32{1}), ext(rtIP)}
		t1     = route{famEVPN, bgp.NewEVPNEthernetAutoDiscoveryRoute(rd4, esi1, 0, 100), ext(rt4)}
		t3     = route{famEVPN, bgp.NewEVPNMulticastEthernetTagRoute(rd(2), 0, "192.0.2.9"), ext(rt(2), origin)}
		t5     = route{famEVPN, bgp.NewEVPNIPPrefixRoute(rd(2), bgp.EthernetSegmentIdentifier{}, 0, 24, "10.1.0.0", "0.0.0.0", 5000), append(ext(rt(2)), stdComm(65000, 7))}
		v4     = route{famVPNv4, bgp.NewLabeledVPNIPAddrPrefix(24, "10.2.0.0", lbl, rd(1)), ext(rt(1))}
		v4long = route{famVPNv4, bgp.NewLabeledVPNIPAddrPrefix(28, "10.2.0.16", lbl, rd(2)), ext(rt(2))}
		v4none = route{famVPNv4, bgp.NewLabeledVPNIPAddrPrefix(16, "10.3.0.0", lbl, rdIP), nil}
		v6     = route{famVPNv6, bgp.NewLabeledVPNIPv6AddrPrefix(48, "2001:db8:1::", lbl, rd(1)), ext(rt(1))}
		lu     = route{famLUv4, bgp.NewLabeledIPAddrPrefix(24, "10.2.0.0", lbl), ext(rt(1))}
	)
	rule := func(action string, f func(*api.BGPFilterRule)) api.BGPFilterRule {
		r := api.BGPFilterRule{Action: action}
		f(&r)
		return r
	}
	med := func(n uint32) func(*api.BGPFilterRule) { return func(r *api.BGPFilterRule) { r.MED = &n } }
	and := func(fs ...func(*api.BGPFilterRule)) func(*api.BGPFilterRule) {
		return func(r *api.BGPFilterRule) {
			for _, f := range fs {
				f(r)
			}
		}
	}
	rts := func(s ...string) func(*api.BGPFilterRule) { return func(r *api.BGPFilterRule) { r.RouteTargets = s } }
	rds := func(s ...string) func(*api.BGPFilterRule) {
		return func(r *api.BGPFilterRule) { r.RouteDistinguishers = s }
	}
	types := func(n ...int) func(*api.BGPFilterRule) { return func(r *api.BGPFilterRule) { r.EVPNRouteTypes = n } }
	cidr := func(c, op string) func(*api.BGPFilterRule) {
		return func(r *api.BGPFilterRule) { r.CIDR, r.MatchOperator = c, op }
	}
	plen := func(lo, hi int) func(*api.BGPFilterRule) {
		return func(r *api.BGPFilterRule) { r.PrefixLength = &api.BGPFilterPrefixLength{Min: &lo, Max: &hi} }
	}
	none := func(*api.BGPFilterRule) {}
	const dflt = 0 // want: accepted by the default (no rule)
	tests := []struct {
		name   string
		spec   api.BGPFilterSpec
		ebgp   bool // default reject (RFC 8212)
		r      route
		accept bool
		med    uint32 // the accepting rule's MED (its identity), dflt for none
		imp    bool   // evaluate the import chain even though export rules exist
	}{
		{"rt 2-octet AS", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(rts("65000:1"), med(1)))}}, true, t2, true, 1, false},
		{"rt other value", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(rts("65000:2"), med(1)))}}, true, t2, false, dflt, false},
		{"rt IPv4 form", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(rts("65000:300", "192.0.2.1:300"), med(2)))}}, true, t2IP, true, 2, false},
		{"rt 4-octet AS", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(rts("4200000000:5"), med(3)))}}, true, t1, true, 3, false},
		{"route origin is not a route target", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(R, rts("65000:1"))}}, false, t3, true, dflt, false},
		{"rt without extended communities", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(R, rts("65000:1"))}}, false, v4none, true, dflt, false},
		{"rd 2-octet AS, type 2", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(R, rds("65000:1"))}}, false, t2, false, dflt, false},
		{"rd IPv4, type 2", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(rds("192.0.2.1:7"), med(4)))}}, true, t2IP, true, 4, false},
		{"rd 4-octet AS, type 1", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(rds("4200000000:7"), med(5)))}}, true, t1, true, 5, false},
		{"rd type 3 (whole key)", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(rds("65000:2"), med(6)))}}, true, t3, true, 6, false},
		{"rd other", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(rds("65000:1"), med(6)))}}, true, t3, false, dflt, false},
		{"rd VPNv4", api.BGPFilterSpec{ExportVPNv4: []api.BGPFilterRule{rule(A, and(rds("65000:2"), med(7)))}}, true, v4long, true, 7, false},
		{"rd VPNv6", api.BGPFilterSpec{ImportVPNv6: []api.BGPFilterRule{rule(R, rds("65000:1"))}}, false, v6, false, dflt, false},
		{"route type 5", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(types(2, 5), med(8)))}}, true, t5, true, 8, false},
		{"route type 3 not listed", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(types(2, 5), med(8)))}}, true, t3, false, dflt, false},
		{"route type 1", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(R, types(1))}}, false, t1, false, dflt, false},
		{"VPN prefix In", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(A, and(cidr("10.2.0.0/16", api.MatchIn), med(9)))}}, true, v4, true, 9, false},
		{"VPN prefix In, too long", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(A, and(cidr("10.2.0.0/16", api.MatchIn), plen(16, 24), med(9)))}}, true, v4long, false, dflt, false},
		{"VPN prefix NotIn", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(R, cidr("10.2.0.0/16", api.MatchNotIn))}}, false, v4none, false, dflt, false},
		{"VPN prefix Equal", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(R, cidr("10.2.0.0/24", api.MatchEqual))}}, false, v4, false, dflt, false},
		{"VPN prefix Equal, other RD same prefix length", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(R, cidr("10.2.0.16/28", api.MatchEqual))}}, false, v4long, false, dflt, false},
		{"VPN prefix NotEqual", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(R, cidr("10.2.0.0/24", api.MatchNotEqual))}}, false, v4, true, dflt, false},
		{"VPNv6 prefix In", api.BGPFilterSpec{ExportVPNv6: []api.BGPFilterRule{rule(A, and(cidr("2001:db8::/32", api.MatchIn), med(10)))}}, true, v6, true, 10, false},
		{"VPNv6 prefix outside", api.BGPFilterSpec{ExportVPNv6: []api.BGPFilterRule{rule(A, and(cidr("2001:db9::/32", api.MatchIn), med(10)))}}, true, v6, false, dflt, false},
		{"VPN prefix length alone", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(R, plen(25, 32))}}, false, v4long, false, dflt, false},
		{"communities on EVPN", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(func(r *api.BGPFilterRule) { r.Communities = []string{"65000:7"} }, med(11)))}}, true, t5, true, 11, false},
		{"every condition", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(types(5), rds("65000:2"), rts("65000:2"), med(12)))}}, true, t5, true, 12, false},
		{"one condition fails", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(A, and(types(5), rds("65000:2"), rts("65000:1"), med(12)))}}, true, t5, false, dflt, false},
		{"first match: reject before accept", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{
			rule(R, rts("65000:1")), rule(A, and(types(2), med(13)))}}, false, t2, false, dflt, false},
		{"first match: accept before reject", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{
			rule(A, and(types(2), med(14))), rule(R, rts("65000:1"))}}, false, t2, true, 14, false},
		{"first match: the first of two accepts", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{
			rule(A, and(rts("65000:9"), med(20))), rule(A, and(rds("65000:1"), med(15))), rule(A, and(cidr("10.0.0.0/8", api.MatchIn), med(16)))}}, true, v4, true, 15, false},
		{"a catch-all rule", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(R, none)}}, false, t3, false, dflt, false},
		{"VPNv4 rules do not see VPNv6", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(R, none)}}, false, v6, true, dflt, false},
		{"EVPN rules do not see VPN", api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{rule(R, none)}}, false, v4, true, dflt, false},
		{"unicast rules do not see VPN", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{rule(R, none)}}, false, v4, true, dflt, false},
		{"export rules do not import", api.BGPFilterSpec{ExportEVPN: []api.BGPFilterRule{rule(R, none)}}, false, t2, true, dflt, true},
		{"labeled unicast: the default, accept", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(R, none)}}, false, lu, true, dflt, false},
		{"labeled unicast: the default, RFC 8212", api.BGPFilterSpec{ImportVPNv4: []api.BGPFilterRule{rule(A, none)}}, true, lu, false, dflt, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := "import"
			for _, l := range tc.spec.Lists() {
				if len(*l.Rules) > 0 && l.Export && !tc.imp {
					dir = "export"
				}
			}
			addr := netip.MustParseAddr("192.0.2.2")
			var ps policyState
			if err := ps.setConfig(PolicyConfig{Filters: []*api.BGPFilter{filter("f", tc.spec)}, Neighbors: map[netip.Addr][]string{addr: {"f"}}}); err != nil {
				t.Fatal(err)
			}
			sp := ps.resolve(addr, tc.ebgp, false)
			chain := sp.imp
			if dir == "export" {
				chain = sp.exp
			}
			key, extra, ok := genSplit(tc.r.f, nlriBytes(t, tc.r.nlri))
			if !ok {
				t.Fatalf("genSplit refused %v", tc.r.nlri)
			}
			a := newAttrs(attrsInput{list: append([]bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0)}, tc.r.attrs...), gen: true, extra: extra})
			x, accept := chain.evalGen(tc.r.f, string(key), a)
			var gotMED uint32
			if x != nil {
				gotMED = x.med
			}
			if accept != tc.accept || gotMED != tc.med {
				t.Errorf("%s of %v: accept %v by the rule with MED %d, want %v, %d", dir, tc.r.nlri, accept, gotMED, tc.accept, tc.med)
			}
		})
	}
}
