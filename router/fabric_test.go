//go:debug multipathtcp=0

package router_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/bfd"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/router/gobgp"
	"github.com/bgpfabric/bgpfabric/router/speakerproc"
)

// The namespace tests run each node's router in a child process (this
// test binary, re-executed inside the node's namespace): GoBGP opens its
// sockets from goroutines of its own, so one process can only speak BGP
// from one namespace.
const childEnv = "BGPFABRIC_ROUTER_TEST_CHILD"

func TestMain(m *testing.M) {
	speakerproc.MaybeChild(func(lg *slog.Logger) router.Speaker { // a node's speaker process (BF_SPEAKER_PROC)
		return gobgp.New(gobgp.Config{Logger: lg.With("component", "gobgp")})
	})
	switch os.Getenv(childEnv) {
	case "":
	case "reflector":
		os.Exit(runReflectorChild())
	default:
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runChild runs one node's router until SIGTERM.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	lg := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{os.Getenv("BF_ETCD")}})
	if err != nil {
		lg.Error("datastore", "error", err)
		return 1
	}
	defer c.Close()
	st, err := router.DatastoreStatus(ctx, c)
	if err != nil {
		lg.Error("status", "error", err)
		return 1
	}
	var sp router.Speaker = gobgp.New(gobgp.Config{Logger: lg.With("component", "gobgp")})
	var sup router.Supervision
	if os.Getenv("BF_SPEAKER_PROC") != "" {
		// As `bgpfabric node` runs it: the speaker in a child process
		// (this binary again, see TestMain).
		sp = speakerproc.New(speakerproc.Config{Command: speakerproc.SelfCommand("-test.run=^$"), Logger: lg})
		sup.Quarantine.HoldDown, _ = time.ParseDuration(os.Getenv("BF_QUARANTINE_HOLD"))
	}
	r, err := router.New(router.Config{
		NodeName:      os.Getenv("BF_NODE"),
		Resources:     router.DatastoreResources(c),
		Status:        st,
		Speaker:       sp,
		Supervision:   sup,
		Secrets:       router.Secrets{Dir: os.Getenv("BF_SECRETS")},
		ControlSocket: os.Getenv("BF_SOCKET"),
		Logger:        lg,
		// As `bgpfabric node`: BFD in this process, not the speaker's.
		BFD: func() (router.BFDServer, error) {
			srv, err := bfd.NewServer(bfd.ServerConfig{Logger: lg.With("component", "bfd")})
			if err != nil {
				return nil, err
			}
			return srv, nil
		},
	})
	if err != nil {
		lg.Error("router", "error", err)
		return 1
	}
	if err := r.Run(ctx); err != nil {
		lg.Error("router run", "error", err)
		return 1
	}
	return 0
}

// fabric is a test fabric: a bridge in a namespace of its own and nodes
// attached to it, an embedded etcd, and a router process per node.
type fabric struct {
	t      testing.TB
	dir    string
	bridge *nstest.NS
	etcd   *datastore.Embedded
	client *datastore.Client
	nodes  map[string]*fabricNode
}

type fabricNode struct {
	name string
	ns   *nstest.NS
	addr netip.Prefix
	proc *exec.Cmd
	log  string
	wait chan error
}

func newFabric(t *testing.T) *fabric { return newFabricTB(t) }

func newFabricTB(t testing.TB) *fabric {
	t.Helper()
	nstest.SkipShort(t, "namespace fabric test")
	br := nstest.New(t)
	dir, err := os.MkdirTemp("", "bf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	e, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: filepath.Join(dir, "etcd")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{e.ClientEndpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	bridge := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	if err := br.Netlink.LinkAdd(bridge); err != nil {
		t.Fatal(err)
	}
	l, _ := br.Netlink.LinkByName("br0")
	if err := br.Netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	return &fabric{t: t, dir: dir, bridge: br, etcd: e, client: c, nodes: map[string]*fabricNode{}}
}

// addHost makes a namespace on the bridge with eth0 at cidr: a node's,
// or a peer's that is no node.
func (f *fabric) addHost(name, cidr string) *nstest.NS {
	t := f.t
	t.Helper()
	ns := nstest.New(t)
	port := "v" + name
	nstest.Veth(t, ns, "eth0", f.bridge, port)
	br, _ := f.bridge.Netlink.LinkByName("br0")
	p, _ := f.bridge.Netlink.LinkByName(port)
	if err := f.bridge.Netlink.LinkSetMaster(p, br); err != nil {
		t.Fatal(err)
	}
	eth, _ := ns.Netlink.LinkByName("eth0")
	a, _ := netlink.ParseAddr(cidr)
	if err := ns.Netlink.AddrAdd(eth, a); err != nil {
		t.Fatal(err)
	}
	return ns
}

// addNode makes a namespace for the node on the bridge and its Node
// resource.
func (f *fabric) addNode(name, cidr string) *fabricNode {
	t := f.t
	t.Helper()
	n := &fabricNode{name: name, ns: f.addHost(name, cidr), addr: netip.MustParsePrefix(cidr)}
	f.nodes[name] = n
	f.apply(&api.Node{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: cidr}}})
	return n
}

