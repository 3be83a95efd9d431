package router_test

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// birdReflectorConf is a BIRD 2 configuration of a plain route reflector
// at addr for the given clients, all in AS as. It has no kernel protocol,
// so BIRD programs no routing table. The clients share its segment:
// "direct" (iBGP defaults to multihop) with "gateway direct" resolves
// their next hops there, learned by protocol device, instead of through
// an IGP table that does not exist here.
func birdReflectorConf(addr string, as uint32, clusterID string, clients map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `router id %s;
protocol device {}
template bgp rrclient {
	local %s as %d;
	direct;
	rr client;
	rr cluster id %s;
	hold time 9;
	keepalive time 3;
	connect retry time 1;
	ipv4 { import all; export all; gateway direct; };
}
`, addr, addr, as, clusterID)
	for name, ip := range clients {
		fmt.Fprintf(&b, "protocol bgp %s from rrclient { neighbor %s as %d; }\n", name, ip, as)
	}
	return b.String()
}

// TestNodesAsClientsOfBIRDReflector: three nodes, configured through the
// datastore as an operator would (mesh off, one global BGPPeer to BIRD in
// the fabric's AS), are iBGP clients of a BIRD 2 route reflector in a
// namespace of its own. Each node's block lands in the other nodes'
// kernels with the router's protocol and the originating node as next hop
// (reflection keeps it); BIRD's table holds every block; a block removed
// on its node leaves the others and BIRD.
func TestNodesAsClientsOfBIRDReflector(t *testing.T) {
	f := newFabric(t)
	nstest.RequireCommand(t, "birdc")
	const birdAddr = "10.99.0.100"
	cfg := fastTimers()
	off := false
	cfg.Spec.NodeToNodeMeshEnabled = &off
	f.apply(cfg, &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "bird-rr"}, Spec: api.BGPPeerSpec{
		PeerIP: birdAddr, ASNumber: ptrTo(uint32(api.DefaultASNumber))}})
	nodes := []*fabricNode{
		f.addNode("n1", "10.99.0.1/24"),
		f.addNode("n2", "10.99.0.2/24"),
		f.addNode("n3", "10.99.0.3/24"),
	}
	blocks := map[*fabricNode]netip.Prefix{}
	clients := map[string]string{}
	for i, n := range nodes {
		blocks[n] = netip.MustParsePrefix(fmt.Sprintf("10.65.%d.0/26", i+1))
		clients[n.name] = n.addr.Addr().String()
	}
	bh := addBlackhole(t, nodes[0].ns, blocks[nodes[0]].String())
	for _, n := range nodes[1:] {
		addBlackhole(t, n.ns, blocks[n].String())
	}

	birdNS := f.addHost("bird", birdAddr+"/24")
	birdConf := filepath.Join(f.dir, "bird.conf")
	birdSock := filepath.Join(f.dir, "bird.ctl")
	writeFile(t, birdConf, birdReflectorConf(birdAddr, api.DefaultASNumber, "1.0.0.9", clients))
	startDaemon(t, f, birdNS, "bird", "bird", "-f", "-c", birdConf, "-s", birdSock, "-P", filepath.Join(f.dir, "bird.pid"))
	for _, n := range nodes {
		f.start(n)
	}

	waitBlocksViaOwners(t, nodes, blocks)
	for _, n := range nodes {
		f.waitStatus(n.name, "only the BIRD session, established", 10*time.Second, func(m map[string]api.BGPState) bool {
			return len(m) == 1 && m[birdAddr] == api.BGPEstablished
		})
	}
	var want []string
	for _, n := range nodes {
		want = append(want, blocks[n].String())
	}
	waitOutput(t, 10*time.Second, want, "birdc", "-s", birdSock, "show", "route")
	for _, n := range nodes {
		waitOutput(t, 10*time.Second, []string{"via " + n.addr.Addr().String()},
			"birdc", "-s", birdSock, "show", "route", "for", blocks[n].String())
	}

	// Felix removes n1's block: the reflector withdraws it from the others.
	if err := nodes[0].ns.Netlink.RouteDel(bh); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		waitRoute(t, n.ns, blocks[nodes[0]], "", 10*time.Second)
	}
	out, _ := exec.Command("birdc", "-s", birdSock, "show", "route").CombinedOutput()
	if strings.Contains(string(out), blocks[nodes[0]].String()) {
		t.Errorf("BIRD still has n1's withdrawn block:\n%s", out)
	}
}
