package e2e

import (
	"context"
	be "encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/netbuild"
)

// pinger sends ICMP echo requests from a namespace every interval and
// counts the replies, by sequence number.
type pinger struct {
	conn   net.PacketConn
	dst    netip.Addr
	id     uint16
	mu     sync.Mutex
	sent   int
	got    map[uint16]bool
	stop   chan struct{}
	doneWG sync.WaitGroup
}

func startPinger(t *testing.T, f *sim.Fabric, node string, dst netip.Addr, interval time.Duration) *pinger {
	t.Helper()
	ns, err := f.NodeNetns(node)
	if err != nil {
		t.Fatal(err)
	}
	p := &pinger{dst: dst, id: uint16(time.Now().UnixNano()), got: map[uint16]bool{}, stop: make(chan struct{})}
	if err := netbuild.Do(ns, func() error {
		var err error
		p.conn, err = net.ListenPacket("ip4:icmp", "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p.doneWG.Add(2)
	go func() { // receiver
		defer p.doneWG.Done()
		buf := make([]byte, 1500)
		for {
			n, from, err := p.conn.ReadFrom(buf)
			if err != nil {
				return // closed
			}
			src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			if src.Unmap() != dst || n < 8 || buf[0] != 0 || be.BigEndian.Uint16(buf[4:]) != p.id {
				continue
			}
			p.mu.Lock()
			p.got[be.BigEndian.Uint16(buf[6:])] = true
			p.mu.Unlock()
		}
	}()
	go func() { // sender
		defer p.doneWG.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		to := &net.IPAddr{IP: dst.AsSlice()}
		for seq := uint16(1); ; seq++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			b := make([]byte, 16)
			b[0] = 8
			be.BigEndian.PutUint16(b[4:], p.id)
			be.BigEndian.PutUint16(b[6:], seq)
			var s uint32
			for i := 0; i < len(b); i += 2 {
				s += uint32(b[i])<<8 | uint32(b[i+1])
			}
			for s>>16 != 0 {
				s = s>>16 + s&0xffff
			}
			be.BigEndian.PutUint16(b[2:], ^uint16(s))
			_, _ = p.conn.WriteTo(b, to) // an error is a lost ping
			p.mu.Lock()
			p.sent = int(seq)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.finish(0) })
	return p
}

// counts returns how many were sent and answered so far.
func (p *pinger) counts() (sent, answered int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent, len(p.got)
}

// finish stops sending, waits linger for the last replies, and returns
// the sequence numbers never answered.
func (p *pinger) finish(linger time.Duration) []uint16 {
	select {
	case <-p.stop:
		return nil
	default:
	}
	close(p.stop)
	time.Sleep(linger) // the last replies in flight: a bounded grace, not a state wait
	p.conn.Close()
	p.doneWG.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	var lost []uint16
	for s := 1; s <= p.sent; s++ {
		if !p.got[uint16(s)] {
			lost = append(lost, uint16(s))
		}
	}
	return lost
}

// setDrain sets or clears a Node's spec.bgp.drain, as `bgpfabric node
// drain` does.
func setDrain(t *testing.T, f *sim.Fabric, node string, on bool) {
	t.Helper()
	ctx := context.Background()
	r, err := f.Client().Get(ctx, api.KindNode, "", node)
	if err != nil {
		t.Fatal(err)
	}
	n := r.(*api.Node)
	n.Spec.BGP.Drain = on
	if _, err := f.Client().Update(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// TestDrainNoLoss (issue 14, scenario 5): the ToR pings the service
// address that both nodes serve (ECMP) every 20 ms. The node the ToR's
// kernel sends those pings to is drained (drainTime 20s): the ToR moves
// the route to the other node while its session with the drained node is
// still established (the GRACEFUL_SHUTDOWN paths lose); then the drained
// node stops serving the address (maintenance starts) before its sessions
// close, and they close. Not one ping is lost. Without the
// graceful-shutdown advertisement the route would keep the drained node
// until its session closed: the wait for the move would fail, and the
// pings sent to it after it stopped serving would be lost.
func TestDrainNoLoss(t *testing.T) {
	f := bootAdv(t, "20s")
	n1, n2 := nodeAddr(f, "n-1", false), nodeAddr(f, "n-2", false)
	advWait(t, time.Minute, "ECMP route to the service at the ToR", func() (bool, string) {
		gws := advGateways(t, f)
		return slices.Equal(gws, []netip.Addr{n1, n2}), fmt.Sprintf("gateways %v", gws)
	})
	// Which node the ToR sends our pings to (the multipath hash of the
	// ToR's source and the service address).
	h := nodeNetlink(t, f, "tor")
	rs, err := h.RouteGetWithOptions(advService.AsSlice(), &netlink.RouteGetOptions{SrcAddr: nodeAddr(f, "tor", false).AsSlice()})
	if err != nil || len(rs) == 0 {
		t.Fatalf("route get %s at the ToR: %v %v", advService, rs, err)
	}
	via, _ := netip.AddrFromSlice(rs[0].Gw)
	drained, other := "n-1", n2
	if via.Unmap() == n2 {
		drained, other = "n-2", n1
	}
	drainedAddr := nodeAddr(f, drained, false)
	t.Logf("the ToR sends the pings via %s: draining %s", via, drained)

	p := startPinger(t, f, "tor", advService, 20*time.Millisecond)
	advWait(t, 30*time.Second, "pings answered", func() (bool, string) {
		s, a := p.counts()
		return a > 10, fmt.Sprintf("%d sent, %d answered", s, a)
	})

	setDrain(t, f, drained, true)
	drainStart := time.Now()
	advWait(t, 15*time.Second, "the ToR's route moved to the other node", func() (bool, string) {
		gws := advGateways(t, f)
		return slices.Equal(gws, []netip.Addr{other}), fmt.Sprintf("gateways %v, paths %+v", gws, torPaths(f))
	})
	if !torEstablished(f, drainedAddr) {
		t.Fatalf("the ToR's session with %s closed before its route moved away", drained)
	}
	moved := time.Since(drainStart)
	for _, tp := range torPaths(f) {
		if tp.Peer == drainedAddr.String() && tp.Community != "graceful-shutdown" {
			t.Errorf("the drained node's path at the ToR has communities %q, want graceful-shutdown", tp.Community)
		}
	}
	// Maintenance: the drained node stops serving the address.
	advAddr(t, f, drained, false)
	advWait(t, time.Minute, "the drained node's session closed", func() (bool, string) {
		return !torEstablished(f, drainedAddr), "established"
	})
	closed := time.Since(drainStart)
	time.Sleep(time.Second) // keep pinging past the close: a bounded tail of traffic, not a state wait
	sent, _ := p.counts()
	if lost := p.finish(500 * time.Millisecond); len(lost) > 0 {
		t.Errorf("%d of %d pings lost (sequence numbers %v)", len(lost), sent, lost)
	}
	t.Logf("route moved %.1fs after the drain, session closed after %.1fs; %d pings, none lost",
		moved.Seconds(), closed.Seconds(), sent)

	setDrain(t, f, drained, false)
	advWait(t, time.Minute, "the session back after undrain", func() (bool, string) {
		return torEstablished(f, drainedAddr), "not established"
	})
}
