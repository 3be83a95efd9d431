package reflector

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/bfd"
)

// freeUDPPort returns a UDP port free on both 127.0.0.1 and ::1 right now
// (a bfd.Server opens both families).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	for range 100 {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: port})
		c.Close()
		if err == nil {
			c6.Close()
			return port
		}
	}
	t.Fatal("no free UDP port")
	return 0
}

// TestBFDLoopbackCease: the reflector with a real bfd.Server, against a
// neighbour's bfd.Server over loopback (other ports than 3784/4784, so no
// root is needed). The BFD session comes Up; when the neighbour's BFD
// falls silent (a dead path), the reflector closes the BGP session with
// Cease, BFD Down, after the detection time, and the other client gets
// the withdrawal, though the BGP session's TCP connection was fine and
// its hold time 90 s.
func TestBFDLoopbackCease(t *testing.T) {
	sa, ma, sb, mb := freeUDPPort(t), freeUDPPort(t), freeUDPPort(t), freeUDPPort(t)
	const interval, mult = 100 * time.Millisecond, 10 // 1 s detection: no flaps on a loaded machine
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.Neighbors[0].LocalAddress = netip.MustParseAddr("127.0.0.1")
	cfg.Neighbors[0].BFD = BFDConfig{Enabled: true, MinTx: interval, MinRx: interval, Multiplier: mult}
	cfg.BFD = func() (BFDServer, error) {
		srv, err := bfd.NewServer(bfd.ServerConfig{SingleHopPort: sa, MultihopPort: ma, PeerSingleHopPort: sb, PeerMultihopPort: mb})
		if err != nil {
			return nil, err
		}
		return srv, nil
	}
	r, addr := startReflector(t, cfg)
	peer, err := bfd.NewServer(bfd.ServerConfig{SingleHopPort: sb, MultihopPort: mb, PeerSingleHopPort: sa, PeerMultihopPort: ma})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			peer.Close()
		}
	})
	if _, err := peer.AddSession(bfd.Config{Peer: netip.MustParseAddr("127.0.0.1"), Local: netip.MustParseAddr("127.0.0.2"),
		MinTx: interval, MinRx: interval, Multiplier: mult}); err != nil {
		t.Fatal(err)
	}
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	seen := collect(t, b, false, hasEORs)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.80.0.0/24")))
	collectInto(t, b, false, seen, hasKeys("10.80.0.0/24"))
	deadline := time.Now().Add(30 * time.Second)
	for bfdNeighborState(r, "127.0.0.2").BFD != "Up" {
		if time.Now().After(deadline) {
			t.Fatalf("BFD not Up: %+v", bfdNeighborState(r, "127.0.0.2"))
		}
		time.Sleep(10 * time.Millisecond)
	}

	peer.Close() // silent: no AdminDown
	closed = true
	start := time.Now()
	expectNotification(t, a, bgp.BGP_ERROR_CEASE, ceaseBFDDown)
	t.Logf("Cease (BFD Down) %v after the neighbour's BFD fell silent (detection time %v)", time.Since(start), interval*mult)
	collectInto(t, b, false, seen, func(m map[string]route) bool { _, ok := m["10.80.0.0/24"]; return !ok })
}
