package reflector

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// crasherUpdate is an UPDATE whose only attribute is an MP_REACH_NLRI of
// three bytes (AFI 1, SAFI 1, nothing else): GoBGP's codec indexes past
// its end.
var crasherUpdate = mustHex(strings.Repeat("ff", 16) + "0024" + "02" + "0000" + "000d" + "400101" + "00" + "400200" + "800e03" + "000101")

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// manyPrefixes returns n distinct /24s under base (a /8 or /16).
func manyPrefixes(base string, n int) []netip.Prefix {
	b := netip.MustParseAddr(base).As4()
	out := make([]netip.Prefix, n)
	for i := range n {
		a := b
		a[1] += byte(i >> 8)
		a[2] = byte(i)
		out[i] = netip.PrefixFrom(netip.AddrFrom4(a), 24)
	}
	return out
}

// TestCrasherUpdateRunsPeerDown: the UPDATE that panics GoBGP's codec
// ends only its session, with an UPDATE Message Error, and the session's
// routes are withdrawn from every other client.
func TestCrasherUpdateRunsPeerDown(t *testing.T) {
	_, addr := startReflector(t, testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4"))
	bad := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	mon1 := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	mon2 := connect(t, addr, "127.0.0.4", opts("10.0.0.4"))
	for _, s := range []*rawSpeaker{bad, mon1, mon2} {
		collect(t, s, false, hasEORs)
	}
	keys := pfx("10.20.0.0/24", "10.20.1.0/24")
	bad.send(t, ipv4Update("192.0.2.2", keys))
	v1 := collect(t, mon1, false, hasKeys("10.20.0.0/24", "10.20.1.0/24"))
	v2 := collect(t, mon2, false, hasKeys("10.20.0.0/24", "10.20.1.0/24"))
	if _, err := bad.conn.Write(crasherUpdate); err != nil {
		t.Fatal(err)
	}
	expectNotification(t, bad, bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_OPTIONAL_ATTRIBUTE_ERROR)
	gone := func(m map[string]route) bool {
		_, a := m["10.20.0.0/24"]
		_, b := m["10.20.1.0/24"]
		return !a && !b
	}
	collectInto(t, mon1, false, v1, gone)
	collectInto(t, mon2, false, v2, gone)
}

// TestMaxPrefixNoLeak: a peer over its limit in one UPDATE is closed
// before a single route of that UPDATE reaches another client.
func TestMaxPrefixNoLeak(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3", "127.0.0.4")
	cfg.Neighbors[0].MaxPrefixes = 5
	_, addr := startReflector(t, cfg)
	bad := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	mon := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	probe := connect(t, addr, "127.0.0.4", opts("10.0.0.4"))
	for _, s := range []*rawSpeaker{bad, mon, probe} {
		collect(t, s, false, hasEORs)
	}
	bad.send(t, ipv4Update("192.0.2.2", manyPrefixes("10.30.0.0", 50)))
	expectNotification(t, bad, bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED)
	// A probe from another client: everything queued to mon before it
	// has arrived once the probe has.
	probe.send(t, ipv4Update("192.0.2.4", pfx("10.31.0.0/24")))
	var leaked []string
	view := map[string]route{}
	mon.conn.SetReadDeadline(deadline())
	for {
		u, err := mon.nextUpdate(false)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		for _, n := range u.NLRI {
			if n.String() != "10.31.0.0/24" {
				leaked = append(leaked, n.String())
			}
		}
		applyUpdate(view, u)
		if _, ok := view["10.31.0.0/24"]; ok {
			break
		}
	}
	if len(leaked) > 0 {
		t.Errorf("%d routes of the over-limit UPDATE were reflected: %v", len(leaked), leaked)
	}
}

func deadline() time.Time { return time.Now().Add(10 * time.Second) }

// TestPanicInSessionRunsPeerDown: whatever panics in a session's reader
// (here a test hook, standing for a codec bug the guards do not know),
// the session ends with a Cease and its routes are withdrawn.
func TestPanicInSessionRunsPeerDown(t *testing.T) {
	testHookMessage = func(hdr *bgp.BGPHeader, body []byte) {
		if hdr.Type == bgp.BGP_MSG_UPDATE && bytes.Contains(body, []byte{10, 21, 9}) {
			panic("test panic")
		}
	}
	t.Cleanup(func() { testHookMessage = nil })
	_, addr := startReflector(t, testConfig("127.0.0.2", "127.0.0.3"))
	bad := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	mon := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	for _, s := range []*rawSpeaker{bad, mon} {
		collect(t, s, false, hasEORs)
	}
	bad.send(t, ipv4Update("192.0.2.2", pfx("10.21.0.0/24")))
	v := collect(t, mon, false, hasKeys("10.21.0.0/24"))
	bad.send(t, ipv4Update("192.0.2.2", pfx("10.21.9.0/24")))
	expectNotification(t, bad, bgp.BGP_ERROR_CEASE, 0)
	collectInto(t, mon, false, v, func(m map[string]route) bool { _, ok := m["10.21.0.0/24"]; return !ok })
}

// TestUnrecognisedAttributes: RFC 4271 5. An unrecognised optional
// transitive attribute is passed on with the Partial bit set; an
// unrecognised optional non-transitive one (an unknown type, and AIGP,
// which the codec decodes but the reflector does not implement) is not
// passed on. Recognised ones pass unchanged, to iBGP and eBGP peers.
func TestUnrecognisedAttributes(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.Neighbors = append(cfg.Neighbors, NeighborConfig{Address: netip.MustParseAddr("127.0.0.4"), ASN: 65100, Passive: true})
	cfg.Policy.EBGPDefaultAccept = true // eBGP without filters (RFC 8212 would send nothing)
	_, addr := startReflector(t, cfg)
	src := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	ibgp := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	ebgp := connect(t, addr, "127.0.0.4", speakerOpts{asn: 65100, id: "10.0.0.4", hold: 90})
	for _, s := range []*rawSpeaker{src, ibgp, ebgp} {
		collect(t, s, false, hasEORs)
	}
	transitive := bgp.BGPAttrFlag(bgp.BGP_ATTR_FLAG_OPTIONAL | bgp.BGP_ATTR_FLAG_TRANSITIVE)
	src.send(t, ipv4Update("192.0.2.2", pfx("10.40.0.0/24"),
		bgp.NewPathAttributeCommunities([]uint32{65000<<16 | 1}),
		bgp.NewPathAttributeUnknown(transitive, 99, []byte{1, 2, 3}),
		bgp.NewPathAttributeUnknown(bgp.BGP_ATTR_FLAG_OPTIONAL, 98, []byte{4, 5}),
		bgp.NewPathAttributeAigp([]bgp.AigpTLVInterface{bgp.NewAigpTLVIgpMetric(7)}),
	))
	for _, s := range []*rawSpeaker{ibgp, ebgp} {
		s.conn.SetReadDeadline(deadline())
		u, err := s.nextUpdate(false)
		if err != nil {
			t.Fatal(err)
		}
		got := map[bgp.BGPAttrType]bgp.BGPAttrFlag{}
		for _, a := range u.PathAttributes {
			got[a.GetType()] = a.GetFlags() &^ bgp.BGP_ATTR_FLAG_EXTENDED_LENGTH
		}
		if f, ok := got[99]; !ok || f != transitive|bgp.BGP_ATTR_FLAG_PARTIAL {
			t.Errorf("unrecognised optional transitive attribute: flags %v (present %v), want %v", f, ok, transitive|bgp.BGP_ATTR_FLAG_PARTIAL)
		}
		for _, typ := range []bgp.BGPAttrType{98, bgp.BGP_ATTR_TYPE_AIGP} {
			if _, ok := got[typ]; ok {
				t.Errorf("unrecognised optional non-transitive attribute %v passed on", typ)
			}
		}
		if f := got[bgp.BGP_ATTR_TYPE_COMMUNITIES]; f != transitive {
			t.Errorf("COMMUNITIES flags %v, want %v (unchanged)", f, transitive)
		}
	}
}

// TestMessageLengthErrors: a KEEPALIVE with a body is a Message Header
// Error, Bad Message Length, with the length as data (RFC 4271 6.1); a
// ROUTE-REFRESH whose body is not 4 bytes is a ROUTE-REFRESH Message Error,
// Invalid Message Length, with the message as data (RFC 7313 5).
func TestMessageLengthErrors(t *testing.T) {
	for _, tc := range []struct {
		name          string
		msg           []byte
		code, subcode uint8
		data          []byte
	}{
		{"keepalive with body", append(appendHeader(nil, bgp.BGP_MSG_KEEPALIVE), 0), bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH, nil},
		{"short route-refresh", append(appendHeader(nil, bgp.BGP_MSG_ROUTE_REFRESH), 0, 1, 0), bgp.BGP_ERROR_ROUTE_REFRESH_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_INVALID_MESSAGE_LENGTH, nil},
		{"long route-refresh", append(appendHeader(nil, bgp.BGP_MSG_ROUTE_REFRESH), 0, 1, 0, 1, 9), bgp.BGP_ERROR_ROUTE_REFRESH_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_INVALID_MESSAGE_LENGTH, nil},
		{"short update", append(appendHeader(nil, bgp.BGP_MSG_UPDATE), 0, 0), bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, addr := startReflector(t, testConfig("127.0.0.2"))
			s := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
			collect(t, s, false, hasEORs)
			msg := tc.msg
			binary.BigEndian.PutUint16(msg[16:], uint16(len(msg)))
			if _, err := s.conn.Write(msg); err != nil {
				t.Fatal(err)
			}
			want := tc.data
			if tc.code == bgp.BGP_ERROR_MESSAGE_HEADER_ERROR {
				want = msg[16:18]
			} else {
				want = msg
			}
			s.conn.SetReadDeadline(deadline())
			for {
				m, err := s.next()
				if err != nil {
					t.Fatalf("waiting for the NOTIFICATION: %v", err)
				}
				if n, ok := m.Body.(*bgp.BGPNotification); ok {
					if n.ErrorCode != tc.code || n.ErrorSubcode != tc.subcode || !bytes.Equal(n.Data, want) {
						t.Fatalf("notification %d/%d data %x, want %d/%d data %x", n.ErrorCode, n.ErrorSubcode, n.Data, tc.code, tc.subcode, want)
					}
					return
				}
			}
		})
	}
}

