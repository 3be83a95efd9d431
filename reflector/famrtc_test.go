package reflector

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// TestRouteTargetConstraint (RFC 4684): a client that negotiated RTC gets
// only the VPN routes whose route targets it advertised, and our default
// membership route while a client without RTC is up; a new membership brings the routes it now
// matches, a withdrawn one takes its routes back; a client that did not
// negotiate RTC gets every VPN route.
func TestRouteTargetConstraint(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4")
	fams, err := ParseFamilies([]string{"ipv4-vpn", "rtc"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	_, addr := startReflector(t, cfg)
	ctx := context.Background()
	var sp [3]*rawSpeaker
	views := make([]map[string]genRoute, 3)
	for i := range sp {
		o := speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90, fams: []bgp.RouteFamily{bgp.RF_IPv4_VPN, bgp.RF_RTC_UC}}
		if i == 2 {
			o.fams = []bgp.RouteFamily{bgp.RF_IPv4_VPN} // no RTC
		}
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.0.%d", i+2), o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.conn.Close()
		sp[i] = s
		want := []string{"EOR l3vpn-ipv4-unicast"}
		if i < 2 {
			want = append(want, "EOR rtc")
		}
		views[i] = genCollect(t, s, map[string]genRoute{}, genHas(want...))
	}
	// The client without RTC wants every VPN route: the RTC clients get
	// our default membership now.
	for i := range 2 {
		views[i] = genCollect(t, sp[i], views[i], genHas("rtc default"))
	}
	member := func(n uint32) *bgp.RouteTargetMembershipNLRI { return bgp.NewRouteTargetMembershipNLRI(testASN, rt(n)) }
	vpn := func(p string, label uint32) *bgp.LabeledVPNIPAddrPrefix {
		return bgp.NewLabeledVPNIPAddrPrefix(24, p, *bgp.NewMPLSLabelStack(label), rd(1))
	}
	key := func(p bgp.AddrPrefixInterface) string { return bgp.RF_IPv4_VPN.String() + " " + p.String() }
	sp[1].send(t, mpUpdate("192.0.2.3", []bgp.AddrPrefixInterface{member(1)}))
	// The other RTC client sees the membership reflected: it is applied.
	views[0] = genCollect(t, sp[0], views[0], genHas("rtc "+member(1).String()))
	a, b, c := vpn("10.1.0.0", 100), vpn("10.2.0.0", 200), vpn("10.3.0.0", 300)
	sp[0].send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{a}, rtAttr(1)),
		mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{b}, rtAttr(2)))
	views[2] = genCollect(t, sp[2], views[2], genHas(key(a), key(b)))
	// A probe with route target 1, sent after b: b would have come first.
	sp[0].send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{c}, rtAttr(3, 1)))
	views[1] = genCollect(t, sp[1], views[1], genHas(key(a), key(c)))
	if _, ok := views[1][key(b)]; ok {
		t.Errorf("route target 2 reached a client that is a member of 1 only")
	}
	// Membership of 2 brings b; withdrawing 1 takes a and c back.
	sp[1].send(t, mpUpdate("192.0.2.3", []bgp.AddrPrefixInterface{member(2)}))
	views[1] = genCollect(t, sp[1], views[1], genHas(key(b)))
	sp[1].send(t, mpWithdraw([]bgp.AddrPrefixInterface{member(1)}))
	views[1] = genCollect(t, sp[1], views[1], func(m map[string]genRoute) bool {
		_, okA := m[key(a)]
		_, okC := m[key(c)]
		return !okA && !okC
	})
	if _, ok := views[1][key(b)]; !ok {
		t.Errorf("route target 2 withdrawn with membership 1")
	}
	// When the last client without RTC goes, so does the default.
	sp[2].conn.Close()
	genCollect(t, sp[0], views[0], genGone("rtc default"))
}

