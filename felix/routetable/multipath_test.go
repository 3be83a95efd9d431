package routetable

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// TestMultipath drives a multipath route through its life on the Fake:
// written once, left alone when unchanged (also after a resync, which must
// decode and compare the next hops), replaced when its next hops change or
// shrink to one, pending while a next hop's interface is down.
func TestMultipath(t *testing.T) {
	f := NewFake()
	f.AddLink("eth0", true)
	f.AddLink("eth1", true)
	rt := newTable(t, f)
	ecmp := Route{Dst: pfx("10.65.9.0/26"), NextHops: []NextHop{
		{Gateway: addr("10.99.0.3")}, {Gateway: addr("10.99.0.2")}, {Gateway: addr("10.99.0.2")}}}
	if err := rt.SetRoute(ecmp); err != nil {
		t.Fatal(err)
	}
	mustApply(t, rt)
	wantState(t, f, lines("10.65.9.0/26 proto 80 nexthop via 10.99.0.2 nexthop via 10.99.0.3"))

	// The same route with its next hops in another order is no change,
	// and a resync finds the kernel's route equal to the wanted one.
	before := f.Stats()
	if err := rt.SetRoute(Route{Dst: ecmp.Dst, NextHops: []NextHop{{Gateway: addr("10.99.0.2")}, {Gateway: addr("10.99.0.3")}}}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, rt)
	rt.Resync()
	mustApply(t, rt)
	if got := f.Stats(); got.Ops != before.Ops {
		t.Errorf("unchanged multipath route rewritten: %d ops, before %d", got.Ops, before.Ops)
	}

	// A third next hop, then one only: replaced each time.
	ecmp.NextHops = append(ecmp.NextHops, NextHop{Gateway: addr("10.99.0.4")})
	if err := rt.SetRoute(ecmp); err != nil {
		t.Fatal(err)
	}
	mustApply(t, rt)
	wantState(t, f, lines("10.65.9.0/26 proto 80 nexthop via 10.99.0.2 nexthop via 10.99.0.3 nexthop via 10.99.0.4"))
	if err := rt.SetRoute(Route{Dst: ecmp.Dst, NextHops: []NextHop{{Gateway: addr("10.99.0.4")}}}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, rt)
	wantState(t, f, lines("10.65.9.0/26 via 10.99.0.4 proto 80"))

	// Next hops through interfaces: pending while one of them is down.
	viaIfaces := Route{Dst: ecmp.Dst, NextHops: []NextHop{
		{Gateway: addr("10.99.0.2"), Iface: "eth0"}, {Gateway: addr("10.98.0.2"), Iface: "eth1"}}}
	if err := rt.SetRoute(viaIfaces); err != nil {
		t.Fatal(err)
	}
	rt.OnLinkUpdate(linkUpdate(f, "eth0"))
	rt.OnLinkUpdate(LinkUpdate{Link: f.SetLinkUp("eth1", false)})
	mustApply(t, rt)
	wantState(t, f, "")
	if p := rt.Pending(); len(p) != 1 || p[0].Dst != ecmp.Dst {
		t.Errorf("Pending = %v, want the multipath route once", p)
	}
	rt.OnLinkUpdate(LinkUpdate{Link: f.SetLinkUp("eth1", true)})
	mustApply(t, rt)
	wantState(t, f, lines("10.65.9.0/26 proto 80 nexthop via 10.98.0.2 dev eth1 nexthop via 10.99.0.2 dev eth0"))

	rt.DeleteRoute(ecmp.Dst)
	mustApply(t, rt)
	wantState(t, f, "")
}

func TestMultipathValidation(t *testing.T) {
	rt := newTable(t, NewFake())
	for _, r := range []Route{
		{Dst: pfx("10.65.9.0/26"), Gateway: addr("10.0.0.1"), NextHops: []NextHop{{Gateway: addr("10.0.0.2")}, {Gateway: addr("10.0.0.3")}}},
		{Dst: pfx("10.65.9.0/26"), NextHops: []NextHop{{Gateway: addr("10.0.0.2")}, {}}},
		{Dst: pfx("10.65.9.0/26"), NextHops: []NextHop{{Gateway: addr("10.0.0.2")}, {Gateway: addr("fd00::1")}}},
		{Dst: pfx("10.65.9.0/26"), Type: TypeBlackhole, NextHops: []NextHop{{Gateway: addr("10.0.0.2")}, {Gateway: addr("10.0.0.3")}}},
	} {
		if err := rt.SetRoute(r); err == nil {
			t.Errorf("SetRoute(%+v) accepted", r)
		}
	}
	// The caller's slice is not reordered.
	nhs := []NextHop{{Gateway: addr("10.0.0.3")}, {Gateway: addr("10.0.0.2")}}
	if err := rt.SetRoute(Route{Dst: pfx("10.65.9.0/26"), NextHops: nhs}); err != nil {
		t.Fatal(err)
	}
	if nhs[0].Gateway != addr("10.0.0.3") {
		t.Error("SetRoute sorted the caller's next hops")
	}
}

