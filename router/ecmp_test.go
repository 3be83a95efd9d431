package router_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/router"
)

// TestECMP: two nodes announce the same prefix (an anycast block) to a
// third, whose kernel gets one route with both next hops (RTA_MULTIPATH);
// when one withdraws, it is a single path again, and when it comes back,
// multipath again.
func TestECMP(t *testing.T) {
	f := newFabric(t)
	f.apply(fastTimers())
	n1 := f.addNode("n1", "10.99.0.1/24")
	n2 := f.addNode("n2", "10.99.0.2/24")
	n3 := f.addNode("n3", "10.99.0.3/24")
	anycast := netip.MustParsePrefix("10.65.100.0/26")
	addBlackhole(t, n1.ns, anycast.String())
	bh2 := addBlackhole(t, n2.ns, anycast.String())
	for _, n := range []*fabricNode{n1, n2, n3} {
		f.start(n)
	}
	both := fmt.Sprintf("via 10.99.0.1,10.99.0.2 proto %d", router.ProtoRouter)
	waitRoute(t, n3.ns, anycast, both, 30*time.Second)

	// n2 withdraws: n3 forwards to n1 only.
	if err := n2.ns.Netlink.RouteDel(bh2); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, n3.ns, anycast, fmt.Sprintf("via 10.99.0.1 proto %d", router.ProtoRouter), 10*time.Second)
	// n2 now learns the prefix from n1 (its blackhole is gone).
	waitRoute(t, n2.ns, anycast, fmt.Sprintf("via 10.99.0.1 proto %d", router.ProtoRouter), 10*time.Second)

	// n2 announces again (its blackhole replaces the learned route):
	// multipath again on n3.
	if err := n2.ns.Netlink.RouteReplace(bh2); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, n3.ns, anycast, both, 10*time.Second)
}
