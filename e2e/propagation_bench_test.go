package e2e

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
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/router"
)

// BenchmarkWorkloadPropagation is issue 4's route propagation latency: a
// WorkloadEndpoint created on node A (n1) until its route is in node B's
// (n2) kernel, in a 3-node full mesh; then the endpoint's deletion until
// the route is gone from B's kernel (withdrawal). Run it with a fixed
// iteration count, so that p99 means something:
//
//	go test ./e2e -run '^$' -bench WorkloadPropagation -benchtime 200x
//
// The fabric is what production runs: each node is the real `bgpfabric
// node` binary (felix, with ACLs, and the router on GoBGP), started inside
// its own namespace on a bridge, against one embedded etcd on a unix
// socket. Each iteration writes a WorkloadEndpoint for n1 through the
// datastore client (as the CNI plugin does after its IPAM call), with one
// address borrowed from n3's IPAM block, on an interface that already
// exists (the CNI plugin makes the veth before it writes the endpoint).
//
// Why borrowed: the router exports a node's affine blocks as aggregates
// and a workload's /32 only when no block of the node covers it (Calico's
// rule, router.Exports). A workload inside n1's own, already advertised
// block changes nothing on n2: no BGP update is sent, there is no latency
// to measure. A borrowed address is the case where a new endpoint makes
// a new route in the fabric, so the route on n2 is caused by that
// endpoint alone, and its whole path is timed: etcd write → felix's watch
// → felix's calculation and apply (ACLs, interface settings, the /32 in
// n1's kernel) → the router's route subscription → GoBGP → UPDATE → n2's
// router → n2's kernel. (A fresh block per iteration would need a second
// datastore write, the IPAM claim, before the endpoint: that is the other
// case, and it goes through the same path.) The addresses are not
// recorded as IPAM allocations: nothing on the measured path reads them.
//
// The clock starts just before the datastore Create (Delete for the
// withdrawal) and stops when n2's route subscription (a netlink socket in
// n2's namespace, event driven) delivers the RTM_NEWROUTE of the /32 with
// the router's protocol via n1 (RTM_DELROUTE for the withdrawal).
//
// Baseline, measured in the same iterations (interleaved, so that both see
// the same machine load): the same /32 written straight into n1's kernel
// as felix programs it (protocol 80, scope link, through the workload's
// interface) until it is in n2's kernel, and its deletion until it is gone
// there: the router-to-router part of the path without the datastore and
// felix. The ratio is the endpoint's p50 over the baseline's p50. Also
// reported: the floor of the measurement itself, a route added straight
// into n2's kernel until its event arrives (kernel-p50-ms), and, from the
// start of the write, when the datastore's Create returned
// (etcd-write-p50-ms) and when felix's /32 was in n1's kernel
// (felix-p50-ms, on n1's route events). The timer runs over the endpoint
// rounds only, so ns/op is one endpoint's create and delete, both waited
// for on n2.
func BenchmarkWorkloadPropagation(b *testing.B) {
	requireFabric(b)
	if binary == "" {
		b.Fatal("no bgpfabric binary (TestMain builds it as root)")
	}
	m := newPropMesh(b)

	// n3's block lends the addresses: the endpoint's from its first half,
	// the baseline's from its second half, reused round robin (each is
	// withdrawn before the next iteration).
	wepAddr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 65, 3, byte(1 + i%30)}) }
	baseAddr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 65, 3, byte(33 + i%30)}) }
	floorAddr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 66, 0, byte(1 + i%200)}) }

	// One untimed round: the first endpoint creates felix's per-interface
	// state and ACL chains on n1, which later ones only update.
	m.wepRound(-1, wepAddr(0))
	m.baseRound(baseAddr(0))

	var wepAdd, wepDel, write, felix, baseAdd, baseDel, floor []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := m.wepRound(i, wepAddr(i))
		wepAdd, wepDel = append(wepAdd, w.add), append(wepDel, w.del)
		write, felix = append(write, w.write), append(felix, w.felix)
		b.StopTimer()
		a, d := m.baseRound(baseAddr(i))
		baseAdd, baseDel = append(baseAdd, a), append(baseDel, d)
		floor = append(floor, m.floorRound(floorAddr(i)))
		b.StartTimer()
	}
	b.StopTimer()

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	p50, p99 := quantile(wepAdd, 0.50), quantile(wepAdd, 0.99)
	bp50 := quantile(baseAdd, 0.50)
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(quantile(wepDel, 0.50)), "withdraw-p50-ms")
	b.ReportMetric(ms(quantile(wepDel, 0.99)), "withdraw-p99-ms")
	b.ReportMetric(ms(bp50), "base-p50-ms")
	b.ReportMetric(ms(quantile(baseAdd, 0.99)), "base-p99-ms")
	b.ReportMetric(ms(quantile(baseDel, 0.50)), "base-withdraw-p50-ms")
	b.ReportMetric(ms(quantile(floor, 0.50)), "kernel-p50-ms")
	b.ReportMetric(ms(quantile(write, 0.50)), "etcd-write-p50-ms")
	b.ReportMetric(ms(quantile(felix, 0.50)), "felix-p50-ms")
	b.ReportMetric(float64(p50)/float64(bp50), "ratio-p50")
	b.Logf("%d endpoints: add p50 %v p99 %v max %v; withdraw p50 %v p99 %v; baseline (felix's /32 written on n1) add p50 %v p99 %v, withdraw p50 %v p99 %v; kernel floor p50 %v; from the start: datastore write returned p50 %v p99 %v, route in n1's kernel (felix) p50 %v p99 %v",
		len(wepAdd), p50, p99, slices.Max(wepAdd), quantile(wepDel, 0.5), quantile(wepDel, 0.99),
		bp50, quantile(baseAdd, 0.99), quantile(baseDel, 0.5), quantile(baseDel, 0.99), quantile(floor, 0.5),
		quantile(write, 0.5), quantile(write, 0.99), quantile(felix, 0.5), quantile(felix, 0.99))
}

