package reflector

import (
	"encoding/binary"
	"log/slog"
	"net/netip"
	"runtime"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

func testAttrs(localPref uint32, nh string) *attrs {
	return newAttrs(attrsInput{list: []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeAsPath(nil), bgp.NewPathAttributeLocalPref(localPref),
	}, nextHop: netip.MustParseAddr(nh)})
}

// TestTableCompactStore drives the table through multi-path prefixes,
// replacement, stale marking, sweeps and the end of a round, and checks
// that emptied prefixes, attrs handles and peer indices are all released.
func TestTableCompactStore(t *testing.T) {
	ix := newIndex()
	tb := newTable(famV4, ix)
	var cmp bestPath
	peers := make([]*ribPeer, 3)
	for i := range peers {
		peers[i] = &ribPeer{addr: netip.AddrFrom4([4]byte{127, 0, 0, byte(i + 2)}), routerID: uint32(i + 1), client: true}
		ix.addPeer(peers[i])
	}
	k := keyOf(netip.MustParsePrefix("10.1.0.0/24"))
	low := ix.attrs.get(testAttrs(100, "198.18.0.1"))
	high := ix.attrs.get(testAttrs(200, "198.18.0.2"))
	if !tb.announce(k, peers[0], low, ix.attrs, &cmp) || !tb.announce(k, peers[1], high, ix.attrs, &cmp) ||
		!tb.announce(k, peers[2], low, ix.attrs, &cmp) {
		t.Fatal("announce of new paths reported not new")
	}
	n, _ := tb.lookup(k)
	ps := tb.paths(n)
	if len(ps) != 3 || ps[0].src != peers[1] || ps[0].a != high || tb.npaths != 3 {
		t.Fatalf("paths %+v, want 3 with peer 1's (local pref 200) first", ps)
	}
	if got := len(tb.changed); got != 1 || tb.changed[0].old != nil {
		t.Fatalf("changed %+v, want one new prefix", tb.changed)
	}
	tb.endRound(tb.current())

	// Replace peer 1's path by a worse one: peer 0 or 2 becomes best.
	if tb.announce(k, peers[1], low, ix.attrs, &cmp) {
		t.Fatal("replacement reported as new")
	}
	if ps := tb.paths(n); ps[0].a != low || len(ps) != 3 {
		t.Fatalf("after replacement: %+v", ps)
	}
	if high.refs != 0 || ix.attrs.byKey[high.key] != nil || high.handle != 0 {
		t.Fatalf("unused attrs not released: refs %d handle %d", high.refs, high.handle)
	}
	if old := tb.changed[0].old; len(old) != 3 || old[0].a != high {
		t.Fatalf("old snapshot %+v, want the paths before the change", old)
	}
	tb.endRound(tb.current())

	tb.markStale(peers[2])
	if ps := tb.paths(n); !ps[indexOf(ps, peers[2])].stale || ps[indexOf(ps, peers[0])].stale {
		t.Fatalf("stale flags: %+v", ps)
	}
	if got := tb.sweep(peers[2], true, ix.attrs, &cmp); got != 1 {
		t.Fatalf("stale sweep removed %d, want 1", got)
	}
	tb.withdraw(k, peers[0], ix.attrs, &cmp)
	tb.withdraw(k, peers[1], ix.attrs, &cmp)
	if tb.npaths != 0 || len(tb.paths(n)) != 0 {
		t.Fatalf("paths left: %d", tb.npaths)
	}
	tb.endRound(tb.current())
	if tb.len() != 0 || tb.nslots != 0 || len(tb.more) != 0 {
		t.Fatalf("emptied table keeps %d prefixes, %d slots, %d overflow lists", tb.len(), tb.nslots, len(tb.more))
	}
	if len(ix.attrs.byKey) != 0 {
		t.Fatalf("%d attrs still interned", len(ix.attrs.byKey))
	}
	ix.dropPeer(peers[1])
	p := &ribPeer{}
	ix.addPeer(p)
	if p.idx != 2 {
		t.Fatalf("freed peer index not reused: got %d", p.idx)
	}
}

