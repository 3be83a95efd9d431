package routepolicy

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bgpfabric/bgpfabric/api"
)

func ptr[T any](v T) *T { return &v }

func compile(t *testing.T, name string, spec api.BGPFilterSpec) *Filter {
	t.Helper()
	f, err := Compile(&api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: name}, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func route(p string, comms ...string) Route {
	r := Route{Prefix: netip.MustParsePrefix(p), FromPeer: true}
	for _, c := range comms {
		r.Communities = append(r.Communities, must(api.ParseCommunity(c)))
	}
	return r
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func rule(cidr, op string, action string) api.BGPFilterRule {
	return api.BGPFilterRule{CIDR: cidr, MatchOperator: op, Action: action}
}

func TestOperators(t *testing.T) {
	const A, R = api.FilterAccept, api.FilterReject
	withLen := func(r api.BGPFilterRule, lo, hi int) api.BGPFilterRule {
		r.PrefixLength = &api.BGPFilterPrefixLength{Min: ptr(lo), Max: ptr(hi)}
		return r
	}
	tests := []struct {
		name  string
		rule  api.BGPFilterRule
		v6    bool
		match map[string]bool // prefix -> matches
	}{
		{"In v4", rule("10.0.0.0/8", "In", A), false, map[string]bool{
			"10.0.0.0/8": true, "10.1.2.0/24": true, "10.1.2.3/32": true, "11.0.0.0/8": false, "0.0.0.0/0": false, "10.0.0.0/7": false}},
		{"NotIn v4", rule("10.0.0.0/8", "NotIn", A), false, map[string]bool{
			"10.0.0.0/8": false, "10.1.2.0/24": false, "11.0.0.0/8": true, "0.0.0.0/0": true}},
		{"Equal v4", rule("0.0.0.0/0", "Equal", A), false, map[string]bool{
			"0.0.0.0/0": true, "0.0.0.0/1": false, "10.0.0.0/8": false}},
		{"NotEqual v4", rule("0.0.0.0/0", "NotEqual", A), false, map[string]bool{
			"0.0.0.0/0": false, "10.0.0.0/8": true}},
		{"In with lengths", withLen(rule("10.244.0.0/16", "In", A), 24, 26), false, map[string]bool{
			"10.244.0.0/16": false, "10.244.1.0/24": true, "10.244.1.64/26": true, "10.244.1.1/32": false, "10.245.1.0/24": false}},
		{"NotIn with lengths", withLen(rule("10.244.0.0/16", "NotIn", A), 24, 26), false, map[string]bool{
			"10.244.1.0/24": false, "10.244.1.1/32": true, "10.245.1.0/24": true}},
		{"lengths only", withLen(api.BGPFilterRule{Action: A}, 0, 24), false, map[string]bool{
			"0.0.0.0/0": true, "10.0.0.0/24": true, "10.0.0.0/25": false}},
		{"In v6", rule("fd00:10::/64", "In", A), true, map[string]bool{
			"fd00:10::/64": true, "fd00:10::1/128": true, "fd00:11::/64": false, "::/0": false}},
		{"NotIn v6", rule("fd00:10::/64", "NotIn", A), true, map[string]bool{"fd00:10::/80": false, "fd00:11::/64": true}},
		{"Equal v6", rule("::/0", "Equal", A), true, map[string]bool{"::/0": true, "fd00::/8": false}},
		{"NotEqual v6", rule("::/0", "NotEqual", R), true, map[string]bool{"::/0": false, "fd00::/8": true}},
		{"communities any", api.BGPFilterRule{Communities: []string{"65000:1", "65000:2:3"}, Action: A}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{tt.rule}}
			if tt.v6 {
				spec = api.BGPFilterSpec{ImportV6: []api.BGPFilterRule{tt.rule}}
			}
			r := &compile(t, "f", spec).RulesFor(Import, tt.v6)[0]
			for p, want := range tt.match {
				if got := r.Matches(route(p)); got != want {
					t.Errorf("%s: matches %s = %v, want %v", tt.name, p, got, want)
				}
			}
		})
	}
	r := &compile(t, "f", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{tests[len(tests)-1].rule}}).RulesFor(Import, false)[0]
	for _, c := range []struct {
		comms []string
		want  bool
	}{{nil, false}, {[]string{"65000:3"}, false}, {[]string{"65000:3", "65000:1"}, true}, {[]string{"65000:2:3"}, true}, {[]string{"65000:2"}, false}} {
		if got := r.Matches(route("10.0.0.0/8", c.comms...)); got != c.want {
			t.Errorf("communities %v: matches = %v, want %v", c.comms, got, c.want)
		}
	}
}

func TestSource(t *testing.T) {
	f := compile(t, "f", api.BGPFilterSpec{ExportV4: []api.BGPFilterRule{{Source: api.FilterSourceRemotePeers, Action: api.FilterReject}}})
	c := Chain{Filters: []*Filter{f}}
	learned, local := route("10.0.0.0/8"), route("10.0.0.0/8")
	local.FromPeer = false
	if _, ok := c.Evaluate(Export, learned); ok {
		t.Error("learned route accepted by a RemotePeers reject rule")
	}
	if _, ok := c.Evaluate(Export, local); !ok {
		t.Error("local route rejected by a RemotePeers rule")
	}
}