// quantile is the nearest-rank q-quantile of ds (ds is sorted in place).
func quantile(ds []time.Duration, q float64) time.Duration {
	slices.Sort(ds)
	i := int(float64(len(ds))*q+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// propMesh is the benchmark's fabric: three nodes on a bridge, each
// running `bgpfabric node` in its namespace, one embedded etcd, a
// workload interface on n1, and route subscriptions in n2 (the
// measurement) and n1 (felix's part of it).
type propMesh struct {
	tb     testing.TB
	client *datastore.Client
	nodes  []*propNode
	// iface is the workload's host-side interface on n1.
	iface      string
	ifaceIndex int
	// events are n2's route changes, stamped when they were read;
	// events1 are n1's.
	events, events1 <-chan propEvent
}

type propNode struct {
	name string
	ns   *nstest.NS
	addr netip.Prefix
	log  string
}

// propEvent is a route change seen in n2.
type propEvent struct {
	at    time.Time
	typ   uint16 // RTM_NEWROUTE or RTM_DELROUTE
	dst   netip.Prefix
	proto int
	gw    netip.Addr
}

const (
	propWorkloadIface = "calibench0"
	// floorProto marks the routes of the measurement floor in n2: no
	// component of bgpfabric owns it.
	floorProto = 98
)

func newPropMesh(tb testing.TB) *propMesh {
	tb.Helper()
	etcd := etcdtest.Start(tb)
	c := etcd.Client(tb)
	m := &propMesh{tb: tb, client: c, iface: propWorkloadIface}
	ctx := context.Background()

	as := uint32(64512)
	cfg := &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: api.DefaultBGPConfigurationName}}
	cfg.Spec.ASNumber = &as
	res := []api.Resource{cfg, &api.IPPool{ObjectMeta: api.ObjectMeta{Name: "bench-v4"}, Spec: api.IPPoolSpec{CIDR: "10.65.0.0/16"}}}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("n%d", i)
		res = append(res, &api.Node{ObjectMeta: api.ObjectMeta{Name: name},
			Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: fmt.Sprintf("10.99.0.%d/24", i)}}})
		blk, err := api.NewIPAMBlock(netip.MustParsePrefix(fmt.Sprintf("10.65.%d.0/26", i)), api.HostAffinity(name))
		if err != nil {
			tb.Fatal(err)
		}
		res = append(res, blk)
	}
	for _, r := range res {
		if _, err := c.Apply(ctx, r); err != nil {
			tb.Fatal(err)
		}
	}

	br := nstest.New(tb)
	if err := br.Netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}); err != nil {
		tb.Fatal(err)
	}
	brl, err := br.Netlink.LinkByName("br0")
	if err == nil {
		err = br.Netlink.LinkSetUp(brl)
	}
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "bfprop")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	for i := 1; i <= 3; i++ {
		n := &propNode{name: fmt.Sprintf("n%d", i), ns: nstest.New(tb), addr: netip.MustParsePrefix(fmt.Sprintf("10.99.0.%d/24", i))}
		port := "v" + n.name
		nstest.Veth(tb, n.ns, "eth0", br, port)
		p, err := br.Netlink.LinkByName(port)
		if err == nil {
			err = br.Netlink.LinkSetMaster(p, brl)
		}
		if err != nil {
			tb.Fatal(err)
		}
		eth, err := n.ns.Netlink.LinkByName("eth0")
		if err != nil {
			tb.Fatal(err)
		}
		if err := n.ns.Netlink.AddrAdd(eth, &netlink.Addr{IPNet: prefixNet(n.addr)}); err != nil {
			tb.Fatal(err)
		}
		m.nodes = append(m.nodes, n)
	}
	// The workload: its veth, host side on n1, made before any endpoint
	// names it (as the CNI plugin does).
	wl := nstest.New(tb)
	m.ifaceIndex, _ = nstest.Veth(tb, m.nodes[0].ns, m.iface, wl, "eth0")

	m.events = subscribeRoutes(tb, m.nodes[1].ns)
	m.events1 = subscribeRoutes(tb, m.nodes[0].ns)
	for _, n := range m.nodes {
		m.start(n, etcd.ClientEndpoint(), dir)
	}
	// Up: n2 has n1's and n3's blocks from BGP (which needs felix on n1
	// and n3, both routers and their sessions with n2).
	for _, owner := range []int{0, 2} {
		dst := netip.MustParsePrefix(fmt.Sprintf("10.65.%d.0/26", owner+1))
		m.waitState(dst, fmt.Sprintf("via %s proto %d", m.nodes[owner].addr.Addr(), router.ProtoRouter), 60*time.Second)
	}
	return m
}

