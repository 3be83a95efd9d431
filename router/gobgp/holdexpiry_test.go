package gobgp

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/router"
)

// grPeer is a hand-made BGP speaker that negotiates graceful restart,
// announces one route and then either falls silent or drops the
// connection, the two ways a session can end without a NOTIFICATION from
// the peer.
type grPeer struct {
	t    testing.TB
	conn net.Conn
	done chan struct{} // closed when the reader ends
}

// serveGRPeer accepts the speaker's connection on ln and establishes a
// session with graceful restart (restart time 120 s) for IPv4 unicast.
func serveGRPeer(t testing.TB, ln net.Listener, as uint32, id string) *grPeer {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	var c net.Conn
	select {
	case c = <-ch:
		if c == nil {
			t.Fatal("accepting the speaker's connection failed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the speaker did not connect")
	}
	return openGRPeer(t, c, as, id)
}

// openGRPeer establishes a session with graceful restart (restart time
// 120 s) for IPv4 unicast over c, a connection with the speaker.
func openGRPeer(t testing.TB, c net.Conn, as uint32, id string) *grPeer {
	t.Helper()
	p := &grPeer{t: t, conn: c, done: make(chan struct{})}
	t.Cleanup(func() { c.Close(); <-p.done })
	gr := bgp.NewCapGracefulRestart(false, false, 120, []*bgp.CapGracefulRestartTuple{bgp.NewCapGracefulRestartTuple(bgp.RF_IPv4_UC, true)})
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapFourOctetASNumber(as), gr}
	p.send(bgp.NewBGPOpenMessage(uint16(as), 3, id, []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}))
	opened := make(chan struct{})
	go p.read(opened)
	select {
	case <-opened:
	case <-time.After(15 * time.Second):
		t.Fatal("no OPEN from the speaker")
	}
	p.send(bgp.NewBGPKeepAliveMessage())
	return p
}

// read consumes what the speaker sends, closing opened at its OPEN.
func (p *grPeer) read(opened chan struct{}) {
	defer close(p.done)
	hdr := make([]byte, bgp.BGP_HEADER_LENGTH)
	for {
		if _, err := io.ReadFull(p.conn, hdr); err != nil {
			return
		}
		l := int(binary.BigEndian.Uint16(hdr[16:]))
		if l < bgp.BGP_HEADER_LENGTH {
			return
		}
		if _, err := io.CopyN(io.Discard, p.conn, int64(l-bgp.BGP_HEADER_LENGTH)); err != nil {
			return
		}
		if hdr[18] == bgp.BGP_MSG_OPEN && opened != nil {
			close(opened)
			opened = nil
		}
	}
}

func (p *grPeer) send(m *bgp.BGPMessage) {
	p.t.Helper()
	b, err := m.Serialize()
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

func (p *grPeer) announce(prefix netip.Prefix, nextHop string) {
	p.t.Helper()
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeAsPath(nil),
		bgp.NewPathAttributeNextHop(nextHop),
		bgp.NewPathAttributeLocalPref(100),
	}
	nlri := bgp.NewIPAddrPrefix(uint8(prefix.Bits()), prefix.Addr().String())
	p.send(bgp.NewBGPUpdateMessage(nil, attrs, []*bgp.IPAddrPrefix{nlri}))
	p.send(bgp.NewEndOfRib(bgp.RF_IPv4_UC))
}

// keepalives sends a KEEPALIVE every second until stop is closed.
func (p *grPeer) keepalives(stop chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	b, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if _, err := p.conn.Write(b); err != nil {
				return
			}
		}
	}
}

