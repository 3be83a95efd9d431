package router_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/reflector"
	"github.com/bgpfabric/bgpfabric/router"
)

// runReflectorChild runs bgpfabric's route reflector (package reflector)
// in the child's namespace until SIGTERM: it listens on BF_LISTEN and
// dials its iBGP clients, BF_CLIENTS (comma-separated addresses), which
// peering makes passive towards their reflector.
func runReflectorChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	lg := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	id := netip.MustParseAddrPort(os.Getenv("BF_LISTEN")).Addr()
	var clients []reflector.NeighborConfig
	for _, a := range strings.Split(os.Getenv("BF_CLIENTS"), ",") {
		clients = append(clients, reflector.NeighborConfig{
			Address: netip.MustParseAddr(a), ASN: 64512, Client: true, HoldTime: 9 * time.Second})
	}
	r, err := reflector.New(reflector.Config{
		RouterID:     id,
		ASN:          64512,
		ClusterID:    netip.MustParseAddr(os.Getenv("BF_CLUSTER_ID")),
		ListenAddrs:  []string{os.Getenv("BF_LISTEN")},
		Neighbors:    clients,
		ConnectRetry: time.Second,
		Logger:       lg,
	})
	if err != nil {
		lg.Error("reflector", "error", err)
		return 1
	}
	if err := r.Run(ctx); err != nil && ctx.Err() == nil {
		lg.Error("reflector run", "error", err)
		return 1
	}
	return 0
}

// peers reads the node's BGPStatus peers by IP.
func (f *fabric) peers(node string) map[string]api.BGPPeerStatus {
	statusMu.Lock()
	defer statusMu.Unlock()
	r, err := f.client.Get(context.Background(), api.KindBGPStatus, "", node)
	if err != nil {
		return nil
	}
	out := map[string]api.BGPPeerStatus{}
	for _, p := range r.(*api.BGPStatus).Status.Peers {
		out[p.PeerIP] = p
	}
	return out
}

// TestMeshToReflectorReshape: three nodes in full mesh; then, through the
// datastore only, the mesh is switched off, a node labelled route-reflector
// with a cluster ID appears (running bgpfabric's reflector), and a BGPPeer
// makes every other node its client. Each agent drops its mesh sessions,
// brings up the reflector session, and routes still converge, also new
// ones, with the agents never restarted.
func TestMeshToReflectorReshape(t *testing.T) {
	f := newFabric(t)
	f.apply(fastTimers())
	nodes := []*fabricNode{
		f.addNode("n1", "10.99.0.1/24"),
		f.addNode("n2", "10.99.0.2/24"),
		f.addNode("n3", "10.99.0.3/24"),
	}
	for i, n := range nodes {
		addBlackhole(t, n.ns, fmt.Sprintf("10.65.%d.0/26", i+1))
		f.start(n)
	}
	checkRoutes := func(what string) {
		t.Helper()
		for _, n := range nodes {
			for j, o := range nodes {
				if o == n {
					continue
				}
				waitRoute(t, n.ns, netip.MustParsePrefix(fmt.Sprintf("10.65.%d.0/26", j+1)),
					fmt.Sprintf("via %s proto %d", o.addr.Addr(), router.ProtoRouter), 30*time.Second)
			}
		}
		t.Logf("%s: routes converged", what)
	}
	checkRoutes("mesh")
	pids := map[string]int{}
	for _, n := range nodes {
		f.waitStatus(n.name, "mesh up", 30*time.Second, allEstablished(2))
		pids[n.name] = n.proc.Process.Pid
	}

	// The reflector node: its namespace and process first, then the
	// resources that make it one.
	rr := &fabricNode{name: "rr", ns: f.addHost("rr", "10.99.0.4/24"), addr: netip.MustParsePrefix("10.99.0.4/24")}
	f.start(rr, childEnv+"=reflector", "BF_LISTEN=10.99.0.4:179", "BF_CLUSTER_ID=1.0.0.1", "BF_CLIENTS=10.99.0.1,10.99.0.2,10.99.0.3")
	noMesh := fastTimers()
	off := false
	noMesh.Spec.NodeToNodeMeshEnabled = &off
	f.apply(
		&api.Node{ObjectMeta: api.ObjectMeta{Name: "rr", Labels: map[string]string{"route-reflector": "true"}},
			Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: "10.99.0.4/24", RouteReflectorClusterID: "1.0.0.1"}}},
		&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "to-reflectors"}, Spec: api.BGPPeerSpec{
			NodeSelector: "!has(route-reflector)", PeerSelector: "has(route-reflector)"}},
		noMesh,
	)
	for _, n := range nodes {
		f.waitStatus(n.name, "only the reflector session, established", 30*time.Second, func(m map[string]api.BGPState) bool {
			return len(m) == 1 && m["10.99.0.4"] == api.BGPEstablished
		})
		if p := f.peers(n.name)["10.99.0.4"]; p.Type != api.PeerTypeReflector {
			t.Errorf("%s: session with 10.99.0.4 has type %q, want %q", n.name, p.Type, api.PeerTypeReflector)
		}
	}
	checkRoutes("reflector")
	// A new block travels through the reflector.
	addBlackhole(t, nodes[2].ns, "10.65.33.0/26")
	for _, n := range nodes[:2] {
		waitRoute(t, n.ns, netip.MustParsePrefix("10.65.33.0/26"), fmt.Sprintf("via 10.99.0.3 proto %d", router.ProtoRouter), 10*time.Second)
	}
	for _, n := range nodes {
		select {
		case err := <-n.wait:
			t.Errorf("%s's agent exited during the reshape: %v", n.name, err)
		default:
		}
		if pid := n.proc.Process.Pid; pid != pids[n.name] {
			t.Errorf("%s's agent was restarted: PID %d, was %d", n.name, pid, pids[n.name])
		}
	}
}
