package reflector

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// FuzzSessionReader feeds arbitrary bytes to the session's reader and
// UPDATE parser (framing, codec, RFC 7606 handling, conversion): it must
// return errors, never panic. The reader's last-resort recover is not in
// this path, so a panic here is a real bug.
func FuzzSessionReader(f *testing.F) {
	f.Add(keepaliveMsg)
	f.Add(crasherUpdate)
	f.Add(appendEndOfRIB(nil, famV6))
	f.Add(appendEndOfRIB(nil, famEVPN))
	for _, b := range familySeeds(f) {
		f.Add(b)
	}
	if b, err := ipv4Update("192.0.2.1", pfx("10.0.0.0/24", "10.0.1.0/25")).Serialize(); err == nil {
		f.Add(b)
	}
	rib := newRIBLoop(slog.New(slog.DiscardHandler), testASN, 1, newEngineMetrics())
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &session{
			local: localIdentity{asn: testASN, routerID: 1, clusterID: 1},
			log:   slog.New(slog.DiscardHandler),
			rib:   rib,
			neg:   negotiated{fams: allFamilies},
		}
		rfs := s.neg.rfMap()
		br := bufio.NewReader(bytes.NewReader(data))
		for {
			hdr, body, err := readMessage(br)
			if err != nil {
				return
			}
			switch hdr.Type {
			case bgp.BGP_MSG_UPDATE:
				var b ribBatch
				if _, err := s.parseUpdate(hdr, body, rfs, &b); err != nil {
					return
				}
				for _, u := range b.updates {
					if u.a != nil {
						e := exporter{asn: testASN, clusterID: 1}
						e.export(&path{src: &ribPeer{routerID: 2}, a: u.a}, roleClient, s.local.asnAddr(), nil)
						e.export(&path{src: &ribPeer{routerID: 2}, a: u.a}, roleEBGP, s.local.asnAddr(), nil)
					}
				}
			case bgp.BGP_MSG_OPEN:
				if m, err := bgp.ParseBGPBody(hdr, body); err == nil {
					if o, ok := m.Body.(*bgp.BGPOpen); ok {
						s.cfg = NeighborConfig{ASN: testASN, HoldTime: defaultHoldTime, AddPath: true, GracefulRestart: true}
						s.negotiate(o)
					}
				}
			}
		}
	})
}

func (l localIdentity) asnAddr() netip.Addr { return netip.MustParseAddr("192.0.2.254") }

// fuzzSeeds are FuzzSessionRIB's seeds (testdata/fuzz/FuzzSessionRIB
// holds them too): the crasher and attribute-rich valid UPDATEs.
func fuzzSeeds(f *testing.F) {
	f.Add(crasherUpdate)
	rich, v6, wd, rr, all := genSeedMsgs(f)
	for _, b := range [][]byte{rich, v6, wd, rr} {
		f.Add(b)
	}
	f.Add(append(all, crasherUpdate...))
	for _, b := range familySeeds(f) {
		f.Add(b)
	}
}

// familySeeds are UPDATEs of the generic families (famgen.go): EVPN
// types 1 to 5, VPNv4/v6, labeled unicast, flowspec and RTC routes, their
// withdrawals, and NLRI that RFC 7606 handling must catch (treat-as-
// withdraw, or a reset for what the codec refuses).
func familySeeds(tb testing.TB) [][]byte {
	var nlri []bgp.AddrPrefixInterface
	var rfs []bgp.RouteFamily
	for _, c := range genCases() {
		nlri = append(nlri, c.nlri)
		rfs = append(rfs, c.f.routeFamily())
	}
	var out [][]byte
	var all []byte
	for i, p := range nlri {
		nh := "192.0.2.1"
		if rfs[i] == bgp.RF_IPv6_VPN || rfs[i] == bgp.RF_IPv6_MPLS {
			nh = "2001:db8::1"
		}
		for _, m := range []*bgp.BGPMessage{
			mpUpdate(nh, []bgp.AddrPrefixInterface{p}, rtAttr(1)),
			mpWithdraw([]bgp.AddrPrefixInterface{p}),
		} {
			b, err := m.Serialize()
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, b)
			all = append(all, b...)
		}
	}
	good := mac2(1, "aa:bb:cc:00:00:01", "10.0.0.1", 100)
	gb, _ := good.Serialize()
	out = append(out, all,
		rawMPUpdate(bgp.AFI_L2VPN, bgp.SAFI_EVPN, gb, append([]byte{2, 33}, make([]byte, 33)...)),
		withUnreach(rawMPUpdate(bgp.AFI_L2VPN, bgp.SAFI_EVPN, gb), bgp.AFI_IP, bgp.SAFI_FLOW_SPEC_UNICAST, []byte{3, 0xff, 0x81, 6}),
		rawMPUpdate(bgp.AFI_IP, bgp.SAFI_MPLS_VPN, []byte{64, 0, 0, 1, 0, 0, 0, 0, 0}),
		rawMPUpdate(bgp.AFI_L2VPN, bgp.SAFI_EVPN, []byte{9, 2, 1, 2}),
		rawMPUpdate(bgp.AFI_IP, bgp.SAFI_ROUTE_TARGET_CONSTRAINTS, []byte{8, 1}))
	return out
}