// start runs `bgpfabric node` inside n's namespace until the benchmark
// ends (SIGTERM, then SIGKILL after 5 s; the process also dies with the
// benchmark's process). Production flags except: no HTTP endpoint and a
// private control directory (several runs may share the machine), and
// felix's periodic kernel resync off (once an hour), since the baseline
// writes routes of felix's protocol behind its back.
func (m *propMesh) start(n *propNode, datastore, dir string) {
	tb := m.tb
	n.log = filepath.Join(dir, n.name+".log")
	out, err := os.Create(n.log)
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(binary, "node", "--node-name", n.name, "--datastore", datastore,
		"--http-addr", "", "--control-dir", dir, "--resync-interval", "1h")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Forked from a thread inside the namespace, the child starts there:
	// its BGP sockets are the node's.
	if err := n.ns.Do(cmd.Start); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if tb.Failed() {
			b, _ := os.ReadFile(n.log)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			tb.Logf("log of %s:\n%s", n.name, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	})
}

// wepRound creates a WorkloadEndpoint on n1 with address a and times its
// route's arrival in n2, then deletes it and times the withdrawal. On the
// way it notes when the datastore write returned and when felix's route
// appeared in n1's kernel (on n1's route events).
func (m *propMesh) wepRound(i int, a netip.Addr) (r wepTimes) {
	tb := m.tb
	ctx := context.Background()
	w := &api.WorkloadEndpoint{ObjectMeta: api.ObjectMeta{Namespace: "default",
		Name: api.WorkloadEndpointName("n1", "k8s", fmt.Sprintf("bench-%d", i), "eth0")}}
	w.Spec = api.WorkloadEndpointSpec{Node: "n1", Orchestrator: "k8s", Workload: fmt.Sprintf("bench-%d", i), Endpoint: "eth0",
		InterfaceName: m.iface, IPNetworks: []string{netip.PrefixFrom(a, 32).String()}}
	dst := netip.PrefixFrom(a, 32)
	start := time.Now()
	if _, err := m.client.Create(ctx, w); err != nil {
		tb.Fatal(err)
	}
	r.write = time.Since(start)
	r.add = m.wait(start, dst, unix.RTM_NEWROUTE, "workload endpoint "+w.Name)
	r.felix = waitEvent(tb, m.events1, "n1", start, dst, unix.RTM_NEWROUTE, routetable.ProtoFelix, netip.Addr{}, "felix's route of "+w.Name)
	start = time.Now()
	if err := m.client.Delete(ctx, api.KindWorkloadEndpoint, w.Namespace, w.Name, ""); err != nil {
		tb.Fatal(err)
	}
	r.del = m.wait(start, dst, unix.RTM_DELROUTE, "deleted workload endpoint "+w.Name)
	waitEvent(tb, m.events1, "n1", start, dst, unix.RTM_DELROUTE, routetable.ProtoFelix, netip.Addr{}, "felix's deletion for "+w.Name)
	return r
}

