package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

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
