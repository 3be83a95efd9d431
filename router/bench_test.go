package router_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/router/gobgp"
)

// staticResources delivers one snapshot and keeps it.
type staticResources []api.Resource

func (s staticResources) Run(ctx context.Context, h datastore.SyncHandler) error {
	for _, r := range s {
		r.Default()
	}
	h.OnSnapshot(datastore.Snapshot{Resources: s})
	<-ctx.Done()
	return nil
}

// countRoutes waits, on route events of ns, until n routes of protocol
// proto are in the main table.
func countRoutes(tb testing.TB, ns *nstest.NS, proto int, n int, timeout time.Duration) {
	tb.Helper()
	ch := make(chan netlink.RouteUpdate, 1<<16)
	done := make(chan struct{})
	h := ns.Handle
	if err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: &h, ReceiveBufferSize: 64 << 20, ReceiveBufferForceSize: true}); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		close(done)
		for range ch {
		}
	}()
	count := func() int {
		rs, err := ns.Netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: netlink.RouteProtocol(proto)}, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			tb.Fatal(err)
		}
		return len(rs)
	}
	seen := count()
	deadline := time.After(timeout)
	for seen < n {
		select {
		case u, ok := <-ch:
			if !ok {
				seen = count() // the subscription overflowed: count again
				continue
			}
			if int(u.Protocol) == proto && u.Type == unix.RTM_NEWROUTE {
				seen++
			}
		case <-deadline:
			tb.Fatalf("%d of %d routes after %v", count(), n, timeout)
		}
	}
	if got := count(); got < n {
		tb.Fatalf("counted %d events but %d routes", seen, got)
	}
}

// BenchmarkImport100k: one peer (a GoBGP speaker on 127.0.0.2) sends
// 100,000 /32s; the router (its BGP on 127.0.0.1, its kernel side in a
// namespace) installs them. Reported: seconds until all are in the kernel,
// against `ip -batch` of the same routes into another namespace in the
// same run, and the ratio.
func BenchmarkImport100k(b *testing.B) {
	const n = 100000
	for i := 0; i < b.N; i++ {
		ns := nstest.New(b)
		peerNS := nstest.New(b)
		nstest.Veth(b, ns, "eth0", peerNS, "eth0")
		eth, _ := ns.Netlink.LinkByName("eth0")
		a, _ := netlink.ParseAddr("10.98.0.1/24")
		if err := ns.Netlink.AddrAdd(eth, a); err != nil {
			b.Fatal(err)
		}
		// ip -batch baseline.
		batch := filepath.Join(b.TempDir(), "routes")
		var sb strings.Builder
		for j := 0; j < n; j++ {
			fmt.Fprintf(&sb, "route add 10.%d.%d.%d/32 via 10.98.0.2 proto 82\n", 100+j>>16, j>>8&255, j&255)
		}
		if err := os.WriteFile(batch, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if out, err := exec.Command("ip", "-n", ns.Name, "-batch", batch).CombinedOutput(); err != nil {
			b.Fatalf("ip -batch: %v: %s", err, out)
		}
		ipBatch := time.Since(start)
		if out, err := exec.Command("ip", "-n", ns.Name, "route", "flush", "proto", "82").CombinedOutput(); err != nil {
			b.Fatalf("flush: %v: %s", err, out)
		}

		port := freeLoopbackPort(b)
		ctx, cancel := context.WithCancel(context.Background())
		sender := gobgp.New(gobgp.Config{})
		if err := sender.Start(ctx, router.Global{AS: 64512, RouterID: netip.MustParseAddr("127.0.0.2"), ListenPort: port,
			ListenAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.2")}, ExportPolicy: router.ExportAll}); err != nil {
			b.Fatal(err)
		}
		routes := make([]router.LocalRoute, n)
		for j := range routes {
			routes[j] = router.LocalRoute{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(100 + j>>16), byte(j >> 8), byte(j)}), 32),
				NextHop: netip.MustParseAddr("10.98.0.2")}
		}
		if err := sender.Announce(ctx, routes); err != nil {
			b.Fatal(err)
		}
		if err := sender.AddPeer(ctx, router.PeerConfig{Address: netip.MustParseAddr("127.0.0.1"), PeerAS: 64512, LocalAS: 64512,
			LocalAddress: netip.MustParseAddr("127.0.0.2"), Passive: true, HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, IPv4: true}); err != nil {
			b.Fatal(err)
		}
		lp := int(port)
		res := staticResources{
			&api.Node{ObjectMeta: api.ObjectMeta{Name: "r"}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: "127.0.0.1/8"}}},
			&api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "node.r"}, Spec: api.BGPConfigurationSpec{ListenPort: &lp}},
			&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "feed"}, Spec: api.BGPPeerSpec{PeerIP: fmt.Sprintf("127.0.0.2:%d", port), ASNumber: ptrU32(64512)}},
		}
		r, err := router.New(router.Config{NodeName: "r", Resources: res, Speaker: gobgp.New(gobgp.Config{}), Netns: ns.Handle,
			ListenAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		start = time.Now()
		go func() { done <- r.Run(ctx) }()
		countRoutes(b, ns, router.ProtoRouter, n, 5*time.Minute)
		imp := time.Since(start)
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		_ = sender.Stop(context.Background())
		b.ReportMetric(imp.Seconds(), "import-s")
		b.ReportMetric(ipBatch.Seconds(), "ip-batch-s")
		b.ReportMetric(imp.Seconds()/ipBatch.Seconds(), "ratio")
	}
}

