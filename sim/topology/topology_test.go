package topology

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestShippedTopologies parses and expands every file of topologies/,
// compares the plan with its golden rendering, and checks that peering
// gives every bgpfabric node at least one session.
func TestShippedTopologies(t *testing.T) {
	files, err := filepath.Glob("../../topologies/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no topologies found: %v", err)
	}
	want := []string{"as-per-rack", "k8s-demo", "mesh-10", "mesh-3", "policy-demo", "rr-1x10", "rr-2x4", "rr-2x50", "rr-2x98", "rr-gobgpd", "rr-interop"}
	var got []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		got = append(got, name)
		t.Run(name, func(t *testing.T) {
			topo, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if topo.Name != name {
				t.Errorf("name: %q, want the file's name %q", topo.Name, name)
			}
			plan, err := Expand(topo, ExpandOptions{RunID: "abc123", Slot: 5})
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := plan.Render(&buf); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", name+".txt"), buf.String())
			checkSessions(t, plan)
		})
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(got, " "), w) {
			t.Errorf("topologies/%s.yaml is missing", w)
		}
	}
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", file, diff)
	}
}

// checkSessions computes each bgpfabric node's sessions as its agent will.
func checkSessions(t *testing.T, p *Plan) {
	t.Helper()
	var in peering.Input
	for _, r := range p.Resources {
		in.Add(r)
	}
	for _, n := range p.Nodes {
		if n.Agent == AgentRouter {
			if len(n.Neighbors) == 0 {
				t.Errorf("router %s has no neighbors", n.Name)
			}
			continue
		}
		res, err := peering.Compute(in, n.Name)
		if err != nil {
			t.Errorf("peering for %s: %v", n.Name, err)
			continue
		}
		if len(res.Sessions) == 0 {
			t.Errorf("node %s has no sessions (warnings %v)", n.Name, res.Warnings)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const good = "name: f\nnodes:\n  - name: n\n    count: 2\n"
	for _, tc := range []struct {
		name, yaml string
		// want are substrings of the error, in order: "file:line" and field.
		want []string
	}{
		{"empty", "", []string{"t.yaml: empty topology file"}},
		{"syntax", "name: f\nnodes: [\n", []string{"t.yaml:2: did not find expected node content"}},
		{"not a mapping", "- a\n", []string{"t.yaml:1:1: a topology must be a mapping"}},
		{"two documents", good + "---\nname: g\n", []string{"t.yaml:5: a topology file holds one YAML document"}},
		{"unknown top field", "name: f\nnodez: []\n", []string{"t.yaml:2:1: nodez: unknown field (known: name, description, bgp"}},
		{"unknown nested field", good + "    labes: {a: b}\n", []string{"t.yaml:5:5: nodes[0].labes: unknown field"}},
		{"wrong type", "name: f\nnodes:\n  - name: n\n    count: lots\n", []string{`t.yaml:4:12: nodes[0].count: want a whole number, got str "lots"`}},
		{"missing name", "nodes:\n  - name: n\n", []string{"t.yaml:1:1: name: is required"}},
		{"bad model", good + "bgp:\n  model: ring\n", []string{`t.yaml:6:10: bgp.model: must be mesh, reflectors, as-per-rack or as-per-node (got "ring")`}},
		{"count zero", "name: f\nnodes:\n  - name: n\n    count: 0\n", []string{"t.yaml:4:12: nodes[0].count: must be from 1 to 1000"}},
		{"bad role", good + "    role: spine\n", []string{"t.yaml:5:11: nodes[0].role: must be compute, reflector, tor or external"}},
		{"unknown segment", good + "    segment: rack9\n", []string{`t.yaml:5:14: nodes[0].segment: no segment "rack9" is defined`}},
		{"clash", "name: f\nnodes:\n  - name: n\n    count: 2\n  - name: n-1\n", []string{"t.yaml:5:11: nodes[1].name: node n-1 clashes with a node of group \"n\""}},
		{"external without AS", good + "  - name: ext\n    role: external\n", []string{"t.yaml:5:5: nodes[1].asNumber: is required for external routers"}},
		{"router config on compute", good + "    routerConfig: \"x\"\n", []string{"t.yaml:5:19: nodes[0].routerConfig: only tor and external routers"}},
		{"router config on bgpfabric's reflector", "name: f\nbgp: {model: reflectors}\nnodes:\n  - name: rr\n    role: reflector\n    routerConfig: \"x\"\n  - name: n\n",
			[]string{"t.yaml:6:19: nodes[0].routerConfig: only tor and external routers, and reflectors run by bird, frr or gobgpd"}},
		{"router config not text", good + "  - name: ext\n    role: external\n    asNumber: 65001\n    routerConfig: \"a\\0b\"\n", []string{"t.yaml:8:19: nodes[1].routerConfig: must be text"}},
		{"reflectors without reflector", good + "bgp: {model: reflectors}\n", []string{"t.yaml:5:14: bgp.model: the reflectors model needs a node group with role: reflector"}},
		{"tor in mesh", good + "  - name: t\n    role: tor\n", []string{"t.yaml:6:11: nodes[1].role: tor routers belong to"}},
		{"rack without tor", "name: f\nbgp: {model: as-per-rack}\nnodes:\n  - name: n\n", []string{"t.yaml:4:3: nodes: as-per-rack: segment lan needs exactly one tor router (has 0)"}},
		{"link to node", good + "links:\n  - between: [n-1, n-2]\n", []string{"t.yaml:6:14: links[0].between: point-to-point links join tor and external routers"}},
		{"link to nobody", good + "links:\n  - between: [n-1, x]\n", []string{`t.yaml:6:20: links[0].between[1]: no node "x"`}},
		{"address outside segment", "name: f\nnodes:\n  - name: n\n    addresses: [192.168.0.1/24]\n", []string{"t.yaml:4:17: nodes[0].addresses[0]: 192.168.0.1/24 is not an address of segment lan"}},
		{"bad pool", good + "pools:\n  - cidr: 10.1.0.0/16\n    blockSize: 8\n", []string{"t.yaml:7:16: pools[0].blockSize: must be from 20 to 32"}},
		{"bad selector", good + "checks:\n  connectivity:\n    - from: \"app ==\"\n", []string{"t.yaml:7:13: checks.connectivity[0].from: invalid selector"}},
		{"flow selects nothing", good + "    workloads: [{name: w}]\nchecks:\n  connectivity:\n    - from: app == 'x'\n", []string{"t.yaml:8:7: checks.connectivity[0]: selects no pair of workloads"}},
		{"fault on unknown node", good + "faults:\n  - action: kill-agent\n    node: zz\n", []string{`t.yaml:7:11: faults[0].node: no node "zz"`}},
		{"link fault needs link", good + "faults:\n  - action: link-down\n    node: n-1\n", []string{"t.yaml:6:5: faults[0].segment: link-down needs either segment or peer"}},
		{"bad duration", good + "checks:\n  convergence: soon\n", []string{`t.yaml:6:16: checks.convergence: must be a duration such as 30s or 2m (got "soon")`}},
		{"resource invalid field", good + "resources:\n  - apiVersion: bgpfabric.io/v1\n    kind: IPPool\n    metadata: {name: p}\n    spec:\n      cidr: 10.0.0.1/16\n",
			[]string{`t.yaml:10:13: resources[0].spec.cidr: IPPool p: has host bits set`}},
		{"resource unknown kind", good + "resources:\n  - apiVersion: bgpfabric.io/v1\n    kind: Pod\n    metadata: {name: p}\n", []string{"t.yaml:6:5: resources[0]: decoding resource: unknown kind"}},
		{"resource status kind", good + "resources:\n  - kind: BGPStatus\n    metadata: {name: p}\n", []string{"t.yaml:6:5: resources[0]: BGPStatus is a status record"}},
		{"resource twice", good + "resources:\n  - {kind: IPPool, metadata: {name: p}, spec: {cidr: 10.9.0.0/16}}\n  - {kind: IPPool, metadata: {name: p}, spec: {cidr: 10.8.0.0/16}}\n",
			[]string{"t.yaml:7:5: resources[1]: IPPool p is given twice"}},
		{"router on compute", good + "    router: bird\n", []string{"t.yaml:5:13: nodes[0].router: only tor, external and reflector nodes run another router; compute nodes run bgpfabric node"}},
		{"reflector router unknown", good + "  - name: rr\n    role: reflector\n    router: quagga\n", []string{`t.yaml:7:13: nodes[1].router: must be bird, frr or gobgpd, or left out for bgpfabric's reflector (got "quagga")`}},
		{"reflector router and listen port", good + "  - name: rr\n    role: reflector\n    router: frr\nbgp: {model: reflectors, listenPort: 1179}\n",
			[]string{"t.yaml:7:13: nodes[1].router: a reflector run by frr listens on port 179, but bgp.listenPort is 1179"}},
		{"router reflector outside the reflectors model", good + "  - name: rr\n    role: reflector\n    router: bird\n", []string{"t.yaml:6:11: nodes[1].role: reflector nodes belong to the reflectors model (this is mesh)"}},
		{"link to a router reflector", good + "  - name: rr\n    role: reflector\n    router: bird\n  - name: ext\n    role: external\n    asNumber: 65100\nbgp: {model: reflectors}\nlinks:\n  - between: [rr, ext]\n",
			[]string{"t.yaml:13:14: links[0].between: point-to-point links join tor and external routers; compute and reflector nodes peer over their segment"}},
		{"router reflector with workloads", good + "  - name: rr\n    role: reflector\n    router: gobgpd\n    workloads: [{name: w}]\nbgp: {model: reflectors}\n", []string{"t.yaml:8:16: nodes[1].workloads: only compute nodes have workloads"}},
		{"several errors in line order", "name: F\nnodes:\n  - name: n\n    count: -1\n", []string{"t.yaml:1:7: name: must be a lower-case DNS label", "t.yaml:4:12: nodes[0].count"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error\n%s\ndoes not contain (in order)\n%s", msg, w)
				}
				rest = rest[i+len(w):]
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error is not a *topology.Error: %T", err)
			}
		})
	}
}

