package router_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/router"
)

// startDaemon starts a routing daemon in ns (forked from a thread inside
// it, so that the daemon and whatever it opens are there) with its output
// in dir/name.log, and kills it when the test ends.
func startDaemon(t *testing.T, f *fabric, ns *nstest.NS, name string, argv ...string) {
	t.Helper()
	nstest.RequireCommand(t, argv[0])
	logPath := filepath.Join(f.dir, name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // its process group
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of %s:\n%s", name, lastLines(string(b), 30))
		}
	})
}

// waitOutput runs argv until its output contains every one of want.
func waitOutput(t *testing.T, timeout time.Duration, want []string, argv ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		ok := true
		for _, w := range want {
			ok = ok && bytes.Contains(b, []byte(w))
		}
		if ok {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: output lacks %q after %v:\n%s", strings.Join(argv, " "), want, timeout, b)
		}
		time.Sleep(200 * time.Millisecond) // polling an external CLI: no event to wait on
	}
}

// TestInteropBIRDAndFRR: two racks, each node its own AS, each with a
// top-of-rack router over eBGP: n1 with BIRD 2, n2 with FRR's bgpd (both
// from Debian, each in a namespace of its own). Routes pass both ways:
// each ToR's prefix lands in its node's kernel with the router's protocol,
// and each node's block is in its ToR's table with the node as next hop.
func TestInteropBIRDAndFRR(t *testing.T) {
	f := newFabric(t)
	cfg := fastTimers()
	off := false
	cfg.Spec.NodeToNodeMeshEnabled = &off
	// eBGP under RFC 8212: the ToR sessions need a filter that accepts
	// (docs/policy.md): the ToRs' networks in, the nodes' blocks out.
	tor := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{{CIDR: "10.200.0.0/14", MatchOperator: api.MatchIn, Action: api.FilterAccept}},
		ExportV4: []api.BGPFilterRule{{CIDR: "10.65.0.0/16", MatchOperator: api.MatchIn, Action: api.FilterAccept}},
	}}
	f.apply(cfg, tor,
		&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor-bird"}, Spec: api.BGPPeerSpec{Node: "n1", PeerIP: "10.99.0.101", ASNumber: ptrTo(uint32(65101)), Filters: []string{"tor"}}},
		&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor-frr"}, Spec: api.BGPPeerSpec{Node: "n2", PeerIP: "10.99.0.102", ASNumber: ptrTo(uint32(65102)), Filters: []string{"tor"}}},
	)
	n1 := f.addNode("n1", "10.99.0.1/24")
	n2 := f.addNode("n2", "10.99.0.2/24")
	for i, n := range []*fabricNode{n1, n2} {
		f.apply(&api.Node{ObjectMeta: api.ObjectMeta{Name: n.name}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{
			IPv4Address: n.addr.String(), ASNumber: ptrTo(uint32(65001 + i))}}})
		addBlackhole(t, n.ns, fmt.Sprintf("10.65.%d.0/26", i+1))
	}
	birdNS := f.addHost("bird", "10.99.0.101/24")
	frrNS := f.addHost("frr", "10.99.0.102/24")

	// BIRD: no kernel protocol at all, so it touches no routing table.
	birdConf := filepath.Join(f.dir, "bird.conf")
	birdSock := filepath.Join(f.dir, "bird.ctl")
	writeFile(t, birdConf, `router id 10.99.0.101;
protocol device {}
protocol static { ipv4; route 10.201.0.0/24 blackhole; }
protocol bgp n1 {
	local 10.99.0.101 as 65101;
	neighbor 10.99.0.1 as 65001;
	hold time 9;
	keepalive time 3;
	connect retry time 1;
	ipv4 { import all; export all; };
}
`)
	startDaemon(t, f, birdNS, "bird", "bird", "-f", "-c", birdConf, "-s", birdSock, "-P", filepath.Join(f.dir, "bird.pid"))

	// FRR's bgpd without zebra (-Z): it installs nothing anywhere.
	frrDir := filepath.Join(f.dir, "frr")
	if err := os.Mkdir(frrDir, 0o755); err != nil {
		t.Fatal(err)
	}
	frrConf := filepath.Join(frrDir, "bgpd.conf")
	writeFile(t, frrConf, `hostname tor-frr
router bgp 65102
 bgp router-id 10.99.0.102
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.99.0.2 remote-as 65002
 neighbor 10.99.0.2 timers 3 9
 neighbor 10.99.0.2 timers connect 1
 address-family ipv4 unicast
  network 10.202.0.0/24
 exit-address-family
`)
	startDaemon(t, f, frrNS, "bgpd", "/usr/lib/frr/bgpd", "-Z", "-S", "-f", frrConf, "-i", filepath.Join(frrDir, "bgpd.pid"),
		"--vty_socket", frrDir, "-l", "10.99.0.102")

	f.start(n1)
	f.start(n2)

	// ToR → node: in the kernel with our protocol, via the ToR.
	waitRoute(t, n1.ns, netip.MustParsePrefix("10.201.0.0/24"), fmt.Sprintf("via 10.99.0.101 proto %d", router.ProtoRouter), 60*time.Second)
	waitRoute(t, n2.ns, netip.MustParsePrefix("10.202.0.0/24"), fmt.Sprintf("via 10.99.0.102 proto %d", router.ProtoRouter), 60*time.Second)
	f.waitStatus("n1", "BIRD session established", 10*time.Second, allEstablished(1))
	f.waitStatus("n2", "FRR session established", 10*time.Second, allEstablished(1))

	// Node → ToR: the block, with the node as next hop and its AS.
	out := waitOutput(t, 30*time.Second, []string{"10.65.1.0/26", "via 10.99.0.1"}, "birdc", "-s", birdSock, "show", "route", "all", "for", "10.65.1.0/26")
	if !strings.Contains(out, "65001") {
		t.Errorf("BIRD's route to n1's block lacks AS 65001 in its path:\n%s", out)
	}
	out = waitOutput(t, 30*time.Second, []string{`"10.65.2.0/26"`, `"10.99.0.2"`}, "vtysh", "--vty_socket", frrDir, "-c", "show bgp ipv4 unicast json")
	if !strings.Contains(out, "65002") {
		t.Errorf("FRR's route to n2's block lacks AS 65002 in its path:\n%s", out)
	}
	// BIRD must not get its own route back from n1.
	if b, _ := exec.Command("birdc", "-s", birdSock, "show", "route", "protocol", "n1").CombinedOutput(); strings.Contains(string(b), "10.201.0.0/24") {
		t.Errorf("n1 advertised BIRD's own route back to it:\n%s", b)
	}

	// A withdrawal on the ToR leaves the node's kernel.
	if b, err := exec.Command("vtysh", "--vty_socket", frrDir, "-c", "configure terminal", "-c", "router bgp 65102",
		"-c", "address-family ipv4 unicast", "-c", "no network 10.202.0.0/24").CombinedOutput(); err != nil {
		t.Fatalf("vtysh: %v: %s", err, b)
	}
	waitRoute(t, n2.ns, netip.MustParsePrefix("10.202.0.0/24"), "", 30*time.Second)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