// speakerAndGRPeer starts a speaker on 127.0.0.1 that dials a grPeer on
// 127.0.0.2 with graceful restart and the given timers, and returns both
// once the session is up.
func speakerAndGRPeer(t *testing.T, ctx context.Context, hold, keepalive time.Duration) (*Speaker, *collector, *grPeer, netip.Addr) {
	t.Helper()
	a, ca := startSpeaker(t, ctx, "127.0.0.1", freePort(t))
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	peerAddr := netip.MustParseAddr("127.0.0.2")
	err = a.AddPeer(ctx, router.PeerConfig{
		Address: peerAddr, Port: uint16(ln.Addr().(*net.TCPAddr).Port), PeerAS: 64512, LocalAS: 64512,
		LocalAddress: netip.MustParseAddr("127.0.0.1"), HoldTime: hold, KeepaliveTime: keepalive, IPv4: true,
		GracefulRestart: router.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, StaleRoutesTime: 120 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, ca, serveGRPeer(t, ln, 64512, "10.0.0.2"), peerAddr
}

// TestHoldExpiryEndsGracefulRestart: with graceful restart negotiated, a
// peer that closes its connection keeps its routes as stale (a restart),
// but a peer that falls silent until the hold timer expires loses them
// at once — GoBGP on its own would keep them for the restart time
// (120 s), blackholing traffic to a dead link.
func TestHoldExpiryEndsGracefulRestart(t *testing.T) {
	nstest.SkipShort(t, "waits out hold timers (10 s)")
	for _, tc := range []struct {
		name     string
		silent   bool // else the connection is closed
		withdraw bool
	}{
		{name: "silent peer: hold timer expires, routes go", silent: true, withdraw: true},
		{name: "connection closed: graceful restart keeps routes", silent: false, withdraw: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a, ca, p, peerAddr := speakerAndGRPeer(t, ctx, 3*time.Second, time.Second)
			stop := make(chan struct{})
			go p.keepalives(stop)
			block := netip.MustParsePrefix("10.65.9.0/26")
			p.announce(block, "127.0.0.2")
			ca.wait(t, "route learned", func() bool { return len(ca.best[block]) == 1 })

			close(stop)
			ended := time.Now()
			if !tc.silent {
				p.conn.Close()
			}
			ca.wait(t, "session down", func() bool { return ca.state[peerAddr] != api.BGPEstablished })
			if tc.withdraw {
				ca.wait(t, "route withdrawn after the hold time", func() bool { return len(ca.best[block]) == 0 })
				took := time.Since(ended)
				t.Logf("route withdrawn %s after the peer fell silent (hold time 3 s)", took.Round(time.Millisecond))
				if took > 8*time.Second {
					t.Errorf("route withdrawn after %s, well past the 3 s hold time", took)
				}
				// The peer is back in the speaker's configuration, ready
				// to reconnect (deleted, which dropped the routes, then
				// added again: the route can go before the peer is back).
				deadline := time.Now().Add(20 * time.Second)
				for {
					ps, err := a.Peers(ctx)
					if err == nil && len(ps) == 1 && ps[0].Address == peerAddr {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("after the hold-timer expiry, Peers = %+v, %v; want the peer configured again", ps, err)
					}
					time.Sleep(10 * time.Millisecond)
				}
				return
			}
			// A restart: the route stays (stale) well past the hold time.
			time.Sleep(5 * time.Second)
			rib, err := a.RIB(ctx)
			if err != nil || len(rib) != 1 || rib[0].Prefix != block || len(rib[0].Paths) != 1 || !rib[0].Paths[0].Stale {
				t.Errorf("after the peer's connection closed, RIB = %+v, %v; want the route kept as stale", rib, err)
			}
		})
	}
}

// TestEndOfRIBAfterRoutes: a peer's End-of-RIB reaches WatchBestPaths
// after every route it sent before it, so that a restarting router never
// ends its restart without them.
func TestEndOfRIBAfterRoutes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, ca, p, peerAddr := speakerAndGRPeer(t, ctx, 90*time.Second, 30*time.Second)
	const n = 500
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeAsPath(nil),
		bgp.NewPathAttributeNextHop("127.0.0.2"),
		bgp.NewPathAttributeLocalPref(100),
	}
	for i := range n {
		nlri := bgp.NewIPAddrPrefix(32, netip.AddrFrom4([4]byte{10, 66, byte(i >> 8), byte(i)}).String())
		p.send(bgp.NewBGPUpdateMessage(nil, attrs, []*bgp.IPAddrPrefix{nlri}))
	}
	p.send(bgp.NewEndOfRib(bgp.RF_IPv4_UC))
	ca.wait(t, "End-of-RIB", func() bool { return len(ca.eor[peerAddr]) > 0 })
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if got := ca.eor[peerAddr][0]; got != n {
		t.Errorf("End-of-RIB came with %d of the peer's %d routes in the table", got, n)
	}
}