func TestChain(t *testing.T) {
	const A, R = api.FilterAccept, api.FilterReject
	first := compile(t, "first", api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{rule("10.1.0.0/16", "In", R), rule("10.0.0.0/8", "In", A)},
		ExportV4: []api.BGPFilterRule{rule("192.168.0.0/16", "In", A)},
		ImportV6: []api.BGPFilterRule{rule("fd00::/8", "In", R)},
	})
	second := compile(t, "second", api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{rule("10.1.2.0/24", "Equal", A), rule("172.16.0.0/12", "In", A)},
		ImportV6: []api.BGPFilterRule{rule("::/0", "Equal", A)},
	})
	tests := []struct {
		name   string
		chain  Chain
		dir    Direction
		prefix string
		want   bool
	}{
		{"first match wins within a filter", Chain{[]*Filter{first, second}, false}, Import, "10.1.2.0/24", false},
		{"later rule of the filter", Chain{[]*Filter{first, second}, true}, Import, "10.2.0.0/16", true},
		{"no match passes to the next filter", Chain{[]*Filter{first, second}, true}, Import, "172.16.1.0/24", true},
		{"order of filters matters", Chain{[]*Filter{second, first}, true}, Import, "10.1.2.0/24", true},
		{"default reject", Chain{[]*Filter{first, second}, true}, Import, "8.8.8.8/32", false},
		{"default accept", Chain{[]*Filter{first, second}, false}, Import, "8.8.8.8/32", true},
		{"no filters default reject", Chain{nil, true}, Import, "10.0.0.0/8", false},
		{"export list apart from import", Chain{[]*Filter{first}, true}, Export, "10.2.0.0/16", false},
		{"export accept", Chain{[]*Filter{first}, true}, Export, "192.168.1.0/24", true},
		{"v6 list", Chain{[]*Filter{first, second}, true}, Import, "fd00:1::/64", false},
		{"v6 default route", Chain{[]*Filter{first, second}, true}, Import, "::/0", true},
		{"v4 rules do not apply to v6", Chain{[]*Filter{first}, false}, Import, "fd00:1::/64", false},
		{"v6 rules do not apply to v4", Chain{[]*Filter{compile(t, "x", api.BGPFilterSpec{ImportV6: []api.BGPFilterRule{{Action: R}}})}, false}, Import, "10.0.0.0/8", true},
	}
	for _, tt := range tests {
		if _, got := tt.chain.Evaluate(tt.dir, route(tt.prefix)); got != tt.want {
			t.Errorf("%s: %s %s accepted = %v, want %v", tt.name, tt.dir, tt.prefix, got, tt.want)
		}
	}
}

func TestSetActions(t *testing.T) {
	f := compile(t, "set", api.BGPFilterSpec{ExportV4: []api.BGPFilterRule{{
		CIDR: "10.0.0.0/8", MatchOperator: "In", Action: api.FilterAccept,
		AddCommunities: []string{"65000:1", "65000:1:2"}, LocalPref: ptr(uint32(200)), MED: ptr(uint32(7)),
		PrependASPath: &api.BGPFilterASPathPrepend{ASNumber: 65001, Repeat: 2},
	}}})
	in := route("10.1.0.0/16", "65000:1", "65000:9")
	in.LocalPref, in.MED, in.ASPath = 100, 0, []uint32{65100}
	got, ok := Chain{Filters: []*Filter{f}, Reject: true}.Evaluate(Export, in)
	if !ok {
		t.Fatal("rejected")
	}
	want := Route{Prefix: in.Prefix, FromPeer: true, LocalPref: 200, MED: 7, ASPath: []uint32{65001, 65001, 65100},
		Communities: []api.Community{must(api.ParseCommunity("65000:1")), must(api.ParseCommunity("65000:9")), must(api.ParseCommunity("65000:1:2"))}}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}
	if len(in.Communities) != 2 || len(in.ASPath) != 1 {
		t.Errorf("Evaluate modified its input: %+v", in)
	}
	// Not matched: unchanged, default decides.
	other := route("192.168.0.0/16")
	if got, ok := (Chain{Filters: []*Filter{f}}).Evaluate(Export, other); !ok || !cmp.Equal(got, other, cmpopts.EquateComparable(netip.Prefix{})) {
		t.Errorf("unmatched route: %+v %v", got, ok)
	}
}

