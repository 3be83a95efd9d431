package reflector

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// The monitor is the RIB loop's side of BMP (bmp.go) and of the MRT
// update log (mrt.go): hooks where sessions come up and go down and where
// UPDATEs are applied, all called in the RIB loop, so that what a
// collector receives is in the order the RIB saw it, and a collector's
// initial dump (taken in the loop too) lines up with the live stream
// exactly. Nothing here blocks: messages go to bounded queues
// (bmpQueue, the update log's), whose writers run elsewhere.
//
// Route monitoring is family-agnostic: live UPDATEs are passed on as the
// bytes the peer sent (the reader keeps them for the batch only when a
// monitor is configured), and dumps are encoded from the RIB by the
// same encoder that sends dumps to peers.

// monitor exists when BMP collectors or the MRT update log are configured.
type monitor struct {
	// locRIB: Loc-RIB monitoring (RFC 9069) as peer locPeer, whose Peer
	// Up is locUp.
	locRIB     bool
	locPeer    bmpPeer
	locUp      []byte
	sysName    string
	routerID   uint32
	asn        uint32
	collectors []*bmpCollector
	updLog     *mrtLog // nil without the update log
	// peers are the established sessions as BMP and MRT describe them,
	// keyed by the RIB's peer; only the RIB loop touches it.
	peers map[*ribPeer]*monPeer
}

// monPeer is an established session as the monitor describes it.
type monPeer struct {
	bmp   bmpPeer
	up    []byte // the Peer Up Notification, replayed to new collectors
	local netip.Addr
	m     *member
}

// sessionMon is what the monitor needs of a session that came up.
type sessionMon struct {
	sentOpen, recvOpen []byte // whole messages
	local, remote      netip.AddrPort
	remoteASN          uint32
	remoteID           uint32
}

// sessionEnd is why a session ended, as BMP's peer-down says it.
type sessionEnd struct {
	reason uint8
	data   []byte
}

// monInfo describes the session for the monitor; established calls it.
func (s *session) monInfo() sessionMon {
	if s.rib.mon == nil {
		return sessionMon{}
	}
	sm := sessionMon{sentOpen: s.openSent, remoteASN: s.neg.remoteASN, remoteID: s.neg.remoteID}
	sm.recvOpen = appendBGPHeader(nil, bgp.BGP_MSG_OPEN, len(s.openRecv))
	sm.recvOpen = append(sm.recvOpen, s.openRecv...)
	if a, ok := s.conn.LocalAddr().(*net.TCPAddr); ok {
		sm.local = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	}
	if a, ok := s.conn.RemoteAddr().(*net.TCPAddr); ok {
		sm.remote = netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port())
	}
	return sm
}

// noteEnd records why an established session ends, for BMP's peer down;
// the reader calls it before it hands the RIB loop the session's end.
func (s *session) noteEnd(err error) {
	if s.rib.mon == nil {
		return
	}
	e := &sessionEnd{reason: bmpDownLocalNoNotify, data: []byte{0, 0}}
	var rn *receivedNotification
	var ne *notifyError
	switch {
	case s.closeErr.Load() != nil:
		e = &sessionEnd{reason: bmpDownLocalNotify, data: encodeNotification(s.closeErr.Load())}
	case errors.As(err, &rn):
		e = &sessionEnd{reason: bmpDownRemoteNotify, data: encodeNotification(&notifyError{code: rn.code, subcode: rn.subcode, data: rn.data})}
	case errors.As(err, &ne):
		if ne.code == bgp.BGP_ERROR_CEASE && ne.subcode == bgp.BGP_ERROR_SUB_PEER_DECONFIGURED {
			e = &sessionEnd{reason: bmpDownDeconfigured}
		} else {
			e = &sessionEnd{reason: bmpDownLocalNotify, data: encodeNotification(ne)}
		}
	case errors.Is(err, errConnLost), errors.Is(err, syscall.ECONNRESET):
		e = &sessionEnd{reason: bmpDownRemoteNoData}
	}
	s.downWhy.Store(e)
}

// peerUp is called by the RIB loop when a session is established.
func (mo *monitor) peerUp(rp *ribPeer, m *member, si sessionInfo) {
	if mo == nil {
		return
	}
	sm := si.mon
	mp := &monPeer{bmp: bmpPeer{addr: rp.addr, asn: sm.remoteASN, routerID: sm.remoteID}, local: sm.local.Addr(), m: m}
	mp.up = appendPeerUp(nil, mp.bmp, time.Now(), sm.local.Addr(), sm.local.Port(), sm.remote.Port(), sm.sentOpen, sm.recvOpen)
	mo.peers[rp] = mp
	for _, c := range mo.collectors {
		c.q.push(mp.up, 1)
	}
}