func (f *fabric) apply(rs ...api.Resource) {
	f.t.Helper()
	for _, r := range rs {
		if _, err := f.client.Apply(context.Background(), r); err != nil {
			f.t.Fatal(err)
		}
	}
}

// setDrain sets the Node's spec.bgp.drain (graceful shutdown, RFC 8326).
func (f *fabric) setDrain(node string, on bool) {
	f.t.Helper()
	r, err := f.client.Get(context.Background(), api.KindNode, "", node)
	if err != nil {
		f.t.Fatal(err)
	}
	n := r.(*api.Node)
	n.Spec.BGP.Drain = on
	if _, err := f.client.Update(context.Background(), n); err != nil {
		f.t.Fatal(err)
	}
}

// start runs the node's router in its namespace.
func (f *fabric) start(n *fabricNode, env ...string) {
	t := f.t
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	n.log = filepath.Join(f.dir, n.name+".log")
	out, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "BF_ETCD="+f.etcd.ClientEndpoint(), "BF_NODE="+n.name,
		"BF_SOCKET="+router.ControlSocketPath(f.dir, n.name))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// Forked from a thread inside the namespace, the child starts there.
	if err := n.ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	n.proc, n.wait = cmd, make(chan error, 1)
	go func() { n.wait <- cmd.Wait() }()
	t.Cleanup(func() { f.stop(n) })
}

// stop ends the node's router (SIGTERM, then SIGKILL after 10s).
func (f *fabric) stop(n *fabricNode) {
	if n.proc == nil {
		return
	}
	_ = n.proc.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.wait:
	case <-time.After(10 * time.Second):
		_ = n.proc.Process.Kill()
		<-n.wait
	}
	n.proc = nil
	if f.t.Failed() {
		b, _ := os.ReadFile(n.log)
		f.t.Logf("log of %s:\n%s", n.name, lastLines(string(b), 40))
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// addBlackhole programs a block as felix does.
func addBlackhole(t testing.TB, ns *nstest.NS, cidr string) *netlink.Route {
	t.Helper()
	_, dst, _ := net.ParseCIDR(cidr)
	r := &netlink.Route{Dst: dst, Type: unix.RTN_BLACKHOLE, Protocol: 80, Table: unix.RT_TABLE_MAIN}
	if err := ns.Netlink.RouteAdd(r); err != nil {
		t.Fatalf("adding blackhole %s: %v", cidr, err)
	}
	return r
}

// routeState renders the main table's route to dst in ns: "" when none,
// else "via GW proto P", with GW a sorted comma-separated list for a
// multipath route.
func routeState(ns *nstest.NS, dst netip.Prefix) string {
	rs, err := ns.Netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return "error: " + err.Error()
	}
	for _, r := range rs {
		if r.Dst == nil || r.Dst.String() != dst.String() {
			continue
		}
		if len(r.MultiPath) > 0 {
			var gws []string
			for _, nh := range r.MultiPath {
				gws = append(gws, nh.Gw.String())
			}
			slices.Sort(gws)
			return fmt.Sprintf("via %s proto %d", strings.Join(gws, ","), int(r.Protocol))
		}
		return fmt.Sprintf("via %s proto %d", r.Gw, int(r.Protocol))
	}
	return ""
}

// waitRoute waits, on route events of ns, until the route to dst renders
// as want.
// waitBlocksViaOwners waits until every node routes every other node's
// block through that node, as learned over BGP.
func waitBlocksViaOwners(t testing.TB, nodes []*fabricNode, blocks map[*fabricNode]netip.Prefix) {
	t.Helper()
	for _, n := range nodes {
		for _, o := range nodes {
			if o != n {
				waitRoute(t, n.ns, blocks[o], fmt.Sprintf("via %s proto %d", o.addr.Addr(), router.ProtoRouter), 30*time.Second)
			}
		}
	}
}