// read reads the next message.
func (s *rawSpeaker) read(t *testing.T) *bgp.BGPMessage {
	t.Helper()
	s.conn.SetReadDeadline(deadline())
	m, err := s.next()
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return m
}

func wantNotification(t *testing.T, m *bgp.BGPMessage, code, subcode uint8) {
	t.Helper()
	n, ok := m.Body.(*bgp.BGPNotification)
	if !ok {
		t.Fatalf("got %T, want NOTIFICATION %d/%d", m.Body, code, subcode)
	}
	if n.ErrorCode != code || n.ErrorSubcode != subcode {
		t.Fatalf("notification %d/%d, want %d/%d", n.ErrorCode, n.ErrorSubcode, code, subcode)
	}
}

// dialFrom connects without sending anything.
func dialFrom(t *testing.T, addr netip.AddrPort, local string) *rawSpeaker {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawSpeaker{conn: c, br: bufioReader(c)}
}

// TestHoldDownAfterFault: a neighbour whose session ended by its fault
// (here the crasher) has its connections refused with a Cease, Connection
// Rejected, until its hold-down ends; then it is served again.
func TestHoldDownAfterFault(t *testing.T) {
	cfg := testConfig("127.0.0.2")
	// Long enough for the refused dials below on a loaded machine.
	cfg.idleHold = 5 * time.Second
	r, addr := startReflector(t, cfg)
	bad := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	collect(t, bad, false, hasEORs)
	if _, err := bad.conn.Write(crasherUpdate); err != nil {
		t.Fatal(err)
	}
	expectNotification(t, bad, bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_OPTIONAL_ATTRIBUTE_ERROR)
	// The hold-down starts when the manager has seen the session end.
	waitChange(t, r, func() bool { return testutil.ToFloat64(r.met.holdDowns) == 1 })
	held := time.NewTimer(cfg.idleHold)
	for range 2 {
		c := dialFrom(t, addr, "127.0.0.2")
		wantNotification(t, c.read(t), bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_REJECTED)
	}
	if got := testutil.ToFloat64(r.met.rejected.WithLabelValues(rejectIdleHold)); got != 2 {
		t.Errorf("connections_rejected_total{reason=idle-hold} = %v, want 2", got)
	}
	<-held.C // the hold-down, started before the timer, has ended
	s := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	collect(t, s, false, hasEORs)
}