// peerDown is called by the RIB loop when member m's session leaves.
func (mo *monitor) peerDown(m *member) {
	if mo == nil {
		return
	}
	mp := mo.peers[m.rp]
	if mp == nil || mp.m != m {
		return
	}
	delete(mo.peers, m.rp)
	end := &sessionEnd{reason: bmpDownLocalNoNotify, data: []byte{0, 0}}
	if s, ok := m.conn.(*session); ok {
		if e := s.downWhy.Load(); e != nil {
			end = e
		} else if ce := s.closeErr.Load(); ce != nil { // closed by the RIB loop: max prefixes
			end = &sessionEnd{reason: bmpDownLocalNotify, data: encodeNotification(ce)}
		}
	}
	b := appendPeerDown(nil, mp.bmp, time.Now(), end.reason, end.data)
	for _, c := range mo.collectors {
		c.q.push(b, 1)
	}
}

// updates passes the UPDATEs of a batch from member m on, as received.
func (mo *monitor) updates(m *member, raw [][]byte) {
	if mo == nil || len(raw) == 0 {
		return
	}
	mp := mo.peers[m.rp]
	if mp == nil || mp.m != m {
		return
	}
	now := time.Now()
	if mo.anyConnected() {
		var b []byte
		for _, body := range raw {
			b = appendRouteMonitoring(b, mp.bmp, now, body)
		}
		for _, c := range mo.collectors {
			c.q.push(b, len(raw))
		}
	}
	if mo.updLog != nil {
		mo.updLog.updates(mp, mo.asn, now, raw)
	}
}

// attach starts collector c's stream: Initiation, a Peer Up for every
// established session, each session's routes as received (the
// Adj-RIB-In, pre-policy) with End-of-RIB per family, then the live
// stream. It runs in the RIB loop.
func (rl *ribLoop) monAttach(c *bmpCollector, abort func()) {
	mo := rl.mon
	now := time.Now()
	b := appendInitiation(nil, mo.sysName, "bgpfabric route reflector")
	for _, mp := range mo.peers {
		b = append(b, mp.up...)
	}
	rl.flush()
	// One outAttrs per attrs: the partitions bucket prefixes by it, so
	// that prefixes sharing attributes share UPDATEs.
	cache := map[*attrs]*outAttrs{}
	for f := range numFamilies {
		parts := map[*ribPeer]*partition{}
		part := func(rp *ribPeer) *partition {
			p := parts[rp]
			if p == nil {
				p = &partition{}
				parts[rp] = p
			}
			return p
		}
		t := rl.tables[f]
		enc := monEncoding(t)
		t.each(func(k pfxKey, n uint32) {
			for _, pa := range t.paths(n) {
				if mo.peers[pa.src] == nil {
					continue
				}
				if pa.src.adj != nil {
					if pa.src.adj.holds(t, k, n) {
						continue // changed by the import policy: the Adj-RIB-In has it as received
					}
				}
				part(pa.src).announce(rl.monAttrsCached(cache, pa.a), nlriItem{k: k})
			}
		})
		for rp := range mo.peers {
			if rp.adj == nil {
				continue
			}
			if f.generic() {
				// A rejected route has no slot in the table: its key goes
				// after the table's, in the encoding's own key list.
				for key, h := range rp.adj.gen[f] {
					n, ok := t.byKey[key]
					if !ok {
						if len(enc.keys) == len(t.keys) {
							enc.keys = slices.Clone(t.keys)
						}
						n = uint32(len(enc.keys))
						enc.keys = append(enc.keys, key)
					}
					part(rp).announce(rl.monAttrsCached(cache, rl.attrs.slab[h&^adjFlags]), nlriItem{k: pfxKey{hi: uint64(n)}})
				}
				continue
			}
			rp.adj.each(f, func(k pfxKey, h uint32) {
				part(rp).announce(rl.monAttrsCached(cache, rl.attrs.slab[h&^adjFlags]), nlriItem{k: k})
			})
		}
		for rp, mp := range mo.peers {
			if !mp.m.fams.has(f) {
				continue
			}
			var msgs []byte
			if p := parts[rp]; p != nil {
				msgs = p.encodeWith(nil, enc)
			}
			msgs = appendEndOfRIB(msgs, f)
			b = appendRouteMonitoringMsgs(b, mp.bmp, now, msgs)
		}
	}
	if mo.locRIB {
		b = append(b, mo.locUp...)
		for _, t := range rl.tables {
			var p partition
			t.each(func(k pfxKey, n uint32) {
				if ps := t.paths(n); len(ps) > 0 {
					p.announce(rl.monAttrsCached(cache, ps[0].a), nlriItem{k: k})
				}
			})
			msgs := appendEndOfRIB(p.encodeWith(nil, monEncoding(t)), t.fam)
			b = appendRouteMonitoringMsgs(b, mo.locPeer, now, msgs)
		}
	}
	c.q.attach(b, abort)
}

