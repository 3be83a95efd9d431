package router_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/internal/testport"
	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/router/gobgp"
	"github.com/bgpfabric/bgpfabric/router/speakerproc"
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
// proto are in the main table. It reads the events and a dump raw and
// looks only at the messages' headers: decoding 100,000 events into
// netlink.Routes took more than a CPU second, which the harness took from
// the router it measures on a small machine, and each count after an
// overflow of the event socket (ENOBUFS) took another half second. It
// never polls.
func countRoutes(tb testing.TB, ns *nstest.NS, proto int, n int, timeout time.Duration) {
	tb.Helper()
	waitRouteCount(tb, ns, proto, timeout, unix.RTM_NEWROUTE, fmt.Sprintf("%d routes", n), func(c int) bool { return c >= n })
}

// countRoutesDown waits until at most n routes of protocol proto are in
// ns's main table, as countRoutes, counting the deletions.
func countRoutesDown(tb testing.TB, ns *nstest.NS, proto int, n int, timeout time.Duration) {
	tb.Helper()
	waitRouteCount(tb, ns, proto, timeout, unix.RTM_DELROUTE, fmt.Sprintf("at most %d routes", n), func(c int) bool { return c <= n })
}

// waitRouteCount waits until reached holds for the number of routes of
// protocol proto in ns's main table: a dump, then the events of type ev
// (RTM_NEWROUTE adds, RTM_DELROUTE removes), dumping again after an
// overflow.
func waitRouteCount(tb testing.TB, ns *nstest.NS, proto int, timeout time.Duration, ev uint16, want string, reached func(int) bool) {
	tb.Helper()
	events := nlSocket(tb, ns, 1<<(unix.RTNLGRP_IPV4_ROUTE-1))
	defer unix.Close(events)
	dump := nlSocket(tb, ns, 0)
	defer unix.Close(dump)
	buf := make([]byte, 1<<20)
	count := func() int {
		req := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofRtMsg)
		binary.NativeEndian.PutUint32(req, uint32(len(req)))
		binary.NativeEndian.PutUint16(req[4:], unix.RTM_GETROUTE)
		binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
		req[unix.NLMSG_HDRLEN] = unix.AF_INET
		if err := unix.Sendto(dump, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			tb.Fatal(err)
		}
		total := 0
		for {
			m, _, err := unix.Recvfrom(dump, buf, 0)
			if err != nil {
				tb.Fatalf("dumping routes: %v", err)
			}
			done := false
			total += countMsgs(buf[:m], func(typ uint16, rtm []byte) {
				done = done || typ == unix.NLMSG_DONE || typ == unix.NLMSG_ERROR
			}, unix.RTM_NEWROUTE, proto)
			if done {
				return total
			}
		}
	}
	sign := 1
	if ev == unix.RTM_DELROUTE {
		sign = -1
	}
	deadline := time.Now().Add(timeout)
	for have := count(); !reached(have); {
		if time.Now().After(deadline) {
			tb.Fatalf("%d routes after %v, want %s", count(), timeout, want)
		}
		m, _, err := unix.Recvfrom(events, buf, 0)
		switch {
		case errors.Is(err, unix.ENOBUFS):
			have = count()
			continue
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			tb.Fatal(err)
		}
		have += sign * countMsgs(buf[:m], nil, ev, proto)
	}
	if got := count(); !reached(got) {
		tb.Fatalf("counted events up to %s but there are %d", want, got)
	}
}

// startRouteSender starts a GoBGP speaker on 127.0.0.2 (listening on
// port) that announces n /32s from 10.100.0.0, next hop 10.98.0.2, to a
// passive iBGP session with 127.0.0.1.
func startRouteSender(b *testing.B, ctx context.Context, port int32, n int) *gobgp.Speaker {
	b.Helper()
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
	return sender
}