// TestGracefulRestartEVPN: graceful restart works per family as for
// unicast: the reflector's OPEN lists EVPN in its graceful-restart
// capability, a restarting client's EVPN routes stay (stale) while it is
// away, and those it does not announce again go at its EVPN End-of-RIB.
func TestGracefulRestartEVPN(t *testing.T) {
	cfg := grConfig("127.0.0.2", "127.0.0.3", "127.0.0.4")
	fams, _ := ParseFamilies([]string{"l2vpn-evpn"})
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	r, addr := startReflector(t, cfg)
	o := func(id string) speakerOpts {
		return speakerOpts{asn: testASN, id: id, hold: 90, gr: true, fams: []bgp.RouteFamily{bgp.RF_EVPN}}
	}
	a := connect(t, addr, "127.0.0.2", o("10.0.0.2"))
	mon := connect(t, addr, "127.0.0.3", o("10.0.0.3"))
	prober := connect(t, addr, "127.0.0.4", o("10.0.0.4"))
	views := make([]map[string]genRoute, 3)
	for i, s := range []*rawSpeaker{a, mon, prober} {
		views[i] = genCollect(t, s, map[string]genRoute{}, genHas("EOR l2vpn-evpn"))
	}
	grFams := map[bgp.RouteFamily]bool{}
	for _, c := range a.open.OptParams[0].(*bgp.OptionParameterCapability).Capability {
		if gr, ok := c.(*bgp.CapGracefulRestart); ok {
			for _, tp := range gr.Tuples {
				grFams[bgp.AfiSafiToRouteFamily(tp.AFI, tp.SAFI)] = true
			}
		}
	}
	if !grFams[bgp.RF_EVPN] || grFams[bgp.RF_IPv4_UC] {
		t.Errorf("graceful-restart families in the reflector's OPEN: %v, want l2vpn-evpn alone", grFams)
	}
	x, y := mac2(1, "aa:bb:cc:00:00:01", "", 100), mac2(1, "aa:bb:cc:00:00:02", "", 100)
	key := func(p bgp.AddrPrefixInterface) string { return bgp.RF_EVPN.String() + " " + p.String() }
	a.send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{x, y}))
	views[1] = genCollect(t, mon, views[1], genHas(key(x), key(y)))

	a.conn.Close() // no NOTIFICATION: a restart
	waitState(t, r, "127.0.0.2", StateEstablished, true)
	z := mac2(4, "aa:bb:cc:00:00:04", "", 100)
	prober.send(t, mpUpdate("192.0.2.4", []bgp.AddrPrefixInterface{z}))
	views[1] = genCollect(t, mon, views[1], genHas(key(z)))
	if _, ok := views[1][key(y)]; !ok {
		t.Fatalf("EVPN routes of the restarting client withdrawn while it is away")
	}
	a2 := connect(t, addr, "127.0.0.2", o("10.0.0.2"))
	genCollect(t, a2, map[string]genRoute{}, genHas("EOR l2vpn-evpn"))
	a2.send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{x}), bgp.NewEndOfRib(bgp.RF_EVPN))
	views[1] = genCollect(t, mon, views[1], genGone(key(y)))
	if _, ok := views[1][key(x)]; !ok {
		t.Errorf("the route announced again went at End-of-RIB")
	}
}

// TestAddPathEVPN: with add-path, a client that asked for it receives
// both clients' paths of one EVPN route, each with its own path
// identifier and next hop; without add-path only the best.
func TestAddPathEVPN(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4")
	fams, _ := ParseFamilies([]string{"l2vpn-evpn"})
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
		cfg.Neighbors[i].AddPath = true
	}
	_, addr := startReflector(t, cfg)
	o := speakerOpts{asn: testASN, hold: 90, fams: []bgp.RouteFamily{bgp.RF_EVPN}}
	a, b := o, o
	a.id, b.id = "10.0.0.2", "10.0.0.3"
	mo := o
	mo.id, mo.addPath = "10.0.0.4", true
	sa := connect(t, addr, "127.0.0.2", a)
	sb := connect(t, addr, "127.0.0.3", b)
	mon := connect(t, addr, "127.0.0.4", mo)
	route := mac2(1, "aa:bb:cc:00:00:01", "10.0.0.1", 100)
	sa.send(t, mpUpdate("192.0.2.2", []bgp.AddrPrefixInterface{route}))
	sb.send(t, mpUpdate("192.0.2.3", []bgp.AddrPrefixInterface{route}))
	opt := &bgp.MarshallingOption{AddPath: map[bgp.RouteFamily]bgp.BGPAddPathMode{bgp.RF_EVPN: bgp.BGP_ADD_PATH_RECEIVE}}
	paths := map[uint32]string{} // path identifier: next hop
	mon.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(paths) < 2 {
		m, err := mon.next(opt)
		if err != nil {
			t.Fatalf("reading: %v (have %v)", err, paths)
		}
		u, ok := m.Body.(*bgp.BGPUpdate)
		if !ok {
			continue
		}
		for _, pa := range u.PathAttributes {
			if r, ok := pa.(*bgp.PathAttributeMpReachNLRI); ok {
				for _, p := range r.Value {
					if p.String() == route.String() {
						paths[p.PathIdentifier()] = r.Nexthop.String()
					}
				}
			}
		}
	}
	var nhs []string
	for id, nh := range paths {
		if id == 0 {
			t.Errorf("a path without an identifier")
		}
		nhs = append(nhs, nh)
	}
	slices.Sort(nhs)
	if !slices.Equal(nhs, []string{"192.0.2.2", "192.0.2.3"}) {
		t.Errorf("next hops of the paths: %v", nhs)
	}
}
