package main

import (
	"encoding/json"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/reflector"
	"github.com/bgpfabric/bgpfabric/router"
)

// TestPrintRoutesKernel: an ECMP route shows all its gateways.
func TestPrintRoutesKernel(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	rep := &router.RoutesReport{Node: "n1", Kernel: []router.KernelRouteStatus{
		{Prefix: netip.MustParsePrefix("10.1.0.0/26"), Gateway: a, Gateways: []netip.Addr{a}, State: "installed"},
		{Prefix: netip.MustParsePrefix("10.2.0.0/26"), Gateway: a, Gateways: []netip.Addr{a, b}, State: "installed"},
		{Prefix: netip.MustParsePrefix("10.3.0.0/26"), Gateway: b, State: "conflict", Owner: 80},
	}}
	var sb strings.Builder
	printRoutes(&sb, rep)
	out := sb.String()
	out = out[strings.Index(out, "Installed in the kernel"):]
	want := `Installed in the kernel (3)
PREFIX       VIA                STATE
10.1.0.0/26  10.0.0.2           installed
10.2.0.0/26  10.0.0.2,10.0.0.3  installed
10.3.0.0/26  10.0.0.3           conflict (held by protocol 80)
`
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("kernel routes (-want +got):\n%s", diff)
	}
}

// TestRoutesSameShape: a node's BGP table and the reflector's print the
// same columns, and the node's -o json names a path's fields as the
// reflector's does (the node adds only "local").
func TestRoutesSameShape(t *testing.T) {
	peer, nh := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("192.0.2.2")
	pfx := netip.MustParsePrefix("10.1.0.0/16")
	rep := &router.RoutesReport{Node: "n1", BGP: []router.Destination{{Prefix: pfx, Paths: []router.Path{
		{Peer: peer, PeerAS: 64512, NextHop: nh, ASPath: []uint32{65001}, LocalPref: 100, MED: 3, Best: true,
			Communities: []api.Community{{Global: 64512, Local1: 7}}},
	}}}}
	rp := reflector.RoutePath{Peer: peer, PeerAS: 64512, NextHop: nh, Origin: "igp", ASPath: []uint32{65001}, LocalPref: 100,
		MED: 3, Best: true, Communities: []string{"64512:7"}}

	var node, refl strings.Builder
	printRoutes(&node, rep)
	tw := newPathTable(&refl)
	writePathRows(tw, pfx.String(), pathRows([]reflector.RoutePath{rp}))
	tw.Flush()
	if !strings.Contains(node.String(), refl.String()) {
		t.Errorf("the node's BGP table\n%s\ndoes not hold the reflector's rendering of the same path\n%s", node.String(), refl.String())
	}

	keys := func(v any) []string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(maps.Keys(m))
	}
	nodePathJSON := routesJSON(rep).BGP[0].Paths[0]
	want := slices.DeleteFunc(keys(rp), func(k string) bool { return k == "origin" }) // the node's speaker reports none
	if d := cmp.Diff(want, keys(nodePathJSON)); d != "" {
		t.Errorf("JSON names of a node's path against a reflector's (-reflector +node):\n%s", d)
	}
	if d := cmp.Diff([]string{"paths", "prefix"}, keys(routesJSON(rep).BGP[0])); d != "" {
		t.Errorf("JSON names of a node's destination (-want +got):\n%s", d)
	}
}

// TestSelectRoutes: `bgpfabric routes PREFIX|ADDR` keeps that prefix
// (exact) or the longest one of the BGP table that contains the address.
func TestSelectRoutes(t *testing.T) {
	report := func() *router.RoutesReport {
		var rep router.RoutesReport
		for _, p := range []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24"} {
			rep.BGP = append(rep.BGP, router.Destination{Prefix: netip.MustParsePrefix(p)})
		}
		rep.Kernel = []router.KernelRouteStatus{{Prefix: netip.MustParsePrefix("10.1.0.0/16")}}
		return &rep
	}
	for _, tc := range []struct{ sel, want string }{
		{"10.1.0.0/16", "10.1.0.0/16"}, {"10.1.2.3", "10.1.2.0/24"}, {"10.200.0.1", "10.0.0.0/8"},
		{"10.1.3.0/24", ""}, {"192.0.2.1", ""},
	} {
		rep := report()
		err := selectRoutes(rep, tc.sel)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "no route") {
				t.Errorf("%s: %v, %+v; want no route", tc.sel, err, rep.BGP)
			}
			continue
		}
		if err != nil || len(rep.BGP) != 1 || rep.BGP[0].Prefix.String() != tc.want {
			t.Errorf("%s: %v, %+v; want %s", tc.sel, err, rep.BGP, tc.want)
		}
		if wantKernel := tc.want == "10.1.0.0/16"; (len(rep.Kernel) == 1) != wantKernel {
			t.Errorf("%s: kernel routes %+v", tc.sel, rep.Kernel)
		}
	}
}