// monEncoding is how UPDATEs of table t go to collectors: without
// path identifiers, in messages of up to 4,096 bytes; a generic family's
// with its table, whose keys make the NLRI (with the path's extra).
func monEncoding(t *table) encoding {
	return encoding{f: t.fam, keys: t.keys, max: maxMsgLen}
}

func (rl *ribLoop) monAttrsCached(cache map[*attrs]*outAttrs, a *attrs) *outAttrs {
	oa := cache[a]
	if oa == nil {
		oa = rl.monAttrs(a)
		cache[a] = oa
	}
	return oa
}

// monLocRIB sends the Loc-RIB's changes of this round (RFC 9069): for
// every changed prefix of t whose best path changed, the new best path,
// or a withdrawal. cur[i] holds the current paths of t.changed[i]. The
// flush calls it; it costs nothing while no collector is connected.
func (rl *ribLoop) monLocRIB(t *table, cur [][]path) {
	mo := rl.mon
	if mo == nil || !mo.locRIB || !mo.anyConnected() {
		return
	}
	var p partition
	cache := map[*attrs]*outAttrs{}
	for i, c := range t.changed {
		var ob, nb *path
		if len(c.old) > 0 {
			ob = &c.old[0]
		}
		if len(cur[i]) > 0 {
			nb = &cur[i][0]
		}
		switch {
		case nb != nil:
			if ob != nil && ob.src == nb.src && ob.a == nb.a {
				continue
			}
			p.announce(rl.monAttrsCached(cache, nb.a), nlriItem{k: c.k})
		case ob != nil:
			p.withdraw(nlriItem{k: c.k})
		}
	}
	if p.empty() {
		return
	}
	msgs := p.encodeWith(nil, monEncoding(t))
	b := appendRouteMonitoringMsgs(nil, mo.locPeer, time.Now(), msgs)
	n := countBMP(b)
	for _, c := range mo.collectors {
		c.q.push(b, n)
	}
}

// anyConnected reports whether a collector's stream is attached.
func (mo *monitor) anyConnected() bool {
	for _, c := range mo.collectors {
		if c.q.isLive() {
			return true
		}
	}
	return false
}

// monAttrs is a as the peer sent it, near enough for monitoring: the
// attributes the RIB keeps (those it strips from eBGP routes and the
// AS4_ attributes are gone, see newAttrs) with NEXT_HOP for IPv4 in type
// order; an IPv6 next hop goes into MP_REACH_NLRI at encoding, as does a
// generic family's next hop field and NLRI (rawNH and extra).
func (rl *ribLoop) monAttrs(a *attrs) *outAttrs {
	oa := &outAttrs{nextHop: a.nextHop, nextHopLL: a.nextHopLL, rawNH: a.rawNH, extra: a.extra}
	nh := a.nextHop.Is4()
	for _, p := range a.list {
		if nh && p.GetType() > bgp.BGP_ATTR_TYPE_NEXT_HOP {
			oa.bytes = appendNextHopAttr(oa.bytes, a.nextHop)
			nh = false
		}
		if b, err := p.Serialize(); err == nil {
			oa.bytes = append(oa.bytes, b...)
		}
	}
	if nh {
		oa.bytes = appendNextHopAttr(oa.bytes, a.nextHop)
	}
	return oa
}

func appendNextHopAttr(dst []byte, nh netip.Addr) []byte {
	v := nh.As4()
	return append(append(dst, byte(bgp.BGP_ATTR_FLAG_TRANSITIVE), byte(bgp.BGP_ATTR_TYPE_NEXT_HOP), 4), v[:]...)
}

// monStats queues a Statistics Report per established session to every
// connected collector: routes received (the Adj-RIB-In, pre-policy) and
// routes the import policy rejected (both held now: gauges).
func (rl *ribLoop) monStats() {
	mo := rl.mon
	if mo == nil || len(mo.collectors) == 0 {
		return
	}
	now := time.Now()
	var b []byte
	n := 0
	for rp, mp := range mo.peers {
		stats := []bmpStat{
			{typ: bmpStatRejected, value: uint64(rp.rejected)},
			{typ: bmpStatAdjRIBIn, value: uint64(rp.received())},
		}
		b = appendStatsReport(b, mp.bmp, now, stats)
		n++
	}
	if n == 0 {
		return
	}
	for _, c := range mo.collectors {
		c.q.push(b, n)
	}
}
