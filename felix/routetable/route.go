package routetable

import (
	"fmt"
	"net/netip"
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
}

// validate checks r and returns it with defaults filled in.
func (r Route) validate() (Route, error) {
	if r.Type == 0 {
		r.Type = TypeUnicast
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
		if r.Iface == "" && !r.Gateway.IsValid() {
			return fail("a unicast route needs an interface or a gateway")
		}
	case TypeBlackhole, TypeUnreachable, TypeProhibit:
		if r.Iface != "" || r.Gateway.IsValid() {
			return fail("a %s route takes no interface or gateway", r.Type)
		}
	default:
		return fail("unsupported type %s", r.Type)
	}
	if len(r.Iface) > 15 {
		return fail("interface name %q is longer than 15 bytes", r.Iface)
	}
	for _, a := range []struct {
		name string
		addr netip.Addr
	}{{"gateway", r.Gateway}, {"source", r.Src}} {
		if a.addr.IsValid() && a.addr.Is4() != r.Dst.Addr().Is4() {
			return fail("%s %s is not in the destination's family", a.name, a.addr)
		}
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
	// Multipath is set on a listed route with several next hops. bgpfabric
	// does not write those yet, so such a route never matches a wanted one.
	Multipath bool
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
		!have.Multipath
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
	if k.Multipath {
		b.WriteString(" multipath")
	}
	return b.String()
}
