package bfd

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// freePort returns a UDP port free on both 127.0.0.1 and ::1 right now.
func freePort(t testing.TB) int {
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

// serverPair starts two Servers in this namespace that talk to each other
// on free ports instead of 3784/4784.
func serverPair(t testing.TB) (a, b *Server) {
	t.Helper()
	sa, ma, sb, mb := freePort(t), freePort(t), freePort(t), freePort(t)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var err error
	a, err = NewServer(ServerConfig{Logger: logger, SingleHopPort: sa, MultihopPort: ma, PeerSingleHopPort: sb, PeerMultihopPort: mb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err = NewServer(ServerConfig{Logger: logger, SingleHopPort: sb, MultihopPort: mb, PeerSingleHopPort: sa, PeerMultihopPort: ma})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// watcher collects a Server's state changes.
type watcher struct {
	ch chan StateChange
}

func watch(t testing.TB, s *Server) *watcher {
	w := &watcher{ch: make(chan StateChange, 100000)}
	cancel := s.Subscribe(func(c StateChange) { w.ch <- c })
	t.Cleanup(cancel)
	return w
}

// waitFor waits for a change of session k into state st, and returns it.
func (w *watcher) waitFor(t testing.TB, k Key, st State, timeout time.Duration) StateChange {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case c := <-w.ch:
			if c.Key == k && c.New == st {
				return c
			}
		case <-deadline:
			t.Fatalf("session %s: no change to %v within %v", k, st, timeout)
		}
	}
}

var (
	lo1 = netip.MustParseAddr("127.0.0.1")
	lo2 = netip.MustParseAddr("127.0.0.2")
)

// TestServerLoopback: two Servers over loopback, single hop and multihop:
// the sessions come Up, a removal tells the peer (Down, diag 3), and a
// silent peer is detected (Down, diag 1). Detection time is 1.5 s, so
// that a loaded machine does not flap them.
func TestServerLoopback(t *testing.T) {
	a, b := serverPair(t)
	wa, wb := watch(t, a), watch(t, b)
	for _, multihop := range []bool{false, true} {
		t.Run(fmt.Sprintf("multihop=%v", multihop), func(t *testing.T) {
			ka, err := a.AddSession(Config{Peer: lo2, Local: lo1, MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 15, Multihop: multihop})
			if err != nil {
				t.Fatal(err)
			}
			kb, err := b.AddSession(Config{Peer: lo1, Local: lo2, MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 15, Multihop: multihop})
			if err != nil {
				t.Fatal(err)
			}
			wa.waitFor(t, ka, StateUp, 30*time.Second)
			wb.waitFor(t, kb, StateUp, 30*time.Second)
			st, ok := a.Session(ka)
			if !ok || st.RemoteDiscriminator == 0 || st.Counters.RxPackets == 0 || st.Counters.TxPackets == 0 {
				t.Fatalf("status %+v", st)
			}
			// B goes away with a last AdminDown: A goes Down, diag 3.
			if err := b.RemoveSession(kb); err != nil {
				t.Fatal(err)
			}
			c := wa.waitFor(t, ka, StateDown, 30*time.Second)
			if c.Diag != DiagNeighborSignaledDown || c.RemoteState != StateAdminDown || c.RemoteDiag != DiagAdministrativelyDown {
				t.Fatalf("A's change %+v, want diag 3 from a remote AdminDown diag 7", c)
			}
			// B comes back, and then falls silent: A detects it (diag 1).
			if kb, err = b.AddSession(Config{Peer: lo1, Local: lo2, MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 15, Multihop: multihop}); err != nil {
				t.Fatal(err)
			}
			wa.waitFor(t, ka, StateUp, 30*time.Second)
			b.mu.Lock()
			sb := b.eng.byKey[kb]
			b.eng.remove(kb, time.Now())
			b.eng.drop(sb)  // no lingering
			b.eng.out = nil // silently: no AdminDown reaches A
			b.eng.changes = nil
			b.mu.Unlock()
			c = wa.waitFor(t, ka, StateDown, 30*time.Second)
			if c.Diag != DiagControlDetectExpired {
				t.Fatalf("A's change %+v, want diag 1", c)
			}
			if err := a.RemoveSession(ka); err != nil {
				t.Fatal(err)
			}
			if n := a.Counters(); n.RxBadTTL != 0 || n.RxMalformed != 0 || n.TxErrors != 0 {
				t.Fatalf("server counters %+v", n)
			}
		})
	}
}

// TestServerTTLCheck sends packets with TTL 254 and 255 to a single-hop
// session from an ordinary socket: only 255 is taken (GTSM, RFC 5881 §5).
func TestServerTTLCheck(t *testing.T) {
	port := freePort(t)
	s, err := NewServer(ServerConfig{SingleHopPort: port, MultihopPort: freePort(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k, err := s.AddSession(Config{Peer: lo2, Local: lo1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: lo2.AsSlice()}, &net.UDPAddr{IP: lo1.AsSlice(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	setTTL := func(ttl int) {
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TTL, ttl) }); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
	}
	p := ControlPacket{State: StateDown, DetectMult: 3, MyDiscriminator: 42, DesiredMinTxInterval: 1e6, RequiredMinRxInterval: 1e6}
	setTTL(254)
	if _, err := c.Write(p.Append(nil)); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "a TTL drop", func() bool { return s.Counters().RxBadTTL == 1 })
	if st, _ := s.Session(k); st.Counters.RxPackets != 0 || st.State != StateDown {
		t.Fatalf("packet with TTL 254 taken: %+v", st)
	}
	setTTL(255)
	if _, err := c.Write(p.Append(nil)); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "the packet taken", func() bool {
		st, _ := s.Session(k)
		return st.Counters.RxPackets == 1 && st.State == StateInit && st.RemoteDiscriminator == 42
	})
	// An unknown peer is counted, not kept.
	c2, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 3)}, &net.UDPAddr{IP: lo1.AsSlice(), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Write(p.Append(nil)); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "an unknown-peer drop", func() bool { return s.Counters().RxUnknown == 1 })
}

// waitCond polls a condition on the server's state: counters have no
// event to wait on.
func waitCond(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
