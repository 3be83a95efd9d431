package router_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// frrRoute is what FRR's `show bgp ipv4 unicast PREFIX json` says of
// one prefix (the fields the tests read).
type frrRoute struct {
	Paths []struct {
		ASPath struct {
			String string `json:"string"`
		} `json:"aspath"`
		Community *struct {
			String string `json:"string"`
		} `json:"community"`
		LargeCommunity *struct {
			String string `json:"string"`
		} `json:"largeCommunity"`
		Multipath bool `json:"multipath"`
		Peer      struct {
			PeerID string `json:"peerId"`
		} `json:"peer"`
	} `json:"paths"`
}

func (r frrRoute) String() string { b, _ := json.Marshal(r); return string(b) }

// peers returns the peers of the paths, sorted.
func (r frrRoute) peers() []string {
	var out []string
	for _, p := range r.Paths {
		out = append(out, p.Peer.PeerID)
	}
	slices.Sort(out)
	return out
}

// frrShow runs one vtysh command against the bgpd whose vty socket is in
// dir.
func frrShow(dir string, cmd string) []byte {
	b, _ := exec.Command("vtysh", "--vty_socket", dir, "-c", cmd).Output()
	return b
}

// waitFRRRoute polls FRR's view of prefix until cond holds.
func waitFRRRoute(t *testing.T, dir, prefix, what string, cond func(frrRoute) bool) frrRoute {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var r frrRoute
		_ = json.Unmarshal(frrShow(dir, "show bgp ipv4 unicast "+prefix+" json"), &r)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("FRR, %s: %s not reached; last: %s", prefix, what, r)
		}
		time.Sleep(200 * time.Millisecond) // polling an external CLI: no event to wait on
	}
}

// frrEstablished reports whether FRR's session with peer is established.
func frrEstablished(dir, peer string) bool {
	var s struct {
		IPv4Unicast struct {
			Peers map[string]struct {
				State string `json:"state"`
			} `json:"peers"`
		} `json:"ipv4Unicast"`
	}
	_ = json.Unmarshal(frrShow(dir, "show bgp summary json"), &s)
	return s.IPv4Unicast.Peers[peer].State == "Established"
}

