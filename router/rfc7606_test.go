package router_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/router"
)

// rawPeer is a hand-written BGP speaker on GoBGP's codec: it says what a
// test tells it to, byte for byte, malformed messages included.
type rawPeer struct {
	t    *testing.T
	conn net.Conn
	wmu  sync.Mutex
	msgs chan *bgp.BGPMessage // what the router sent; closed with the connection
	done chan struct{}
}

// acceptRawPeer waits for the router's connection on ln and establishes
// the session as AS as with router ID id.
func acceptRawPeer(t *testing.T, ln net.Listener, as uint32, id string) *rawPeer {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	var c net.Conn
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		c = r.c
	case <-time.After(30 * time.Second):
		t.Fatal("the router did not connect to the raw peer")
	}
	p := &rawPeer{t: t, conn: c, msgs: make(chan *bgp.BGPMessage, 64), done: make(chan struct{})}
	t.Cleanup(func() { c.Close(); <-p.done })
	go p.read()
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapFourOctetASNumber(as)}
	p.send(bgp.NewBGPOpenMessage(bgp.AS_TRANS, 9, id, []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}))
	p.expect(bgp.BGP_MSG_OPEN)
	p.send(bgp.NewBGPKeepAliveMessage())
	p.expect(bgp.BGP_MSG_KEEPALIVE)
	go p.keepalive()
	return p
}

func (p *rawPeer) read() {
	defer close(p.done)
	defer close(p.msgs)
	hdr := make([]byte, bgp.BGP_HEADER_LENGTH)
	for {
		if _, err := io.ReadFull(p.conn, hdr); err != nil {
			return
		}
		l := int(binary.BigEndian.Uint16(hdr[16:]))
		if l < bgp.BGP_HEADER_LENGTH {
			return
		}
		b := make([]byte, l)
		copy(b, hdr)
		if _, err := io.ReadFull(p.conn, b[bgp.BGP_HEADER_LENGTH:]); err != nil {
			return
		}
		m, err := bgp.ParseBGPMessage(b)
		if err != nil {
			p.t.Errorf("raw peer: the router sent a message we cannot parse: %v", err)
			return
		}
		p.msgs <- m
	}
}

func (p *rawPeer) keepalive() {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
			b, _ := bgp.NewBGPKeepAliveMessage().Serialize()
			if p.write(b) != nil {
				return
			}
		}
	}
}

func (p *rawPeer) write(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := p.conn.Write(b)
	return err
}

func (p *rawPeer) send(m *bgp.BGPMessage) {
	p.t.Helper()
	b, err := m.Serialize()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.write(b); err != nil {
		p.t.Fatal(err)
	}
}

// sendUpdate sends an UPDATE built from raw attributes (each with its
// header) and raw NLRI.
func (p *rawPeer) sendUpdate(attrs [][]byte, nlri []byte) {
	p.t.Helper()
	body := []byte{0, 0} // no withdrawn routes
	var pa []byte
	for _, a := range attrs {
		pa = append(pa, a...)
	}
	body = binary.BigEndian.AppendUint16(body, uint16(len(pa)))
	body = append(append(body, pa...), nlri...)
	b := make([]byte, 16, bgp.BGP_HEADER_LENGTH+len(body))
	for i := range b {
		b[i] = 0xff
	}
	b = binary.BigEndian.AppendUint16(b, uint16(bgp.BGP_HEADER_LENGTH+len(body)))
	b = append(b, bgp.BGP_MSG_UPDATE)
	if err := p.write(append(b, body...)); err != nil {
		p.t.Fatal(err)
	}
}

// expect waits for a message of type typ, skipping others (keepalives,
// the router's own updates).
func (p *rawPeer) expect(typ uint8) *bgp.BGPMessage {
	p.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatalf("raw peer: connection closed while waiting for message type %d", typ)
			}
			if m.Header.Type == typ {
				return m
			}
			if m.Header.Type == bgp.BGP_MSG_NOTIFICATION {
				n := m.Body.(*bgp.BGPNotification)
				p.t.Fatalf("raw peer: NOTIFICATION %d/%d while waiting for message type %d", n.ErrorCode, n.ErrorSubcode, typ)
			}
		case <-deadline:
			p.t.Fatalf("raw peer: no message of type %d", typ)
		}
	}
}

// attr encodes one path attribute: well-known transitive flags, a
// one-byte length (whatever value is given, to be malformed at will).
func attr(typ uint8, length int, value ...byte) []byte {
	return append([]byte{0x40, typ, byte(length)}, value...)
}

func nlri(prefixes ...string) []byte {
	var b []byte
	for _, s := range prefixes {
		p := netip.MustParsePrefix(s)
		a := p.Addr().As4()
		b = append(b, byte(p.Bits()))
		b = append(b, a[:(p.Bits()+7)/8]...)
	}
	return b
}

