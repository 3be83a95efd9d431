package router

import (
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// Exports computes what the node advertises from the routes felix
// programmed (the kernel routes of felix's protocol in the main table),
// the way Calico's BIRD does it:
//
//   - a blackhole (or unreachable, prohibit) route is one of the node's
//     affine IPAM blocks: it is advertised as the aggregate;
//   - a unicast host route (/32, /128) through an interface without a
//     gateway is a local workload: it is advertised only if no exported
//     block covers it (a borrowed address, from another node's block);
//   - every other route of felix's (routes to other nodes' blocks over
//     VXLAN, say) is not ours to advertise.
//
// The service routes (services.go) are added to these. The result passes
// through the export filter, and every route carries the communities that
// BGPConfiguration's communities and prefixAdvertisements give it (the
// filter may add more). It is sorted by prefix.
func Exports(fib map[netip.Prefix]routetable.KernelRoute, f *Filter, adv *api.Advertisements, services []netip.Prefix) []LocalRoute {
	var blocks []netip.Prefix
	for dst, r := range fib {
		if r.Type != routetable.TypeUnicast && r.Type != 0 {
			blocks = append(blocks, dst)
		}
	}
	slices.SortFunc(blocks, comparePrefix)
	covered := func(p netip.Prefix) bool {
		for _, b := range blocks {
			if b.Bits() < p.Bits() && b.Contains(p.Addr()) {
				return true
			}
		}
		return false
	}
	var out []LocalRoute
	add := func(dst netip.Prefix) {
		lr := LocalRoute{Prefix: dst, Communities: adv.CommunitiesFor(dst)}
		if f != nil {
			var ok bool
			if lr.Communities, ok = f.Evaluate(dst, lr.Communities); !ok {
				return
			}
		}
		out = append(out, lr)
	}
	for dst, r := range fib {
		switch {
		case r.Type != routetable.TypeUnicast && r.Type != 0:
		case dst.IsSingleIP() && !r.Gateway.IsValid() && !r.Multipath && !covered(dst):
		default:
			continue
		}
		add(dst)
	}
	for _, dst := range services {
		if _, ok := fib[dst]; !ok {
			add(dst)
		}
	}
	slices.SortFunc(out, func(a, b LocalRoute) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

// comparePrefix orders IPv4 before IPv6, then by address and length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// exportDiff returns what to announce (new or changed) and withdraw to go
// from the announced routes to want.
func exportDiff(announced map[netip.Prefix]LocalRoute, want []LocalRoute) (announce []LocalRoute, withdraw []netip.Prefix) {
	seen := make(map[netip.Prefix]bool, len(want))
	for _, r := range want {
		seen[r.Prefix] = true
		if old, ok := announced[r.Prefix]; !ok || !sameLocalRoute(old, r) {
			announce = append(announce, r)
		}
	}
	for p := range announced {
		if !seen[p] {
			withdraw = append(withdraw, p)
		}
	}
	slices.SortFunc(withdraw, comparePrefix)
	return announce, withdraw
}

func sameLocalRoute(a, b LocalRoute) bool {
	return a.Prefix == b.Prefix && a.NextHop == b.NextHop && slices.Equal(a.Communities, b.Communities) &&
		a.GracefulShutdown == b.GracefulShutdown
}
