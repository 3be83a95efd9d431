package sim

import (
	"bufio"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
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

// reflectorPlan expands a shipped topology whose reflectors run on
// routers from Debian.
func reflectorPlan(t *testing.T, name string) *topology.Plan {
	t.Helper()
	topo, err := topology.Load("../topologies/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	plan, err := topology.Expand(topo, topology.ExpandOptions{RunID: "abc123", Slot: 5})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestReflectorConfigBIRD: rr-interop's BIRD reflector has one protocol
// per session; each compute node's is a passive, direct RR client with the
// fabric's cluster ID, the FRR reflector's a plain iBGP peer; every route
// is imported, only BGP routes are exported, next hops are left alone.
func TestReflectorConfigBIRD(t *testing.T) {
	plan := reflectorPlan(t, "rr-interop")
	conf := BIRDConfig(plan.Node("rr-bird"), 3, 1)
	protos := regexp.MustCompile(`(?s)protocol bgp (\S+) \{.*?\n\}`).FindAllStringSubmatch(conf, -1)
	if len(protos) != 10 { // 4 nodes and the FRR reflector, in two families
		t.Fatalf("want 10 BGP protocols, got %d:\n%s", len(protos), conf)
	}
	clients := 0
	for _, m := range protos {
		p := m[0]
		fam := "ipv4"
		if strings.Contains(p, "neighbor fd00:") {
			fam = "ipv6"
		}
		for _, want := range []string{"\n  local as 64512;\n", " as 64512;\n  hold time 3;\n  keepalive time 1;\n", "\n  direct;\n",
			"\n  " + fam + " { import all; export where source = RTS_BGP; };\n"} {
			if !strings.Contains(p, want) {
				t.Errorf("protocol %s lacks %q:\n%s", m[1], want, p)
			}
		}
		if strings.Contains(p, "next hop self") {
			t.Errorf("protocol %s changes next hops:\n%s", m[1], p)
		}
		switch {
		case strings.Contains(m[1], "_rr_frr"):
			if strings.Contains(p, "rr client") || !strings.Contains(p, "passive on;") { // rr-frr has the higher address
				t.Errorf("the session with the other reflector must be a passive non-client one:\n%s", p)
			}
		default:
			clients++
			if !strings.Contains(p, "\n  passive on;\n  rr client;\n  rr cluster id 244.0.0.1;\n") {
				t.Errorf("protocol %s is not a passive RR client in cluster 244.0.0.1:\n%s", m[1], p)
			}
		}
	}
	if clients != 8 {
		t.Errorf("%d RR clients, want 8", clients)
	}
	for _, want := range []string{"router id 10.69.0.1;\n", "protocol device {}\n", "protocol kernel kernel4 { ipv4 { import none; export where source = RTS_BGP; }; merge paths on; }\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("bird.conf lacks %q", want)
		}
	}
	checkWithRouter(t, "bird", conf, func(file string) []string { return []string{"bird", "-p", "-c", file} })
}

// TestReflectorConfigFRR: rr-interop's FRR reflector sets the cluster ID,
// makes each compute node a route-reflector client in its family (never
// next-hop-self), is passive where peering says so, and peers with the
// BIRD reflector as a plain iBGP neighbour.
func TestReflectorConfigFRR(t *testing.T) {
	plan := reflectorPlan(t, "rr-interop")
	conf := FRRConfig(plan.Node("rr-frr"), 3, 1)
	for _, want := range []string{
		"router bgp 64512\n bgp router-id 10.69.0.2\n bgp cluster-id 244.0.0.1\n no bgp ebgp-requires-policy\n no bgp default ipv4-unicast\n",
		" neighbor 10.69.0.1 remote-as 64512\n neighbor 10.69.0.1 timers 1 3\n neighbor 10.69.0.3 remote-as 64512\n",
		" neighbor 10.69.0.3 timers 1 3\n neighbor 10.69.0.3 passive\n",
		" address-family ipv4 unicast\n  neighbor 10.69.0.1 activate\n  neighbor 10.69.0.3 activate\n  neighbor 10.69.0.3 route-reflector-client\n",
		" address-family ipv6 unicast\n  neighbor fd00:bf:5::1 activate\n  neighbor fd00:bf:5::3 activate\n  neighbor fd00:bf:5::3 route-reflector-client\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("frr.conf lacks %q:\n%s", want, conf)
		}
	}
	for _, bad := range []string{"next-hop-self", "neighbor 10.69.0.1 passive", "neighbor 10.69.0.1 route-reflector-client", "neighbor fd00:bf:5::1 route-reflector-client"} {
		if strings.Contains(conf, bad) {
			t.Errorf("frr.conf has %q:\n%s", bad, conf)
		}
	}
	if n := strings.Count(conf, "route-reflector-client"); n != 8 {
		t.Errorf("%d route-reflector-client lines, want 8", n)
	}
	checkWithRouter(t, "/usr/lib/frr/bgpd", conf, func(file string) []string {
		dir := filepath.Dir(file)
		return []string{"/usr/lib/frr/bgpd", "-C", "-S", "-f", file, "-i", filepath.Join(dir, "bgpd.pid"), "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api")}
	})
}

