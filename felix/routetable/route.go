package routetable

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// RouteType is a route's kind; the values are the kernel's RTN_* numbers.
type RouteType uint8

const (
	// TypeUnicast forwards to an interface and/or gateway. It is the
	// default: a Route with a zero Type is unicast.
	TypeUnicast RouteType = 1 // RTN_UNICAST
	// TypeBlackhole silently drops packets (felix's routes for a host's
	// own IPAM blocks).
	TypeBlackhole RouteType = 6 // RTN_BLACKHOLE
	// TypeUnreachable drops packets with ICMP unreachable.
	TypeUnreachable RouteType = 7 // RTN_UNREACHABLE
	// TypeProhibit drops packets with ICMP prohibited.
	TypeProhibit RouteType = 8 // RTN_PROHIBIT
)

func (t RouteType) String() string {
	switch t {
	case TypeUnicast:
		return "unicast"
	case TypeBlackhole:
		return "blackhole"
	case TypeUnreachable:
		return "unreachable"
	case TypeProhibit:
		return "prohibit"
	}
	return "type" + strconv.Itoa(int(t))
}

// Scope is a route's rtm_scope. The kernel ignores it for IPv6 and reports
// ScopeUniverse there.
type Scope uint8

const (
	ScopeUniverse Scope = 0   // RT_SCOPE_UNIVERSE
	ScopeLink     Scope = 253 // RT_SCOPE_LINK
	scopeNowhere  Scope = 255 // RT_SCOPE_NOWHERE: "any scope" in a delete
)

// Route is one desired route in the RouteTable's table. Dst is its key.
type Route struct {
	// Dst is the destination prefix, e.g. 10.65.0.3/32; it must be masked.
	Dst netip.Prefix
	// Type is TypeUnicast when zero.
	Type RouteType
	// Iface is the output interface's name. It may not exist yet: the
	// route then waits until it does. Only unicast routes have one.
	Iface string
	// Gateway is the next hop, if any, in Dst's family. A unicast route
	// needs Iface, Gateway or both; without Gateway an IPv4 route gets
	// scope link, as `ip route add` gives it.
	Gateway netip.Addr
	// Src is the preferred source address (RTA_PREFSRC), if any.
	Src netip.Addr
	// NextHops, when it has two or more entries, makes the route a
	// multipath (ECMP) route: the kernel spreads flows over the next
	// hops (RTA_MULTIPATH, equal weights). Such a route has no Gateway
	// or Iface of its own. Their order does not matter, and one next hop
	// is the same as a plain route through it. A multipath route waits
	// as pending until every interface it names exists and is up.
	NextHops []NextHop
}

// NextHop is one next hop of a multipath route: a gateway in the route's
// family, an output interface, or both.
type NextHop struct {
	Gateway netip.Addr
	Iface   string
}

func compareNextHop(a, b NextHop) int {
	if c := a.Gateway.Compare(b.Gateway); c != 0 {
		return c
	}
	return strings.Compare(a.Iface, b.Iface)
}

// Equal reports whether r and o are the same route.
func (r Route) Equal(o Route) bool {
	return r.Dst == o.Dst && r.Type == o.Type && r.Iface == o.Iface &&
		r.Gateway == o.Gateway && r.Src == o.Src && slices.Equal(r.NextHops, o.NextHops)
}

// ifaces calls fn with each interface r goes through.
func (r Route) ifaces(fn func(string)) {
	if r.Iface != "" {
		fn(r.Iface)
	}
	for _, nh := range r.NextHops {
		if nh.Iface != "" {
			fn(nh.Iface)
		}
	}
}

// normalizeNextHops sorts and deduplicates r.NextHops (a copy: the
// caller's slice is not changed), and turns a single next hop into a plain
// route.
func (r Route) normalizeNextHops() (Route, error) {
	if len(r.NextHops) == 0 {
		r.NextHops = nil
		return r, nil
	}
	if r.Iface != "" || r.Gateway.IsValid() {
		return r, fmt.Errorf("route %s: a multipath route takes its gateways and interfaces in NextHops only", r.Dst)
	}
	nhs := slices.Clone(r.NextHops)
	slices.SortFunc(nhs, compareNextHop)
	nhs = slices.Compact(nhs)
	if len(nhs) == 1 {
		r.Gateway, r.Iface, r.NextHops = nhs[0].Gateway, nhs[0].Iface, nil
		return r, nil
	}
	r.NextHops = nhs
	return r, nil
}

// validate checks r and returns it with defaults filled in.
func (r Route) validate() (Route, error) {
	if r.Type == 0 {
		r.Type = TypeUnicast
	}
	r, err := r.normalizeNextHops()
	if err != nil {
		return r, err
	}
	fail := func(format string, args ...any) (Route, error) {
		return r, fmt.Errorf("route %s: %s", r.Dst, fmt.Sprintf(format, args...))
	}
	switch {
	case !r.Dst.IsValid():
		return fail("invalid destination")
	case r.Dst != r.Dst.Masked():
		return fail("destination has host bits set (want %s)", r.Dst.Masked())
	case r.Dst.Addr().Is4In6() || r.Dst.Addr().Zone() != "":
		return fail("destination must be plain IPv4 or IPv6")
	}
	switch r.Type {
	case TypeUnicast:
		if r.Iface == "" && !r.Gateway.IsValid() && len(r.NextHops) == 0 {
			return fail("a unicast route needs an interface or a gateway")
		}
	case TypeBlackhole, TypeUnreachable, TypeProhibit:
		if r.Iface != "" || r.Gateway.IsValid() || len(r.NextHops) > 0 {
			return fail("a %s route takes no interface or gateway", r.Type)
		}
	default:
		return fail("unsupported type %s", r.Type)
	}
	hops := append([]NextHop{{Gateway: r.Gateway, Iface: r.Iface}}, r.NextHops...)
	for i, nh := range hops {
		if i > 0 && nh.Iface == "" && !nh.Gateway.IsValid() {
			return fail("next hop %d has neither a gateway nor an interface", i)
		}
		if len(nh.Iface) > 15 {
			return fail("interface name %q is longer than 15 bytes", nh.Iface)
		}
		if nh.Gateway.IsValid() && nh.Gateway.Is4() != r.Dst.Addr().Is4() {
			return fail("gateway %s is not in the destination's family", nh.Gateway)
		}
	}
	if r.Src.IsValid() && r.Src.Is4() != r.Dst.Addr().Is4() {
		return fail("source %s is not in the destination's family", r.Src)
	}
	return r, nil
}