// ipRouteOf returns `ip route show DST` in ns on one line, whitespace
// collapsed.
func ipRouteOf(t testing.TB, ns *nstest.NS, dst string) string {
	t.Helper()
	family := "-4"
	if strings.Contains(dst, ":") {
		family = "-6"
	}
	b, err := exec.Command("ip", "-n", ns.Name, family, "route", "show", "table", "main", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("ip route show %s: %v: %s", dst, err, b)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// countingDP counts the route ops written through it.
type countingDP struct {
	Dataplane
	ops int
}

func (c *countingDP) WriteRoutes(ctx context.Context, ops []RouteOp) []OpError {
	c.ops += len(ops)
	return c.Dataplane.WriteRoutes(ctx, ops)
}

// TestNetlinkMultipath programs IPv4 and IPv6 ECMP routes in a real
// kernel, checks them with `ip route`, checks that a resync decodes them
// as equal (no writes), and that changes and deletes take effect.
func TestNetlinkMultipath(t *testing.T) {
	ns := nstest.New(t)
	v0, _ := nstest.Veth(t, ns, "v0", ns, "v1")
	link, err := ns.Netlink.LinkByIndex(v0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.99.0.1/24", "fd00:99::1/64"} {
		na, _ := netlink.ParseAddr(a)
		na.Flags = 0x02 // IFA_F_NODAD: the gateways are reachable at once
		if err := ns.Netlink.AddrAdd(link, na); err != nil {
			t.Fatal(err)
		}
	}
	dp := &countingDP{Dataplane: newNetlink(t, ns)}
	rt := newNetlinkTable(t, dp)
	v4 := Route{Dst: pfx("10.65.9.0/26"), NextHops: []NextHop{{Gateway: addr("10.99.0.3")}, {Gateway: addr("10.99.0.2")}}}
	v6 := Route{Dst: pfx("fd00:65::/122"), NextHops: []NextHop{{Gateway: addr("fd00:99::3"), Iface: "v0"}, {Gateway: addr("fd00:99::2"), Iface: "v0"}}}
	if err := rt.Set([]Route{v4, v6}); err != nil {
		t.Fatal(err)
	}
	mustApplyCtx(t, rt)
	want4 := "10.65.9.0/26 proto 80 nexthop via 10.99.0.2 dev v0 weight 1 nexthop via 10.99.0.3 dev v0 weight 1"
	if got := ipRouteOf(t, ns, "10.65.9.0/26"); got != want4 {
		t.Errorf("IPv4 ECMP route:\n got %q\nwant %q", got, want4)
	}
	want6 := "fd00:65::/122 proto 80 metric 1024 pref medium nexthop via fd00:99::2 dev v0 weight 1 nexthop via fd00:99::3 dev v0 weight 1"
	if got := ipRouteOf(t, ns, "fd00:65::/122"); got != want6 {
		t.Errorf("IPv6 ECMP route:\n got %q\nwant %q", got, want6)
	}

	// A resync (in a new RouteTable, as after a restart) reads them back
	// as what is wanted: nothing is written.
	dp.ops = 0
	rt2 := newNetlinkTable(t, dp)
	if err := rt2.Set([]Route{v4, v6}); err != nil {
		t.Fatal(err)
	}
	mustApplyCtx(t, rt2)
	if dp.ops != 0 {
		t.Errorf("a resync of unchanged ECMP routes wrote %d ops", dp.ops)
	}

	// One next hop withdrawn: a plain route. Then a third added back.
	v4one := Route{Dst: v4.Dst, Gateway: addr("10.99.0.3")}
	v6three := Route{Dst: v6.Dst, NextHops: append(v6.NextHops[:2:2], NextHop{Gateway: addr("fd00:99::4"), Iface: "v0"})}
	if err := rt2.Set([]Route{v4one, v6three}); err != nil {
		t.Fatal(err)
	}
	mustApplyCtx(t, rt2)
	if got, want := ipRouteOf(t, ns, "10.65.9.0/26"), "10.65.9.0/26 via 10.99.0.3 dev v0 proto 80"; got != want {
		t.Errorf("IPv4 route after a withdrawal:\n got %q\nwant %q", got, want)
	}
	want6 = "fd00:65::/122 proto 80 metric 1024 pref medium nexthop via fd00:99::2 dev v0 weight 1 nexthop via fd00:99::3 dev v0 weight 1 nexthop via fd00:99::4 dev v0 weight 1"
	if got := ipRouteOf(t, ns, "fd00:65::/122"); got != want6 {
		t.Errorf("IPv6 route with three next hops:\n got %q\nwant %q", got, want6)
	}
	rt2.Resync()
	dp.ops = 0
	mustApplyCtx(t, rt2)
	if dp.ops != 0 {
		t.Errorf("a resync after the change wrote %d ops", dp.ops)
	}

	// Back to two on IPv4, then everything deleted.
	if err := rt2.Set([]Route{v4}); err != nil {
		t.Fatal(err)
	}
	mustApplyCtx(t, rt2)
	if got := ipRouteOf(t, ns, "10.65.9.0/26"); got != want4 {
		t.Errorf("IPv4 ECMP route again:\n got %q\nwant %q", got, want4)
	}
	if got := ipRouteOf(t, ns, "fd00:65::/122"); got != "" {
		t.Errorf("IPv6 route not deleted: %q", got)
	}
	if err := rt2.Set(nil); err != nil {
		t.Fatal(err)
	}
	mustApplyCtx(t, rt2)
	if got := ipRouteOf(t, ns, "10.65.9.0/26"); got != "" {
		t.Errorf("IPv4 route not deleted: %q", got)
	}
}
