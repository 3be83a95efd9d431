package reflector

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
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

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
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
