package router

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// kernelRoutes renders the IPv4 routes of the main table in ns as
// "dst via gw proto P metric M", sorted.
func kernelRoutes(t *testing.T, ns *nstest.NS) []string {
	t.Helper()
	rs, err := ns.Netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Gw == nil {
			continue // the connected subnet
		}
		dst := "0.0.0.0/0"
		if r.Dst != nil {
			dst = r.Dst.String()
		}
		out = append(out, fmt.Sprintf("%s via %s proto %d metric %d", dst, r.Gw, int(r.Protocol), r.Priority))
	}
	slices.Sort(out)
	return out
}

// TestLearnedRouteNeverShadowsAnotherOwner: in a namespace, a DHCP
// client's default route (protocol dhcp, metric 100) and an operator's
// static route (protocol static, metric 50) are in place. A peer
// advertises 0.0.0.0/0, that static prefix and an ordinary block: only
// the block is installed; the learned default would have won over the
// DHCP one at metric 0, and it is not installed. The other owners' routes
// are untouched.
func TestLearnedRouteNeverShadowsAnotherOwner(t *testing.T) {
	ns := nstest.New(t)
	peer := nstest.New(t)
	nstest.Veth(t, ns, "eth0", peer, "eth0")
	eth, err := ns.Netlink.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr("10.97.0.1/24")
	if err := ns.Netlink.AddrAdd(eth, a); err != nil {
		t.Fatal(err)
	}
	gw := net.ParseIP("10.97.0.254")
	_, static, _ := net.ParseCIDR("10.200.0.0/16")
	for _, r := range []*netlink.Route{
		{LinkIndex: eth.Attrs().Index, Gw: gw, Protocol: 16, Priority: 100},            // DHCP default
		{LinkIndex: eth.Attrs().Index, Dst: static, Gw: gw, Protocol: 4, Priority: 50}, // static
	} {
		if err := ns.Netlink.RouteAdd(r); err != nil {
			t.Fatal(err)
		}
	}
	before := kernelRoutes(t, ns)

	var logs lockedBuffer
	h := start(t, func(c *Config) {
		c.Netns = ns.Handle
		c.Dataplane = nil // netlink in ns
		c.WatchLinks = nil
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	h.res.snapshot(t, node("n1", "10.97.0.1/24"), node("n2", "10.97.0.2/24"), meshConfig("90s"))
	waitUntil(t, "speaker started", func() bool { _, ok := h.sp.Started(); return ok })
	via := []Path{{NextHop: addr("10.97.0.2"), Peer: addr("10.97.0.2")}}
	h.sp.Learn(
		Destination{Prefix: pfx("0.0.0.0/0"), Paths: via},
		Destination{Prefix: pfx("10.200.0.0/16"), Paths: via},
		Destination{Prefix: pfx("10.65.2.0/26"), Paths: via},
	)
	want := append(slices.Clone(before), "10.65.2.0/26 via 10.97.0.2 proto 81 metric 0")
	slices.Sort(want)
	block := "10.65.2.0/26 via 10.97.0.2 proto 81 metric 0"
	waitUntil(t, "the block installed", func() bool { return slices.Contains(kernelRoutes(t, ns), block) })
	// The block is installed in the same apply as any route for the
	// other two would have been: the kernel now shows the result.
	if got := kernelRoutes(t, ns); !slices.Equal(got, want) {
		t.Errorf("kernel routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A prefix the guard saw free earlier: learned, withdrawn, then an
	// operator's route takes it, and it is learned again. The route
	// table finds the conflict when it applies, and leaves the route.
	late := pfx("10.65.9.0/26")
	lateRoute := "10.65.9.0/26 via 10.97.0.2 proto 81 metric 0"
	h.sp.Learn(Destination{Prefix: late, Paths: via})
	waitUntil(t, "the late block installed", func() bool { return slices.Contains(kernelRoutes(t, ns), lateRoute) })
	h.sp.Learn(Destination{Prefix: late})
	waitUntil(t, "the late block withdrawn", func() bool { return !slices.Contains(kernelRoutes(t, ns), lateRoute) })
	_, lateNet, _ := net.ParseCIDR(late.String())
	if err := ns.Netlink.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: lateNet, Gw: gw, Protocol: 4}); err != nil {
		t.Fatal(err)
	}
	h.sp.Learn(Destination{Prefix: late, Paths: via})
	waitUntil(t, "the conflict logged", func() bool {
		return strings.Contains(logs.String(), "learned routes left to routes we do not own") ||
			strings.Contains(logs.String(), "prefix=10.65.9.0/26")
	})
	// Other routes come and go: each change applies again, the conflicts
	// stay, and they are not logged again.
	for i := range 5 {
		p := pfx(fmt.Sprintf("10.65.%d.0/26", 10+i))
		// The conflicting prefix's path changes too (as while a peer
		// drains), so the route table tries it again.
		nh := addr(fmt.Sprintf("10.97.0.%d", 3+i))
		h.sp.Learn(Destination{Prefix: p, Paths: via}, Destination{Prefix: late, Paths: []Path{{NextHop: nh, Peer: addr("10.97.0.2")}}})
		r := fmt.Sprintf("%s via 10.97.0.2 proto 81 metric 0", p)
		waitUntil(t, "another block installed", func() bool { return slices.Contains(kernelRoutes(t, ns), r) })
	}
	if n := strings.Count(logs.String(), "learned routes left to routes we do not own") + strings.Count(logs.String(), "prefix=10.65.9.0/26"); n != 1 {
		t.Errorf("the conflict was logged %d times, want once:\n%s", n, logs.String())
	}
	if got := kernelRoutes(t, ns); !slices.Contains(got, "10.65.9.0/26 via 10.97.0.254 proto 4 metric 0") || slices.Contains(got, lateRoute) {
		t.Errorf("kernel routes after the late conflict:\n%s", strings.Join(got, "\n"))
	}
}
