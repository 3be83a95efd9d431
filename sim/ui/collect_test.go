package ui

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// loadPlan expands a shipped topology.
func loadPlan(t *testing.T, name string) *topology.Plan {
	t.Helper()
	topo, err := topology.Load(filepath.Join("..", "..", "topologies", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := topology.Expand(topo, topology.ExpandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// healthy is the observation of a converged mesh: every agent up and
// ready, every session Established, every block routed everywhere.
func healthy(p *topology.Plan) observation {
	o := observation{bgp: map[string]*api.BGPStatus{}, felix: map[string]*api.FelixStatus{}, blocks: map[string][]netip.Prefix{},
		agentUp: map[string]bool{}, routes: map[string]map[netip.Prefix]bool{}, links: map[string]map[string]bool{}}
	for i, n := range p.Nodes {
		o.agentUp[n.Name] = true
		o.felix[n.Name] = &api.FelixStatus{Status: api.FelixStatusReport{Ready: true}}
		o.blocks[n.Name] = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(i), 0}), 26)}
		st := &api.BGPStatus{}
		for _, m := range p.Nodes {
			if m != n {
				st.Status.Peers = append(st.Status.Peers, api.BGPPeerStatus{PeerIP: m.IPv4.Addr().String(), State: api.BGPEstablished})
			}
		}
		o.bgp[n.Name] = st
		o.links[n.Name] = map[string]bool{}
		for _, ifc := range n.Interfaces {
			o.links[n.Name][ifc.Name] = true
		}
	}
	for _, n := range p.Nodes {
		o.routes[n.Name] = map[netip.Prefix]bool{}
		for _, pfxs := range o.blocks {
			for _, pfx := range pfxs {
				o.routes[n.Name][pfx] = true
			}
		}
	}
	return o
}

func states(s Snapshot) map[string]string {
	m := map[string]string{}
	for _, n := range s.Nodes {
		m[n.Name] = n.State
	}
	for _, e := range s.Edges {
		m[e.ID] = e.State
	}
	return m
}

func TestApplyStates(t *testing.T) {
	p := loadPlan(t, "mesh-3")
	base := Layout(p)
	o := healthy(p)
	s := apply(base, p, o)
	for k, v := range states(s) {
		if v != StateReady && v != SessionEstablished && v != LinkUp {
			t.Errorf("healthy fabric: %s is %s", k, v)
		}
	}
	if n := s.node("node-1"); n.SessionsUp != 2 || n.Sessions != 2 || n.Installed != 2 || n.Expected != 2 || n.Routes != 3 ||
		n.Class != "node role-compute agent-node state-ready" {
		t.Errorf("node-1: %+v", n)
	}

	// node-2's agent dies: it is down, its sessions are down; the others
	// have converged without it (as the sim's convergence says), so
	// neither its session nor its block (withdrawn) is held against them.
	o.agentUp["node-2"] = false
	delete(o.routes["node-1"], o.blocks["node-2"][0])
	s = apply(base, p, o)
	got := states(s)
	want := map[string]string{
		"node-1": StateReady, "node-2": StateDown, "node-3": StateReady,
		"session-node-1--node-2": SessionDown, "session-node-2--node-3": SessionDown, "session-node-1--node-3": SessionEstablished,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("after node-2's agent died: %s is %s, want %s", k, got[k], v)
		}
	}
	if n := s.node("node-1"); n.Installed != 1 || n.Expected != 1 || n.SessionsUp != 1 || n.Sessions != 2 {
		t.Errorf("node-1 after node-2 died: %+v", n)
	}
	// A route of a live node goes missing: converging.
	delete(o.routes["node-1"], o.blocks["node-3"][0])
	s = apply(base, p, o)
	if got := s.node("node-1"); got.State != StateConverging || got.Installed != 0 {
		t.Errorf("node-1 without node-3's block: %+v", got)
	}

	// Back, but node-3 reports node-1 as Active, and node-3's port is down.
	o = healthy(p)
	o.bgp["node-3"].Status.Peers[0].State = api.BGPActive
	o.links["node-3"][p.Node("node-3").Interfaces[0].Name] = false
	o.felix["node-2"].Status.Ready = false
	got = states(apply(base, p, o))
	want = map[string]string{
		"session-node-1--node-3": SessionConnecting, "port-node-3--lan": LinkDown, "port-node-1--lan": LinkUp,
		"node-2": StateStarting, "node-1": StateConverging,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s is %s, want %s", k, got[k], v)
		}
	}
}