func waitRoute(t testing.TB, ns *nstest.NS, dst netip.Prefix, want string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	ch := make(chan netlink.RouteUpdate, 4096)
	done := make(chan struct{})
	h := ns.Handle
	if err := netlink.RouteSubscribeWithOptions(ch, done, netlink.RouteSubscribeOptions{Namespace: &h}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(done)
		for range ch {
		}
	}()
	deadline := time.After(timeout)
	for {
		got := routeState(ns, dst)
		if got == want {
			return time.Since(start)
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: route to %s is %q after %v, want %q", ns.Name, dst, got, timeout, want)
		}
	}
}

var statusMu sync.Mutex

// peerStates reads the node's BGPStatus: peer IP → state.
func (f *fabric) peerStates(node string) map[string]api.BGPState {
	statusMu.Lock()
	defer statusMu.Unlock()
	r, err := f.client.Get(context.Background(), api.KindBGPStatus, "", node)
	if err != nil {
		return nil
	}
	out := map[string]api.BGPState{}
	for _, p := range r.(*api.BGPStatus).Status.Peers {
		out[p.PeerIP] = p.State
	}
	return out
}

// waitStatus waits on a datastore watch until cond holds for the node's
// status.
func (f *fabric) waitStatus(node string, what string, timeout time.Duration, cond func(map[string]api.BGPState) bool) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w := f.client.Watch(ctx, api.KindBGPStatus, "", 0)
	for {
		if cond(f.peerStates(node)) {
			return
		}
		select {
		case _, ok := <-w:
			if !ok {
				f.t.Fatalf("%s: %s: watch ended", node, what)
			}
		case <-ctx.Done():
			f.t.Fatalf("%s: timed out waiting until %s; peers %v", node, what, f.peerStates(node))
		}
	}
}

func allEstablished(n int) func(map[string]api.BGPState) bool {
	return func(m map[string]api.BGPState) bool {
		if len(m) != n {
			return false
		}
		for _, s := range m {
			if s != api.BGPEstablished {
				return false
			}
		}
		return true
	}
}

func fastTimers() *api.BGPConfiguration {
	c := &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}}
	c.Spec.HoldTime, c.Spec.KeepaliveTime = "9s", "3s"
	off := false
	c.Spec.GracefulRestart = &api.GracefulRestart{Enabled: &off}
	return c
}