// TestTableBytesPerPath bounds the RIB's memory for single-path IPv4
// prefixes, the common case (a fabric's blocks): it was 150 bytes a path
// with a pointer slice per prefix, and is about 40-60 with compact slots.
func TestTableBytesPerPath(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 200_000
	ix := newIndex()
	var cmp bestPath
	src := &ribPeer{routerID: 1}
	ix.addPeer(src)
	a := ix.attrs.get(testAttrs(100, "198.18.0.1"))
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	tb := newTable(famV4, ix)
	for i := range n {
		var ip [4]byte
		binary.BigEndian.PutUint32(ip[:], 0x0B000000+uint32(i)<<8)
		tb.announce(keyOf(netip.PrefixFrom(netip.AddrFrom4(ip), 24)), src, a, ix.attrs, &cmp)
		if len(tb.changed) >= maxPendingChanges {
			tb.endRound(tb.current())
		}
	}
	tb.endRound(tb.current())
	tb.changed = nil
	runtime.GC()
	runtime.ReadMemStats(&ms)
	per := float64(int64(ms.HeapAlloc)-int64(before)) / n
	t.Logf("%.1f bytes per single-path prefix", per)
	if per > 80 {
		t.Errorf("%.1f bytes per single-path prefix, want at most 80", per)
	}
	runtime.KeepAlive(tb)
}

// recConn records what the RIB loop sends a member.
type recConn struct{ b []byte }

func (c *recConn) send(chunks ...[]byte) {
	for _, ch := range chunks {
		c.b = append(c.b, ch...)
	}
}
func (c *recConn) closeWith(uint8, uint8, string) {}

func (c *recConn) sendDump(_ family, b []byte) { c.send(b) }

// prefixes decodes the recorded UPDATEs into announced prefixes.
func (c *recConn) prefixes(t *testing.T) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for b := c.b; len(b) > 0; {
		n := int(binary.BigEndian.Uint16(b[16:18]))
		msg, err := bgp.ParseBGPMessage(b[:n])
		if err != nil {
			t.Fatal(err)
		}
		if u, ok := msg.Body.(*bgp.BGPUpdate); ok {
			for _, p := range u.NLRI {
				got[p.String()] = true
			}
		}
		b = b[n:]
	}
	return got
}

// TestSplitHorizonOneFlush: changes from several members of one update
// group, flushed together, reach every member but their source — the
// shared buffer is cut around each member's own partition.
func TestSplitHorizonOneFlush(t *testing.T) {
	rl := newRIBLoop(slog.New(slog.DiscardHandler), testASN, 1, newEngineMetrics())
	const n = 4
	conns := make([]*recConn, n)
	members := make([]*member, n)
	for i := range n {
		conns[i] = &recConn{}
		members[i] = rl.peerUp(sessionInfo{addr: netip.AddrFrom4([4]byte{127, 0, 9, byte(i + 1)}), routerID: uint32(i + 1),
			asn: testASN, client: true, fams: families(0).with(famV4), stats: &peerStats{}, conn: conns[i]})
		conns[i].b = nil // the (empty) table dump
	}
	for i, m := range members {
		k := keyOf(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(i), 0}), 24))
		rl.update(m, &ribBatch{updates: []routeUpdate{{fam: famV4, a: testAttrs(100, "198.18.0.1"), nlri: []pfxKey{k}}}})
	}
	rl.flush()
	for i, c := range conns {
		got := c.prefixes(t)
		for j := range n {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 9, byte(j), 0}), 24).String()
			if got[p] != (i != j) {
				t.Errorf("member %d: has %s = %v, want %v (all: %v)", i, p, got[p], i != j, got)
			}
		}
		if out := members[i].rp.stats.prefixesOut.Load(); out != n-1 {
			t.Errorf("member %d: prefixes out %d, want %d", i, out, n-1)
		}
	}
}
