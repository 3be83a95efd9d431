package api

import "testing"

func TestBGPFilterValidate(t *testing.T) {
	base := func() *BGPFilter {
		return &BGPFilter{ObjectMeta: ObjectMeta{Name: "tor-in"}, Spec: BGPFilterSpec{
			ImportV4: []BGPFilterRule{{CIDR: "10.0.0.0/8", MatchOperator: MatchIn, Action: FilterAccept}},
			ImportV6: []BGPFilterRule{{CIDR: "fd00::/8", MatchOperator: MatchIn, Action: FilterAccept}},
		}}
	}
	v4 := func(f func(*BGPFilterRule)) func(*BGPFilter) { return func(b *BGPFilter) { f(&b.Spec.ImportV4[0]) } }
	v6 := func(f func(*BGPFilterRule)) func(*BGPFilter) { return func(b *BGPFilter) { f(&b.Spec.ImportV6[0]) } }
	runValidation(t, base, []validationCase[*BGPFilter]{
		{"valid", func(*BGPFilter) {}, nil},
		{"each operator", func(b *BGPFilter) {
			for _, op := range []string{MatchIn, MatchNotIn, MatchEqual, MatchNotEqual} {
				b.Spec.ExportV4 = append(b.Spec.ExportV4, BGPFilterRule{CIDR: "10.1.0.0/16", MatchOperator: op, Action: FilterReject})
			}
		}, nil},
		{"no conditions", v4(func(r *BGPFilterRule) { r.CIDR, r.MatchOperator = "", "" }), nil},
		{"invalid cidr", v4(func(r *BGPFilterRule) { r.CIDR = "10.0.0.0/33" }), []string{"spec.importV4[0].cidr"}},
		{"host bits", v4(func(r *BGPFilterRule) { r.CIDR = "10.0.0.1/8" }), []string{"spec.importV4[0].cidr"}},
		{"v6 cidr in v4 list", v4(func(r *BGPFilterRule) { r.CIDR = "fd00::/8" }), []string{"spec.importV4[0].cidr"}},
		{"v4 cidr in v6 list", v6(func(r *BGPFilterRule) { r.CIDR = "10.0.0.0/8" }), []string{"spec.importV6[0].cidr"}},
		{"unknown operator", v4(func(r *BGPFilterRule) { r.MatchOperator = "Contains" }), []string{"spec.importV4[0].matchOperator"}},
		{"cidr without operator", v4(func(r *BGPFilterRule) { r.MatchOperator = "" }), []string{"spec.importV4[0].matchOperator"}},
		{"operator without cidr", v4(func(r *BGPFilterRule) { r.CIDR = "" }), []string{"spec.importV4[0].matchOperator"}},
		{"prefix length", v4(func(r *BGPFilterRule) { r.PrefixLength = &BGPFilterPrefixLength{Min: ptr(16), Max: ptr(32)} }), nil},
		{"prefix length v6 bounds", v6(func(r *BGPFilterRule) { r.PrefixLength = &BGPFilterPrefixLength{Max: ptr(128)} }), nil},
		{"prefix length above v4 max", v4(func(r *BGPFilterRule) { r.PrefixLength = &BGPFilterPrefixLength{Max: ptr(33)} }),
			[]string{"spec.importV4[0].prefixLength.max"}},
		{"prefix length above v6 max", v6(func(r *BGPFilterRule) { r.PrefixLength = &BGPFilterPrefixLength{Max: ptr(129)} }),
			[]string{"spec.importV6[0].prefixLength.max"}},
		{"negative prefix length without cidr", v4(func(r *BGPFilterRule) {
			r.CIDR, r.MatchOperator, r.PrefixLength = "", "", &BGPFilterPrefixLength{Min: ptr(-1)}
		}), []string{"spec.importV4[0].prefixLength.min"}},
		{"v6 prefix length in a v4 list", v4(func(r *BGPFilterRule) {
			r.CIDR, r.MatchOperator, r.PrefixLength = "", "", &BGPFilterPrefixLength{Min: ptr(64)}
		}), []string{"spec.importV4[0].prefixLength", "spec.importV4[0].prefixLength.min"}}, // and min above the default max 32
		{"prefix length below cidr", v4(func(r *BGPFilterRule) { r.PrefixLength = &BGPFilterPrefixLength{Min: ptr(4)} }),
			[]string{"spec.importV4[0].prefixLength.min"}},
		{"prefix length min above max", v4(func(r *BGPFilterRule) {
			r.PrefixLength = &BGPFilterPrefixLength{Min: ptr(24), Max: ptr(16)}
		}), []string{"spec.importV4[0].prefixLength"}},
		{"prefix length with Equal", v4(func(r *BGPFilterRule) {
			r.MatchOperator, r.PrefixLength = MatchEqual, &BGPFilterPrefixLength{Min: ptr(8)}
		}), []string{"spec.importV4[0].prefixLength"}},
		{"bad action", v4(func(r *BGPFilterRule) { r.Action = "Allow" }), []string{"spec.importV4[0].action"}},
		{"no action", v4(func(r *BGPFilterRule) { r.Action = "" }), []string{"spec.importV4[0].action"}},
		{"source", v4(func(r *BGPFilterRule) { r.Source = FilterSourceRemotePeers }), nil},
		{"bad source", v4(func(r *BGPFilterRule) { r.Source = "Local" }), []string{"spec.importV4[0].source"}},
		{"interface not supported", v4(func(r *BGPFilterRule) { r.Interface = "eth0" }), []string{"spec.importV4[0].interface"}},
		{"communities", v4(func(r *BGPFilterRule) { r.Communities = []string{"65000:1", "65000:1:2"} }), nil},
		{"bad community", v4(func(r *BGPFilterRule) { r.Communities = []string{"65000:1", "70000:1"} }),
			[]string{"spec.importV4[0].communities[1]"}},
		{"set actions", v4(func(r *BGPFilterRule) {
			r.AddCommunities, r.LocalPref, r.MED = []string{"65000:7"}, ptr(uint32(200)), ptr(uint32(5))
			r.PrependASPath = &BGPFilterASPathPrepend{ASNumber: 65000}
		}), nil},
		{"bad add community", v4(func(r *BGPFilterRule) { r.AddCommunities = []string{"x"} }),
			[]string{"spec.importV4[0].addCommunities[0]"}},
		{"set actions on reject", v4(func(r *BGPFilterRule) {
			r.Action, r.AddCommunities, r.LocalPref, r.MED = FilterReject, []string{"65000:7"}, ptr(uint32(200)), ptr(uint32(5))
			r.PrependASPath = &BGPFilterASPathPrepend{ASNumber: 65000}
		}), []string{"spec.importV4[0].addCommunities", "spec.importV4[0].localPref", "spec.importV4[0].med", "spec.importV4[0].prependASPath"}},
		{"bad prepend", v4(func(r *BGPFilterRule) { r.PrependASPath = &BGPFilterASPathPrepend{Repeat: 11} }),
			[]string{"spec.importV4[0].prependASPath.asNumber", "spec.importV4[0].prependASPath.repeat"}},
		{"too many rules", func(b *BGPFilter) {
			b.Spec.ExportV6 = make([]BGPFilterRule, MaxFilterRules+1)
		}, []string{"spec.exportV6"}},
		{"bad name", func(b *BGPFilter) { b.Name = "Tor In" }, []string{"metadata.name"}},
		// VPN and EVPN lists.
		{"vpn lists", func(b *BGPFilter) {
			b.Spec.ImportEVPN = []BGPFilterRule{{EVPNRouteTypes: []int{2, 5}, RouteDistinguishers: []string{"192.0.2.1:7"},
				RouteTargets: []string{"65000:100", "4200000000:1"}, Communities: []string{"65000:1"}, Source: FilterSourceRemotePeers, Action: FilterAccept,
				AddRouteTargets: []string{"65000:200"}, RemoveRouteTargets: []string{"65000:100"}, LocalPref: ptr(uint32(50))}}
			b.Spec.ExportVPNv4 = []BGPFilterRule{{CIDR: "10.0.0.0/8", MatchOperator: MatchIn, PrefixLength: &BGPFilterPrefixLength{Max: ptr(24)},
				RouteDistinguishers: []string{"65000:1"}, Action: FilterReject}}
			b.Spec.ImportVPNv6 = []BGPFilterRule{{CIDR: "fd00::/8", MatchOperator: MatchEqual, Action: FilterAccept}}
		}, nil},
		{"route targets in a unicast list", v4(func(r *BGPFilterRule) {
			r.RouteTargets, r.RouteDistinguishers, r.AddRouteTargets, r.RemoveRouteTargets = []string{"65000:1"}, []string{"65000:1"}, []string{"65000:1"}, []string{"65000:1"}
			r.EVPNRouteTypes = []int{2}
		}), []string{"spec.importV4[0].routeTargets", "spec.importV4[0].routeDistinguishers", "spec.importV4[0].addRouteTargets",
			"spec.importV4[0].removeRouteTargets", "spec.importV4[0].evpnRouteTypes"}},
		{"route type in a VPN list", func(b *BGPFilter) {
			b.Spec.ExportVPNv6 = []BGPFilterRule{{EVPNRouteTypes: []int{2}, Action: FilterAccept}}
		}, []string{"spec.exportVPNv6[0].evpnRouteTypes"}},
		{"prefix in an EVPN list", func(b *BGPFilter) {
			b.Spec.ExportEVPN = []BGPFilterRule{{CIDR: "10.0.0.0/8", MatchOperator: MatchIn, PrefixLength: &BGPFilterPrefixLength{Max: ptr(24)}, Action: FilterAccept}}
		}, []string{"spec.exportEVPN[0].cidr", "spec.exportEVPN[0].matchOperator", "spec.exportEVPN[0].prefixLength"}},
		{"v6 cidr in a VPNv4 list", func(b *BGPFilter) {
			b.Spec.ImportVPNv4 = []BGPFilterRule{{CIDR: "fd00::/8", MatchOperator: MatchIn, Action: FilterAccept}}
		}, []string{"spec.importVPNv4[0].cidr"}},
		{"VPNv6 prefix length", func(b *BGPFilter) {
			b.Spec.ImportVPNv6 = []BGPFilterRule{{PrefixLength: &BGPFilterPrefixLength{Max: ptr(129)}, Action: FilterAccept}}
		}, []string{"spec.importVPNv6[0].prefixLength.max"}},
		{"bad route targets", func(b *BGPFilter) {
			b.Spec.ImportEVPN = []BGPFilterRule{{RouteTargets: []string{"65000", "70000:70000", "fd00::1:1", "1.2.3.4:70000", "x:1"},
				RouteDistinguishers: []string{"65000:4294967296"}, AddRouteTargets: []string{""}, RemoveRouteTargets: []string{"a:b"},
				EVPNRouteTypes: []int{0, 256}, Action: FilterAccept}}
		}, []string{"spec.importEVPN[0].routeTargets[0]", "spec.importEVPN[0].routeTargets[1]", "spec.importEVPN[0].routeTargets[2]",
			"spec.importEVPN[0].routeTargets[3]", "spec.importEVPN[0].routeTargets[4]", "spec.importEVPN[0].routeDistinguishers[0]",
			"spec.importEVPN[0].addRouteTargets[0]", "spec.importEVPN[0].removeRouteTargets[0]",
			"spec.importEVPN[0].evpnRouteTypes[0]", "spec.importEVPN[0].evpnRouteTypes[1]"}},
		{"route target actions on reject", func(b *BGPFilter) {
			b.Spec.ExportEVPN = []BGPFilterRule{{AddRouteTargets: []string{"65000:1"}, RemoveRouteTargets: []string{"65000:2"}, Action: FilterReject}}
		}, []string{"spec.exportEVPN[0].addRouteTargets", "spec.exportEVPN[0].removeRouteTargets"}},
		{"too many EVPN rules", func(b *BGPFilter) {
			b.Spec.ImportEVPN = make([]BGPFilterRule, MaxFilterRules+1)
		}, []string{"spec.importEVPN"}},
	})
}