// countMsgs counts the netlink messages in b of type typ whose rtmsg is of
// protocol proto in the main table, and calls each (if not nil) with
// every message's type.
func countMsgs(b []byte, each func(typ uint16, rtm []byte), typ uint16, proto int) int {
	c := 0
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(binary.NativeEndian.Uint32(b))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			break
		}
		t, body := binary.NativeEndian.Uint16(b[4:]), b[unix.NLMSG_HDRLEN:l]
		if each != nil {
			each(t, body)
		}
		// rtmsg: family, dst_len, src_len, tos, table, protocol, ...
		if t == typ && len(body) >= unix.SizeofRtMsg && body[4] == unix.RT_TABLE_MAIN && int(body[5]) == proto {
			c++
		}
		b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
	}
	return c
}

// nlSocket opens an rtnetlink socket in ns, joined to groups, with a
// large receive buffer and a one-second receive timeout (for deadlines).
func nlSocket(tb testing.TB, ns *nstest.NS, groups uint32) int {
	tb.Helper()
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 256<<20); err != nil {
			return err
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1}); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return fd
}

// BenchmarkImport100k: one peer (a GoBGP speaker on 127.0.0.2) sends
// 100,000 /32s; the router (its BGP on 127.0.0.1, its kernel side in a
// namespace) installs them. Reported: seconds until all are in the kernel,
// against `ip -batch` of the same routes into another namespace in the
// same run, and the ratio.
func BenchmarkImport100k(b *testing.B) {
	benchImport100k(b, func() router.Speaker { return gobgp.New(gobgp.Config{}) })
}

// BenchmarkImport100kSpeakerProcess is BenchmarkImport100k with the
// router's speaker in a child process, as `bgpfabric node` runs it
// (router/speakerproc): every best-path change crosses the channel.
func BenchmarkImport100kSpeakerProcess(b *testing.B) {
	benchImport100k(b, func() router.Speaker {
		return speakerproc.New(speakerproc.Config{Command: speakerproc.SelfCommand("-test.run=^$")})
	})
}

func benchImport100k(b *testing.B, newSpeaker func() router.Speaker) {
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
		sender := startRouteSender(b, ctx, port, n)
		lp := int(port)
		res := staticResources{
			&api.Node{ObjectMeta: api.ObjectMeta{Name: "r"}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: "127.0.0.1/8"}}},
			&api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "node.r"}, Spec: api.BGPConfigurationSpec{ListenPort: &lp}},
			&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "feed"}, Spec: api.BGPPeerSpec{PeerIP: fmt.Sprintf("127.0.0.2:%d", port), ASNumber: ptrU32(64512)}},
		}
		r, err := router.New(router.Config{NodeName: "r", Resources: res, Speaker: newSpeaker(), Netns: ns.Handle,
			ListenAddresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
		if err != nil {
			b.Fatal(err)
		}
		// The session's establishment (GoBGP dials after a random 1-2 s)
		// is in import-s; from-established-s starts when the sender sees
		// the session up, just before it sends the first UPDATE.
		var established atomic.Int64
		if err := sender.WatchPeers(ctx, func(e router.PeerEvent) {
			if e.State == api.BGPEstablished {
				established.CompareAndSwap(0, time.Now().UnixNano())
			}
		}); err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		start = time.Now()
		go func() { done <- r.Run(ctx) }()
		countRoutes(b, ns, router.ProtoRouter, n, 5*time.Minute)
		imp := time.Since(start)
		fromEst := time.Since(time.Unix(0, established.Load()))
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		_ = sender.Stop(context.Background())
		b.ReportMetric(imp.Seconds(), "import-s")
		b.ReportMetric(ipBatch.Seconds(), "ip-batch-s")
		b.ReportMetric(imp.Seconds()/ipBatch.Seconds(), "ratio")
		if established.Load() != 0 {
			b.ReportMetric(fromEst.Seconds(), "from-established-s")
			b.ReportMetric(fromEst.Seconds()/ipBatch.Seconds(), "ratio-from-established")
		}
	}
}

func ptrU32(v uint32) *uint32 { return &v }

// freeLoopbackPort returns a port for the benchmark's speakers that no
// other socket can take meanwhile (internal/testport).
func freeLoopbackPort(tb testing.TB) int32 {
	return int32(testport.Pick(tb, "127.0.0.1", "127.0.0.2"))
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