func TestResolve(t *testing.T) {
	f := compile(t, "a", api.BGPFilterSpec{ImportV4: []api.BGPFilterRule{{Action: api.FilterAccept}}})
	filters := map[string]*Filter{"a": f}
	p, missing := Resolve([]string{"a"}, filters, false)
	if missing != nil || len(p.Import.Filters) != 1 || !p.Import.Reject {
		t.Errorf("Resolve(a) = %+v, %v", p, missing)
	}
	p, missing = Resolve([]string{"a", "gone"}, filters, false)
	if !cmp.Equal(missing, []string{"gone"}) || len(p.Import.Filters) != 0 || len(p.Export.Filters) != 0 || !p.Import.Reject {
		t.Errorf("Resolve with a missing filter = %+v, %v; want only the default", p, missing)
	}
	if _, ok := p.Import.Evaluate(Import, route("10.0.0.0/8")); ok {
		t.Error("a missing filter on an RFC 8212 session accepts")
	}
}

func TestCompileRefusesInvalid(t *testing.T) {
	if _, err := Compile(&api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "bad"}, Spec: api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{{CIDR: "fd00::/8", MatchOperator: "In", Action: "Accept"}}}}); err == nil {
		t.Error("compiled a v6 CIDR in a v4 list")
	}
}

func TestAppliesOn(t *testing.T) {
	n := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n1", Labels: map[string]string{"rack": "r1"}}}
	for _, c := range []struct {
		spec api.BGPPeerSpec
		want bool
	}{
		{api.BGPPeerSpec{PeerIP: "10.0.0.1"}, true}, // global
		{api.BGPPeerSpec{Node: "n1"}, true},
		{api.BGPPeerSpec{Node: "n2"}, false},
		{api.BGPPeerSpec{NodeSelector: "rack == 'r1'"}, true},
		{api.BGPPeerSpec{NodeSelector: "rack == 'r2'", PeerSelector: "rack == 'r1'"}, false}, // n1 is only the peer side
	} {
		if got := AppliesOn(&api.BGPPeer{Spec: c.spec}, n); got != c.want {
			t.Errorf("AppliesOn(%+v) = %v, want %v", c.spec, got, c.want)
		}
	}
	if AppliesOn(&api.BGPPeer{}, nil) {
		t.Error("applies on a missing node")
	}
}

// TestEvaluateVPN: the reference semantics of the VPN and EVPN lists:
// each family's routes see only their lists; route targets, RDs, EVPN
// route types and the VPN prefix match; route target actions change the
// route (removal before addition).
func TestEvaluateVPN(t *testing.T) {
	rt := func(s string) api.RouteTarget { return must(api.ParseRouteTarget(s)) }
	f := compile(t, "vpn", api.BGPFilterSpec{
		ImportEVPN: []api.BGPFilterRule{
			{EVPNRouteTypes: []int{3}, Action: api.FilterReject},
			{RouteTargets: []string{"65000:1"}, RouteDistinguishers: []string{"192.0.2.1:7"}, Action: api.FilterAccept,
				RemoveRouteTargets: []string{"65000:1"}, AddRouteTargets: []string{"65000:2", "65000:1"}},
		},
		ImportVPNv4: []api.BGPFilterRule{{CIDR: "10.0.0.0/8", MatchOperator: api.MatchIn, PrefixLength: &api.BGPFilterPrefixLength{Max: ptr(24)}, Action: api.FilterAccept}},
		ImportV4:    []api.BGPFilterRule{{Action: api.FilterAccept}},
	})
	c := Chain{Filters: []*Filter{f}, Reject: true}
	evpn := Route{Family: EVPN, RouteType: 2, RD: rt("192.0.2.1:7"), RouteTargets: []api.RouteTarget{rt("65000:1"), rt("65000:3")}}
	got, ok := c.Evaluate(Import, evpn)
	if want := []api.RouteTarget{rt("65000:3"), rt("65000:2"), rt("65000:1")}; !ok || !cmp.Equal(got.RouteTargets, want) {
		t.Errorf("EVPN type 2: %v, route targets %v; want accepted with %v", ok, got.RouteTargets, want)
	}
	for _, c2 := range []struct {
		name string
		r    Route
		ok   bool
	}{
		{"type 3", Route{Family: EVPN, RouteType: 3, RD: rt("192.0.2.1:7"), RouteTargets: []api.RouteTarget{rt("65000:1")}}, false},
		{"other RD", Route{Family: EVPN, RouteType: 2, RD: rt("192.0.2.1:8"), RouteTargets: []api.RouteTarget{rt("65000:1")}}, false},
		{"VPN prefix in", Route{Family: VPNv4, Prefix: netip.MustParsePrefix("10.1.0.0/24")}, true},
		{"VPN prefix too long", Route{Family: VPNv4, Prefix: netip.MustParsePrefix("10.1.0.0/25")}, false},
		{"VPNv6: no rules, default", Route{Family: VPNv6, Prefix: netip.MustParsePrefix("2001:db8::/48")}, false},
		{"unicast: its own list", Route{Prefix: netip.MustParsePrefix("192.0.2.0/24")}, true},
	} {
		if _, ok := c.Evaluate(Import, c2.r); ok != c2.ok {
			t.Errorf("%s: accepted %v, want %v", c2.name, ok, c2.ok)
		}
	}
}
