package reflector

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// rawMPUpdate encodes an UPDATE whose MP_REACH_NLRI (AFI, SAFI, IPv4 next
// hop 192.0.2.2) carries nlri as given, with ORIGIN and an empty AS_PATH.
func rawMPUpdate(afi uint16, safi uint8, nlri ...[]byte) []byte {
	mp := appendMPAttr(nil, bgp.BGP_ATTR_TYPE_MP_REACH_NLRI, 0)
	mp = binary.BigEndian.AppendUint16(mp, afi)
	mp = append(mp, safi, 4, 192, 0, 2, 2, 0)
	for _, n := range nlri {
		mp = append(mp, n...)
	}
	binary.BigEndian.PutUint16(mp[2:], uint16(len(mp)-4))
	attrs := append([]byte{0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 5, 4, 0, 0, 0, 100}, mp...)
	return rawUpdate(attrs)
}

// TestGenMalformedNLRI (RFC 7606): an EVPN, labeled or flowspec NLRI that
// frames but breaks its family's rules makes its UPDATE treat-as-withdraw
// (the route it repeats is withdrawn, the session stays); one that
// overruns its attribute hides the rest and resets that session alone
// (AFI/SAFI disable is not implemented, RFC 7606 3 (j) allows the reset);
// neither crashes.
func TestGenMalformedNLRI(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	fams, _ := ParseFamilies([]string{"l2vpn-evpn", "ipv4-labeled-unicast", "ipv4-flowspec"})
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].Families = fams
	}
	r, addr := startReflector(t, cfg)
	ctx := context.Background()
	var sp [2]*rawSpeaker
	views := make([]map[string]genRoute, 2)
	for i := range sp {
		o := speakerOpts{asn: testASN, id: fmt.Sprintf("10.0.0.%d", i+2), hold: 90, fams: []bgp.RouteFamily{bgp.RF_EVPN, bgp.RF_IPv4_MPLS, bgp.RF_FS_IPv4_UC}}
		s, err := dialSpeaker(ctx, addr, fmt.Sprintf("127.0.0.%d", i+2), o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.conn.Close()
		sp[i] = s
		views[i] = genCollect(t, s, map[string]genRoute{}, genHas("EOR l2vpn-evpn"))
	}
	good := mac2(1, "aa:bb:cc:00:00:01", "10.0.0.1", 100)
	goodB := nlriBytes(t, good)
	gkey := bgp.RF_EVPN.String() + " " + good.String()
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"evpn type 2 of MAC length 0", rawMPUpdate(bgp.AFI_L2VPN, bgp.SAFI_EVPN, goodB, append([]byte{2, 33}, make([]byte, 33)...))},
		{"labeled unicast without a label", withUnreach(rawMPUpdate(bgp.AFI_L2VPN, bgp.SAFI_EVPN, goodB), bgp.AFI_IP, bgp.SAFI_MPLS_LABEL, []byte{16, 10, 0})},
		{"flowspec of an unknown component", withUnreach(rawMPUpdate(bgp.AFI_L2VPN, bgp.SAFI_EVPN, goodB), bgp.AFI_IP, bgp.SAFI_FLOW_SPEC_UNICAST, []byte{3, 0xff, 0x81, 6})},
	} {
		sp[0].conn.Write(rawMPUpdate(bgp.AFI_L2VPN, bgp.SAFI_EVPN, goodB))
		views[1] = genCollect(t, sp[1], views[1], genHas(gkey))
		// The UPDATE repeats the good route beside the malformed NLRI:
		// treat-as-withdraw withdraws it.
		sp[0].conn.Write(c.msg)
		views[1] = genCollect(t, sp[1], views[1], genGone(gkey))
	}
	// An EVPN route whose length overruns the attribute. The session
	// ends with an UPDATE Message Error; the other stays.
	sp[0].conn.Write(rawMPUpdate(bgp.AFI_L2VPN, bgp.SAFI_EVPN, goodB, []byte{2, 200, 1, 2}))
	sp[0].conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		m, err := sp[0].next()
		if err != nil {
			t.Fatalf("reading: %v; want a NOTIFICATION", err)
		}
		if n, ok := m.Body.(*bgp.BGPNotification); ok {
			if n.ErrorCode != bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR {
				t.Errorf("notification %d/%d, want 3/x", n.ErrorCode, n.ErrorSubcode)
			}
			break
		}
	}
	for _, n := range r.Neighbors() {
		if n.Address == "127.0.0.3" && n.State != StateEstablished {
			t.Errorf("the other session is %v", n.State)
		}
	}
}

// withUnreach adds an MP_UNREACH_NLRI of afi/safi holding nlri to the
// UPDATE b.
func withUnreach(b []byte, afi uint16, safi uint8, nlri []byte) []byte {
	un := appendMPAttr(nil, bgp.BGP_ATTR_TYPE_MP_UNREACH_NLRI, 0)
	un = binary.BigEndian.AppendUint16(un, afi)
	un = append(append(un, safi), nlri...)
	binary.BigEndian.PutUint16(un[2:], uint16(len(un)-4))
	b = append(b, un...)
	al := binary.BigEndian.Uint16(b[headerLen+2:])
	binary.BigEndian.PutUint16(b[headerLen+2:], al+uint16(len(un)))
	binary.BigEndian.PutUint16(b[16:], uint16(len(b)))
	return b
}
