package reflector

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// fibNS is a namespace for kernel FIB tests: a veth pair inside it with
// 10.99.0.1/24 and fd99::1/64 on one end, so that next hops 10.99.0.x and
// fd99::x are reachable (the kernel refuses routes through unreachable
// ones), a route that an earlier run of ours left (protocol 81), and one
// of another protocol (4, static) on a prefix a client will announce.
func fibNS(t *testing.T) *nstest.NS {
	t.Helper()
	ns := nstest.New(t)
	nstest.Veth(t, ns, "fib0", ns, "fib1")
	l, err := ns.Netlink.LinkByName("fib0")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.99.0.1/24", "fd99::1/64"} {
		addr, _ := netlink.ParseAddr(a)
		addr.Flags = unix.IFA_F_NODAD
		if err := ns.Netlink.AddrAdd(l, addr); err != nil {
			t.Fatalf("adding %s: %v", a, err)
		}
	}
	addRoute(t, ns, "10.77.0.0/24", "10.99.0.77", 81)
	addRoute(t, ns, "10.88.0.0/24", "10.99.0.88", 4)
	return ns
}

func addRoute(t *testing.T, ns *nstest.NS, dst, gw string, proto int) {
	t.Helper()
	_, d, _ := net.ParseCIDR(dst)
	if err := ns.Netlink.RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(gw), Protocol: netlink.RouteProtocol(proto)}); err != nil {
		t.Fatalf("adding %s via %s proto %d: %v", dst, gw, proto, err)
	}
}

// kernelRoutes renders the namespace's main-table routes that are not the
// kernel's own (connected subnets), decoded as `ip route` shows them
// (without the interface, fib0 for all).
func kernelRoutes(t *testing.T, ns *nstest.NS) []string {
	t.Helper()
	dp, err := routetable.NewNetlinkDataplane(ns.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	var out []string
	err = dp.ListRoutes(context.Background(), routetable.TableMain, 0, func(r routetable.KernelRoute) {
		if r.Protocol == unix.RTPROT_KERNEL {
			return
		}
		// Every gateway is on fib0: leave the interface out.
		r.LinkIndex = 0
		for i := range r.NextHops {
			r.NextHops[i].LinkIndex = 0
		}
		out = append(out, r.Format(func(int) string { return "" }))
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// waitKernel polls the namespace's routes until they are want; route
// changes in another namespace give the test no event it could wait on
// without a subscription of its own, and the writes come in one batch.
func waitKernel(t *testing.T, ns *nstest.NS, want ...string) {
	t.Helper()
	slices.Sort(want)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := kernelRoutes(t, ns)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kernel routes (-want +got):\n%s", cmp.Diff(want, got))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const (
	kernStale   = "10.77.0.0/24 via 10.99.0.77 proto 81"
	kernForeign = "10.88.0.0/24 via 10.99.0.88 proto 4"
)

// TestFIBKernel programs a real kernel: a namespace of the test's own
// (the reflector and its clients talk over loopback; only its kernel
// routes go into the namespace). The route an earlier run left is
// removed at start, the best paths land (an IPv4 ECMP route for two equal
// paths, an IPv6 route), follow withdrawals, the foreign route on an
// announced prefix is left alone, and a clean stop removes every route of
// ours. Then a reflector without ProgramFIB, with the same routes
// flowing, leaves the namespace exactly as it was.
func TestFIBKernel(t *testing.T) {
	ns := fibNS(t)
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.ProgramFIB, cfg.FIB.Netns = true, ns.Handle
	_, addr, stop := runReflector(t, cfg)
	t.Cleanup(stop)
	waitKernel(t, ns, kernForeign)

	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	collect(t, b, false, hasEORs)
	a.send(t, ipv4Update("10.99.0.2", pfx("10.1.0.0/24", "10.2.0.0/24", "10.88.0.0/24")))
	b.send(t, ipv4Update("10.99.0.3", pfx("10.1.0.0/24")))
	a.send(t, ipv6Update("fd99::2", "fd00:1::/64"))
	waitKernel(t, ns,
		"10.1.0.0/24 proto 81 nexthop via 10.99.0.2 nexthop via 10.99.0.3",
		"10.2.0.0/24 via 10.99.0.2 proto 81",
		"fd00:1::/64 via fd99::2 proto 81",
		kernForeign)

	a.send(t, ipv4Withdraw(pfx("10.1.0.0/24", "10.2.0.0/24")))
	waitKernel(t, ns,
		"10.1.0.0/24 via 10.99.0.3 proto 81",
		"fd00:1::/64 via fd99::2 proto 81",
		kernForeign)

	stop()
	if got := kernelRoutes(t, ns); !slices.Equal(got, []string{kernForeign}) {
		t.Errorf("after a clean stop, kernel routes %q, want only %q", got, kernForeign)
	}

	// FIB off: nothing changes, not even our protocol's leftovers.
	addRoute(t, ns, "10.77.0.0/24", "10.99.0.77", 81)
	before := kernelRoutes(t, ns)
	cfg.ProgramFIB = false
	_, addr, stop = runReflector(t, cfg)
	t.Cleanup(stop)
	a = connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b = connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	collect(t, b, false, hasEORs)
	a.send(t, ipv4Update("10.99.0.2", pfx("10.1.0.0/24")))
	collect(t, b, false, hasKeys("10.1.0.0/24"))
	stop()
	if got := kernelRoutes(t, ns); !slices.Equal(got, before) {
		t.Errorf("without ProgramFIB the kernel changed:\n%s", cmp.Diff(before, got))
	}
	if !slices.Contains(before, kernStale) {
		t.Errorf("test setup: %q missing from %q", kernStale, strings.Join(before, "; "))
	}
}

// ipv6Update announces an IPv6 prefix in MP_REACH_NLRI.
func ipv6Update(nh, prefix string) *bgp.BGPMessage {
	p := netip.MustParsePrefix(prefix)
	nlri := []bgp.AddrPrefixInterface{bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())}
	return bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath(nil),
		bgp.NewPathAttributeLocalPref(100),
		bgp.NewPathAttributeMpReachNLRI(nh, nlri),
	}, nil)
}
