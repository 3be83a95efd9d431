package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// TestRRInterop boots rr-interop: the fabric's reflectors are BIRD 2 and
// FRR bgpd, a redundant pair in one cluster. Every pair of workloads
// reaches every other over IPv4 and IPv6, every compute node has exactly
// the other nodes' blocks via their owners (reflection keeps next hops),
// and both reflectors report every session Established, to the clients
// and to each other. Then each reflector in turn is killed (SIGKILL): the
// other carries the fabric alone, with no route withdrawn on any compute
// node and all checks passing; then it comes back.
//
// The daemons are not configured for graceful restart (BIRD is only
// "aware", FRR a helper), so the clients drop a dead reflector's paths at
// once: what keeps the routes is the other reflector's paths, not stale
// ones.
func TestRRInterop(t *testing.T) {
	f := boot(t, "rr-interop")
	converge(t, f)
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
	computes := computeNodes(f)
	requireNodeSessions(t, f, computes, "rr-bird", "rr-frr")
	for _, rr := range []string{"rr-bird", "rr-frr"} {
		requireRouterSessions(t, f, rr, nil)
		// BIRD and FRR install what they reflect in their own kernels
		// (the sim's readiness waits for it): every block, via its owner.
		requireBlocksVia(t, f, rr)
	}
	if t.Failed() {
		return
	}
	waitReflected(t, f, "rr-bird", "rr-frr")

	var all []netip.Prefix
	for _, bs := range blocksByNode(t, f) {
		all = append(all, bs...)
	}
	steps := []struct{ down, other string }{{"rr-bird", "rr-frr"}, {"rr-frr", "rr-bird"}}
	for i, st := range steps {
		t.Run(st.down+"-down", func(t *testing.T) {
			ctx := context.Background()
			if i > 0 {
				// The reflector killed before comes back first: the fabric
				// reconverges with both before it loses the other one.
				back := steps[i-1].down
				if err := f.StartAgent(back); err != nil {
					t.Fatal(err)
				}
				d, err := f.WaitConverged(ctx)
				if err != nil {
					t.Fatalf("%s restarted: %v", back, err)
				}
				t.Logf("%s restarted: reconverged in %s", back, d.Round(time.Millisecond))
				// Its clients are back; its session with the other
				// reflector waits for that one's connect retry (10 s in
				// FRR's datacenter defaults) and is not checked here.
				requireRouterSessions(t, f, back, map[string]string{st.down: "any"})
				waitReflected(t, f, back)
			}
			w := watchRoutes(t, f, computes, all)
			fr, checks := f.Fault(ctx, topology.FaultPlan{Name: st.down + "-down", Action: topology.FaultKillAgent, Node: st.down})
			if fr.Status != sim.Passed {
				t.Errorf("fault: %s: %s", fr.Status, fr.Message)
			}
			for _, c := range checks {
				if c.Status != sim.Passed {
					t.Errorf("after the fault, check %s: %s %v", c.Name, c.Message, c.Failures)
				}
			}
			t.Logf("%s killed: clients reconverged (sessions to it down, all else in place) in %.3fs", st.down, fr.ReconvergeSeconds)
			// Stay past the hold time (3 s): nothing may be withdrawn
			// meanwhile.
			wait(ctx, 4*time.Second)
			requireChecks(t, f)
			requireExactRoutes(t, f, viaOwner(f))
			if d := w.deletions(); len(d) > 0 {
				t.Errorf("routes withdrawn while %s remained: %+v", st.other, d)
			}
			requireNodeSessions(t, f, computes, st.other)
			requireRouterSessions(t, f, st.other, map[string]string{st.down: "down"})
			if _, err := f.PeerStates(ctx, st.down); err == nil {
				t.Errorf("%s is down, but its sessions were read", st.down)
			}
		})
	}
	// FRR (zebra and bgpd, killed together) comes back as BIRD did.
	if err := f.StartAgent("rr-frr"); err != nil {
		t.Fatal(err)
	}
	d, err := f.WaitConverged(context.Background())
	if err != nil {
		t.Fatalf("rr-frr restarted: %v", err)
	}
	t.Logf("rr-frr restarted: reconverged in %s", d.Round(time.Millisecond))
	requireRouterSessions(t, f, "rr-frr", map[string]string{"rr-bird": "any"})
	requireNodeSessions(t, f, computes, "rr-bird", "rr-frr")
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
}

// TestRRGoBGPD boots rr-gobgpd: one gobgpd reflector for four compute
// nodes. Connectivity and exact routes as with bgpfabric's reflector;
// each client has one session, to gobgpd, which reports all four
// Established, each client's block accepted and the other three sent, and
// programs no kernel routes.
func TestRRGoBGPD(t *testing.T) {
	f := boot(t, "rr-gobgpd")
	converge(t, f)
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
	requireNodeSessions(t, f, computeNodes(f), "reflector")
	requireRouterSessions(t, f, "reflector", nil)
	routes, err := f.Routes("reflector")
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[netip.Prefix]bool{}
	for _, bs := range blocksByNode(t, f) {
		for _, b := range bs {
			blocks[b] = true
		}
	}
	for _, r := range routes {
		if blocks[r.Dst] {
			t.Errorf("gobgpd's namespace has a route to block %s: %+v", r.Dst, r)
		}
	}
}

func computeNodes(f *sim.Fabric) []string {
	var out []string
	for _, n := range f.Plan.Nodes {
		if n.Agent == topology.AgentNode {
			out = append(out, n.Name)
		}
	}
	return out
}

