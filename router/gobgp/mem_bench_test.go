package gobgp

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/heaptest"
	"github.com/bgpfabric/bgpfabric/router"
)

// Memory per learned path in the speaker's process (docs/scale.md,
// "Routes in the node agent"): what GoBGP and this package keep of the
// paths a node learns from its reflectors, as the live heap after a
// collection.

var speakerHeapProfile = flag.String("speaker.heapprofile", "", "write a heap profile of the speaker holding the paths of BenchmarkSpeakerPathMemory to this file")

// reflect sends what a reflector of rr-2x298 sends a compute node: one
// UPDATE per other node's block (its own next hop, originator and the
// reflector's cluster list; the same community on each), then End-of-RIB.
func (p *grPeer) reflect(from, nodes int, clusterID string) {
	p.t.Helper()
	for i := from; i < from+nodes; i++ {
		pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, byte(i >> 2), byte(i&3) << 6}), 26)
		nh := netip.AddrFrom4([4]byte{10, 64, byte((i + 20) >> 8), byte(i + 20)})
		attrs := []bgp.PathAttributeInterface{
			bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
			bgp.NewPathAttributeAsPath(nil),
			bgp.NewPathAttributeNextHop(nh.String()),
			bgp.NewPathAttributeLocalPref(100),
			bgp.NewPathAttributeCommunities([]uint32{64512<<16 | 100}),
			bgp.NewPathAttributeOriginatorId(nh.String()),
			bgp.NewPathAttributeClusterList([]string{clusterID}),
		}
		nlri := bgp.NewIPAddrPrefix(uint8(pfx.Bits()), pfx.Addr().String())
		p.send(bgp.NewBGPUpdateMessage(nil, attrs, []*bgp.IPAddrPrefix{nlri}))
	}
}

// BenchmarkSpeakerPathMemory: the speaker as the node's speaker process
// runs it (received paths reported, no transit), with sessions to two
// reflectors (hand-made peers on 127.0.0.2 and 127.0.0.3), learns the
// 600 paths of a compute node of rr-2x298 (300 blocks from each);
// reported is the live heap the speaker holds for them (heap-B/path).
func BenchmarkSpeakerPathMemory(b *testing.B) {
	const nodes = 300
	if *speakerHeapProfile != "" {
		defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	var total float64
	for range b.N {
		total += float64(speakerPathMemory(b, nodes))
	}
	b.ReportMetric(total/float64(b.N)/float64(2*nodes), "heap-B/path")
}

func speakerPathMemory(b *testing.B, nodes int) uint64 {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := New(Config{})
	if err := s.Start(ctx, router.Global{AS: 64512, RouterID: netip.MustParseAddr("127.0.0.1"), ListenPort: -1,
		ExportPolicy: router.ExportLocalOnly, ReceivedPaths: true}); err != nil {
		b.Fatal(err)
	}
	defer s.Stop(context.Background())
	var mu sync.Mutex
	n, eor := 0, 0
	if err := s.WatchReceived(ctx, func(rs []router.Received) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			switch {
			case r.EndOfRIB.IsValid():
				eor++
			case !r.Withdrawn:
				n++
			}
		}
	}); err != nil {
		b.Fatal(err)
	}
	var peers []*grPeer
	for _, a := range []string{"127.0.0.2", "127.0.0.3"} {
		ln, err := net.Listen("tcp4", a+":0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		err = s.AddPeer(ctx, router.PeerConfig{
			Address: netip.MustParseAddr(a), Port: uint16(ln.Addr().(*net.TCPAddr).Port), PeerAS: 64512, LocalAS: 64512,
			LocalAddress: netip.MustParseAddr("127.0.0.1"), HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, IPv4: true,
			GracefulRestart: router.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, StaleRoutesTime: 120 * time.Second},
		})
		if err != nil {
			b.Fatal(err)
		}
		p := serveGRPeer(b, ln, 64512, a)
		stop := make(chan struct{})
		defer close(stop)
		go p.keepalives(stop)
		peers = append(peers, p)
	}
	waitEstablished(b, s, len(peers))
	wait := func(paths, eors int) {
		deadline := time.Now().Add(time.Minute)
		for {
			mu.Lock()
			done := n == paths && eor == eors
			mu.Unlock()
			if done {
				return
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d paths and %d End-of-RIB received after a minute, want %d and %d", n, eor, paths, eors)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// One path of each reflector first: what the first path costs once
	// (GoBGP's API descriptors, initialised on first use) is no cost
	// per path.
	for i, p := range peers {
		p.reflect(nodes, 1, fmt.Sprintf("10.64.0.%d", 2+i))
	}
	wait(len(peers), 0)
	before := heaptest.Live()
	for i, p := range peers {
		p.reflect(0, nodes, fmt.Sprintf("10.64.0.%d", 2+i))
		p.send(bgp.NewEndOfRib(bgp.RF_IPv4_UC))
	}
	wait((nodes+1)*len(peers), len(peers))
	after := heaptest.Live()
	heaptest.WriteProfile(b, *speakerHeapProfile)
	runtime.KeepAlive(s)
	return heaptest.Growth(before, after)
}

// waitEstablished waits until n sessions of s are Established.
func waitEstablished(tb testing.TB, s *Speaker, n int) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ps, err := s.Peers(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		up := 0
		for _, p := range ps {
			if p.State == api.BGPEstablished {
				up++
			}
		}
		if up == n {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d of %d sessions Established after 30 s", up, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
