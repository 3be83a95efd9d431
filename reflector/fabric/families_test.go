package fabric

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/reflector"
)

// evpnClient connects from local with an OPEN offering IPv4 unicast and
// L2VPN EVPN, and returns the connection once Established with the
// reflector's OPEN.
func evpnClient(ctx context.Context, to netip.AddrPort, local string, asn uint32, id string) (net.Conn, *bgp.BGPOpen, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.DialContext(ctx, "tcp", to.String())
	if err != nil {
		return nil, nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fail := func(err error) (net.Conn, *bgp.BGPOpen, error) { c.Close(); return nil, nil, err }
	caps := []bgp.ParameterCapabilityInterface{
		bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapMultiProtocol(bgp.RF_EVPN), bgp.NewCapFourOctetASNumber(asn),
	}
	open, err := bgp.NewBGPOpenMessage(uint16(asn), 90, id, []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}).Serialize()
	if err != nil {
		return fail(err)
	}
	if _, err := c.Write(open); err != nil {
		return fail(err)
	}
	var theirs *bgp.BGPOpen
	for {
		m, err := readMsg(c)
		if err != nil {
			return fail(err)
		}
		switch b := m.Body.(type) {
		case *bgp.BGPNotification:
			return fail(fmt.Errorf("notification %d/%d", b.ErrorCode, b.ErrorSubcode))
		case *bgp.BGPOpen:
			theirs = b
			ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
			if _, err := c.Write(ka); err != nil {
				return fail(err)
			}
		case *bgp.BGPKeepAlive:
			if theirs != nil {
				c.SetDeadline(time.Time{})
				return c, theirs, nil
			}
		}
	}
}

// openFamilies returns the multiprotocol families an OPEN advertises.
func openFamilies(o *bgp.BGPOpen) []bgp.RouteFamily {
	var out []bgp.RouteFamily
	for _, p := range o.OptParams {
		if pc, ok := p.(*bgp.OptionParameterCapability); ok {
			for _, c := range pc.Capability {
				if mp, ok := c.(*bgp.CapMultiProtocol); ok {
					out = append(out, mp.CapValue)
				}
			}
		}
	}
	return out
}