// startFRRToR runs FRR's bgpd without zebra (-Z: it installs nothing) in
// ns as AS 65100 with the given neighbours (address -> AS), ECMP over up
// to 4 paths, and returns its vty directory.
func startFRRToR(t *testing.T, f *fabric, ns *nstest.NS, name, addr string, neighbours map[string]uint32) string {
	t.Helper()
	dir := filepath.Join(f.dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hostname %s\nrouter bgp 65100\n bgp router-id %s\n no bgp ebgp-requires-policy\n bgp bestpath as-path multipath-relax\n", name, addr)
	for _, a := range slices.Sorted(func(yield func(string) bool) {
		for a := range neighbours {
			if !yield(a) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers 3 9\n neighbor %s timers connect 1\n", a, neighbours[a], a, a)
	}
	b.WriteString(" address-family ipv4 unicast\n  maximum-paths 4\n exit-address-family\n")
	conf := filepath.Join(dir, "bgpd.conf")
	writeFile(t, conf, b.String())
	startDaemon(t, f, ns, name, "/usr/lib/frr/bgpd", "-Z", "-S", "-f", conf, "-i", filepath.Join(dir, "bgpd.pid"),
		"--vty_socket", dir, "-l", addr)
	return dir
}

// TestAdvertisementsOnTheWire: two nodes (AS 65001) peer with an FRR ToR
// (AS 65100) using BGPPeer localASNumber 65111; n1's speaker runs in a
// child process (the gob protocol), n2's in the node's process. FRR
// receives: the blocks with the communities of BGPConfiguration's
// communities and prefixAdvertisements (standard and large, by name and
// literal); the serviceClusterIPs CIDR from both nodes; the
// serviceLoadBalancerIPs address both nodes have on eth0 as a /32 with two
// multipath paths (ECMP), and a serviceExternalIPs address that only n2
// has from n2 alone; nothing outside the ranges; AS path 65111. Draining n1 re-advertises its
// routes with graceful-shutdown (65535:0) while its session is still up,
// then closes it; undraining brings it back without the community.
func TestAdvertisementsOnTheWire(t *testing.T) {
	f := newFabric(t)
	cfg := fastTimers()
	off := false
	cfg.Spec.NodeToNodeMeshEnabled = &off
	cfg.Spec.EBGPDefaultPolicy = api.FilterAccept
	cfg.Spec.Communities = []api.CommunityEntry{{Value: "64512:100"}, {Name: "rack-1", Value: "65000:1:1"}}
	cfg.Spec.PrefixAdvertisements = []api.PrefixAdvertisement{
		{CIDR: "10.65.1.0/24", Communities: []string{"rack-1", "65000:7"}},
	}
	cfg.Spec.ServiceClusterIPs = []api.ServiceIPBlock{{CIDR: "10.96.0.0/16"}}
	cfg.Spec.ServiceLoadBalancerIPs = []api.ServiceIPBlock{{CIDR: "192.0.2.0/24"}}
	cfg.Spec.ServiceExternalIPs = []api.ServiceIPBlock{{CIDR: "203.0.113.0/24"}}
	// The graceful-shutdown paths are visible at the ToR for drainTime
	// only, and the test reads them through vtysh, which takes seconds
	// on a loaded machine: a window of 4 s was missed there.
	cfg.Spec.DrainTime = "15s"
	f.apply(cfg, &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.99.0.100", ASNumber: ptrTo(uint32(65100)), LocalASNumber: ptrTo(uint32(65111))}})
	n1 := f.addNode("n1", "10.99.0.1/24")
	n2 := f.addNode("n2", "10.99.0.2/24")
	for i, n := range []*fabricNode{n1, n2} {
		f.apply(&api.Node{ObjectMeta: api.ObjectMeta{Name: n.name}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{
			IPv4Address: n.addr.String(), ASNumber: ptrTo(uint32(65001))}}})
		addBlackhole(t, n.ns, fmt.Sprintf("10.65.%d.0/26", i+1))
		eth, err := n.ns.Netlink.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		addrs := []string{"192.0.2.10/32", "198.51.100.1/32"} // in the range, and not
		if n == n2 {
			addrs = append(addrs, "203.0.113.5/32") // an external IP on n2 only
		}
		for _, a := range addrs {
			na, _ := netlink.ParseAddr(a)
			if err := n.ns.Netlink.AddrAdd(eth, na); err != nil {
				t.Fatal(err)
			}
		}
	}
	torNS := f.addHost("tor", "10.99.0.100/24")
	tor := startFRRToR(t, f, torNS, "tor", "10.99.0.100", map[string]uint32{"10.99.0.1": 65111, "10.99.0.2": 65111})
	f.start(n1, "BF_SPEAKER_PROC=1")
	f.start(n2)

	comm := func(r frrRoute, i int) (std, large string) {
		p := r.Paths[i]
		if p.Community != nil {
			std = p.Community.String
		}
		if p.LargeCommunity != nil {
			large = p.LargeCommunity.String
		}
		return std, large
	}
	waitFRRRoute(t, tor, "10.65.1.0/26", "n1's block with the prefixAdvertisements communities, from AS 65111", func(r frrRoute) bool {
		if len(r.Paths) != 1 {
			return false
		}
		std, large := comm(r, 0)
		return std == "64512:100 65000:7" && large == "65000:1:1" && r.Paths[0].ASPath.String == "65111"
	})
	waitFRRRoute(t, tor, "10.65.2.0/26", "n2's block with only the global community", func(r frrRoute) bool {
		if len(r.Paths) != 1 {
			return false
		}
		std, large := comm(r, 0)
		return std == "64512:100" && large == "" && r.Paths[0].ASPath.String == "65111"
	})
	both := []string{"10.99.0.1", "10.99.0.2"}
	waitFRRRoute(t, tor, "10.96.0.0/16", "the cluster IP range from both nodes", func(r frrRoute) bool { return slices.Equal(r.peers(), both) })
	ecmp := func(r frrRoute) bool {
		return slices.Equal(r.peers(), both) && r.Paths[0].Multipath && r.Paths[1].Multipath
	}
	waitFRRRoute(t, tor, "192.0.2.10/32", "the load-balancer address from both nodes, multipath", ecmp)
	waitFRRRoute(t, tor, "203.0.113.5/32", "the external IP from n2 only", func(r frrRoute) bool {
		return slices.Equal(r.peers(), []string{"10.99.0.2"})
	})
	if r := waitFRRRoute(t, tor, "198.51.100.1/32", "", func(frrRoute) bool { return true }); len(r.Paths) != 0 {
		t.Errorf("an address outside the service ranges was advertised: %s", r)
	}

	// Drain n1: 65535:0 on its paths while its session is up, then the
	// session closes.
	f.setDrain("n1", true)
	sawUp := false
	waitFRRRoute(t, tor, "192.0.2.10/32", "n1's path with graceful-shutdown while its session is up", func(r frrRoute) bool {
		for i, p := range r.Paths {
			if std, _ := comm(r, i); p.Peer.PeerID == "10.99.0.1" && strings.Contains(std, "graceful-shutdown") {
				sawUp = frrEstablished(tor, "10.99.0.1")
				return true
			}
		}
		return false
	})
	if !sawUp {
		t.Errorf("n1's session was down when its graceful-shutdown paths were seen")
	}
	waitFRRRoute(t, tor, "192.0.2.10/32", "only n2's path after n1's sessions closed", func(r frrRoute) bool {
		return slices.Equal(r.peers(), []string{"10.99.0.2"}) && !frrEstablished(tor, "10.99.0.1")
	})
	f.setDrain("n1", false)
	waitFRRRoute(t, tor, "192.0.2.10/32", "n1 back without graceful-shutdown", func(r frrRoute) bool {
		if !ecmp(r) {
			return false
		}
		for i := range r.Paths {
			if std, _ := comm(r, i); strings.Contains(std, "graceful-shutdown") {
				return false
			}
		}
		return true
	})
}