// KernelRoute is a route as the kernel holds it: what a Dataplane writes
// and what it lists.
type KernelRoute struct {
	Table    uint32
	Protocol uint8
	Type     RouteType
	Scope    Scope
	Dst      netip.Prefix
	// LinkIndex is the output interface's index, 0 for none.
	LinkIndex int
	Gateway   netip.Addr
	Src       netip.Addr
	// Priority is the metric. bgpfabric writes 0, which the kernel keeps
	// for IPv4 and turns into 1024 for IPv6; a delete with Priority 0
	// matches any metric.
	Priority uint32
	// NextHops are the next hops of a multipath route (RTA_MULTIPATH),
	// sorted by gateway then interface index; a plain route has none.
	NextHops []KernelNextHop
	// Multipath is set on a listed route with RTA_MULTIPATH or RTA_VIA.
	// A listed route with Multipath but no NextHops has next hops we do
	// not decode (RTA_VIA: a gateway of another family) and never
	// matches a wanted route.
	Multipath bool
}

// KernelNextHop is one next hop of a multipath kernel route.
type KernelNextHop struct {
	Gateway netip.Addr
	// LinkIndex is the output interface's index; in a wanted route, 0
	// lets the kernel choose it (and matches any).
	LinkIndex int
}

func compareKernelNextHop(a, b KernelNextHop) int {
	if c := a.Gateway.Compare(b.Gateway); c != 0 {
		return c
	}
	return cmp.Compare(a.LinkIndex, b.LinkIndex)
}

// sameNextHops reports whether have's next hops are want's.
func sameNextHops(want, have []KernelNextHop) bool {
	return slices.EqualFunc(want, have, func(w, h KernelNextHop) bool {
		return w.Gateway == h.Gateway && (w.LinkIndex == 0 || w.LinkIndex == h.LinkIndex)
	})
}

// defaultPriority reports whether p is the metric the kernel gives a route
// written with none.
func (k KernelRoute) defaultPriority() bool {
	if k.Dst.Addr().Is4() {
		return k.Priority == 0
	}
	return k.Priority == 0 || k.Priority == 1024
}

// sameAs reports whether the kernel route have already is want, the route
// that a RouteTable would write.
func (want KernelRoute) sameAs(have KernelRoute) bool {
	return want.Type == have.Type &&
		want.Dst == have.Dst &&
		want.Gateway == have.Gateway &&
		want.Src == have.Src &&
		(want.LinkIndex == 0 || want.LinkIndex == have.LinkIndex) &&
		(!want.Dst.Addr().Is4() || want.Scope == have.Scope) &&
		have.defaultPriority() &&
		sameNextHops(want.NextHops, have.NextHops) &&
		(have.Multipath == (len(have.NextHops) > 0))
}

// Format renders k the way `ip route show table all` does (without the
// IPv6 metric and preference), naming interfaces with linkName.
func (k KernelRoute) Format(linkName func(index int) string) string {
	var b strings.Builder
	if k.Type != TypeUnicast {
		b.WriteString(k.Type.String() + " ")
	}
	if k.Dst.Bits() == k.Dst.Addr().BitLen() {
		b.WriteString(k.Dst.Addr().String())
	} else if k.Dst.Bits() == 0 {
		b.WriteString("default")
	} else {
		b.WriteString(k.Dst.String())
	}
	if k.Gateway.IsValid() {
		b.WriteString(" via " + k.Gateway.String())
	}
	if k.LinkIndex != 0 {
		name := linkName(k.LinkIndex)
		if name == "" {
			name = "if" + strconv.Itoa(k.LinkIndex)
		}
		b.WriteString(" dev " + name)
	}
	if k.Table != TableMain {
		fmt.Fprintf(&b, " table %d", k.Table)
	}
	fmt.Fprintf(&b, " proto %d", k.Protocol)
	if k.Scope == ScopeLink {
		b.WriteString(" scope link")
	}
	if k.Src.IsValid() {
		b.WriteString(" src " + k.Src.String())
	}
	if !k.defaultPriority() {
		fmt.Fprintf(&b, " metric %d", k.Priority)
	}
	for _, nh := range k.NextHops {
		b.WriteString(" nexthop")
		if nh.Gateway.IsValid() {
			b.WriteString(" via " + nh.Gateway.String())
		}
		if nh.LinkIndex != 0 {
			name := linkName(nh.LinkIndex)
			if name == "" {
				name = "if" + strconv.Itoa(nh.LinkIndex)
			}
			b.WriteString(" dev " + name)
		}
	}
	if k.Multipath && len(k.NextHops) == 0 {
		b.WriteString(" multipath")
	}
	return b.String()
}