// TestRFC7606 connects a hand-written peer to n1 and sends it malformed
// UPDATEs. An ORIGIN of the wrong length is treated as a withdraw of the
// UPDATE's routes, a malformed ATOMIC_AGGREGATE is discarded (the route
// stays), both with the session up; an NLRI with a prefix length of 33
// resets the session with a NOTIFICATION (UPDATE Message Error) and every route of that peer is withdrawn. Through all
// of it, n1's process keeps running and its session with n2 stays
// Established and keeps carrying routes.
func TestRFC7606(t *testing.T) {
	f := newFabric(t)
	cfg := fastTimers()
	cfg.Spec.EBGPDefaultPolicy = api.FilterAccept // the raw peer's routes, without a filter
	f.apply(cfg, &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "raw"}, Spec: api.BGPPeerSpec{
		Node: "n1", PeerIP: "10.99.0.50", ASNumber: ptrTo(uint32(65050))}})
	n1 := f.addNode("n1", "10.99.0.1/24")
	n2 := f.addNode("n2", "10.99.0.2/24")
	rawNS := f.addHost("raw", "10.99.0.50/24")
	var ln net.Listener
	if err := rawNS.Do(func() (err error) { ln, err = net.Listen("tcp4", "10.99.0.50:179"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addBlackhole(t, n1.ns, "10.65.1.0/26")
	addBlackhole(t, n2.ns, "10.65.2.0/26")
	f.start(n1)
	f.start(n2)
	p := acceptRawPeer(t, ln, 65050, "10.99.0.50")
	f.waitStatus("n1", "n2 and the raw peer established", 30*time.Second, allEstablished(2))

	origin := attr(1, 1, 0) // IGP
	asPath := attr(2, 6, 2, 1, 0, 0, 0xfe, 0x1a)
	nextHop := attr(3, 4, 10, 99, 0, 50)
	via := fmt.Sprintf("via 10.99.0.50 proto %d", router.ProtoRouter)
	a, b, c := netip.MustParsePrefix("10.77.1.0/24"), netip.MustParsePrefix("10.77.2.0/24"), netip.MustParsePrefix("10.77.3.0/24")

	p.sendUpdate([][]byte{origin, asPath, nextHop}, nlri(a.String(), b.String()))
	waitRoute(t, n1.ns, a, via, 10*time.Second)
	waitRoute(t, n1.ns, b, via, 10*time.Second)

	// ORIGIN with length 2: treat-as-withdraw (RFC 7606 7.1) for a only.
	p.sendUpdate([][]byte{attr(1, 2, 0, 0), asPath, nextHop}, nlri(a.String()))
	waitRoute(t, n1.ns, a, "", 10*time.Second)
	// ATOMIC_AGGREGATE with length 1: attribute discard (RFC 7606 7.6).
	p.sendUpdate([][]byte{origin, asPath, nextHop, attr(6, 1, 0)}, nlri(c.String()))
	waitRoute(t, n1.ns, c, via, 10*time.Second)
	if got := routeState(n1.ns, b); got != via {
		t.Errorf("after the treat-as-withdraw, route to %s is %q, want %q", b, got, via)
	}
	select {
	case m, ok := <-p.msgs:
		if !ok || m.Header.Type == bgp.BGP_MSG_NOTIFICATION {
			t.Fatal("the session was reset for an error that RFC 7606 handles without a reset")
		}
	default:
	}
	if s := f.peerStates("n1")["10.99.0.50"]; s != api.BGPEstablished {
		t.Errorf("raw peer's session is %s after attribute errors, want Established", s)
	}

	// An NLRI of length 33: no way to tell where the next one starts, so
	// the session is reset.
	p.sendUpdate([][]byte{origin, asPath, nextHop}, []byte{33, 10, 77, 4, 0, 0})
	n := p.expect(bgp.BGP_MSG_NOTIFICATION).Body.(*bgp.BGPNotification)
	// GoBGP's codec reports a bad prefix length as Malformed Attribute
	// List (3/1), where RFC 4271 6.3 suggests Invalid Network Field (3/10).
	if n.ErrorCode != bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR {
		t.Errorf("NOTIFICATION %d/%d, want an UPDATE Message Error (%d)", n.ErrorCode, n.ErrorSubcode, bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR)
	}
	waitRoute(t, n1.ns, b, "", 10*time.Second)
	waitRoute(t, n1.ns, c, "", 10*time.Second)

	// n1 lives on, and its session with n2 still carries routes both ways.
	select {
	case err := <-n1.wait:
		t.Fatalf("n1's router exited: %v", err)
	default:
	}
	if s := f.peerStates("n1")["10.99.0.2"]; s != api.BGPEstablished {
		t.Errorf("n1's session with n2 is %s, want Established", s)
	}
	addBlackhole(t, n2.ns, "10.65.22.0/26")
	waitRoute(t, n1.ns, netip.MustParsePrefix("10.65.22.0/26"), fmt.Sprintf("via 10.99.0.2 proto %d", router.ProtoRouter), 10*time.Second)
	addBlackhole(t, n1.ns, "10.65.11.0/26")
	waitRoute(t, n2.ns, netip.MustParsePrefix("10.65.11.0/26"), fmt.Sprintf("via 10.99.0.1 proto %d", router.ProtoRouter), 10*time.Second)

	// The router comes back to the raw peer, which may behave now.
	p.conn.Close()
	p2 := acceptRawPeer(t, ln, 65050, "10.99.0.50")
	p2.sendUpdate([][]byte{origin, asPath, nextHop}, nlri(a.String()))
	waitRoute(t, n1.ns, a, via, 10*time.Second)
	if errors.Is(ln.Close(), net.ErrClosed) {
		t.Log("listener already closed")
	}
}

func ptrTo[T any](v T) *T { return &v }
