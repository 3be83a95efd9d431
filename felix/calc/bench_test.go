package calc

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
)

// benchSnapshot is n local endpoints, one /26 block per 64 of them, and as
// many endpoints of another node.
func benchSnapshot(n int) []api.Resource {
	rs := make([]api.Resource, 0, 2*n+n/64+1)
	addr := func(i int) string {
		a := netip.AddrFrom4([4]byte{10, byte(64 + i>>16), byte(i >> 8), byte(i)})
		return a.String() + "/32"
	}
	for i := range n {
		rs = append(rs, wep("ns", fmt.Sprintf("w%d", i), thisNode, fmt.Sprintf("wl%d", i), addr(i)))
		rs = append(rs, wep("ns", fmt.Sprintf("r%d", i), "node-2", fmt.Sprintf("wl%d", i), addr(n+i)))
		if i%64 == 0 {
			rs = append(rs, block(netip.PrefixFrom(netip.MustParsePrefix(addr(i)).Addr(), 26).Masked().String(), thisNode))
		}
	}
	return rs
}

// BenchmarkCalc is a 10,000-endpoint snapshot turned into desired routes
// and interfaces (the first TakeDelta), as felix does on start.
func BenchmarkCalc(b *testing.B) {
	rs := benchSnapshot(10000)
	b.ReportAllocs()
	for b.Loop() {
		c := New(Config{NodeName: thisNode})
		c.OnSnapshot(rs)
		d := c.TakeDelta()
		if len(d.Routes) != 10000+10000/64+1 {
			b.Fatalf("%d routes", len(d.Routes))
		}
	}
}

// BenchmarkCalcUpdate is one endpoint update against 10,000.
func BenchmarkCalcUpdate(b *testing.B) {
	c := New(Config{NodeName: thisNode})
	c.OnSnapshot(benchSnapshot(10000))
	c.TakeDelta()
	w1 := wep("ns", "w5", thisNode, "wl5", "10.99.0.1/32")
	w2 := wep("ns", "w5", thisNode, "wl5", "10.99.0.2/32")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			c.OnUpdate(w1)
		} else {
			c.OnUpdate(w2)
		}
		if d := c.TakeDelta(); len(d.Routes) != 2 {
			b.Fatalf("delta %v", renderDelta(d))
		}
	}
}
