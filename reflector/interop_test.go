package reflector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/internal/testport"
)

// Interop tests against real BIRD 2 and FRR bgpd (Debian packages bird2
// and frr; scripts/deps.sh installs them). They skip when the daemons are
// absent, and fail instead when CI=true. Every daemon runs in a temporary
// directory on 127.0.x addresses, without a kernel protocol (BIRD) or
// zebra (bgpd -Z), and is killed with its process group when the test
// ends.

// daemonBinary returns the path of a daemon the test needs.
func daemonBinary(t *testing.T, path string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("interop: -short")
	}
	p := nstest.RequireCommand(t, path)
	if strings.Contains(path, "frr") {
		nstest.RequireRoot(t) // FRR's bgpd needs root
	}
	return p
}

// freePort returns a TCP port free on ip that no other socket can take
// before the daemon binds it (internal/testport).
func freePort(t *testing.T, ip string) int {
	t.Helper()
	return testport.Pick(t, ip)
}

// runDaemon starts args in dir and kills its process group at cleanup.
func runDaemon(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	log, err := os.Create(filepath.Join(dir, "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", args[0], err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "output.log"))
			t.Logf("%s output:\n%s", filepath.Base(args[0]), b)
		}
	})
}

// bird is a BIRD 2 instance.
type bird struct{ dir, birdc string }

func startBIRD(t *testing.T, conf string) *bird {
	t.Helper()
	bin := daemonBinary(t, "bird")
	birdc := daemonBinary(t, "birdc")
	dir := t.TempDir()
	f := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-p", "-c", f).CombinedOutput(); err != nil {
		t.Fatalf("bird.conf: %v\n%s\n%s", err, out, conf)
	}
	runDaemon(t, dir, bin, "-f", "-c", f, "-s", filepath.Join(dir, "bird.ctl"), "-P", filepath.Join(dir, "bird.pid"))
	return &bird{dir: dir, birdc: birdc}
}

// show runs a birdc command.
func (b *bird) show(cmd string) string {
	out, _ := exec.Command(b.birdc, append([]string{"-s", filepath.Join(b.dir, "bird.ctl")}, strings.Fields(cmd)...)...).CombinedOutput()
	return string(out)
}

// frr is an FRR bgpd instance without zebra.
type frr struct{ dir string }

func startFRR(t *testing.T, listen string, conf string) *frr {
	t.Helper()
	bin := daemonBinary(t, "/usr/lib/frr/bgpd")
	daemonBinary(t, "vtysh")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	f := filepath.Join(dir, "bgpd.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	runDaemon(t, dir, bin, "-Z", "-S", "-f", f, "-i", filepath.Join(dir, "bgpd.pid"),
		"--vty_socket", dir, "-P", "0", "-p", strconv.Itoa(freePort(t, listen)), "-l", listen,
		"--moduledir", dir, "--log", "stdout", "-u", "root", "-g", "root")
	return &frr{dir: dir}
}

// show runs a vtysh command against this bgpd.
func (f *frr) show(cmd string) string {
	out, _ := exec.Command("vtysh", "--vty_socket", f.dir, "-d", "bgpd", "-c", cmd).CombinedOutput()
	return string(out)
}

// frrRoute is the part of `show bgp ipv4 unicast PREFIX json` we check.
type frrRoute struct {
	Paths []struct {
		OriginatorID string `json:"originatorId"`
		ClusterList  struct {
			List []string `json:"list"`
		} `json:"clusterList"`
		Nexthops []struct {
			IP string `json:"ip"`
		} `json:"nexthops"`
	} `json:"paths"`
}