func TestExpandModels(t *testing.T) {
	parse := func(t *testing.T, y string) *Plan {
		t.Helper()
		topo, err := Parse("t.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		p, err := Expand(topo, ExpandOptions{RunID: "0a0b0c", Slot: 2})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("as-per-node", func(t *testing.T) {
		p := parse(t, "name: f\nbgp: {model: as-per-node, asNumber: 65000}\nnodes:\n  - name: tor\n    role: tor\n  - name: n\n    count: 2\n")
		got := map[string]uint32{}
		for _, n := range p.Nodes {
			got[n.Name] = n.ASNumber
		}
		if diff := cmp.Diff(map[string]uint32{"tor": 65001, "n-1": 66001, "n-2": 66002}, got); diff != "" {
			t.Error(diff)
		}
		tor := p.Node("tor")
		if len(tor.Neighbors) != 2 || tor.Neighbors[0].RRClient || tor.Neighbors[0].NextHopSelf {
			t.Errorf("tor neighbors: %+v", tor.Neighbors)
		}
		cfg := p.Resources[0].(*api.BGPConfiguration)
		if *cfg.Spec.NodeToNodeMeshEnabled {
			t.Error("mesh on with a tor")
		}
	})
	t.Run("dual stack and defaults", func(t *testing.T) {
		p := parse(t, "name: f\naddressing: {ipv6: auto}\nnodes:\n  - name: n\n    count: 2\n")
		n := p.Node("n-2")
		if n.IPv4 != netip.MustParsePrefix("10.66.0.2/24") || n.IPv6 != netip.MustParsePrefix("fd00:bf:2::2/64") {
			t.Errorf("n-2 addresses %s %s", n.IPv4, n.IPv6)
		}
		var pools []string
		for _, r := range p.Resources {
			if pl, ok := r.(*api.IPPool); ok {
				pools = append(pools, pl.Spec.CIDR)
			}
		}
		if diff := cmp.Diff([]string{"10.130.0.0/16", "fd00:bf:2:fe00::/112"}, pools); diff != "" {
			t.Error(diff)
		}
		if n.Netns != "bf-0a0b0c-n-2" || p.Segments[0].Netns != "bf-0a0b0c.seg.lan" {
			t.Errorf("names %s %s", n.Netns, p.Segments[0].Netns)
		}
	})
	t.Run("fixed addresses and inline override", func(t *testing.T) {
		p := parse(t, `name: f
addressing: {ipv4: 10.66.0.0/16}
nodes:
  - name: n
    count: 3
    addresses: [10.66.0.2/24, 10.66.0.9/24, 10.66.0.1/24]
resources:
  - kind: BGPConfiguration
    metadata: {name: default}
    spec: {asNumber: 65123, nodeToNodeMeshEnabled: true}
`)
		var got []string
		for _, n := range p.Nodes {
			got = append(got, n.IPv4.String())
		}
		if diff := cmp.Diff([]string{"10.66.0.2/24", "10.66.0.9/24", "10.66.0.1/24"}, got); diff != "" {
			t.Error(diff)
		}
		cfg := p.Resources[0].(*api.BGPConfiguration)
		if *cfg.Spec.ASNumber != 65123 {
			t.Errorf("inline BGPConfiguration did not replace the generated one: %+v", cfg.Spec)
		}
	})
}

