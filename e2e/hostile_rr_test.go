package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// hostileTopology is a bgpfabric reflector and two clients.
const hostileTopology = `
name: hostile-rr
description: one route reflector, two compute nodes, a hostile peer added by the test
bgp:
  model: reflectors
  keepaliveTime: 3s
  holdTime: 9s
  clusterID: 244.0.0.1
nodes:
  - name: reflector
    role: reflector
  - name: node
    count: 2
checks:
  convergence: 45s
`

// crasher is the UPDATE that panics GoBGP's codec: an MP_REACH_NLRI of
// three bytes (AFI 1, SAFI 1, nothing else).
var crasher = func() []byte {
	b, err := hex.DecodeString(strings.Repeat("ff", 16) + "0024" + "02" + "0000" + "000d" + "400101" + "00" + "400200" + "800e03" + "000101")
	if err != nil {
		panic(err)
	}
	return b
}()

// TestHostilePeerOfReflector: a raw BGP peer, in a namespace of its own
// on the fabric's segment and configured (BGPPeer) as a neighbour of the
// bgpfabric reflector, announces routes, which reach every compute node's
// kernel; then it sends the UPDATE that crashes GoBGP's codec. The
// reflector answers with an UPDATE Message Error, withdraws the peer's
// routes from every node, keeps the others' sessions, and holds the peer
// down: its reconnection is refused with a Cease, Connection Rejected
// (docs/reflector.md, Hostile peers).
func TestHostilePeerOfReflector(t *testing.T) {
	topo, err := topology.Parse("hostile-rr.yaml", []byte(hostileTopology))
	if err != nil {
		t.Fatal(err)
	}
	f := bootTopo(t, topo)
	converge(t, f)
	rr := f.Plan.Node("reflector")
	nodes := computeNodes(f)

	ns, addr := hostileNamespace(t, f, rr)
	peer := &api.BGPPeer{Spec: api.BGPPeerSpec{Node: rr.Name, PeerIP: addr.String(), ASNumber: &rr.ASNumber}}
	peer.Name = "hostile"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := f.Client().Apply(ctx, peer); err != nil {
		t.Fatal(err)
	}

	routes := []netip.Prefix{netip.MustParsePrefix("10.250.0.0/24"), netip.MustParsePrefix("10.250.1.0/24")}
	w := watchRoutes(t, f, nodes, routes)
	// The reflector learns the neighbour from the datastore: connect until
	// it takes the session (it refuses unknown addresses until then).
	var s *hostileSpeaker
	for s == nil {
		if s, err = dialHostile(ctx, ns, addr, netip.AddrPortFrom(rr.IPv4.Addr(), 179), rr.ASNumber); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("the reflector did not take the hostile peer's session: %v", err)
			}
			wait(ctx, 500*time.Millisecond)
			s = nil
		}
	}
	defer s.conn.Close()
	if err := s.announce(addr, routes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if !w.waitAdded(ctx, n, routes) {
			t.Fatalf("%s: the hostile peer's routes never arrived", n)
		}
	}
	t.Logf("the hostile peer's routes are on %v", nodes)

	if _, err := s.conn.Write(crasher); err != nil {
		t.Fatal(err)
	}
	code, sub, err := s.notification(ctx)
	if err != nil || code != bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR || sub != bgp.BGP_ERROR_SUB_OPTIONAL_ATTRIBUTE_ERROR {
		t.Errorf("after the crasher: notification %d/%d (%v), want %d/%d", code, sub, err,
			bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_OPTIONAL_ATTRIBUTE_ERROR)
	}
	for _, n := range nodes {
		if _, ok := w.waitDeleted(ctx, n, routes); !ok {
			t.Fatalf("%s: the hostile peer's routes were not withdrawn", n)
		}
	}
	t.Logf("the hostile peer's routes are withdrawn from %v", nodes)

	// Held down: a new connection is refused before any OPEN.
	var c net.Conn
	if err := ns.Do(func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: addr.AsSlice()}}
		c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(rr.IPv4.Addr(), 179).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	again := &hostileSpeaker{conn: c, br: bufio.NewReader(c)}
	m, err := again.next(ctx)
	if err != nil {
		t.Fatalf("reconnecting: %v", err)
	}
	if n, ok := m.Body.(*bgp.BGPNotification); !ok || n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_CONNECTION_REJECTED {
		t.Errorf("reconnecting during the hold-down: got %T %+v, want a Cease, Connection Rejected", m.Body, m.Body)
	}

	// The clients' own sessions and routes are untouched.
	requireNodeSessions(t, f, nodes, rr.Name)
	requireExactRoutes(t, f, viaOwner(f))
}