// wepTimes are one endpoint's times from the start of its datastore write.
type wepTimes struct {
	// write: the Create returned; felix: its route is in n1's kernel;
	// add: the route is in n2's; del: from the Delete until the route is
	// gone from n2's.
	write, felix, add, del time.Duration
}

// baseRound writes the /32 that felix would program for an endpoint with
// address a straight into n1's kernel, times its arrival in n2, deletes
// it and times the withdrawal.
func (m *propMesh) baseRound(a netip.Addr) (add, del time.Duration) {
	tb := m.tb
	dst := netip.PrefixFrom(a, 32)
	r := &netlink.Route{Dst: prefixNet(dst), LinkIndex: m.ifaceIndex, Scope: netlink.SCOPE_LINK,
		Protocol: routetable.ProtoFelix, Table: unix.RT_TABLE_MAIN}
	n1 := m.nodes[0].ns
	start := time.Now()
	if err := n1.Netlink.RouteAdd(r); err != nil {
		tb.Fatal(err)
	}
	add = m.wait(start, dst, unix.RTM_NEWROUTE, "felix-like route on n1")
	waitEvent(tb, m.events1, "n1", start, dst, unix.RTM_NEWROUTE, routetable.ProtoFelix, netip.Addr{}, "felix-like route on n1")
	start = time.Now()
	if err := n1.Netlink.RouteDel(r); err != nil {
		tb.Fatal(err)
	}
	del = m.wait(start, dst, unix.RTM_DELROUTE, "deleted felix-like route on n1")
	waitEvent(tb, m.events1, "n1", start, dst, unix.RTM_DELROUTE, routetable.ProtoFelix, netip.Addr{}, "deleted felix-like route on n1")
	return add, del
}

// floorRound adds a route straight into n2 and times its event: what the
// measurement itself costs.
func (m *propMesh) floorRound(a netip.Addr) time.Duration {
	tb := m.tb
	dst := netip.PrefixFrom(a, 32)
	n2 := m.nodes[1].ns
	r := &netlink.Route{Dst: prefixNet(dst), Gw: net.IP(m.nodes[0].addr.Addr().AsSlice()), Protocol: floorProto, Table: unix.RT_TABLE_MAIN}
	start := time.Now()
	if err := n2.Netlink.RouteAdd(r); err != nil {
		tb.Fatal(err)
	}
	d := waitEvent(tb, m.events, "n2", start, dst, unix.RTM_NEWROUTE, floorProto, netip.Addr{}, "floor route")
	start = time.Now()
	if err := n2.Netlink.RouteDel(r); err != nil {
		tb.Fatal(err)
	}
	waitEvent(tb, m.events, "n2", start, dst, unix.RTM_DELROUTE, floorProto, netip.Addr{}, "deleted floor route")
	return d
}

