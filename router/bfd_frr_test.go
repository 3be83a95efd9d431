package router_test

import (
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/router"
)

// TestBFDInteropFRR: a node (its speaker in a child process) and FRR
// (zebra, bfdd, bgpd, in a namespace of their own) over eBGP with a 90 s
// hold time, `neighbor ... bfd` on FRR's side and bfd on our BGPPeer,
// both 300 ms × 3. BFD comes Up on both sides; when FRR's link goes down
// on the bridge side (the node's own link stays up), the node withdraws
// FRR's route after BFD's detection time, not the hold time; it returns
// with the link.
func TestBFDInteropFRR(t *testing.T) {
	nstest.RequireRoot(t)
	for _, c := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bfdd", "/usr/lib/frr/bgpd", "vtysh"} {
		nstest.RequireCommand(t, c)
	}
	f := newFabric(t)
	cfg := &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}}
	cfg.Spec.HoldTime = "90s"
	cfg.Spec.EBGPDefaultPolicy = api.FilterAccept // FRR's route, without a filter (RFC 8212 would refuse it)
	off := false
	cfg.Spec.NodeToNodeMeshEnabled = &off
	f.apply(cfg, &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor-frr"}, Spec: api.BGPPeerSpec{
		Node: "n1", PeerIP: "10.99.0.102", ASNumber: ptrTo(uint32(65102)),
		BFD: &api.BFD{Enabled: ptrTo(true), MinTx: "300ms", MinRx: "300ms", Multiplier: ptrTo(3)}}})
	n1 := f.addNode("n1", "10.99.0.1/24")
	f.apply(&api.Node{ObjectMeta: api.ObjectMeta{Name: "n1"}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{
		IPv4Address: "10.99.0.1/24", ASNumber: ptrTo(uint32(65001))}}})
	frrNS := f.addHost("frr", "10.99.0.102/24")

	frrUser, err := user.Lookup("frr")
	if err != nil {
		t.Fatalf("user frr (is the frr package installed?): %v", err)
	}
	uid, _ := strconv.Atoi(frrUser.Uid)
	gid, _ := strconv.Atoi(frrUser.Gid)
	// A directory of its own: the daemons run as user frr, who cannot
	// enter f.dir.
	dir, err := os.MkdirTemp("", "bffrr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "frr.conf")
	writeFile(t, conf, `hostname tor-frr
router bgp 65102
 bgp router-id 10.99.0.102
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.99.0.1 remote-as 65001
 neighbor 10.99.0.1 timers 30 90
 neighbor 10.99.0.1 timers connect 1
 neighbor 10.99.0.1 bfd
 address-family ipv4 unicast
  network 10.202.0.0/24
 exit-address-family
`)
	zserv := filepath.Join(dir, "zserv.api")
	common := fmt.Sprintf("-z %s --vty_socket %s", zserv, dir)
	// bgpd asks bfdd for its BFD sessions through zebra.
	startDaemon(t, f, frrNS, "frr", "/bin/sh", "-c", fmt.Sprintf(
		"/usr/lib/frr/zebra %[1]s -f %[2]s -i %[3]s/zebra.pid & "+
			"i=0; while [ ! -S %[4]s ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; "+
			"/usr/lib/frr/bfdd %[1]s --bfdctl %[3]s/bfdd.sock -f %[2]s -i %[3]s/bfdd.pid & "+
			"exec /usr/lib/frr/bgpd %[1]s -S -f %[2]s -i %[3]s/bgpd.pid -l 10.99.0.102",
		common, conf, dir, zserv))
	f.start(n1, "BF_SPEAKER_PROC=1")

	frrRoute := netip.MustParsePrefix("10.202.0.0/24")
	via := fmt.Sprintf("via 10.99.0.102 proto %d", router.ProtoRouter)
	waitRoute(t, n1.ns, frrRoute, via, 60*time.Second)
	f.waitPeer("n1", "10.99.0.102", "BFD Up with FRR", 30*time.Second, func(p api.BGPPeerStatus) bool {
		return p.BFD == "Up" && p.State == api.BGPEstablished
	})
	waitOutput(t, 30*time.Second, []string{`"peer":"10.99.0.1"`, `"status":"up"`}, "vtysh", "--vty_socket", dir, "-c", "show bfd peers json")

	port, err := f.bridge.Netlink.LinkByName("vfrr")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.bridge.Netlink.LinkSetDown(port); err != nil {
		t.Fatal(err)
	}
	took := waitRoute(t, n1.ns, frrRoute, "", 20*time.Second)
	t.Logf("FRR's route withdrawn %v after its link went down (BFD 300ms x3, hold time 90s)", took)
	f.waitPeer("n1", "10.99.0.102", "BFD Down", 30*time.Second, func(p api.BGPPeerStatus) bool {
		return p.BFD == "Down" && p.State != api.BGPEstablished
	})

	if err := f.bridge.Netlink.LinkSetUp(port); err != nil {
		t.Fatal(err)
	}
	back := waitRoute(t, n1.ns, frrRoute, via, 60*time.Second)
	t.Logf("FRR's route back %v after the link came up", back)
}