// hostileNamespace creates a namespace with a veth port on the
// reflector's segment bridge and an unused address of the segment.
func hostileNamespace(t *testing.T, f *sim.Fabric, rr *topology.NodePlan) (*nstest.NS, netip.Addr) {
	t.Helper()
	seg := f.Plan.Segment(rr.Segment)
	if seg == nil {
		t.Fatalf("reflector %s has no segment", rr.Name)
	}
	used := map[netip.Addr]bool{seg.IPv4.Addr(): true}
	for _, n := range f.Plan.Nodes {
		used[n.IPv4.Addr()] = true
	}
	addr := seg.IPv4.Masked().Addr()
	for i := 0; i < 200 || used[addr]; i++ {
		addr = addr.Next()
	}
	if !seg.IPv4.Contains(addr) {
		t.Fatalf("no free address in %v", seg.IPv4)
	}
	ns := nstest.New(t)
	segNS, err := netns.GetFromName(seg.Netns)
	if err != nil {
		t.Fatalf("segment namespace %s: %v", seg.Netns, err)
	}
	defer segNS.Close()
	segNL, err := netlink.NewHandleAt(segNS)
	if err != nil {
		t.Fatal(err)
	}
	defer segNL.Close()
	var suffix [3]byte
	rand.Read(suffix[:])
	port := "hrr" + hex.EncodeToString(suffix[:])
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: port, PeerNamespace: netlink.NsFd(segNS)}
	if err := ns.Netlink.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth: %v", err)
	}
	// The namespace's removal takes both ends of the pair.
	br, err := segNL.LinkByName(seg.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := segNL.LinkByName(port)
	if err == nil {
		err = segNL.LinkSetMaster(pl, br)
	}
	if err == nil {
		err = segNL.LinkSetUp(pl)
	}
	if err != nil {
		t.Fatalf("attaching %s to %s: %v", port, seg.Bridge, err)
	}
	eth, err := ns.Netlink.LinkByName("eth0")
	if err == nil {
		err = ns.Netlink.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(seg.IPv4.Bits(), 32)}})
	}
	if err == nil {
		err = ns.Netlink.LinkSetUp(eth)
	}
	if err != nil {
		t.Fatalf("addressing the hostile peer: %v", err)
	}
	return ns, addr
}

// hostileSpeaker is a raw BGP speaker on GoBGP's codec.
type hostileSpeaker struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialHostile connects from ns and runs the OPEN exchange (hold time 0:
// no keepalives needed).
func dialHostile(ctx context.Context, ns *nstest.NS, local netip.Addr, rr netip.AddrPort, asn uint32) (*hostileSpeaker, error) {
	var c net.Conn
	if err := ns.Do(func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: local.AsSlice()}, Timeout: 5 * time.Second}
		c, err = d.DialContext(ctx, "tcp", rr.String())
		return err
	}); err != nil {
		return nil, err
	}
	s := &hostileSpeaker{conn: c, br: bufio.NewReader(c)}
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapFourOctetASNumber(asn)}
	open, _ := bgp.NewBGPOpenMessage(uint16(asn), 0, local.String(), []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}).Serialize()
	ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	if _, err := c.Write(append(open, ka...)); err != nil {
		c.Close()
		return nil, err
	}
	for established := false; !established; {
		m, err := s.next(ctx)
		if err != nil {
			c.Close()
			return nil, err
		}
		switch b := m.Body.(type) {
		case *bgp.BGPNotification:
			c.Close()
			return nil, fmt.Errorf("notification %d/%d", b.ErrorCode, b.ErrorSubcode)
		case *bgp.BGPKeepAlive:
			established = true
		}
	}
	return s, nil
}

func (s *hostileSpeaker) announce(nh netip.Addr, routes []netip.Prefix) error {
	nlri := make([]*bgp.IPAddrPrefix, len(routes))
	for i, p := range routes {
		nlri[i] = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
	}
	b, err := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeNextHop(nh.String()),
		bgp.NewPathAttributeLocalPref(100),
	}, nlri).Serialize()
	if err != nil {
		return err
	}
	_, err = s.conn.Write(b)
	return err
}

// next reads one message (until ctx's deadline).
func (s *hostileSpeaker) next(ctx context.Context) (*bgp.BGPMessage, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Minute)
	}
	s.conn.SetReadDeadline(dl)
	head, err := s.br.Peek(19)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, int(head[16])<<8|int(head[17]))
	if _, err := io.ReadFull(s.br, buf); err != nil {
		return nil, err
	}
	return bgp.ParseBGPMessage(buf)
}

// notification reads until a NOTIFICATION.
func (s *hostileSpeaker) notification(ctx context.Context) (code, subcode uint8, err error) {
	for {
		m, err := s.next(ctx)
		if err != nil {
			return 0, 0, err
		}
		if n, ok := m.Body.(*bgp.BGPNotification); ok {
			return n.ErrorCode, n.ErrorSubcode, nil
		}
	}
}

// waitAdded waits until every prefix has been added on node (and not
// deleted since).
func (w *routeWatch) waitAdded(ctx context.Context, node string, prefixes []netip.Prefix) bool {
	for {
		w.mu.Lock()
		have := map[netip.Prefix]bool{}
		for _, e := range w.events {
			if e.Node == node {
				have[e.Dst] = !e.Deleted
			}
		}
		w.mu.Unlock()
		all := true
		for _, p := range prefixes {
			all = all && have[p.Masked()]
		}
		if all {
			return true
		}
		select {
		case <-w.poke:
		case <-ctx.Done():
			return false
		}
	}
}