// TestLayoutTiers: reflectors above routers above compute nodes, one
// element per plan node, and the sessions the agents compute.
func TestLayoutTiers(t *testing.T) {
	p := loadPlan(t, "rr-2x4")
	s := Layout(p)
	y := map[string]int{}
	for _, n := range s.Nodes {
		y[n.Name] = n.Y
	}
	if len(s.Nodes) != len(p.Nodes) {
		t.Fatalf("%d nodes drawn, plan has %d", len(s.Nodes), len(p.Nodes))
	}
	if !(y["reflector-1"] == y["reflector-2"] && y["reflector-1"] < y["node-1"] && y["node-1"] == y["node-4"]) {
		t.Errorf("tiers: %v", y)
	}
	// Reflector model: each compute node peers with both reflectors,
	// and the reflectors with each other: 4*2 + 1 sessions.
	sessions := 0
	for _, e := range s.Edges {
		if e.Kind == "session" {
			sessions++
		}
	}
	if sessions != 9 {
		t.Errorf("%d sessions drawn, want 9: %+v", sessions, s.Edges)
	}
	// Deterministic: the same plan, the same drawing.
	if again := Layout(loadPlan(t, "rr-2x4")); again.Graph != s.Graph {
		t.Errorf("layout not deterministic: %s vs %s", again.Graph, s.Graph)
	}
}

// TestLayoutWraps: a wide tier wraps into rows of at most maxPerRow,
// below the tier above, and no two nodes share a place.
func TestLayoutWraps(t *testing.T) {
	p := loadPlan(t, "rr-2x50")
	s := Layout(p)
	at := map[[2]int]string{}
	perRow := map[int]int{}
	var rrY int
	for _, n := range s.Nodes {
		if other, dup := at[[2]int{n.X, n.Y}]; dup {
			t.Fatalf("%s and %s share a place", n.Name, other)
		}
		at[[2]int{n.X, n.Y}] = n.Name
		perRow[n.Y]++
		if n.Role == topology.RoleReflector {
			rrY = n.Y
		} else if n.Y <= rrY {
			t.Errorf("%s is not below the reflectors", n.Name)
		}
		if n.X < 0 || n.X > s.Width || n.Y > s.Height {
			t.Errorf("%s at %d,%d is outside %dx%d", n.Name, n.X, n.Y, s.Width, s.Height)
		}
	}
	for y, k := range perRow {
		if k > maxPerRow {
			t.Errorf("row at y=%d has %d nodes", y, k)
		}
	}
	if len(perRow) != 1+(50+maxPerRow-1)/maxPerRow {
		t.Errorf("rows: %v", perRow)
	}
}

// TestApplyRouterSessions: a session between two routers from Debian is
// known only from their own answers (they write no status records).
func TestApplyRouterSessions(t *testing.T) {
	p := loadPlan(t, "as-per-rack")
	base := Layout(p)
	o := healthy(p)
	s := apply(base, p, o)
	id := edgeID("session", "spine", "tor-r1")
	if got := states(s)[id]; got != SessionEstablished {
		t.Fatalf("%s with both routers' reports: %q", id, got)
	}
	if n := s.node("tor-r1"); n.State != StateReady {
		t.Errorf("tor-r1: %+v", n)
	}
	delete(o.bgp, "spine")
	delete(o.bgp, "tor-r1")
	s = apply(base, p, o)
	if got := states(s)[id]; got != SessionUnknown {
		t.Errorf("%s without reports: %q", id, got)
	}
	if n := s.node("tor-r1"); n.State != StateConverging {
		t.Errorf("tor-r1 with a session nobody reports: %+v", n)
	}
}