func TestParseRouteTarget(t *testing.T) {
	for _, c := range []struct {
		in   string
		want RouteTarget
		val  [6]byte
	}{
		{"65000:100", RouteTarget{0, 65000, 100}, [6]byte{0xfd, 0xe8, 0, 0, 0, 100}},
		{"65000:4294967295", RouteTarget{0, 65000, 4294967295}, [6]byte{0xfd, 0xe8, 0xff, 0xff, 0xff, 0xff}},
		{"4200000000:7", RouteTarget{2, 4200000000, 7}, [6]byte{0xfa, 0x56, 0xea, 0x00, 0, 7}},
		{"192.0.2.1:300", RouteTarget{1, 0xc0000201, 300}, [6]byte{192, 0, 2, 1, 1, 44}},
	} {
		got, err := ParseRouteTarget(c.in)
		if err != nil || got != c.want || got.Value() != c.val || got.String() != c.in {
			t.Errorf("ParseRouteTarget(%q) = %+v (value % x, %q), %v; want %+v, value % x", c.in, got, got.Value(), got.String(), err, c.want, c.val)
		}
	}
}

func TestBGPFilterDefaultsRepeat(t *testing.T) {
	f := &BGPFilter{ObjectMeta: ObjectMeta{Name: "f"}, Spec: BGPFilterSpec{ExportV4: []BGPFilterRule{
		{Action: FilterAccept, PrependASPath: &BGPFilterASPathPrepend{ASNumber: 65000}}}}}
	if err := ValidateResource(f); err != nil {
		t.Fatal(err)
	}
	if got := f.Spec.ExportV4[0].PrependASPath.Repeat; got != 1 {
		t.Errorf("repeat defaulted to %d, want 1", got)
	}
}
