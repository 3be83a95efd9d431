package e2e

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/probe"
)

// TestMesh3 is the default fabric: converged within its deadline, every
// pair of workloads reaches every other (ICMP and TCP), and every node has
// exactly the routes it should; the node agents run from their own binary
// (bgpfabric-node) and their speakers from bgpfabric-speaker.
func TestMesh3(t *testing.T) {
	f := boot(t, "mesh-3")
	converge(t, f)
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
	requireNodeBinaries(t, f)
}

// TestRR1x10: ten clients of one bgpfabric reflector.
func TestRR1x10(t *testing.T) {
	f := boot(t, "rr-1x10")
	converge(t, f)
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
	// Clients peer with the reflector only.
	for _, n := range f.Plan.Nodes {
		if n.Role != "compute" {
			continue
		}
		peers, err := f.PeerStates(context.Background(), n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(peers) != 1 || peers[0].PeerIP != f.Plan.Node("reflector").IPv4.Addr().String() || peers[0].State != "Established" {
			t.Errorf("%s: sessions %+v, want one Established to the reflector", n.Name, peers)
		}
	}
}

// TestPolicyDemo: the allowed flows pass, the denied ones stay blocked —
// the checks of the file, and the same flows probed here once more so that
// the test does not depend on the file's checks alone.
func TestPolicyDemo(t *testing.T) {
	f := boot(t, "policy-demo")
	converge(t, f)
	res := requireChecks(t, f)
	kinds := map[string]int{}
	for _, c := range res {
		kinds[c.Kind]++
	}
	if kinds["connectivity"] < 2 || kinds["blocked"] < 2 {
		t.Fatalf("policy-demo must check allowed and blocked flows: %v", kinds)
	}
	ctx := context.Background()
	client, _ := f.WorkloadNetns("edge-client")
	frontend, _ := f.WorkloadNetns("web-frontend")
	backend := addr4(t, f, "app-backend")
	front := addr4(t, f, "web-frontend")
	probeCtx := func(d time.Duration) context.Context {
		c, cancel := context.WithTimeout(ctx, d)
		t.Cleanup(cancel)
		return c
	}
	if r := probe.TCP(probeCtx(5*time.Second), frontend, backend, 8080); !r.OK {
		t.Errorf("frontend -> backend:8080 must pass: %v", r.Err)
	}
	if r := probe.TCP(probeCtx(5*time.Second), client, front, 80); !r.OK {
		t.Errorf("client -> frontend:80 must pass: %v", r.Err)
	}
	if r := probe.TCP(probeCtx(2*time.Second), client, backend, 8080); r.OK || r.Refused {
		t.Errorf("client -> backend:8080 must be dropped: ok=%v refused=%v", r.OK, r.Refused)
	}
	if r := probe.Ping(probeCtx(2*time.Second), client, backend); r.OK {
		t.Errorf("client ping backend must be dropped")
	}
	// The frontend may ping nothing either: the policy allows only TCP 8080
	// into the backend.
	if r := probe.Ping(probeCtx(2*time.Second), frontend, backend); r.OK {
		t.Errorf("frontend ping backend must be dropped (only TCP 8080 is allowed)")
	}
}

// TestASPerRackInterop: two racks behind an FRR and a BIRD top-of-rack
// router and an FRR spine. Cross-rack traffic goes node -> ToR -> spine ->
// ToR -> node; each node reaches every other block through its own ToR;
// the ToRs and the spine have a route to every block in their kernels.
func TestASPerRackInterop(t *testing.T) {
	f := boot(t, "as-per-rack")
	converge(t, f)
	requireChecks(t, f)
	tor := map[string]string{"rack1": "tor-r1", "rack2": "tor-r2"}
	requireExactRoutes(t, f, func(node, _ string, v6 bool) netip.Addr {
		return nodeAddr(f, tor[f.Plan.Node(node).Segment], v6)
	})
	blocks := blocksByNode(t, f)
	for _, r := range []string{"tor-r1", "tor-r2", "spine"} {
		routes, err := f.Routes(r)
		if err != nil {
			t.Fatal(err)
		}
		have := map[netip.Prefix]sim.Route{}
		for _, rt := range routes {
			have[rt.Dst] = rt
		}
		for owner, bs := range blocks {
			for _, b := range bs {
				rt, ok := have[b]
				switch {
				case !ok:
					t.Errorf("%s has no route to %s (block of %s)", r, b, owner)
				case rt.Type != "" || len(rt.Gateways) == 0:
					t.Errorf("%s routes %s (block of %s) as %q via %v: want a unicast route", r, b, owner, rt.Type, rt.Gateways)
				}
			}
		}
	}
}
