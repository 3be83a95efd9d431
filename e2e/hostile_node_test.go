package e2e

import (
	"context"
	benc "encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/probe"
)

// hostileCrasher is issue 11's UPDATE: an MP_REACH_NLRI of 3 bytes (AFI
// 1, SAFI 1, nothing else), which panics GoBGP v3.37.0's decoder in its
// receive goroutine.
var hostileCrasher = []byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x00, 0x24, 0x02, 0x00, 0x00, 0x00, 0x0d, 0x40, 0x01, 0x01, 0x00, 0x40, 0x02, 0x00, 0x80, 0x0e, 0x03, 0x00, 0x01, 0x01,
}

// hostilePeer accepts node-1's speaker's connections on ln one after
// the other until ln is closed; on each it establishes the session (AS
// 65050), sends the crasher and waits for the connection to end (the
// speaker dies with it). It reports each session's end on ended (nil:
// the crasher was sent) and closes ended when ln is closed.
func hostilePeer(ln net.Listener, ended chan<- error) {
	defer close(ended)
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		ended <- hostileSession(c)
	}
}

func hostileSession(c net.Conn) error {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	read := func() (uint8, error) {
		hdr := make([]byte, bgp.BGP_HEADER_LENGTH)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return 0, err
		}
		body := make([]byte, int(benc.BigEndian.Uint16(hdr[16:]))-bgp.BGP_HEADER_LENGTH)
		_, err := io.ReadFull(c, body)
		return hdr[18], err
	}
	expect := func(typ uint8) error {
		for {
			got, err := read()
			if err != nil {
				return err
			}
			if got == typ {
				return nil
			}
		}
	}
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapFourOctetASNumber(65050)}
	open, _ := bgp.NewBGPOpenMessage(bgp.AS_TRANS, 9, "10.250.0.2", []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}).Serialize()
	ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	if _, err := c.Write(open); err != nil {
		return err
	}
	if err := expect(bgp.BGP_MSG_OPEN); err != nil {
		return fmt.Errorf("waiting for OPEN: %w", err)
	}
	if _, err := c.Write(ka); err != nil {
		return err
	}
	if err := expect(bgp.BGP_MSG_KEEPALIVE); err != nil {
		return fmt.Errorf("waiting for KEEPALIVE: %w", err)
	}
	if _, err := c.Write(hostileCrasher); err != nil {
		return err
	}
	for { // until the speaker's end goes away with it
		if _, err := read(); err != nil {
			return nil
		}
	}
}