// requireNodeSessions checks that each compute node reports exactly one
// Established session per address family to each of the reflectors and
// none other Established.
func requireNodeSessions(t *testing.T, f *sim.Fabric, nodes []string, reflectors ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, rr := range reflectors {
		n := f.Plan.Node(rr)
		want[n.IPv4.Addr().String()] = true
		if n.IPv6.IsValid() {
			want[n.IPv6.Addr().String()] = true
		}
	}
	for _, node := range nodes {
		peers, err := f.PeerStates(context.Background(), node)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, p := range peers {
			if p.State == "Established" {
				got[p.PeerIP] = true
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s: sessions %+v, want one Established to each of %v", node, peers, reflectors)
			continue
		}
		for a := range want {
			if !got[a] {
				t.Errorf("%s: no Established session to %s: %+v", node, a, peers)
			}
		}
	}
}

// requireRouterSessions reads a reflector's sessions from the router
// that runs it (BIRD's control socket, bgpd's vty, gobgpd's API): every
// neighbour of the plan must be Established, except those at the nodes
// that except maps to "down" (must not be) or "any" (not checked); and
// from each client it must have accepted exactly the client's own blocks
// of the session's family.
func requireRouterSessions(t *testing.T, f *sim.Fabric, rr string, except map[string]string) {
	t.Helper()
	peers, err := f.PeerStates(context.Background(), rr)
	if err != nil {
		t.Fatal(err)
	}
	nbs := f.Plan.Node(rr).Neighbors
	if len(peers) != len(nbs) {
		t.Fatalf("%s reports %d sessions, want %d: %+v", rr, len(peers), len(nbs), peers)
	}
	blocks := blocksByNode(t, f)
	up := 0
	for i, p := range peers {
		nb := nbs[i]
		established := p.State == "Established"
		switch except[nb.Node] {
		case "any":
			continue
		case "down":
			if established {
				t.Errorf("%s: session to %s (%s, stopped) still Established", rr, p.PeerIP, nb.Node)
			}
			continue
		}
		if !established {
			t.Errorf("%s: session to %s (%s) is %s", rr, p.PeerIP, nb.Node, p.State)
			continue
		}
		up++
		if !nb.RRClient {
			continue
		}
		var own uint64
		for _, b := range blocks[nb.Node] {
			if b.Addr().Is6() == nb.Address.Is6() {
				own++
			}
		}
		if p.Accepted != own {
			t.Errorf("%s: accepted %d prefixes from %s (%s), want its %d blocks", rr, p.Accepted, p.PeerIP, nb.Node, own)
		}
	}
	t.Logf("%s (%s): %d of %d sessions Established", rr, f.Plan.Node(rr).Router, up, len(peers))
}

// waitReflected waits until every compute node holds, for every other
// node's block, a path from each of the reflectors (over the session of
// the block's family), as the nodes' routers report on their control
// sockets. Convergence does not wait for that: the fabric has converged
// once every node has a route to every block, from whichever reflector
// sent it first, while the other may still be on its way (FRR advertises
// a second or so after its sessions come up, BIRD right after a session
// that came up last). A reflector killed before the other one's paths have
// arrived takes with it routes that nothing else has given the clients
// yet. The routers push no such event, so this asks every 100 ms.
func waitReflected(t *testing.T, f *sim.Fabric, reflectors ...string) {
	t.Helper()
	ctx := context.Background()
	blocks := blocksByNode(t, f)
	start := time.Now()
	for {
		var pending []string
		for _, node := range computeNodes(f) {
			rep, err := router.FetchRoutes(ctx, router.ControlSocketPath(f.Dir(), node))
			if err != nil {
				t.Fatalf("reading %s's routes: %v", node, err)
			}
			from := map[netip.Prefix]map[netip.Addr]bool{}
			for _, d := range rep.BGP {
				from[d.Prefix] = map[netip.Addr]bool{}
				for _, p := range d.Paths {
					from[d.Prefix][p.Peer] = true
				}
			}
			for owner, bs := range blocks {
				if owner == node {
					continue
				}
				for _, b := range bs {
					for _, rr := range reflectors {
						if a := nodeAddr(f, rr, b.Addr().Is6()); !from[b][a] {
							pending = append(pending, fmt.Sprintf("%s has no path to %s from %s", node, b, rr))
						}
					}
				}
			}
		}
		if len(pending) == 0 {
			t.Logf("every node has every other block from each of %v (%s)", reflectors, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("after 20 s: %v", pending)
		}
		wait(ctx, 100*time.Millisecond)
	}
}

// requireBlocksVia checks that a router's kernel routes every block via
// the block's owner.
func requireBlocksVia(t *testing.T, f *sim.Fabric, rr string) {
	t.Helper()
	routes, err := f.Routes(rr)
	if err != nil {
		t.Fatal(err)
	}
	have := map[netip.Prefix]sim.Route{}
	for _, r := range routes {
		have[r.Dst] = r
	}
	for owner, bs := range blocksByNode(t, f) {
		for _, b := range bs {
			r, ok := have[b]
			want := nodeAddr(f, owner, b.Addr().Is6())
			if !ok || r.Type != "" || len(r.Gateways) != 1 || r.Gateways[0] != want {
				t.Errorf("%s routes %s (block of %s) as %+v (present %v), want via %s", rr, b, owner, r, ok, want)
			}
		}
	}
}