// genSeedMsgs encodes an attribute-rich IPv4 UPDATE, an IPv6 one, a
// withdrawal, a ROUTE-REFRESH, and all four in a row.
func genSeedMsgs(tb testing.TB) (rich, v6, wd, rr, all []byte) {
	transitive := bgp.BGPAttrFlag(bgp.BGP_ATTR_FLAG_OPTIONAL | bgp.BGP_ATTR_FLAG_TRANSITIVE)
	msgs := []*bgp.BGPMessage{
		ipv4Update("192.0.2.1", pfx("10.0.0.0/24", "10.0.1.0/25"),
			bgp.NewPathAttributeMultiExitDisc(50),
			bgp.NewPathAttributeAtomicAggregate(),
			bgp.NewPathAttributeAggregator(uint32(65001), "192.0.2.9"),
			bgp.NewPathAttributeCommunities([]uint32{65000<<16 | 1, 0xffffff01}),
			bgp.NewPathAttributeExtendedCommunities([]bgp.ExtendedCommunityInterface{
				bgp.NewTwoOctetAsSpecificExtended(bgp.EC_SUBTYPE_ROUTE_TARGET, 65000, 7, true)}),
			bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{bgp.NewLargeCommunity(65000, 1, 2)}),
			bgp.NewPathAttributeOriginatorId("10.9.9.9"),
			bgp.NewPathAttributeClusterList([]string{"10.8.8.8"}),
			bgp.NewPathAttributeUnknown(transitive, 99, []byte{1, 2, 3}),
			bgp.NewPathAttributeUnknown(bgp.BGP_ATTR_FLAG_OPTIONAL, 98, []byte{4}),
		),
		bgp.NewBGPUpdateMessage(nil, []bgp.PathAttributeInterface{
			bgp.NewPathAttributeOrigin(1),
			bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65001, 65002})}),
			bgp.NewPathAttributeMpReachNLRI("2001:db8::1", []bgp.AddrPrefixInterface{bgp.NewIPv6AddrPrefix(48, "2001:db8:1::")}),
		}, nil),
		ipv4Withdraw(pfx("10.0.0.0/24")),
		bgp.NewBGPRouteRefreshMessage(bgp.AFI_IP, 0, bgp.SAFI_UNICAST),
	}
	var out [4][]byte
	for i, m := range msgs {
		b, err := m.Serialize()
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
		all = append(all, b...)
	}
	return out[0], out[1], out[2], out[3], all
}

