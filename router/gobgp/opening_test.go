package gobgp

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/router"
)

func TestOpeningBound(t *testing.T) {
	for _, tc := range []struct{ hold, want time.Duration }{
		{0, 10 * time.Second},
		{3 * time.Second, 10 * time.Second},
		{9 * time.Second, 18 * time.Second},
		{90 * time.Second, 180 * time.Second},
	} {
		if got := openingBound(tc.hold); got != tc.want {
			t.Errorf("openingBound(%s) = %s, want %s", tc.hold, got, tc.want)
		}
	}
}

// TestStuckOpenSentEnds: a peer that accepts our connection but never
// sends its OPEN (a process stopped with our connection in its listen
// backlog, or one whose GoBGP left the accepted connection unread) keeps
// GoBGP in OpenSent for 4 minutes. The speaker ends the session after
// openingBound (10 s with hold time 3 s) — not before — and connects
// again.
func TestStuckOpenSentEnds(t *testing.T) {
	nstest.SkipShort(t, "waits out the opening bound (10 s)")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, ca := startSpeaker(t, ctx, "127.0.0.1", freePort(t))
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	type accepted struct {
		at     time.Time
		closed chan time.Time // gets when the speaker closed it
	}
	conns := make(chan accepted, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ac := accepted{at: time.Now(), closed: make(chan time.Time, 1)}
			go func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c) // never answers
				ac.closed <- time.Now()
			}()
			conns <- ac
		}
	}()
	peerAddr := netip.MustParseAddr("127.0.0.2")
	const hold = 3 * time.Second
	err = a.AddPeer(ctx, router.PeerConfig{
		Address: peerAddr, Port: uint16(ln.Addr().(*net.TCPAddr).Port), PeerAS: 64512, LocalAS: 64512,
		LocalAddress: netip.MustParseAddr("127.0.0.1"), HoldTime: hold, KeepaliveTime: time.Second, IPv4: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	next := func(what string) accepted {
		t.Helper()
		select {
		case ac := <-conns:
			return ac
		case <-time.After(60 * time.Second):
			t.Fatalf("no %s from the speaker", what)
		}
		return accepted{}
	}
	first := next("connection")
	ca.wait(t, "OpenSent", func() bool { return ca.state[peerAddr] == api.BGPOpenSent })
	var ended time.Time
	select {
	case ended = <-first.closed:
	case <-time.After(90 * time.Second): // GoBGP alone: 240 s
		t.Fatal("the session stayed in OpenSent on a connection that never brought an OPEN")
	}
	took := ended.Sub(first.at)
	if bound := openingBound(hold); took < bound-time.Second {
		t.Errorf("the opening session ended %s after it connected, before its bound %s", took, bound)
	}
	t.Logf("the session stuck in OpenSent ended %s after it connected", took.Round(time.Millisecond))
	next("new connection after the stuck one ended")
}
