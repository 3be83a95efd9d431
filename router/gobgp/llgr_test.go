package gobgp

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// TestLongLivedGracefulRestart: a node's speaker with a long-lived stale
// time advertises the LLGR capability (RFC 9494) with it, and keeps the
// routes of a peer (a reflector) that went away for longer than its
// restart time (1 s) as LLGR-stale: still the best path, with the
// LLGR_STALE community (65535:6), not withdrawn.
func TestLongLivedGracefulRestart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, ca := startSpeaker(t, ctx, "127.0.0.1", freePort(t))
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	err = a.AddPeer(ctx, router.PeerConfig{
		Address: netip.MustParseAddr("127.0.0.2"), Port: uint16(ln.Addr().(*net.TCPAddr).Port), PeerAS: 64512, LocalAS: 64512,
		LocalAddress: netip.MustParseAddr("127.0.0.1"), HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, IPv4: true,
		GracefulRestart: router.GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, StaleRoutesTime: 120 * time.Second,
			LongLivedStaleTime: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("the speaker did not connect: %v", err)
	}
	p := &grPeer{t: t, conn: c, done: make(chan struct{})}
	t.Cleanup(func() { c.Close() })
	p.send(bgp.NewBGPOpenMessage(64512, 90, "10.0.0.2", []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(
		[]bgp.ParameterCapabilityInterface{
			bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapFourOctetASNumber(64512),
			bgp.NewCapGracefulRestart(false, false, 1, []*bgp.CapGracefulRestartTuple{bgp.NewCapGracefulRestartTuple(bgp.RF_IPv4_UC, true)}),
			bgp.NewCapLongLivedGracefulRestart([]*bgp.CapLongLivedGracefulRestartTuple{
				bgp.NewCapLongLivedGracefulRestartTuple(bgp.RF_IPv4_UC, true, 3600)}),
		})}))

	// The speaker's OPEN carries the LLGR capability with its time.
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	hdr := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatalf("reading the speaker's OPEN: %v", err)
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[16:]))
	copy(msg, hdr)
	if _, err := io.ReadFull(c, msg[len(hdr):]); err != nil {
		t.Fatalf("reading the speaker's OPEN: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	m, err := bgp.ParseBGPMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	open, ok := m.Body.(*bgp.BGPOpen)
	if !ok {
		t.Fatalf("first message %T, want OPEN", m.Body)
	}
	var llgr *bgp.CapLongLivedGracefulRestart
	for _, op := range open.OptParams {
		if pc, ok := op.(*bgp.OptionParameterCapability); ok {
			for _, cp := range pc.Capability {
				if x, ok := cp.(*bgp.CapLongLivedGracefulRestart); ok {
					llgr = x
				}
			}
		}
	}
	if llgr == nil || len(llgr.Tuples) != 1 || llgr.Tuples[0].RestartTime != 3600 {
		t.Fatalf("LLGR capability %+v, want IPv4 with 3600 s", llgr)
	}
	go p.read(nil)
	t.Cleanup(func() { c.Close(); <-p.done })
	p.send(bgp.NewBGPKeepAliveMessage())

	block := netip.MustParsePrefix("10.67.0.0/26")
	p.announce(block, "127.0.0.2")
	ca.wait(t, "route learned", func() bool { return len(ca.best[block]) == 1 })
	c.Close() // the peer goes away without a NOTIFICATION
	down := time.Now()
	llgrStale := api.Community{Global: 65535, Local1: 6}
	ca.wait(t, "route kept LLGR-stale past the restart time", func() bool {
		ps := ca.best[block]
		return len(ps) == 1 && slices.Contains(ps[0].Communities, llgrStale)
	})
	if el := time.Since(down); el < 800*time.Millisecond {
		t.Errorf("LLGR-stale after %v, before the peer's 1 s restart time", el)
	}
}
