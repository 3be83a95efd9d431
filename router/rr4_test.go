package router_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/reflector"
	rrfabric "github.com/bgpfabric/bgpfabric/reflector/fabric"
	"github.com/bgpfabric/bgpfabric/router"
)

// rrFabricChild is the child mode that runs `bgpfabric reflector`'s
// datastore mode (reflector/fabric) for the node BF_NODE. It is taken in
// init, before TestMain's switch, so that this file adds a child mode
// without touching the others.
const rrFabricChild = "reflector-datastore"

func init() {
	if os.Getenv(childEnv) == rrFabricChild {
		os.Exit(runReflectorFabricChild())
	}
}

// runReflectorFabricChild runs the reflector configured from the
// datastore, as `bgpfabric reflector --node NAME` does, until SIGTERM.
func runReflectorFabricChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	lg := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{os.Getenv("BF_ETCD")}})
	if err != nil {
		lg.Error("datastore", "error", err)
		return 1
	}
	defer c.Close()
	ctrl, err := rrfabric.New(rrfabric.Config{
		Client: c, Node: os.Getenv("BF_NODE"), StatusInterval: time.Second, Logger: lg,
		Engine: func(rc *reflector.Config) { rc.ConnectRetry = time.Second },
	})
	if err != nil {
		lg.Error("reflector controller", "error", err)
		return 1
	}
	if err := ctrl.Run(ctx); err != nil && ctx.Err() == nil {
		lg.Error("reflector controller run", "error", err)
		return 1
	}
	return 0
}

// TestReflectorWithFourNodes: bgpfabric's reflector, configured from the
// datastore (its Node labelled route-reflector with a cluster ID), and
// four nodes made its clients by one BGPPeer with selectors, the mesh off
// from the start. Each node has only the reflector session, of type
// reflector, and holds the other three blocks in its kernel via their
// owners; the reflector reports its four clients established; a block
// removed on its node is withdrawn everywhere.
func TestReflectorWithFourNodes(t *testing.T) {
	f := newFabric(t)
	noMesh := fastTimers()
	off := false
	noMesh.Spec.NodeToNodeMeshEnabled = &off
	const rrAddr = "10.99.0.5"
	f.apply(noMesh,
		&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "to-reflectors"}, Spec: api.BGPPeerSpec{
			NodeSelector: "!has(route-reflector)", PeerSelector: "has(route-reflector)"}},
		&api.Node{ObjectMeta: api.ObjectMeta{Name: "rr", Labels: map[string]string{"route-reflector": "true"}},
			Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: rrAddr + "/24", RouteReflectorClusterID: "1.0.0.1"}}},
	)
	var nodes []*fabricNode
	blocks := map[*fabricNode]netip.Prefix{}
	for i := range 4 {
		n := f.addNode(fmt.Sprintf("n%d", i+1), fmt.Sprintf("10.99.0.%d/24", i+1))
		nodes = append(nodes, n)
		blocks[n] = netip.MustParsePrefix(fmt.Sprintf("10.65.%d.0/26", i+1))
	}
	var bh *netlink.Route
	for _, n := range nodes {
		if r := addBlackhole(t, n.ns, blocks[n].String()); n == nodes[0] {
			bh = r
		}
	}
	rr := &fabricNode{name: "rr", ns: f.addHost("rr", rrAddr+"/24"), addr: netip.MustParsePrefix(rrAddr + "/24")}
	f.start(rr, childEnv+"="+rrFabricChild)
	for _, n := range nodes {
		f.start(n)
	}

	waitBlocksViaOwners(t, nodes, blocks)
	for _, n := range nodes {
		f.waitStatus(n.name, "only the reflector session, established", 10*time.Second, func(m map[string]api.BGPState) bool {
			return len(m) == 1 && m[rrAddr] == api.BGPEstablished
		})
		if p := f.peers(n.name)[rrAddr]; p.Type != api.PeerTypeReflector {
			t.Errorf("%s: session with %s has type %q, want %q", n.name, rrAddr, p.Type, api.PeerTypeReflector)
		}
	}
	f.waitStatus("rr", "its four clients established", 10*time.Second, allEstablished(len(nodes)))

	// Felix removes n1's block: withdrawn from every other node.
	if err := nodes[0].ns.Netlink.RouteDel(bh); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		waitRoute(t, n.ns, blocks[nodes[0]], "", 10*time.Second)
	}
	// The others' blocks stay where they were.
	for _, n := range nodes[1:] {
		for _, o := range nodes[1:] {
			if o == n {
				continue
			}
			want := fmt.Sprintf("via %s proto %d", o.addr.Addr(), router.ProtoRouter)
			if got := routeState(n.ns, blocks[o]); got != want {
				t.Errorf("%s: after n1's withdrawal, route to %s's block is %q, want %q", n.name, o.name, got, want)
			}
		}
	}
}