// wait waits for n2's event of type typ for dst with the router's
// protocol (via n1 for an add) and returns its time since start.
func (m *propMesh) wait(start time.Time, dst netip.Prefix, typ uint16, what string) time.Duration {
	var gw netip.Addr
	if typ == unix.RTM_NEWROUTE {
		gw = m.nodes[0].addr.Addr()
	}
	return waitEvent(m.tb, m.events, "n2", start, dst, typ, router.ProtoRouter, gw, what)
}

// waitEvent waits on a node's route events for one of type typ for dst
// with protocol proto (through gw, if valid) read after start, and
// returns its time since start. Other events are skipped.
func waitEvent(tb testing.TB, events <-chan propEvent, node string, start time.Time, dst netip.Prefix, typ uint16, proto int, gw netip.Addr, what string) time.Duration {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case e, ok := <-events:
			if !ok {
				tb.Fatalf("%s's route subscription ended", node)
			}
			if e.dst != dst || e.typ != typ || e.proto != proto || e.at.Before(start) {
				continue
			}
			if gw.IsValid() && e.gw != gw {
				tb.Fatalf("%s: %s installed %s via %s, want via %s", what, node, dst, e.gw, gw)
			}
			return e.at.Sub(start)
		case <-deadline.C:
			tb.Fatalf("%s: no %s of %s in %s within 10s", what, msgType(typ), dst, node)
		}
	}
}

// waitState waits, on n2's route events, until the route to dst renders
// as want.
func (m *propMesh) waitState(dst netip.Prefix, want string, timeout time.Duration) {
	tb := m.tb
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		got := routeStateIn(m.nodes[1].ns, dst)
		if got == want {
			return
		}
		select {
		case _, ok := <-m.events:
			if !ok {
				tb.Fatal("n2's route subscription ended")
			}
		case <-deadline.C:
			tb.Fatalf("n2: route to %s is %q after %v, want %q", dst, got, timeout, want)
		}
	}
}

func msgType(t uint16) string {
	if t == unix.RTM_DELROUTE {
		return "RTM_DELROUTE"
	}
	return "RTM_NEWROUTE"
}

// subscribeRoutes subscribes to ns's route changes until the benchmark
// ends and stamps each with the time it was read.
func subscribeRoutes(tb testing.TB, ns *nstest.NS) <-chan propEvent {
	tb.Helper()
	raw := make(chan netlink.RouteUpdate, 4096)
	done := make(chan struct{})
	h := ns.Handle
	if err := netlink.RouteSubscribeWithOptions(raw, done, netlink.RouteSubscribeOptions{
		Namespace: &h, ReceiveBufferSize: 8 << 20, ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			select {
			case <-done: // closing
			default:
				tb.Logf("%s: route subscription: %v", ns.Name, err)
			}
		},
	}); err != nil {
		tb.Fatal(err)
	}
	out := make(chan propEvent, 4096)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		defer close(out)
		for u := range raw {
			e := propEvent{at: time.Now(), typ: u.Type, proto: int(u.Protocol)}
			if u.Dst != nil {
				a, _ := netip.AddrFromSlice(u.Dst.IP)
				ones, _ := u.Dst.Mask.Size()
				e.dst = netip.PrefixFrom(a.Unmap(), ones)
			}
			if gw, ok := netip.AddrFromSlice(u.Gw); ok {
				e.gw = gw.Unmap()
			}
			select {
			case out <- e:
			case <-done:
				for range raw {
				}
				return
			}
		}
	}()
	tb.Cleanup(func() {
		close(done) // closes the socket; netlink then closes raw
		<-stopped
	})
	return out
}

// routeStateIn renders the main table's route to dst in ns as "via GW
// proto P" ("" when there is none).
func routeStateIn(ns *nstest.NS, dst netip.Prefix) string {
	rs, err := ns.Netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "error: " + err.Error()
	}
	for _, r := range rs {
		if r.Dst != nil && r.Dst.String() == dst.String() {
			return fmt.Sprintf("via %s proto %d", r.Gw, int(r.Protocol))
		}
	}
	return ""
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
