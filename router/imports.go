package router

import (
	"net/netip"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// importRoute decides the kernel route for one destination's best paths:
// the first path (the best) that is not ours, whose next hop is not one of
// our own addresses and that the import filter accepts. ok is false when
// nothing is to be installed.
//
// Next hops are used as received: through a reflector that is the
// originating node (reflectors do not change next hops). ECMP: the
// multipath set is kept in the BGP table (see `bgpfabric routes`); the
// kernel gets the best path only until routetable learns multipath routes.
func importRoute(d Destination, f *Filter, own func(netip.Addr) bool) (routetable.Route, bool) {
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
		return routetable.Route{Dst: d.Prefix, Gateway: p.NextHop}, true
	}
	return routetable.Route{}, false
}