// TestOnePendingConnection: of several connections from one neighbour
// that send no OPEN, only the newest is kept; the older ones get a Cease,
// Connection Rejected.
func TestOnePendingConnection(t *testing.T) {
	r, addr := startReflector(t, testConfig("127.0.0.2"))
	var conns []*rawSpeaker
	for range 4 {
		c := dialFrom(t, addr, "127.0.0.2")
		if m := c.read(t); m.Header.Type != bgp.BGP_MSG_OPEN {
			t.Fatalf("got %T, want the reflector's OPEN", m.Body)
		}
		conns = append(conns, c)
	}
	for _, c := range conns[:3] {
		wantNotification(t, c.read(t), bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_REJECTED)
	}
	last := conns[3]
	if _, err := last.conn.Write(speakerOpen(opts("10.0.0.2"))); err != nil {
		t.Fatal(err)
	}
	if _, err := last.conn.Write(keepaliveMsg); err != nil {
		t.Fatal(err)
	}
	if m := last.read(t); m.Header.Type != bgp.BGP_MSG_KEEPALIVE {
		t.Fatalf("got %T, want KEEPALIVE", m.Body)
	}
	if got := testutil.ToFloat64(r.met.rejected.WithLabelValues(rejectReplaced)); got != 3 {
		t.Errorf("connections_rejected_total{reason=replaced} = %v, want 3", got)
	}
}

