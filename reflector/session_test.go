package reflector

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

func connect(t *testing.T, addr netip.AddrPort, local string, o speakerOpts) *rawSpeaker {
	t.Helper()
	s, err := dialSpeaker(context.Background(), addr, local, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.conn.Close() })
	return s
}

func opts(id string) speakerOpts { return speakerOpts{asn: testASN, id: id, hold: 90} }

// expectNotification reads until a NOTIFICATION and checks its code.
func expectNotification(t *testing.T, s *rawSpeaker, code, subcode uint8) {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		m, err := s.next()
		if err != nil {
			t.Fatalf("waiting for notification %d/%d: %v", code, subcode, err)
		}
		if n, ok := m.Body.(*bgp.BGPNotification); ok {
			if n.ErrorCode != code || n.ErrorSubcode != subcode {
				t.Fatalf("notification %d/%d, want %d/%d", n.ErrorCode, n.ErrorSubcode, code, subcode)
			}
			return
		}
	}
}

func TestAddPathAndBestPathChange(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")
	cfg.Neighbors[3].AddPath = true
	_, addr := startReflector(t, cfg)
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	plain := connect(t, addr, "127.0.0.4", opts("10.0.0.4"))
	ap := speakerOpts{asn: testASN, id: "10.0.0.5", hold: 90, addPath: true}
	multi := connect(t, addr, "127.0.0.5", ap)
	for _, s := range []*rawSpeaker{a, b, plain} {
		collect(t, s, false, hasEORs)
	}
	collect(t, multi, true, hasEORs)

	a.send(t, ipv4Update("192.0.2.2", pfx("10.8.0.0/24"), bgp.NewPathAttributeLocalPref(100)))
	// b learns a's route; then b announces a better one (LOCAL_PREF 200).
	bview := collect(t, b, false, hasKeys("10.8.0.0/24"))
	b.send(t, ipv4Update("192.0.2.3", pfx("10.8.0.0/24"), bgp.NewPathAttributeLocalPref(200)))
	// b must now be told to forget a's route (it is the new best's source).
	got := collectInto(t, b, false, bview, func(m map[string]route) bool { return len(m) == 0 })
	if len(got) != 0 {
		t.Errorf("b still has %v", got)
	}
	// a receives b's best path.
	got = collect(t, a, false, func(m map[string]route) bool { return m["10.8.0.0/24"].NextHop == "192.0.2.3" })
	// The add-path monitor sees both paths, each with its own identifier.
	view := map[string]route{}
	got = collectInto(t, multi, true, view, func(m map[string]route) bool { return len(m) == 2 })
	ids := map[uint32]string{}
	for _, r := range got {
		ids[r.PathID] = r.NextHop
	}
	if len(ids) != 2 {
		t.Errorf("add-path routes %v: want two distinct path ids", got)
	}
	// Withdrawals: a withdraws, the add-path monitor keeps only b's path.
	a.send(t, ipv4Withdraw(pfx("10.8.0.0/24")))
	collectInto(t, multi, true, view, func(m map[string]route) bool { return len(m) == 1 })
	b.send(t, ipv4Withdraw(pfx("10.8.0.0/24")))
	collectInto(t, multi, true, view, func(m map[string]route) bool { return len(m) == 0 })
}