// TestReflectorConfigGoBGPd: rr-gobgpd's gobgpd reflector has every
// compute node, in both families, as a passive route-reflector client in
// the fabric's cluster (not its router ID, which a ToR uses).
func TestReflectorConfigGoBGPd(t *testing.T) {
	plan := reflectorPlan(t, "rr-gobgpd")
	conf := GoBGPConfig(plan.Node("reflector"), 9, 3)
	blocks := strings.Split(conf, "\n[[neighbors]]\n")
	if len(blocks) != 9 {
		t.Fatalf("want 8 neighbours, got %d:\n%s", len(blocks)-1, conf)
	}
	if !strings.Contains(blocks[0], "as = 64512\n  router-id = \"10.69.0.1\"") {
		t.Errorf("global: %s", blocks[0])
	}
	for _, b := range blocks[1:] {
		fam := "ipv4-unicast"
		if strings.Contains(b, `neighbor-address = "fd00:`) {
			fam = "ipv6-unicast"
		}
		for _, want := range []string{"peer-as = 64512\n", "hold-time = 9\n    keepalive-interval = 3\n",
			"[neighbors.transport.config]\n    passive-mode = true\n",
			"route-reflector-client = true\n    route-reflector-cluster-id = \"244.0.0.1\"\n",
			`afi-safi-name = "` + fam + `"`} {
			if !strings.Contains(b, want) {
				t.Errorf("neighbour lacks %q:\n%s", want, b)
			}
		}
	}
	// A ToR keeps its router ID as cluster ID.
	tor := &topology.NodePlan{Name: "tor", ASNumber: 65001, IPv4: netip.MustParsePrefix("10.0.0.1/24"),
		Neighbors: []topology.Neighbor{{Address: netip.MustParseAddr("10.0.0.2"), ASNumber: 65001, RRClient: true}}}
	if c := GoBGPConfig(tor, 9, 3); !strings.Contains(c, `route-reflector-cluster-id = "10.0.0.1"`) || strings.Contains(c, "passive-mode") {
		t.Errorf("ToR configuration:\n%s", c)
	}
	checkWithRouter(t, "gobgpd", conf, func(file string) []string { return []string{"gobgpd", "-d", "-t", "toml", "-f", file} })
}