// waitChange waits, on the reflector's Changes signal, until cond holds.
func waitChange(t *testing.T, r *Reflector, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-r.Changes():
		case <-timeout:
			t.Fatal("timed out waiting for a neighbour's change")
		}
	}
}

// TestHoldDownDoubles: each further end by the peer's fault doubles the
// hold-down up to idleHoldMax; an end that was not its fault resets it.
func TestHoldDownDoubles(t *testing.T) {
	p := &peer{env: &peerEnv{idleHold: 30 * time.Second, met: newEngineMetrics()}, log: slog.New(slog.DiscardHandler)}
	pr := &peerRun{holdNext: p.env.idleHold}
	fault := newNotify(bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_MALFORMED_ATTRIBUTE_LIST, "")
	var got []time.Duration
	for range 6 {
		before := time.Now()
		if !p.holdDown(pr, &session{}, fault) {
			t.Fatal("an UPDATE error did not hold the neighbour down")
		}
		got = append(got, pr.holdUntil.Sub(before).Round(10*time.Second))
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("hold-downs (-want +got):\n%s", d)
	}
	if p.holdDown(pr, &session{}, newNotify(bgp.BGP_ERROR_HOLD_TIMER_EXPIRED, 0, "")) {
		t.Error("a hold timer expiry held the neighbour down")
	}
	if pr.holdNext != p.env.idleHold {
		t.Errorf("after a clean end the next hold-down is %v, want %v", pr.holdNext, p.env.idleHold)
	}
	if got := testutil.ToFloat64(p.env.met.holdDowns); got != 6 {
		t.Errorf("peer_hold_downs_total = %v, want 6", got)
	}
}

// TestUnknownNeighbourRefused: a connection from an address that is no
// neighbour is closed and counted.
func TestUnknownNeighbourRefused(t *testing.T) {
	r, addr := startReflector(t, testConfig("127.0.0.2"))
	c := dialFrom(t, addr, "127.0.0.9")
	c.conn.SetReadDeadline(deadline())
	if _, err := c.br.ReadByte(); err == nil {
		t.Fatal("a connection from an unknown address got data")
	}
	if got := testutil.ToFloat64(r.met.rejected.WithLabelValues(rejectUnknown)); got != 1 {
		t.Errorf("connections_rejected_total{reason=unknown-neighbour} = %v, want 1", got)
	}
}