// TestFullMeshExchangesBlocks: three nodes in full mesh install each
// other's blocks with the router's protocol via the owner's address;
// removing a block withdraws it everywhere; a clean stop removes the
// routes a router installed.
func TestFullMeshExchangesBlocks(t *testing.T) {
	f := newFabric(t)
	f.apply(fastTimers())
	n1 := f.addNode("n1", "10.99.0.1/24")
	n2 := f.addNode("n2", "10.99.0.2/24")
	n3 := f.addNode("n3", "10.99.0.3/24")
	blocks := map[*fabricNode]netip.Prefix{
		n1: netip.MustParsePrefix("10.65.1.0/26"),
		n2: netip.MustParsePrefix("10.65.2.0/26"),
		n3: netip.MustParsePrefix("10.65.3.0/26"),
	}
	var bh *netlink.Route
	for n, b := range blocks {
		r := addBlackhole(t, n.ns, b.String())
		if n == n1 {
			bh = r
		}
	}
	for _, n := range []*fabricNode{n1, n2, n3} {
		f.start(n)
	}
	for _, n := range []*fabricNode{n1, n2, n3} {
		for o, b := range blocks {
			want := fmt.Sprintf("via %s proto %d", o.addr.Addr(), router.ProtoRouter)
			if o == n {
				want = "via <nil> proto 80" // felix's own blackhole stays
			}
			waitRoute(t, n.ns, b, want, 30*time.Second)
		}
	}
	f.waitStatus("n1", "both mesh peers established", 10*time.Second, allEstablished(2))
	rep, err := router.FetchRoutes(context.Background(), router.ControlSocketPath(f.dir, "n1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Exported) != 1 || rep.Exported[0].Prefix != blocks[n1] {
		t.Errorf("n1 exports %+v, want its block only", rep.Exported)
	}
	kernel := map[netip.Prefix]string{}
	for _, k := range rep.Kernel {
		kernel[k.Prefix] = k.Gateway.String() + " " + k.State
	}
	if kernel[blocks[n2]] != "10.99.0.2 installed" || kernel[blocks[n3]] != "10.99.0.3 installed" {
		t.Errorf("n1 reports kernel routes %v", kernel)
	}
	if len(rep.BGP) != 3 {
		t.Errorf("n1's BGP table has %d destinations, want 3", len(rep.BGP))
	}

	// A borrowed address on n3 (in n1's block): advertised as a /32.
	borrowed := netip.MustParsePrefix("10.65.1.9/32")
	eth, _ := n3.ns.Netlink.LinkByName("eth0")
	_, d, _ := net.ParseCIDR(borrowed.String())
	if err := n3.ns.Netlink.RouteAdd(&netlink.Route{Dst: d, LinkIndex: eth.Attrs().Index, Scope: netlink.SCOPE_LINK, Protocol: 80}); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, n1.ns, borrowed, fmt.Sprintf("via 10.99.0.3 proto %d", router.ProtoRouter), 10*time.Second)
	waitRoute(t, n2.ns, borrowed, fmt.Sprintf("via 10.99.0.3 proto %d", router.ProtoRouter), 10*time.Second)

	// Felix removes n1's block: withdrawn everywhere.
	if err := n1.ns.Netlink.RouteDel(bh); err != nil {
		t.Fatal(err)
	}
	waitRoute(t, n2.ns, blocks[n1], "", 10*time.Second)
	waitRoute(t, n3.ns, blocks[n1], "", 10*time.Second)

	// A clean stop without graceful restart removes n2's learned routes.
	f.stop(n2)
	if got := routeState(n2.ns, blocks[n3]); got != "" {
		t.Errorf("n2 after stop: route to n3's block %q", got)
	}
	if got := routeState(n2.ns, blocks[n2]); got != "via <nil> proto 80" {
		t.Errorf("n2 after stop: its own blackhole is %q", got)
	}
	// ...and the others withdraw its block.
	waitRoute(t, n1.ns, blocks[n2], "", 30*time.Second)
}

// TestMD5 checks that a session with the wrong password never comes up
// and comes up with the right one.
func TestMD5(t *testing.T) {
	f := newFabric(t)
	mesh := fastTimers()
	off := false
	mesh.Spec.NodeToNodeMeshEnabled = &off
	f.apply(mesh, &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "all"}, Spec: api.BGPPeerSpec{
		NodeSelector: "all()", PeerSelector: "all()",
		Password: &api.BGPPassword{SecretKeyRef: &api.SecretKeySelector{Name: "bgp", Key: "mesh"}}}})
	n1 := f.addNode("n1", "10.99.0.1/24")
	n2 := f.addNode("n2", "10.99.0.2/24")
	addBlackhole(t, n2.ns, "10.65.2.0/26")
	f.start(n1, "BGPFABRIC_SECRET_BGP_MESH=right-password")
	f.start(n2, "BGPFABRIC_SECRET_BGP_MESH=wrong-password")
	// The kernel drops the unsigned or badly signed SYNs: the session
	// stays down. Watch it for three connect-retry rounds.
	ctx, cancel := context.WithTimeout(context.Background(), 16*time.Second)
	w := f.client.Watch(ctx, api.KindBGPStatus, "", 0)
	for range w {
		for _, n := range []string{"n1", "n2"} {
			for p, s := range f.peerStates(n) {
				if s == api.BGPEstablished {
					t.Fatalf("%s: session with %s established with the wrong password", n, p)
				}
			}
		}
	}
	cancel()
	if got := routeState(n1.ns, netip.MustParsePrefix("10.65.2.0/26")); got != "" {
		t.Fatalf("route learned over a session with the wrong password: %s", got)
	}
	f.stop(n2)
	f.start(n2, "BGPFABRIC_SECRET_BGP_MESH=right-password")
	f.waitStatus("n1", "session with the right password established", 30*time.Second, allEstablished(1))
	waitRoute(t, n1.ns, netip.MustParsePrefix("10.65.2.0/26"), fmt.Sprintf("via 10.99.0.2 proto %d", router.ProtoRouter), 10*time.Second)
}