// FuzzSessionRIB drives messages through an established iBGP client's and
// an eBGP peer's reader (framing, the codec and its guards, RFC 7606
// handling, conversion), the RIB (update, best path, route refresh,
// peer-down) and the update groups, as the session and the RIB loop do,
// messages alternating between the two sources. It checks that nothing
// panics, that every UPDATE the reflector sends (to an iBGP client, an
// eBGP peer and the sources themselves) decodes, and that once both
// sources are down the RIB holds no path and no attribute set.
func FuzzSessionRIB(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rl := newRIBLoop(slog.New(slog.DiscardHandler), testASN, 1, newEngineMetrics())
		if err := rl.setPolicy(PolicyConfig{EBGPDefaultAccept: true}); err != nil {
			t.Fatal(err)
		}
		both := allFamilies
		up := func(addr string, id uint32, asn uint32, client bool, maxPrefixes int) (*member, *recConn) {
			c := &recConn{}
			m := rl.peerUp(sessionInfo{addr: netip.MustParseAddr(addr), routerID: id, asn: asn, ebgp: asn != testASN,
				client: client, fams: both, localAddr: netip.MustParseAddr("192.0.2.254"), maxPrefixes: maxPrefixes,
				stats: &peerStats{}, conn: c})
			return m, c
		}
		ibgpM, ibgpC := up("127.0.0.2", 2, testASN, true, 0)
		ebgpM, ebgpC := up("127.0.0.3", 3, 65100, false, 20) // over 20 prefixes: max-prefix ends it
		_, monI := up("127.0.0.4", 4, testASN, true, 0)
		_, monE := up("127.0.0.5", 5, 65200, false, 0)
		sessions := []*session{
			{local: localIdentity{asn: testASN, routerID: 1, clusterID: 1}, log: slog.New(slog.DiscardHandler), rib: rl,
				neg: negotiated{fams: both}},
			{local: localIdentity{asn: testASN, routerID: 1, clusterID: 1}, log: slog.New(slog.DiscardHandler), rib: rl,
				neg: negotiated{fams: both}, ebgp: true},
		}
		members := []*member{ibgpM, ebgpM}
		br := bufio.NewReader(bytes.NewReader(data))
		for i := 0; ; i++ {
			hdr, body, err := readMessage(br)
			if err != nil {
				break
			}
			s, m := sessions[i%2], members[i%2]
			switch hdr.Type {
			case bgp.BGP_MSG_UPDATE:
				var b ribBatch
				if _, err := s.parseUpdate(hdr, body, s.neg.rfMap(), &b); err != nil {
					rl.peerDown(m, false) // the session resets
					continue
				}
				rl.update(m, &b)
			case bgp.BGP_MSG_ROUTE_REFRESH:
				if len(body) == 4 {
					if f, ok := familyOf(bgp.AfiSafiToRouteFamily(binary.BigEndian.Uint16(body), body[3])); ok {
						rl.refresh(m, f)
					}
				}
			}
			rl.flush()
		}
		for _, c := range []*recConn{ibgpC, ebgpC, monI, monE} {
			checkDecodes(t, c.b)
		}
		rl.peerDown(ibgpM, false)
		rl.peerDown(ebgpM, false)
		st := rl.stats()
		for f, n := range st.FamilyPrefixes {
			if n != 0 {
				t.Fatalf("%d %s prefixes after both sources went down", n, f)
			}
		}
		if st.Paths != 0 || st.AttrSets != 0 || st.Prefixes != [2]int{} {
			t.Fatalf("RIB after both sources went down: %+v", st)
		}
	})
}

// checkDecodes fails unless b is a sequence of messages the codec decodes
// (add-path is never negotiated here).
func checkDecodes(t *testing.T, b []byte) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < headerLen {
			t.Fatalf("trailing %d bytes", len(b))
		}
		n := int(binary.BigEndian.Uint16(b[16:18]))
		if n < headerLen || n > len(b) || n > maxMsgLen {
			t.Fatalf("bad message length %d", n)
		}
		if _, err := bgp.ParseBGPMessage(b[:n]); err != nil {
			t.Fatalf("the reflector sent an UPDATE the codec refuses: %v\n%x", err, b[:n])
		}
		b = b[n:]
	}
}

// FuzzCodecGuard checks that checkMPAttrs knows every way an UPDATE can
// make GoBGP's codec panic: a body it lets through decodes and validates
// without a panic (parseBody and validateUpdate would catch one, but each
// costs the session a generic error instead of the right NOTIFICATION).
func FuzzCodecGuard(f *testing.F) {
	f.Add(crasherUpdate[headerLen:])
	rich, v6, wd, _, _ := genSeedMsgs(f)
	for _, b := range [][]byte{rich, v6, wd} {
		f.Add(b[headerLen:])
	}
	rfs := (&negotiated{fams: unicastFamilies}).rfMap()
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > maxMsgLen-headerLen || checkMPAttrs(body) != nil {
			return
		}
		hdr := &bgp.BGPHeader{Len: uint16(headerLen + len(body)), Type: bgp.BGP_MSG_UPDATE}
		m, err := parseBody(hdr, body)
		if errors.As(err, new(errCodecPanic)) {
			t.Fatalf("the codec panicked on an UPDATE the guard let through: %v", err)
		}
		if err != nil {
			return
		}
		if u, ok := m.Body.(*bgp.BGPUpdate); ok {
			for _, ebgp := range []bool{false, true} {
				if _, err := validateUpdate(u, rfs, ebgp); errors.As(err, new(errCodecPanic)) {
					t.Fatalf("validation panicked on an UPDATE the guard let through: %v", err)
				}
			}
		}
	})
}
