package speakerproc

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/router"
)

// TestReceivedPathsCrossTheSocket: a child started with
// Global.ReceivedPaths reports every path its peers send (with the peer,
// AS path and LOCAL_PREF) and their withdrawals through the socketpair to
// WatchReceived, and no best-path changes to WatchBestPaths.
func TestReceivedPathsCrossTheSocket(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	h := &harness{port: port, c: New(Config{Command: SelfCommand("-test.run=^$"), Logger: slog.New(slog.DiscardHandler)})}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	defer h.close()
	recv := make(chan router.Received, 16)
	best := make(chan []router.Destination, 16)
	if err := h.c.WatchReceived(ctx, func(rs []router.Received) {
		for _, r := range rs {
			recv <- r
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.WatchBestPaths(ctx, func(ds []router.Destination) { best <- ds }); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	defer scancel()
	if err := h.c.Start(sctx, router.Global{AS: 64512, RouterID: speakerAddr, ListenPort: int32(port),
		ListenAddresses: []netip.Addr{speakerAddr}, ReceivedPaths: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.addPeer(sctx); err != nil {
		t.Fatal(err)
	}
	// The session comes up without the speaker sending anything: the
	// raw peer needs no UPDATE from it (establish waits for one).
	if err := h.c.Announce(sctx, []router.LocalRoute{{Prefix: netip.MustParsePrefix("10.66.0.0/24"), NextHop: speakerAddr}}); err != nil {
		t.Fatal(err)
	}
	s, err := h.dial(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.conn.Close()
	nlri := bgp.NewIPAddrPrefix(24, "10.200.1.0")
	up := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65050})}),
		bgp.NewPathAttributeNextHop(peerAddr.String()),
	}, []*bgp.IPAddrPrefix{nlri})
	if err := s.send(up); err != nil {
		t.Fatal(err)
	}
	want := netip.MustParsePrefix("10.200.1.0/24")
	r := next(t, recv)
	if r.Prefix != want || r.Peer != peerAddr || r.Withdrawn || r.Path.LocalPref != 100 || len(r.Path.ASPath) != 1 ||
		r.Path.ASPath[0] != 65050 || r.Path.NextHop != peerAddr {
		t.Errorf("received %+v", r)
	}
	if err := s.send(bgp.NewBGPUpdateMessage([]*bgp.IPAddrPrefix{nlri}, nil, nil)); err != nil {
		t.Fatal(err)
	}
	if r := next(t, recv); r.Prefix != want || r.Peer != peerAddr || !r.Withdrawn {
		t.Errorf("withdrawal received as %+v", r)
	}
	select {
	case ds := <-best:
		t.Errorf("best-path changes reported with ReceivedPaths: %+v", ds)
	default:
	}
}

func next(t *testing.T, ch <-chan router.Received) router.Received {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no received path reported")
	}
	return router.Received{}
}
