package routetable

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// These tests program a real kernel, each in a namespace of its own, and
// check the result with `ip route`, independently of our own decoding.

func newNetlink(t testing.TB, ns *nstest.NS) *NetlinkDataplane {
	t.Helper()
	dp, err := NewNetlinkDataplane(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Close() })
	return dp
}

func newNetlinkTable(t testing.TB, dp Dataplane) *RouteTable {
	t.Helper()
	rt, err := New(Config{}, dp)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// ipRoutes returns `ip route` of the main table of ns for both families,
// sorted, without the kernel's own routes.
func ipRoutes(t testing.TB, ns *nstest.NS) []string {
	t.Helper()
	var out []string
	for _, family := range []string{"-4", "-6"} {
		b, err := exec.Command("ip", "-n", ns.Name, family, "route", "show", "table", "main").CombinedOutput()
		if err != nil {
			t.Fatalf("ip route: %v: %s", err, b)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if l != "" && !strings.Contains(l, "proto kernel") {
				out = append(out, strings.TrimSpace(l))
			}
		}
	}
	slices.Sort(out)
	return out
}

func wantIPRoutes(t testing.TB, ns *nstest.NS, want ...string) {
	t.Helper()
	slices.Sort(want)
	if diff := cmp.Diff(want, ipRoutes(t, ns)); diff != "" {
		t.Errorf("ip route (-want +got):\n%s", diff)
	}
}

func mustApplyCtx(t testing.TB, rt *RouteTable) {
	t.Helper()
	if err := rt.Apply(context.Background()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func ipnet(p string) *net.IPNet {
	_, n, err := net.ParseCIDR(p)
	if err != nil {
		panic(err)
	}
	return n
}

func TestNetlinkOwnership(t *testing.T) {
	ns := nstest.New(t)
	v0, _ := nstest.Veth(t, ns, "v0", ns, "v1")
	dp := newNetlink(t, ns)

	// Foreign routes: one beside ours, one on a prefix we will want.
	for _, r := range []netlink.Route{
		{Dst: ipnet("10.70.0.0/24"), LinkIndex: v0, Protocol: 4, Scope: netlink.SCOPE_LINK},
		{Dst: ipnet("10.65.0.9/32"), LinkIndex: v0, Protocol: 12, Scope: netlink.SCOPE_LINK},
	} {
		if err := ns.Netlink.RouteAdd(&r); err != nil {
			t.Fatal(err)
		}
	}

	// A previous run left routes of ours, some wanted, some not, and one
	// wanted route at a metric we do not use.
	prev := newNetlinkTable(t, dp)
	if err := prev.Set([]Route{
		{Dst: pfx("10.65.0.3/32"), Iface: "v1"}, // will move to v0
		{Dst: pfx("10.99.0.0/26"), Type: TypeBlackhole},
		{Dst: pfx("fd00:99::1/128"), Iface: "v0"},
	}); err != nil {
		t.Fatal(err)
	}
	mustApplyCtx(t, prev)
	if err := ns.Netlink.RouteAdd(&netlink.Route{Dst: ipnet("10.65.0.4/32"), LinkIndex: v0, Protocol: 80, Priority: 50, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}

	rt := newNetlinkTable(t, dp)
	if err := rt.Set([]Route{
		{Dst: pfx("10.65.0.3/32"), Iface: "v0"},
		{Dst: pfx("10.65.0.4/32"), Iface: "v0"},
		{Dst: pfx("10.65.0.9/32"), Iface: "v0"},
		{Dst: pfx("10.65.0.0/26"), Type: TypeBlackhole},
		// With Iface: without one, the kernel picks the interface by
		// the route to the gateway when it adds the route, which may
		// still be the old one through v1.
		{Dst: pfx("10.66.0.0/24"), Gateway: addr("10.65.0.3"), Iface: "v0"},
		{Dst: pfx("fd00:65::3/128"), Iface: "v0"},
		{Dst: pfx("fd00:65::/120"), Type: TypeBlackhole},
	}); err != nil {
		t.Fatal(err)
	}
	err := rt.Apply(context.Background())
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Dst != pfx("10.65.0.9/32") || ce.Protocol != 12 {
		t.Errorf("Apply = %v, want a conflict on 10.65.0.9/32 with protocol 12", err)
	}
	want := []string{
		"10.65.0.3 dev v0 proto 80 scope link",
		"10.65.0.4 dev v0 proto 80 scope link",
		"blackhole 10.65.0.0/26 proto 80",
		"10.66.0.0/24 via 10.65.0.3 dev v0 proto 80",
		"fd00:65::3 dev v0 proto 80 metric 1024 pref medium",
		"blackhole fd00:65::/120 dev lo proto 80 metric 1024 pref medium",
		"10.70.0.0/24 dev v0 proto static scope link",
		"10.65.0.9 dev v0 proto bird scope link",
	}
	wantIPRoutes(t, ns, want...)

	// Converged: applying again, or resyncing, changes nothing.
	mustApplyCtx(t, rt)
	rt.Resync()
	if err := rt.Apply(context.Background()); !errors.As(err, &ce) {
		t.Errorf("Apply after Resync = %v, want the conflict again", err)
	}
	wantIPRoutes(t, ns, want...)
}

func TestNetlinkPendingUntilLinkAppears(t *testing.T) {
	ns := nstest.New(t)
	dp := newNetlink(t, ns)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	updates, err := WatchLinks(ctx, ns.Handle, nil)
	if err != nil {
		t.Fatal(err)
	}
	rt := newNetlinkTable(t, dp)
	if err := rt.Set([]Route{
		{Dst: pfx("10.65.0.7/32"), Iface: "late0"},
		{Dst: pfx("fd00::7/128"), Iface: "late0"},
	}); err != nil {
		t.Fatal(err)
	}
	mustApplyCtx(t, rt)
	wantIPRoutes(t, ns)
	if n := len(rt.Pending()); n != 2 {
		t.Errorf("%d routes pending, want 2", n)
	}

	// feed passes link updates to rt until one for late0 satisfies ok.
	feed := func(ok func(LinkUpdate) bool) {
		t.Helper()
		for {
			select {
			case u, open := <-updates:
				if !open {
					t.Fatal("link updates closed")
				}
				rt.OnLinkUpdate(u)
				if u.Name == "late0" && ok(u) {
					return
				}
			case <-ctx.Done():
				t.Fatal("no link update for late0")
			}
		}
	}
	nstest.Veth(t, ns, "late0", ns, "late1")
	feed(func(u LinkUpdate) bool { return u.Up })
	mustApplyCtx(t, rt)
	wantIPRoutes(t, ns,
		"10.65.0.7 dev late0 proto 80 scope link",
		"fd00::7 dev late0 proto 80 metric 1024 pref medium",
	)
	if p := rt.Pending(); len(p) != 0 {
		t.Errorf("pending: %v", p)
	}

	link, err := ns.Netlink.LinkByName("late0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Netlink.LinkDel(link); err != nil {
		t.Fatal(err)
	}
	feed(func(u LinkUpdate) bool { return u.Deleted })
	mustApplyCtx(t, rt)
	wantIPRoutes(t, ns)
	if n := len(rt.Pending()); n != 2 {
		t.Errorf("%d routes pending after the link went, want 2", n)
	}
}

func TestNetlinkResyncRepairs(t *testing.T) {
	ns := nstest.New(t)
	v0, _ := nstest.Veth(t, ns, "v0", ns, "v1")
	dp := newNetlink(t, ns)
	rt := newNetlinkTable(t, dp)
	routes := hostRoutes(1000, "v0")
	if err := rt.Set(routes); err != nil {
		t.Fatal(err)
	}
	mustApplyCtx(t, rt)
	want := ipRoutes(t, ns)
	if len(want) != 1000 {
		t.Fatalf("%d routes programmed, want 1000", len(want))
	}

	// Behind our back: delete 5, turn 5 into blackholes, add one of ours
	// that nobody wants, and one foreign.
	for i := range 10 {
		r := netlink.Route{Dst: prefixNet(routes[i*7].Dst), LinkIndex: v0, Protocol: 80, Scope: netlink.SCOPE_LINK}
		if i%2 == 0 {
			err := ns.Netlink.RouteDel(&r)
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		r.Type, r.LinkIndex, r.Scope = syscall.RTN_BLACKHOLE, 0, netlink.SCOPE_UNIVERSE
		if err := ns.Netlink.RouteReplace(&r); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []netlink.Route{
		{Dst: ipnet("10.99.0.0/24"), Type: syscall.RTN_BLACKHOLE, Protocol: 80},
		{Dst: ipnet("10.98.0.0/24"), Type: syscall.RTN_BLACKHOLE, Protocol: 186},
	} {
		if err := ns.Netlink.RouteAdd(&r); err != nil {
			t.Fatal(err)
		}
	}
	rt.Resync()
	mustApplyCtx(t, rt)
	want = append(want, "blackhole 10.98.0.0/24 proto bgp")
	slices.Sort(want)
	if diff := cmp.Diff(want, ipRoutes(t, ns)); diff != "" {
		t.Errorf("after resync (-want +got):\n%s", diff)
	}
}

// TestNetlinkBatchErrors checks that a batch reports the failures of single
// routes, by index, and programs all the others.
func TestNetlinkBatchErrors(t *testing.T) {
	ns := nstest.New(t)
	v0, _ := nstest.Veth(t, ns, "v0", ns, "v1")
	dp := newNetlink(t, ns)
	const n = 20000 // several batches
	var ops []RouteOp
	wantFailed := map[int]error{}
	for i, r := range hostRoutes(n, "") {
		k := KernelRoute{Table: 254, Protocol: 80, Type: TypeUnicast, Scope: ScopeLink, Dst: r.Dst, LinkIndex: v0}
		switch {
		case i%1000 == 17:
			k.LinkIndex = 9999
			wantFailed[i] = syscall.ENODEV
		case i == n-1: // the last one carries the batch's ACK
			k.LinkIndex = 9998
			wantFailed[i] = syscall.ENODEV
		case i%1000 == 500:
			// Deleting what is not there.
			ops = append(ops, RouteOp{Kind: OpDelete, Route: KernelRoute{Table: 254, Protocol: 80, Scope: scopeNowhere, Dst: pfx("10.200.0.1/32")}})
			wantFailed[i] = syscall.ESRCH
			continue
		}
		ops = append(ops, RouteOp{Kind: OpAdd, Route: k})
	}
	// And an add on a prefix that the first op took.
	ops = append(ops, RouteOp{Kind: OpAdd, Route: ops[0].Route})
	wantFailed[n] = syscall.EEXIST

	failed := dp.WriteRoutes(context.Background(), ops)
	got := map[int]error{}
	for _, f := range failed {
		got[f.Index] = f.Err
	}
	if len(got) != len(wantFailed) {
		t.Errorf("%d ops failed, want %d", len(got), len(wantFailed))
	}
	for i, want := range wantFailed {
		if !errors.Is(got[i], want) {
			t.Errorf("op %d: %v, want %v", i, got[i], want)
		}
	}
	if !slices.IsSortedFunc(failed, func(a, b OpError) int { return a.Index - b.Index }) {
		t.Error("failures not in order")
	}
	if got, want := countRoutes(t, dp), n-20-20-1; got != want {
		t.Errorf("%d routes in the kernel, want %d", got, want)
	}
}

// hostRoutes returns n /32 routes 10.64.0.0, 10.64.0.1, ... through iface
// (blackholes without one).
func hostRoutes(n int, iface string) []Route {
	routes := make([]Route, n)
	base := netip.MustParseAddr("10.64.0.0").As4()
	for i := range routes {
		v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(i)
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		routes[i] = Route{Dst: netip.PrefixFrom(a, 32), Iface: iface}
		if iface == "" {
			routes[i].Type = TypeBlackhole
		}
	}
	return routes
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// countRoutes counts our routes in the main table.
func countRoutes(t testing.TB, dp Dataplane) int {
	t.Helper()
	n := 0
	if err := dp.ListRoutes(context.Background(), TableMain, ProtoFelix, func(KernelRoute) { n++ }); err != nil {
		t.Fatal(err)
	}
	return n
}