// TestHostilePeerCannotTakeNodeDown: in a 3-node mesh, a hostile BGP peer
// of node-1 (a namespace of the test's own, wired to node-1 by a veth)
// sends issue 11's crasher every time its session comes up. node-1's
// speaker process dies each time; node-1's agent (felix and the router)
// lives on, and its workloads keep talking to the other nodes' through
// the faults (graceful restart: no route is withdrawn anywhere). After
// the second crash the hostile peer is quarantined (BGPStatus), and
// node-1's sessions with its mesh peers are back.
func TestHostilePeerCannotTakeNodeDown(t *testing.T) {
	f := boot(t, "mesh-3")
	converge(t, f)
	requireChecks(t, f)
	blocks := blocksByNode(t, f)
	var all []netip.Prefix
	var computes []string
	for n, bs := range blocks {
		all = append(all, bs...)
		computes = append(computes, n)
	}
	w := watchRoutes(t, f, computes, all)
	s12 := startStream(t, f, "node-1", "node-2")
	s13 := startStream(t, f, "node-1", "node-3")
	s21 := startStream(t, f, "node-2", "node-1")
	pid := f.AgentPID("node-1")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(f.Dir(), "logs", "node-1.log"))
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			var keep []string
			for _, l := range lines {
				if !strings.Contains(l, "speaker process output") {
					keep = append(keep, l)
				}
			}
			t.Logf("node-1's log without the speaker's raw output, last 80 lines:\n%s", strings.Join(keep[max(0, len(keep)-80):], "\n"))
		}
	})

	// The hostile peer: 10.250.0.2 in a namespace of its own, node-1 at
	// 10.250.0.1 on the other end of a veth. The veth goes with the
	// namespace when the test ends.
	hostile := nstest.New(t)
	n1, err := f.NodeNetns("node-1")
	if err != nil {
		t.Fatal(err)
	}
	if err := hostile.Netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "hostile0"}, PeerName: "hostile1",
		PeerNamespace: netlink.NsFd(int(n1))}); err != nil {
		t.Fatal(err)
	}
	n1nl, err := netlink.NewHandleAt(n1)
	if err != nil {
		t.Fatal(err)
	}
	defer n1nl.Close()
	for _, end := range []struct {
		h    *netlink.Handle
		name string
		cidr string
	}{{hostile.Netlink, "hostile0", "10.250.0.2/30"}, {n1nl, "hostile1", "10.250.0.1/30"}} {
		l, err := end.h.LinkByName(end.name)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := netlink.ParseAddr(end.cidr)
		if err := end.h.AddrAdd(l, a); err != nil {
			t.Fatal(err)
		}
		if err := end.h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	// node-1 speaks from its node address: the way back to it.
	if err := hostile.Netlink.RouteAdd(&netlink.Route{Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)},
		Gw: net.ParseIP("10.250.0.1")}); err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	if err := hostile.Do(func() (err error) { ln, err = net.Listen("tcp4", "10.250.0.2:179"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	as := uint32(65050)
	if _, err := f.Client().Apply(context.Background(), &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "hostile"},
		Spec: api.BGPPeerSpec{Node: "node-1", PeerIP: "10.250.0.2", ASNumber: &as}}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	ended := make(chan error, 64)
	go hostilePeer(ln, ended)
	defer func() {
		ln.Close()
		for range ended {
		}
	}()
	var until string
	waitNodeStatus(t, f, "node-1", "the hostile peer quarantined", 3*time.Minute, func(st *api.BGPStatus) bool {
		for _, p := range st.Status.Peers {
			if p.PeerIP == "10.250.0.2" {
				until = p.QuarantinedUntil
			}
		}
		return until != ""
	})
	crashes := 0
	for drained := false; !drained; {
		select {
		case err := <-ended:
			if err != nil {
				t.Errorf("hostile session: %v", err)
			}
			crashes++
		default:
			drained = true
		}
	}
	if crashes < 2 {
		t.Errorf("quarantined after %d crashes, want 2 (the policy's strikes)", crashes)
	}
	t.Logf("%d crashes of node-1's speaker; hostile peer quarantined until %s (%s after the BGPPeer was applied)", crashes, until, time.Since(start).Round(time.Millisecond))
	// node-1's mesh sessions come back.
	mesh := map[string]bool{nodeAddr(f, "node-2", false).String(): true, nodeAddr(f, "node-3", false).String(): true}
	waitNodeStatus(t, f, "node-1", "node-1's mesh sessions back", time.Minute, func(st *api.BGPStatus) bool {
		up := 0
		for _, p := range st.Status.Peers {
			if mesh[p.PeerIP] && p.State == api.BGPEstablished {
				up++
			}
		}
		return up == len(mesh)
	})
	if got := f.AgentPID("node-1"); got != pid {
		t.Fatalf("node-1's agent is gone (pid %d, was %d)", got, pid)
	}
	// Traffic after the recovery: the streams keep echoing, the checks pass.
	before := map[string]int{"node-1->node-2": s12.Stats().Echoed, "node-1->node-3": s13.Stats().Echoed, "node-2->node-1": s21.Stats().Echoed}
	wait(context.Background(), 2*time.Second)
	requireChecks(t, f)
	for name, st := range map[string]probe.StreamStats{"node-1->node-2": s12.Stop(2 * time.Second), "node-1->node-3": s13.Stop(2 * time.Second), "node-2->node-1": s21.Stop(2 * time.Second)} {
		t.Logf("stream %s through the crashes: %d sent, %d echoed, longest stall %s", name, st.Sent, st.Echoed, st.MaxGap)
		if st.Err != nil {
			t.Errorf("stream %s broke: %v", name, st.Err)
		}
		if st.Echoed <= before[name] {
			t.Errorf("stream %s: no echo after the recovery", name)
		}
	}
	if d := w.deletions(); len(d) > 0 {
		t.Errorf("routes deleted while node-1's speaker restarted with graceful restart: %+v", d)
	}
	log, _ := os.ReadFile(filepath.Join(f.Dir(), "logs", "node-1.log"))
	if n := strings.Count(string(log), "BGP speaker died"); n < 2 {
		t.Errorf("node-1's log reports %d speaker deaths, want 2 or more", n)
	}
}

// waitNodeStatus waits, on a datastore watch, until cond holds for the
// node's BGPStatus.
func waitNodeStatus(t *testing.T, f *sim.Fabric, node, what string, timeout time.Duration, cond func(*api.BGPStatus) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w := f.Client().Watch(ctx, api.KindBGPStatus, "", 0)
	for {
		if r, err := f.Client().Get(ctx, api.KindBGPStatus, "", node); err == nil && cond(r.(*api.BGPStatus)) {
			return
		}
		select {
		case _, ok := <-w:
			if !ok && ctx.Err() == nil {
				t.Fatalf("%s: waiting until %s: the watch ended", node, what)
			}
		case <-ctx.Done():
			t.Fatalf("%s: timed out after %v waiting until %s", node, timeout, what)
		}
	}
}
