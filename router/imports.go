package router

import (
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// importRoute decides the kernel route for one destination's best paths
// (from WatchBestPaths: the multipath set, the equal-cost best paths):
// every path that is not ours, whose next hop is not one of our own
// addresses and that the import filter accepts gives a next hop. One next
// hop is a plain route; several are one multipath (ECMP) route, over which
// the kernel spreads flows. ok is false when nothing is to be installed.
//
// Next hops are used as received: through a reflector that is the
// originating node (reflectors do not change next hops).
func importRoute(d Destination, f *Filter, own func(netip.Addr) bool) (routetable.Route, bool) {
	// first is the only next hop until a second one makes hops: most
	// destinations have one path, and then nothing is allocated.
	var first netip.Addr
	var hops []routetable.NextHop
	for _, p := range d.Paths {
		if p.Local || !p.NextHop.IsValid() || p.NextHop.IsUnspecified() || own(p.NextHop) {
			continue
		}
		if p.NextHop.Is4() != d.Prefix.Addr().Is4() {
			continue // e.g. IPv4 over an IPv6 next hop: not supported
		}
		if f != nil {
			if _, ok := f.Evaluate(d.Prefix, p.Communities); !ok {
				continue
			}
		}
		switch {
		case !first.IsValid():
			first = p.NextHop
		case first == p.NextHop || slices.ContainsFunc(hops, func(h routetable.NextHop) bool { return h.Gateway == p.NextHop }):
		case hops == nil:
			hops = []routetable.NextHop{{Gateway: first}, {Gateway: p.NextHop}}
		default:
			hops = append(hops, routetable.NextHop{Gateway: p.NextHop})
		}
	}
	switch {
	case !first.IsValid():
		return routetable.Route{}, false
	case hops == nil:
		return routetable.Route{Dst: d.Prefix, Gateway: first}, true
	}
	return routetable.Route{Dst: d.Prefix, NextHops: hops}, true
}

// gateways lists a route's gateways, in its order.
func gateways(r routetable.Route) []netip.Addr {
	if len(r.NextHops) == 0 {
		return []netip.Addr{r.Gateway}
	}
	out := make([]netip.Addr, len(r.NextHops))
	for i, nh := range r.NextHops {
		out[i] = nh.Gateway
	}
	return out
}
