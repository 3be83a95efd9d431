package calc

import (
	"maps"
	"net/netip"
	"slices"
)

// RouteKind is what a desired route does.
type RouteKind uint8

const (
	// RouteWorkload forwards to a local workload through its host-side
	// interface, scope link.
	RouteWorkload RouteKind = iota + 1
	// RouteBlackhole drops: the route of an IPAM block affine to this node.
	RouteBlackhole
)

func (k RouteKind) String() string {
	switch k {
	case RouteWorkload:
		return "workload"
	case RouteBlackhole:
		return "blackhole"
	}
	return "kind?"
}

// Route is one desired route in the main table.
type Route struct {
	Dst  netip.Prefix
	Kind RouteKind
	// Iface is the interface of a RouteWorkload.
	Iface string
}

func (r Route) String() string {
	if r.Kind == RouteBlackhole {
		return "blackhole " + r.Dst.String()
	}
	return r.Dst.String() + " dev " + r.Iface
}

// Interface is the desired settings of one workload interface (the host
// side of a workload's veth).
type Interface struct {
	Name string
	// IPv4 and IPv6 say which families' settings it needs: those of its
	// endpoints' addresses (and IPv6 when one has an IPv6 gateway).
	IPv4, IPv6 bool
	// ProxyNDP are the IPv6 gateways of its endpoints, which the host
	// answers neighbour solicitations for on the interface. Sorted.
	ProxyNDP []netip.Addr
}

// Delta is what changed since the previous TakeDelta. A nil value means
// the route or interface is no longer wanted.
type Delta struct {
	Routes     map[netip.Prefix]*Route
	Interfaces map[string]*Interface
}

// Empty reports whether d changes nothing.
func (d Delta) Empty() bool { return len(d.Routes) == 0 && len(d.Interfaces) == 0 }

// route returns the desired route for dst, if any.
func (c *Calc) route(dst netip.Prefix) (Route, bool) {
	rc := c.routeClaims[dst]
	if rc == nil {
		return Route{}, false
	}
	if len(rc.workloads) > 0 {
		// The smallest key wins, whatever the order of arrival.
		var best Key
		first := true
		for k := range rc.workloads {
			if first || compareKeys(k, best) < 0 {
				best, first = k, false
			}
		}
		return Route{Dst: dst, Kind: RouteWorkload, Iface: rc.workloads[best]}, true
	}
	return Route{Dst: dst, Kind: RouteBlackhole}, true
}

// iface returns the desired settings of the interface name, if any.
func (c *Calc) iface(name string) (Interface, bool) {
	m := c.ifaceClaims[name]
	if len(m) == 0 {
		return Interface{}, false
	}
	out := Interface{Name: name}
	for _, w := range m {
		out.IPv4 = out.IPv4 || w.ipv4
		out.IPv6 = out.IPv6 || w.ipv6
		if w.gateway6.IsValid() && !slices.Contains(out.ProxyNDP, w.gateway6) {
			out.ProxyNDP = append(out.ProxyNDP, w.gateway6)
		}
	}
	slices.SortFunc(out.ProxyNDP, netip.Addr.Compare)
	return out, true
}

// TakeDelta returns the changes to the desired routes and interfaces since
// the previous call (the first call returns everything) and starts
// collecting anew. A change that was undone before the call is not in it.
func (c *Calc) TakeDelta() Delta {
	d := Delta{Routes: map[netip.Prefix]*Route{}, Interfaces: map[string]*Interface{}}
	for dst := range c.dirtyRoutes {
		want, ok := c.route(dst)
		had, emitted := c.emittedRoutes[dst]
		switch {
		case ok && (!emitted || had != want):
			d.Routes[dst] = &want
			c.emittedRoutes[dst] = want
		case !ok && emitted:
			d.Routes[dst] = nil
			delete(c.emittedRoutes, dst)
		}
	}
	c.dirtyRoutes = map[netip.Prefix]struct{}{} // not clear: that costs the map's high-water capacity
	for name := range c.dirtyIfaces {
		want, ok := c.iface(name)
		had, emitted := c.emittedIfaces[name]
		switch {
		case ok && (!emitted || !sameInterface(had, want)):
			d.Interfaces[name] = &want
			c.emittedIfaces[name] = want
		case !ok && emitted:
			d.Interfaces[name] = nil
			delete(c.emittedIfaces, name)
		}
	}
	c.dirtyIfaces = map[string]struct{}{}
	return d
}

func sameInterface(a, b Interface) bool {
	return a.Name == b.Name && a.IPv4 == b.IPv4 && a.IPv6 == b.IPv6 && slices.Equal(a.ProxyNDP, b.ProxyNDP)
}

// Routes returns every desired route, IPv4 first, then by prefix.
func (c *Calc) Routes() []Route {
	out := make([]Route, 0, len(c.routeClaims))
	for dst := range c.routeClaims {
		r, _ := c.route(dst)
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Route) int { return ComparePrefixes(a.Dst, b.Dst) })
	return out
}

// Interfaces returns the desired settings of every workload interface, by
// name.
func (c *Calc) Interfaces() []Interface {
	names := slices.Sorted(maps.Keys(c.ifaceClaims))
	out := make([]Interface, 0, len(names))
	for _, n := range names {
		i, _ := c.iface(n)
		out = append(out, i)
	}
	return out
}

// ComparePrefixes orders IPv4 before IPv6, then by address and length.
func ComparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