func TestMalformedUpdates(t *testing.T) {
	_, addr := startReflector(t, testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4"))
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	bad := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	mon := connect(t, addr, "127.0.0.4", opts("10.0.0.4"))
	for _, s := range []*rawSpeaker{a, bad, mon} {
		collect(t, s, false, hasEORs)
	}
	bad.send(t, ipv4Update("192.0.2.3", pfx("10.9.0.0/24", "10.9.1.0/24")))
	mv := collect(t, mon, false, hasKeys("10.9.0.0/24", "10.9.1.0/24"))
	// Treat-as-withdraw: an invalid ORIGIN value withdraws the UPDATE's NLRI.
	m := ipv4Update("192.0.2.3", pfx("10.9.0.0/24"))
	m.Body.(*bgp.BGPUpdate).PathAttributes[0] = bgp.NewPathAttributeOrigin(7)
	bad.send(t, m)
	collectInto(t, mon, false, mv, func(m map[string]route) bool { _, ok := m["10.9.0.0/24"]; return !ok })
	if _, ok := mv["10.9.1.0/24"]; !ok {
		t.Errorf("treat-as-withdraw removed more than its NLRI: %v", mv)
	}
	// Session reset: a withdrawn-routes length beyond the message.
	raw := appendHeader(nil, bgp.BGP_MSG_UPDATE)
	raw = append(raw, 0x10, 0x00, 0, 0)
	raw[17] = byte(len(raw))
	if _, err := bad.conn.Write(raw); err != nil {
		t.Fatal(err)
	}
	expectNotification(t, bad, bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST)
	// Its remaining route is withdrawn and the others are still served.
	collectInto(t, mon, false, mv, func(m map[string]route) bool { _, ok := m["10.9.1.0/24"]; return !ok })
	a.send(t, ipv4Update("192.0.2.2", pfx("10.10.0.0/24")))
	collect(t, mon, false, hasKeys("10.10.0.0/24"))
	// A bad header resets too.
	if _, err := a.conn.Write(make([]byte, 19)); err != nil {
		t.Fatal(err)
	}
	expectNotification(t, a, bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_CONNECTION_NOT_SYNCHRONIZED)
}

func TestOpenErrors(t *testing.T) {
	_, addr := startReflector(t, testConfig("127.0.0.2"))
	for _, tc := range []struct {
		name    string
		o       speakerOpts
		subcode uint8
	}{
		{"wrong AS", speakerOpts{asn: 65099, id: "10.0.0.2", hold: 90}, bgp.BGP_ERROR_SUB_BAD_PEER_AS},
		{"no 4-octet AS", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 90, noAS4: true}, bgp.BGP_ERROR_SUB_UNSUPPORTED_CAPABILITY},
		{"bad hold time", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 2}, bgp.BGP_ERROR_SUB_UNACCEPTABLE_HOLD_TIME},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dialSpeaker(context.Background(), addr, "127.0.0.2", tc.o)
			want := fmt.Sprintf("notification %d/%d", bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, tc.subcode)
			if err == nil || err.Error() != want {
				t.Fatalf("handshake error %v, want %s", err, want)
			}
		})
	}
}

func TestHoldTimerExpires(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a 3 s hold timer")
	}
	_, addr := startReflector(t, testConfig("127.0.0.2"))
	s := connect(t, addr, "127.0.0.2", speakerOpts{asn: testASN, id: "10.0.0.2", hold: 3})
	start := time.Now()
	expectNotification(t, s, bgp.BGP_ERROR_HOLD_TIMER_EXPIRED, 0)
	if el := time.Since(start); el < 2*time.Second {
		t.Errorf("hold timer expired after %v, want about 3 s", el)
	}
}

// TestCollision: the reflector dials the peer while the peer dials it; the
// connection initiated by the higher BGP identifier survives.
func TestCollision(t *testing.T) {
	for _, tc := range []struct {
		name       string
		peerID     string
		keepRemote bool
	}{
		{"peer id higher keeps the peer's connection", "10.255.0.9", true},
		{"peer id lower keeps ours", "10.0.0.1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.2:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			cfg := testConfig()
			cfg.Neighbors = []NeighborConfig{{Address: netip.MustParseAddr("127.0.0.2"), ASN: testASN, Client: true,
				Port: uint16(ln.Addr().(*net.TCPAddr).Port)}}
			_, addr := startReflector(t, cfg)
			out, err := ln.Accept() // the reflector's connection
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			o := speakerOpts{asn: testASN, id: tc.peerID, hold: 90}
			ours := &rawSpeaker{conn: out}
			ours.br = bufioReader(out)
			if _, err := out.Write(speakerOpen(o)); err != nil {
				t.Fatal(err)
			}
			if m, err := ours.next(); err != nil || m.Header.Type != bgp.BGP_MSG_OPEN {
				t.Fatalf("reading reflector OPEN: %v", err)
			}
			// ours is in OpenConfirm at the reflector; now the peer dials in.
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
			in, err := d.Dial("tcp", addr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if tc.keepRemote {
				if _, err := handshake(in, o); err != nil {
					t.Fatalf("remote-initiated connection: %v", err)
				}
				expectNotification(t, ours, bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION)
				return
			}
			theirs := &rawSpeaker{conn: in, br: bufioReader(in)}
			in.Write(speakerOpen(o))
			expectNotification(t, theirs, bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION)
			out.Write(keepaliveMsg)
			collect(t, ours, false, hasEORs)
		})
	}
}