// TestRouterReflectors expands rr-interop, whose reflectors are BIRD and
// FRR: they keep their Node resources (so the generated BGPPeers peer the
// compute nodes with them as with bgpfabric's reflector) and get, as
// neighbours, the sessions peering gives bgpfabric's reflector in their
// place.
func TestRouterReflectors(t *testing.T) {
	topo, err := Load("../../topologies/rr-interop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Expand(topo, ExpandOptions{RunID: "abc123", Slot: 5})
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]*api.Node{}
	var peers []string
	for _, r := range p.Resources {
		switch r := r.(type) {
		case *api.Node:
			nodes[r.Name] = r
		case *api.BGPPeer:
			peers = append(peers, r.Name)
		}
	}
	if diff := cmp.Diff([]string{"sim-nodes-to-reflectors", "sim-reflector-mesh"}, peers); diff != "" {
		t.Errorf("BGPPeers (-want +got; no sim-<router> peer for a reflector):\n%s", diff)
	}
	for _, tc := range []struct{ name, router, peer string }{{"rr-bird", RouterBIRD, "rr-frr"}, {"rr-frr", RouterFRR, "rr-bird"}} {
		n := p.Node(tc.name)
		if n.Role != RoleReflector || n.Agent != AgentRouter || n.Router != tc.router || !n.InFabric() {
			t.Errorf("%s: role %s agent %s router %s", tc.name, n.Role, n.Agent, n.Router)
		}
		if n.ClusterID != netip.MustParseAddr(DefaultClusterID) {
			t.Errorf("%s: cluster ID %s", tc.name, n.ClusterID)
		}
		nr := nodes[tc.name]
		if nr == nil || nr.Labels[LabelRouteReflector] != "true" || nr.Spec.BGP.RouteReflectorClusterID != DefaultClusterID || nr.Spec.BGP.IPv6Address == "" {
			t.Errorf("%s: Node resource %+v", tc.name, nr)
		}
		var got []string
		for _, nb := range n.Neighbors {
			got = append(got, fmt.Sprintf("%s %s %s client=%v nhs=%v", nb.Node, nb.Address, nb.Type, nb.RRClient, nb.NextHopSelf))
		}
		var want []string
		for _, fam := range []func(*NodePlan) netip.Prefix{func(n *NodePlan) netip.Prefix { return n.IPv4 }, func(n *NodePlan) netip.Prefix { return n.IPv6 }} {
			for _, other := range []string{"rr-bird", "rr-frr", "node-1", "node-2", "node-3", "node-4"} {
				switch other {
				case tc.name:
				case tc.peer:
					want = append(want, fmt.Sprintf("%s %s node client=false nhs=false", other, fam(p.Node(other)).Addr()))
				default:
					want = append(want, fmt.Sprintf("%s %s reflectorClient client=true nhs=false", other, fam(p.Node(other)).Addr()))
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s's neighbours (-want +got):\n%s", tc.name, diff)
		}
	}
	// The compute nodes peer with both, in both families, as with any
	// reflector.
	var in peering.Input
	for _, r := range p.Resources {
		in.Add(r)
	}
	res, err := peering.Compute(in, "node-2")
	if err != nil {
		t.Fatal(err)
	}
	var sessions []string
	for _, s := range res.Sessions {
		sessions = append(sessions, fmt.Sprintf("%s %s %s", s.PeerNode, s.PeerAddress, s.Type))
	}
	want := []string{"rr-bird 10.69.0.1 reflector", "rr-frr 10.69.0.2 reflector", "rr-bird fd00:bf:5::1 reflector", "rr-frr fd00:bf:5::2 reflector"}
	if diff := cmp.Diff(want, sessions); diff != "" {
		t.Errorf("node-2's sessions (-want +got):\n%s", diff)
	}
}

// TestRouterReflectorFollowsResources: a reflector run by a router takes
// its sessions and cluster ID from the resources, as bgpfabric's would,
// also when the topology's own resources replace generated ones; with
// bgpfabric's reflector beside it, that one is a non-client peer.
func TestRouterReflectorFollowsResources(t *testing.T) {
	topo, err := Parse("t.yaml", []byte(`name: f
bgp: {model: reflectors, clusterID: 10.255.0.1}
nodes:
  - name: rr
    role: reflector
    router: gobgpd
  - name: ours
    role: reflector
  - name: n
    count: 2
resources:
  - kind: BGPPeer
    metadata: {name: sim-nodes-to-reflectors}
    spec: {node: n-2, peerSelector: has(route-reflector)}
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Expand(topo, ExpandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rr := p.Node("rr")
	if rr.ClusterID != netip.MustParseAddr("10.255.0.1") || rr.Agent != AgentRouter || p.Node("ours").Agent != AgentReflector {
		t.Errorf("rr: cluster %s agent %s; ours: agent %s", rr.ClusterID, rr.Agent, p.Node("ours").Agent)
	}
	var got []string
	for _, nb := range rr.Neighbors {
		got = append(got, fmt.Sprintf("%s client=%v", nb.Node, nb.RRClient))
	}
	// The inline BGPPeer gives only n-2 the reflectors; the generated
	// reflector mesh stays.
	if diff := cmp.Diff([]string{"ours client=false", "n-2 client=true"}, got); diff != "" {
		t.Errorf("rr's neighbours (-want +got):\n%s", diff)
	}
}

func TestPairsSampleIsReproducible(t *testing.T) {
	topo, err := Parse("t.yaml", []byte("name: f\nnodes:\n  - name: n\n    count: 10\n    workloads: [{name: w}]\nchecks:\n  connectivity:\n    - {name: s, sample: 7}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := Expand(topo, ExpandOptions{RunID: "aaaaaa"})
	p2, _ := Expand(topo, ExpandOptions{RunID: "aaaaaa"})
	if n := len(p1.Pairs(FlowPlan{Name: "all", From: p1.Checks.Connectivity[0].From, To: p1.Checks.Connectivity[0].To})); n != 90 {
		t.Errorf("all pairs: %d, want 90", n)
	}
	a, b := p1.Pairs(p1.Checks.Connectivity[0]), p2.Pairs(p2.Checks.Connectivity[0])
	if len(a) != 7 {
		t.Fatalf("sample of %d, want 7", len(a))
	}
	for i := range a {
		if a[i].From.Name != b[i].From.Name || a[i].To.Name != b[i].To.Name {
			t.Fatalf("samples differ at %d", i)
		}
		if a[i].From == a[i].To {
			t.Fatalf("self pair %s", a[i].From.Name)
		}
	}
}

func TestAddressing(t *testing.T) {
	for _, tc := range []struct {
		got  func() (netip.Prefix, bool)
		want string
	}{
		{func() (netip.Prefix, bool) { return subnet(netip.MustParsePrefix("10.1.0.0/16"), 24, 3) }, "10.1.3.0/24"},
		{func() (netip.Prefix, bool) { return subnet(netip.MustParsePrefix("10.1.0.0/16"), 31, 32767) }, "10.1.255.254/31"},
		{func() (netip.Prefix, bool) { return subnet(netip.MustParsePrefix("fd00:bf::/48"), 64, 2) }, "fd00:bf:0:2::/64"},
		{func() (netip.Prefix, bool) { return host(netip.MustParsePrefix("10.1.2.0/24"), 254) }, "10.1.2.254/24"},
		{func() (netip.Prefix, bool) { return pointToPoint(netip.MustParsePrefix("10.1.2.4/30"), 2) }, "10.1.2.6/30"},
		{func() (netip.Prefix, bool) { return pointToPoint(netip.MustParsePrefix("10.1.2.4/31"), 2) }, "10.1.2.5/31"},
	} {
		got, ok := tc.got()
		if !ok || got.String() != tc.want {
			t.Errorf("got %s %v, want %s", got, ok, tc.want)
		}
	}
	if _, ok := host(netip.MustParsePrefix("10.1.2.0/24"), 255); ok {
		t.Error("host 255 of a /24 is the broadcast address")
	}
	if _, ok := subnet(netip.MustParsePrefix("10.1.0.0/16"), 24, 256); ok {
		t.Error("subnet 256 of a /16 does not exist")
	}
	for _, tc := range []struct {
		ns, run string
		ok      bool
	}{{"bf-abc123-node-1", "abc123", true}, {"bf-abc123.seg.lan", "abc123", true}, {"bft-abc123", "", false}, {"bf-abc12x-n", "", false}, {"bf-abc123", "", false}} {
		run, ok := RunOfNetns(tc.ns)
		if run != tc.run || ok != tc.ok {
			t.Errorf("RunOfNetns(%q) = %q %v", tc.ns, run, ok)
		}
	}
}

// FuzzParse feeds arbitrary bytes to the parser: it must return a plan or
// an error, never panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../topologies/*.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("name: f\nnodes: [{name: n, count: 3}]\nlinks: [{between: [a]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		topo, err := Parse("fuzz.yaml", data)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("parsing took %s", d)
		}
		if err != nil {
			return
		}
		if _, err := Expand(topo, ExpandOptions{RunID: "ffffff", Slot: MaxSlot}); err != nil {
			t.Fatalf("parsed but does not expand: %v", err)
		}
	})
}
