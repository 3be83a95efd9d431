package speakerproc

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/internal/heaptest"
	"github.com/bgpfabric/bgpfabric/router"
)

// BenchmarkClientPathMemory: the node's side of the speaker process (the
// Client) while its child, a GoBGP speaker reporting received paths,
// learns 600 paths from a peer (127.0.0.2) and streams them to the
// watcher, which keeps nothing. Reported is the live heap the node's
// process holds afterwards for the stream (heap-B/path): what the
// protocol buffers or keeps of the paths it passed on.
func BenchmarkClientPathMemory(b *testing.B) {
	const n = 600
	var total float64
	for range b.N {
		total += float64(clientPathMemory(b, n))
	}
	b.ReportMetric(total/float64(b.N)/n, "heap-B/path")
}

func clientPathMemory(b *testing.B, n int) int64 {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	h := &harness{port: port}
	h.c = New(Config{Command: SelfCommand("-test.run=^$")})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	got := 0
	if err := h.c.WatchReceived(ctx, func(rs []router.Received) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			if !r.Withdrawn && !r.EndOfRIB.IsValid() {
				got++
			}
		}
	}); err != nil {
		b.Fatal(err)
	}
	if err := h.c.Start(ctx, router.Global{AS: 64512, RouterID: speakerAddr, ListenPort: int32(port),
		ListenAddresses: []netip.Addr{speakerAddr}, ExportPolicy: router.ExportLocalOnly, ReceivedPaths: true}); err != nil {
		b.Fatal(err)
	}
	defer h.c.Stop(context.Background())
	if err := h.addPeer(ctx); err != nil {
		b.Fatal(err)
	}
	if err := h.c.Announce(ctx, []router.LocalRoute{{Prefix: netip.MustParsePrefix("10.66.0.0/24")}}); err != nil {
		b.Fatal(err)
	}
	s, err := h.dial(30 * time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer s.conn.Close()
	send := func(i int) {
		pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, byte(i >> 2), byte(i&3) << 6}), 26)
		nh := netip.AddrFrom4([4]byte{10, 64, byte((i + 20) >> 8), byte(i + 20)})
		attrs := []bgp.PathAttributeInterface{
			bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
			bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65050})}),
			bgp.NewPathAttributeNextHop(nh.String()),
			bgp.NewPathAttributeCommunities([]uint32{64512<<16 | 100}),
		}
		if err := s.send(bgp.NewBGPUpdateMessage(nil, attrs, []*bgp.IPAddrPrefix{bgp.NewIPAddrPrefix(uint8(pfx.Bits()), pfx.Addr().String())})); err != nil {
			b.Fatal(err)
		}
	}
	wait := func(want int) {
		deadline := time.Now().Add(time.Minute)
		for {
			mu.Lock()
			g := got
			mu.Unlock()
			if g == want {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d paths received after a minute, want %d", g, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The first path's one-time costs (the decoder's types) are not a
	// cost per path.
	send(n)
	wait(1)
	before := heaptest.Live()
	for i := range n {
		send(i)
	}
	wait(n + 1)
	after := heaptest.Live()
	// Signed: the heap may end lower than it began.
	return after - before
}