// TestControllerFamilies: in datastore mode, a BGPPeer with families
// [ipv4-unicast, l2vpn-evpn] makes the reflector offer EVPN to the
// routers of its range and reflect an EVPN route from one to the other;
// a range without families offers IPv4 and IPv6 unicast only; a
// BGPFilter's EVPN rules apply live.
func TestControllerFamilies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testStore(t, ctx)
	evpnPeer := rangePeer("127.0.3.0/29")
	evpnPeer.Name = "evpn-routers"
	evpnPeer.Spec.Families = []string{"ipv4-unicast", "l2vpn-evpn"}
	plainPeer := rangePeer("127.0.4.0/29")
	for _, r := range []api.Resource{node("rr1", "10.0.0.1/24", map[string]string{"rr": "true"}, "10.0.0.1"), evpnPeer, plainPeer} {
		if _, err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	r := runController(t, ctx, c, Config{})
	addr := r.ListenAddrs()[0]

	a, openA, err := evpnClient(ctx, addr, "127.0.3.2", 64512, "10.3.0.2")
	if err != nil {
		t.Fatalf("EVPN client A: %v", err)
	}
	defer a.Close()
	if fs := openFamilies(openA); !slices.Equal(fs, []bgp.RouteFamily{bgp.RF_IPv4_UC, bgp.RF_EVPN}) {
		t.Errorf("reflector's OPEN to the EVPN range offers %v, want [ipv4-unicast l2vpn-evpn]", fs)
	}
	b, _, err := evpnClient(ctx, addr, "127.0.3.3", 64512, "10.3.0.3")
	if err != nil {
		t.Fatalf("EVPN client B: %v", err)
	}
	defer b.Close()
	p, openP, err := evpnClient(ctx, addr, "127.0.4.2", 64512, "10.4.0.2")
	if err != nil {
		t.Fatalf("client of the plain range: %v", err)
	}
	defer p.Close()
	if fs := openFamilies(openP); !slices.Equal(fs, []bgp.RouteFamily{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC}) {
		t.Errorf("reflector's OPEN to the plain range offers %v, want [ipv4-unicast ipv6-unicast]", fs)
	}
	// The reflector's view of the sessions.
	waitFor := func(what string, cond func(map[string]reflector.NeighborStatus) bool) map[string]reflector.NeighborStatus {
		t.Helper()
		for {
			ns := map[string]reflector.NeighborStatus{}
			for _, n := range r.Neighbors() {
				ns[n.Address] = n
			}
			if cond(ns) {
				return ns
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: not seen, neighbours %+v", what, ns)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	ns := waitFor("three established", func(ns map[string]reflector.NeighborStatus) bool {
		n := 0
		for _, s := range ns {
			if s.State == reflector.StateEstablished {
				n++
			}
		}
		return n == 3
	})
	if fs := ns["127.0.3.2"].Families; !slices.Equal(fs, []string{"ipv4-unicast", "l2vpn-evpn"}) {
		t.Errorf("session families of 127.0.3.2: %v", fs)
	}
	if fs := ns["127.0.4.2"].Families; !slices.Equal(fs, []string{"ipv4-unicast"}) {
		t.Errorf("session families of 127.0.4.2: %v", fs)
	}

	// A sends an EVPN route (type 3, inclusive multicast); B gets it.
	rd, _ := bgp.ParseRouteDistinguisher("64512:10")
	nlri := bgp.NewEVPNMulticastEthernetTagRoute(rd, 100, "10.3.0.2")
	upd, err := bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(100),
		bgp.NewPathAttributeMpReachNLRI("10.3.0.2", []bgp.AddrPrefixInterface{nlri}),
	}, nil).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Write(upd); err != nil {
		t.Fatal(err)
	}
	b.SetReadDeadline(time.Now().Add(10 * time.Second))
	for got := false; !got; {
		m, err := readMsg(b)
		if err != nil {
			t.Fatalf("client B waiting for the EVPN route: %v", err)
		}
		u, ok := m.Body.(*bgp.BGPUpdate)
		if !ok {
			continue
		}
		for _, pa := range u.PathAttributes {
			if mp, ok := pa.(*bgp.PathAttributeMpReachNLRI); ok && mp.AFI == bgp.AFI_L2VPN && mp.SAFI == bgp.SAFI_EVPN {
				if len(mp.Value) != 1 || mp.Value[0].String() != nlri.String() || mp.Nexthop.String() != "10.3.0.2" {
					t.Fatalf("B got EVPN %v via %v, want %v via 10.3.0.2", mp.Value, mp.Nexthop, nlri)
				}
				got = true
			}
		}
	}
	waitFor("the EVPN route counted", func(ns map[string]reflector.NeighborStatus) bool {
		return ns["127.0.3.2"].FamilyPrefixes["l2vpn-evpn"] == 1
	})

	// Route policy on EVPN through the datastore, live: a BGPFilter that
	// rejects type 3 routes on import, named by the range's BGPPeer, makes
	// B receive the route's withdrawal; changed to reject type 2 instead,
	// the route comes back (from the Adj-RIB-In: A sends nothing more).
	evpnUpdate := func(what string, reach bool) {
		t.Helper()
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			m, err := readMsg(b)
			if err != nil {
				t.Fatalf("client B waiting for the EVPN route's %s: %v", what, err)
			}
			u, ok := m.Body.(*bgp.BGPUpdate)
			if !ok {
				continue
			}
			for _, pa := range u.PathAttributes {
				switch mp := pa.(type) {
				case *bgp.PathAttributeMpReachNLRI:
					if reach && len(mp.Value) == 1 && mp.Value[0].String() == nlri.String() {
						return
					}
				case *bgp.PathAttributeMpUnreachNLRI:
					if !reach && len(mp.Value) == 1 && mp.Value[0].String() == nlri.String() {
						return
					}
				}
			}
		}
	}
	filter := &api.BGPFilter{TypeMeta: api.TypeMeta{Kind: api.KindBGPFilter}, ObjectMeta: api.ObjectMeta{Name: "evpn-in"},
		Spec: api.BGPFilterSpec{ImportEVPN: []api.BGPFilterRule{{EVPNRouteTypes: []int{3}, Action: api.FilterReject}}}}
	if _, err := c.Create(ctx, filter); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, api.KindBGPPeer, "", evpnPeer.Name)
	if err != nil {
		t.Fatal(err)
	}
	peer := got.(*api.BGPPeer)
	peer.Spec.Filters = []string{"evpn-in"}
	if _, err := c.Update(ctx, peer); err != nil {
		t.Fatal(err)
	}
	evpnUpdate("withdrawal", false)
	got, err = c.Get(ctx, api.KindBGPFilter, "", "evpn-in")
	if err != nil {
		t.Fatal(err)
	}
	filter = got.(*api.BGPFilter)
	filter.Spec.ImportEVPN[0].EVPNRouteTypes = []int{2}
	if _, err := c.Update(ctx, filter); err != nil {
		t.Fatal(err)
	}
	evpnUpdate("announcement again", true)
}
