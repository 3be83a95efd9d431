package sim

import (
	"regexp"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// TestRouterConfigsDirectNeighbors renders the as-per-rack routers and
// checks that every BIRD session is marked direct: without it BIRD resolves
// an iBGP next hop recursively through routes it does not have and installs
// the rack's blocks as unreachable.
func TestRouterConfigsDirectNeighbors(t *testing.T) {
	topo, err := topology.Load("../topologies/as-per-rack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := topology.Expand(topo, topology.ExpandOptions{RunID: "abc123"})
	if err != nil {
		t.Fatal(err)
	}
	bird := BIRDConfig(plan.Node("tor-r2"), 9, 3)
	protos := regexp.MustCompile(`(?s)protocol bgp \S+ \{.*?\n\}`).FindAllString(bird, -1)
	if len(protos) != 4 { // three nodes (iBGP) and the spine (eBGP)
		t.Fatalf("want 4 BGP protocols, got %d:\n%s", len(protos), bird)
	}
	for _, p := range protos {
		if !strings.Contains(p, "\n  direct;\n") {
			t.Errorf("BGP protocol without direct:\n%s", p)
		}
		ibgp := strings.Contains(p, "local as 65002;\n  neighbor 10.") && strings.Contains(p, "as 65002;\n  hold")
		if ibgp && (!strings.Contains(p, "rr client;") || !strings.Contains(p, "next hop self;")) {
			t.Errorf("iBGP session to a node is not an RR client with next hop self:\n%s", p)
		}
	}
	frr := FRRConfig(plan.Node("tor-r1"), 9, 3)
	for _, want := range []string{"router bgp 65001", "route-reflector-client", "next-hop-self force", "timers 3 9", "remote-as 65100"} {
		if !strings.Contains(frr, want) {
			t.Errorf("FRR configuration lacks %q:\n%s", want, frr)
		}
	}
}