// TestInteropBIRDAndFRRClients: BIRD 2 and FRR bgpd as clients of our
// reflector each announce a prefix and receive the other's, reflected with
// ORIGINATOR_ID (the originating client) and CLUSTER_LIST (our cluster).
func TestInteropBIRDAndFRRClients(t *testing.T) {
	daemonBinary(t, "bird")
	daemonBinary(t, "/usr/lib/frr/bgpd")
	const birdAddr, frrAddr = "127.0.30.1", "127.0.30.2"
	_, rr := startReflector(t, testConfig(birdAddr, frrAddr))
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	b := startBIRD(t, fmt.Sprintf(`router id 10.0.30.1;
log stderr all;
protocol device { }
protocol static { ipv4; route 10.60.0.0/24 blackhole; }
protocol bgp reflector1 {
	local %s port %d as %d;
	neighbor %s port %d as %d;
	connect retry time 1;
	hold time 90;
	ipv4 {
		import all;
		export filter { if source = RTS_STATIC then { bgp_next_hop = 198.18.0.1; accept; } reject; };
	};
}
`, birdAddr, freePort(t, birdAddr), testASN, rr.Addr(), rr.Port(), testASN))
	f := startFRR(t, frrAddr, fmt.Sprintf(`frr defaults traditional
hostname client
log stdout debugging
!
route-map NH permit 10
 set ip next-hop 198.18.0.2
!
router bgp %d
 bgp router-id 10.0.30.2
 no bgp network import-check
 neighbor %s remote-as %d
 neighbor %s port %d
 neighbor %s update-source %s
 neighbor %s timers connect 1
 address-family ipv4 unicast
  network 10.61.0.0/24
  neighbor %s route-map NH out
 exit-address-family
!
`, testASN, rr.Addr(), testASN, rr.Addr(), rr.Port(), rr.Addr(), frrAddr, rr.Addr(), rr.Addr()))

	waitFor(t, ctx, "BIRD to learn FRR's 10.61.0.0/24 through the reflector", func() bool {
		return strings.Contains(b.show("show route 10.61.0.0/24 all"), "BGP.cluster_list")
	})
	out := b.show("show route 10.61.0.0/24 all")
	for _, want := range []string{"BGP.originator_id: 10.0.30.2", "BGP.cluster_list: 10.255.255.1", "BGP.next_hop: 198.18.0.2"} {
		if !strings.Contains(out, want) {
			t.Errorf("BIRD's route to 10.61.0.0/24 lacks %q:\n%s", want, out)
		}
	}
	var got frrRoute
	waitFor(t, ctx, "FRR to learn BIRD's 10.60.0.0/24 through the reflector", func() bool {
		got = frrRoute{}
		return json.Unmarshal([]byte(f.show("show bgp ipv4 unicast 10.60.0.0/24 json")), &got) == nil && len(got.Paths) > 0
	})
	p := got.Paths[0]
	if p.OriginatorID != "10.0.30.1" || len(p.ClusterList.List) != 1 || p.ClusterList.List[0] != "10.255.255.1" ||
		len(p.Nexthops) == 0 || p.Nexthops[0].IP != "198.18.0.1" {
		t.Errorf("FRR's route to 10.60.0.0/24: %+v, want originator 10.0.30.1, cluster list [10.255.255.1], next hop 198.18.0.1", p)
	}
}

// TestInteropBIRDReflector: our speakers as clients of a BIRD 2 reflector
// receive each other's routes with BIRD's ORIGINATOR_ID and CLUSTER_LIST,
// and nothing of their own back.
func TestInteropBIRDReflector(t *testing.T) {
	const rrAddr = "127.0.31.1"
	clients := []string{"127.0.31.2", "127.0.31.3"}
	port := freePort(t, rrAddr)
	conf := fmt.Sprintf(`router id 10.0.31.1;
log stderr all;
protocol device { }
template bgp rrc {
	local %s port %d as %d;
	rr client;
	rr cluster id 10.255.31.1;
	passive on;
	hold time 90;
	ipv4 { import all; export all; };
}
`, rrAddr, port, testASN)
	for i, c := range clients {
		conf += fmt.Sprintf("protocol bgp c%d from rrc { neighbor %s as %d; }\n", i, c, testASN)
	}
	startBIRD(t, conf)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raddr := netip.AddrPortFrom(netip.MustParseAddr(rrAddr), uint16(port))
	var sp []*rawSpeaker
	for i, c := range clients {
		var s *rawSpeaker
		waitFor(t, ctx, "BIRD to accept "+c, func() bool {
			var err error
			s, err = dialSpeaker(ctx, raddr, c, speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.31.%d", i+2), hold: 90})
			return err == nil
		})
		t.Cleanup(func() { s.conn.Close() })
		sp = append(sp, s)
	}
	sp[0].send(t, ipv4Update("198.18.31.2", pfx("10.62.0.0/24")))
	sp[1].send(t, ipv4Update("198.18.31.3", pfx("10.62.1.0/24")))
	for i, s := range sp {
		mine, theirs := fmt.Sprintf("10.62.%d.0/24", i), fmt.Sprintf("10.62.%d.0/24", 1-i)
		got := collect(t, s, false, hasKeys(theirs))
		r := got[theirs]
		want := route{Prefix: theirs, NextHop: fmt.Sprintf("198.18.31.%d", 3-i), OriginatorID: fmt.Sprintf("10.0.31.%d", 3-i),
			ClusterList: "[10.255.31.1]", LocalPref: 100}
		if r != want {
			t.Errorf("client %d got %+v, want %+v", i, r, want)
		}
		if _, ok := got[mine]; ok {
			t.Errorf("client %d received its own %s back", i, mine)
		}
	}
}