// checkWithRouter has the router itself parse a configuration (no
// sockets, no sessions: a dry run). Without the router installed it skips,
// unless CI=true, where scripts/deps.sh has installed them all.
func checkWithRouter(t *testing.T, bin, conf string, args func(file string) []string) {
	t.Helper()
	nstest.RequireCommand(t, bin)
	dir := t.TempDir()
	file := filepath.Join(dir, "router.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	a := args(file)
	out, err := exec.Command(a[0], a[1:]...).CombinedOutput()
	// bgpd -C exits 0 even when it rejects lines: it says so in its log.
	if err != nil || strings.Contains(string(out), "No such command") || strings.Contains(string(out), "[EC ") {
		t.Errorf("%s rejects the configuration: %v\n%s", strings.Join(a, " "), err, out)
	}
}

// TestReadRouterSessions parses what the routers answer on their control
// sockets (transcripts of BIRD 2.0.12 and FRR 8.4, trimmed).
func TestReadRouterSessions(t *testing.T) {
	bird := strings.Join([]string{
		"2002-Name       Proto      Table      State  Since         Info",
		"1002-device1    Device     ---        up     11:18:53.153  ",
		"1006-",
		"1002-kernel4    Kernel     master4    up     11:18:53.153  ",
		"1006-  Channel ipv4",
		"     State:          UP",
		"     Routes:         0 imported, 4 exported, 0 preferred",
		" ",
		"1002-n0_rr_frr  BGP        ---        start  11:18:53.153  Passive       ",
		"1006-  BGP state:          Passive",
		"     Neighbor address: 10.69.0.2",
		"     Neighbor AS:      64512",
		"   Channel ipv4",
		"     State:          DOWN",
		" ",
		"1002-n1_node_1  BGP        ---        up     11:12:22.288  Established   ",
		"1006-  BGP state:          Established",
		"     Neighbor address: 10.69.0.3",
		"   Channel ipv4",
		"     Routes:         1 imported, 3 exported, 1 preferred",
		"     Route change stats:     received   rejected   filtered    ignored   accepted",
		"       Import updates:              1          0          0          0          1",
		" ",
		"1002-n5_node_1  BGP        ---        up     11:12:22.288  Established   ",
		"1006-  BGP state:          Established",
		"     Neighbor address: fd00:bf:5::3",
		"   Channel ipv6",
		"     Routes:         1 imported, 2 exported, 1 preferred",
		"0000 ",
		"",
	}, "\n")
	got, err := parseBIRDProtocols(bufio.NewReader(strings.NewReader(bird)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]routerSession{
		netip.MustParseAddr("10.69.0.2"):    {state: "Passive"},
		netip.MustParseAddr("10.69.0.3"):    {state: "Established", accepted: 1, advertised: 3},
		netip.MustParseAddr("fd00:bf:5::3"): {state: "Established", accepted: 1, advertised: 2},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(routerSession{})); diff != "" {
		t.Errorf("BIRD (-want +got):\n%s", diff)
	}
	if _, err := parseBIRDProtocols(bufio.NewReader(strings.NewReader("9001 There is no such protocol\n"))); err == nil {
		t.Error("BIRD's error reply was taken for an answer")
	}

	// bgpd over its vty socket: output, then three NULs and the status.
	frr := `{"10.69.0.1":{"remoteAs":64512,"bgpState":"Established","addressFamilyInfo":{"ipv4Unicast":{"acceptedPrefixCounter":0,"sentPrefixCounter":4}}},
"fd00:bf:5::3":{"remoteAs":64512,"bgpState":"Established","addressFamilyInfo":{"ipv6Unicast":{"acceptedPrefixCounter":1,"sentPrefixCounter":4}}},
"10.69.0.4":{"remoteAs":64512,"bgpState":"Active","bgpStateIs":"passive"}}`
	conn := &fakeVTY{reply: append([]byte(frr), 0, 0, 0, 0)}
	out, err := vtyCommand(conn, "show bgp neighbors json")
	if err != nil {
		t.Fatal(err)
	}
	if conn.sent.String() != "show bgp neighbors json\x00" {
		t.Errorf("sent %q", conn.sent.String())
	}
	got, err = parseFRRNeighbors(out)
	if err != nil {
		t.Fatal(err)
	}
	want = map[netip.Addr]routerSession{
		netip.MustParseAddr("10.69.0.1"):    {state: "Established", advertised: 4},
		netip.MustParseAddr("fd00:bf:5::3"): {state: "Established", accepted: 1, advertised: 4},
		netip.MustParseAddr("10.69.0.4"):    {state: "Active"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(routerSession{})); diff != "" {
		t.Errorf("FRR (-want +got):\n%s", diff)
	}
	if _, err := vtyCommand(&fakeVTY{reply: append([]byte("% Unknown command"), 0, 0, 0, 2)}, "show nonsense"); err == nil || !strings.Contains(err.Error(), "Unknown command") {
		t.Errorf("bgpd's failure status: %v", err)
	}
}

// fakeVTY answers a vty command with reply, in two reads.
type fakeVTY struct {
	sent  strings.Builder
	reply []byte
}

func (f *fakeVTY) Write(p []byte) (int, error) { return f.sent.Write(p) }

func (f *fakeVTY) Read(p []byte) (int, error) {
	if len(f.reply) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.reply[:max(1, len(f.reply)/2)])
	f.reply = f.reply[n:]
	return n, nil
}

// TestRouterConfigAppended: a group's routerConfig ends up, as written,
// at the end of the configuration the sim generates for its routers, and
// the routers accept the results of the shipped policy topologies (FRR's
// ToR with routes to originate, BIRD's spine with a filtered table).
func TestRouterConfigAppended(t *testing.T) {
	for _, tc := range []struct{ topo, node string }{{"policy-tor", "tor"}, {"policy-communities", "spine"}} {
		topo, err := topology.Load("../topologies/" + tc.topo + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		plan, err := topology.Expand(topo, topology.ExpandOptions{RunID: "abc123"})
		if err != nil {
			t.Fatal(err)
		}
		n := plan.Node(tc.node)
		if n.RouterConfig == "" {
			t.Fatalf("%s: node %s has no routerConfig", tc.topo, tc.node)
		}
		switch n.Router {
		case topology.RouterFRR:
			conf := FRRConfig(n, 9, 3)
			if !strings.HasSuffix(conf, "! routerConfig of the topology\n"+n.RouterConfig) {
				t.Errorf("frr.conf does not end in the routerConfig:\n%s", conf)
			}
			checkWithRouter(t, "/usr/lib/frr/bgpd", conf, func(file string) []string {
				dir := filepath.Dir(file)
				return []string{"/usr/lib/frr/bgpd", "-C", "-S", "-f", file, "-i", filepath.Join(dir, "bgpd.pid"), "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api")}
			})
		case topology.RouterBIRD:
			conf := BIRDConfig(n, 9, 3)
			if !strings.HasSuffix(conf, "# routerConfig of the topology\n"+n.RouterConfig) {
				t.Errorf("bird.conf does not end in the routerConfig:\n%s", conf)
			}
			checkWithRouter(t, "bird", conf, func(file string) []string { return []string{"bird", "-p", "-c", file} })
		}
	}
	// Without a final newline, one is added; gobgpd's too.
	n := &topology.NodePlan{Name: "ext", ASNumber: 65001, IPv4: netip.MustParsePrefix("10.0.0.1/24"), RouterConfig: "[zebra.config]\n  enabled = false"}
	if c := GoBGPConfig(n, 9, 3); !strings.HasSuffix(c, "# routerConfig of the topology\n[zebra.config]\n  enabled = false\n") {
		t.Errorf("gobgpd.toml:\n%s", c)
	}
	if c := GoBGPConfig(&topology.NodePlan{Name: "ext", ASNumber: 65001, IPv4: n.IPv4}, 9, 3); strings.Contains(c, "routerConfig") {
		t.Errorf("gobgpd.toml without routerConfig:\n%s", c)
	}
}