func ptrU32(v uint32) *uint32 { return &v }

func freeLoopbackPort(tb testing.TB) int32 {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// BenchmarkPropagation: in a 3-node mesh, a block route (felix's
// blackhole) written on n1 until the learned route is in n2's kernel,
// measured on n2's route events. Reports p50 and p99 over 100 blocks.
func BenchmarkPropagation(b *testing.B) {
	for i := 0; i < b.N; i++ {
		f := newFabricTB(b)
		f.apply(fastTimers())
		n1 := f.addNode("n1", "10.99.0.1/24")
		n2 := f.addNode("n2", "10.99.0.2/24")
		f.addNode("n3", "10.99.0.3/24")
		for _, n := range f.nodes {
			f.start(n)
		}
		f.waitStatus("n2", "mesh up", 30*time.Second, allEstablished(2))
		const rounds = 100
		var lat []time.Duration
		for j := 0; j < rounds; j++ {
			dst := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 70, byte(j), 0}), 26)
			want := fmt.Sprintf("via 10.99.0.1 proto %d", router.ProtoRouter)
			lat = append(lat, measure(b, n1.ns, n2.ns, dst, want))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[rounds/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[rounds*99/100].Microseconds())/1000, "p99-ms")
	}
}

// measure writes the blackhole on from and times its arrival on to.
func measure(tb testing.TB, from, to *nstest.NS, dst netip.Prefix, want string) time.Duration {
	ch := make(chan netlink.RouteUpdate, 4096)
	done := make(chan struct{})
	h := to.Handle
	if err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: &h}); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		close(done)
		for range ch {
		}
	}()
	_, d, _ := net.ParseCIDR(dst.String())
	start := time.Now()
	if err := from.Netlink.RouteAdd(&netlink.Route{Dst: d, Type: unix.RTN_BLACKHOLE, Protocol: 80, Table: unix.RT_TABLE_MAIN}); err != nil {
		tb.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case u := <-ch:
			if u.Type == unix.RTM_NEWROUTE && u.Dst != nil && u.Dst.String() == dst.String() && int(u.Protocol) == router.ProtoRouter {
				return time.Since(start)
			}
		case <-deadline:
			tb.Fatalf("route %s did not arrive (%s)", dst, routeState(to, dst))
		}
	}
}
