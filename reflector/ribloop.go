package reflector

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// ribOp is a closure run by the RIB loop, which owns all RIB state.
type ribOp func(*ribLoop)

// maxPendingChanges bounds how many changed prefixes the loop collects from
// queued ops before it computes and sends the outbound change.
const maxPendingChanges = 1 << 16

// ribLoop is the single goroutine that owns the tables, the interned
// attributes, the RIB's peers and the update groups.
type ribLoop struct {
	log    *slog.Logger
	ops    chan ribOp
	done   chan struct{}
	exp    exporter
	cmp    bestPath
	tables [numFamilies]*table
	attrs  *internTable
	ix     *index // the tables' peer and attrs indices
	peers  map[netip.Addr]*ribPeer
	groups map[groupKey]*updateGroup
	nextID uint32
	met    *engineMetrics
	fib    *fibFeed // nil unless Config.ProgramFIB
	pol    policyState
	mon    *monitor // nil unless BMP or the MRT update log (monitor.go)

	// Restarting-speaker state (RFC 4724 4.1, see restart.go).
	restarting atomic.Bool // set while deferring: OPENs carry the R bit
	deferring  bool
	deferred   []*member
	// stopping is set when Run's context ends: sessions are closing, and
	// the withdrawals their ends would cause must not reach the others
	// (with graceful restart, they would undo it).
	stopping  bool
	expectEOR map[netip.Addr]bool
	// rtcAll counts the sessions that carry a VPN family without RTC
	// (famrtc.go).
	rtcAll int
}

func newRIBLoop(log *slog.Logger, asn, clusterID uint32, met *engineMetrics) *ribLoop {
	rl := &ribLoop{
		met:    met,
		log:    log,
		ops:    make(chan ribOp, 1024),
		done:   make(chan struct{}),
		exp:    exporter{asn: asn, clusterID: clusterID},
		peers:  map[netip.Addr]*ribPeer{},
		groups: map[groupKey]*updateGroup{},
		ix:     newIndex(),
	}
	rl.attrs = rl.ix.attrs
	for f := range numFamilies {
		rl.tables[f] = newTable(f, rl.ix)
	}
	return rl
}

// run serves ops until ctx ends. After each burst of queued ops it flushes
// the outbound changes once.
func (rl *ribLoop) run(ctx context.Context) {
	defer close(rl.done)
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-rl.ops:
			op(rl)
			rl.drain()
			rl.flush()
		}
	}
}

func (rl *ribLoop) drain() {
	for rl.pending() < maxPendingChanges {
		select {
		case op := <-rl.ops:
			op(rl)
		default:
			return
		}
	}
}

func (rl *ribLoop) pending() int {
	n := 0
	for _, t := range rl.tables {
		n += len(t.changed)
	}
	return n
}

// do queues op; it returns false when ctx or the loop ended first.
func (rl *ribLoop) do(ctx context.Context, op ribOp) bool {
	select {
	case rl.ops <- op:
		return true
	case <-ctx.Done():
	case <-rl.done:
	}
	return false
}

// call runs op in the loop and waits for it.
func (rl *ribLoop) call(ctx context.Context, op ribOp) bool {
	fin := make(chan struct{})
	if !rl.do(ctx, func(rl *ribLoop) { op(rl); close(fin) }) {
		return false
	}
	select {
	case <-fin:
		return true
	case <-ctx.Done():
	case <-rl.done:
	}
	return false
}

// flush sends every group the changes since the last flush.
func (rl *ribLoop) flush() {
	for _, t := range rl.tables {
		if len(t.changed) == 0 {
			continue
		}
		cur := t.current()
		if rl.fib != nil && !rl.stopping && !t.fam.generic() { // stopping: Run's end decides what the kernel keeps
			rl.fib.note(t, cur)
		}
		rl.monLocRIB(t, cur)
		if !rl.deferring && !rl.stopping { // while deferring, the dumps at its end carry everything
			for _, g := range rl.groups {
				if g.key.fams.has(t.fam) {
					rl.flushGroup(g, t, cur)
				}
			}
		}
		if t.fam == famRTC {
			rl.rtcChanged(t, cur)
		}
		t.endRound(cur)
	}
}

// peerStats are a neighbour's counters, read by Neighbors() and the
// metrics.
type peerStats struct {
	prefixesIn, prefixesOut atomic.Int64
	updatesIn, updatesOut   atomic.Int64 // UPDATE messages
	// received counts the paths held before the import policy, when
	// filtered (the neighbour has an import policy and an Adj-RIB-In).
	received atomic.Int64
	filtered atomic.Bool
	// famIn are the paths in the RIB by family; fams the families of the
	// established session (0 when there is none).
	famIn      [numFamilies]atomic.Int64
	fams       atomic.Uint32
	policyNote atomic.Pointer[string]
}

// sessionInfo describes a session that reached Established.
type sessionInfo struct {
	addr        netip.Addr
	routerID    uint32
	asn         uint32
	ebgp        bool
	client      bool
	fams        families
	addPath     families // families we send path identifiers in
	extMsg      bool     // RFC 8654 extended messages negotiated
	llgr        families // families the peer negotiated LLGR in (llgr.go)
	localAddr   netip.Addr
	keepNextHop bool // eBGP: send next hops unchanged
	dynamic     bool // a dynamic neighbour: its range's policy
	maxPrefixes int
	stats       *peerStats
	conn        memberConn
	mon         sessionMon // for BMP and MRT, when monitored
}

// peerUp registers an established session, dumps the table to it and
// returns its member handle.
func (rl *ribLoop) peerUp(si sessionInfo) *member {
	rl.flush() // the dump must line up with the live stream
	rp := rl.peers[si.addr]
	if rp == nil {
		rl.nextID++
		rp = &ribPeer{addr: si.addr, pathID: rl.nextID}
		rl.peers[si.addr] = rp
		rl.ix.addPeer(rp)
	}
	if rp.member != nil {
		rl.peerDown(rp.member, true)
	}
	rp.routerID, rp.asn, rp.ebgp, rp.client = si.routerID, si.asn, si.ebgp, si.client && !si.ebgp
	rp.maxPrefix, rp.stats = si.maxPrefixes, si.stats
	m := &member{rp: rp, conn: si.conn, fams: si.fams}
	rp.member = m
	rp.dynamic = si.dynamic
	sp := rl.pol.resolve(rp.addr, rp.ebgp, rp.dynamic)
	rp.stats.setPolicyNote(sp.note)
	switch {
	case sp.imp == rp.imp:
	case rp.prefixes == 0 && rp.adj == nil: // new: nothing to evaluate again
		rp.imp = sp.imp
		if sp.imp != nil {
			rp.adj = newAdjRIBIn()
		}
	default:
		rl.reimport(rp, sp.imp)
	}
	rp.exp = sp.exp
	rl.storeCounts(rp)
	key := groupKey{role: rp.role(), fams: si.fams, addPath: si.addPath, pol: sp.expKey, extMsg: si.extMsg, llgr: si.llgr}
	if rp.ebgp && !si.keepNextHop {
		key.localAddr = si.localAddr
	}
	if si.fams.has(famRTC) {
		key.rtc = rp.addr
		rp.rtc = rl.rtcMembershipOf(rp)
		m.rtcDefault = rtcDefaultUpdate(si.localAddr, rl.exp.asn, rp.ebgp)
	}
	rl.join(m, key, sp.exp)
	rl.mon.peerUp(rp, m, si)
	rp.stats.prefixesOut.Store(0)
	rp.stats.fams.Store(uint32(si.fams))
	if wantsAllVPN(si.fams) {
		rl.rtcAllChanged(true)
	}
	rp.eor = 0
	if rl.deferring {
		rl.deferred = append(rl.deferred, m)
		return m
	}
	if rl.stopping {
		return m
	}
	for f := range numFamilies {
		if si.fams.has(f) {
			rl.dump(m, f, true)
		}
	}
	return m
}

// peerDown unregisters a session. A graceful down keeps its paths, marked
// stale, until flushStale or the neighbour's End-of-RIB.
func (rl *ribLoop) peerDown(m *member, graceful bool) {
	rp := m.rp
	if rp.member != m {
		return
	}
	rl.mon.peerDown(m)
	rl.leave(m)
	rp.member = nil
	if wantsAllVPN(m.fams) {
		rl.rtcAllChanged(false)
	}
	rp.stats.prefixesOut.Store(0)
	rp.stats.fams.Store(0)
	if graceful {
		for _, t := range rl.tables {
			t.markStale(rp)
		}
		rl.adjMarkStale(rp)
		return
	}
	rl.sweep(rp, false, ^families(0))
}

// sweep removes rp's paths (only the stale ones when onlyStale) in fams
// and forgets rp when it has neither paths nor session.
func (rl *ribLoop) sweep(rp *ribPeer, onlyStale bool, fams families) {
	for _, t := range rl.tables {
		if fams.has(t.fam) {
			rp.prefixes -= t.sweep(rp, onlyStale, rl.attrs, &rl.cmp)
		}
	}
	rl.adjSweep(rp, onlyStale, fams)
	if rp.member == nil && rp.prefixes == 0 {
		rl.adjSweep(rp, false, ^families(0)) // rejected paths kept as stale
		delete(rl.peers, rp.addr)
		rl.ix.dropPeer(rp)
	}
	rl.storeCounts(rp)
}

// flushStale removes a neighbour's stale paths (restart or stale timer).
func (rl *ribLoop) flushStale(addr netip.Addr) {
	if rp := rl.peers[addr]; rp != nil {
		rl.sweep(rp, true, ^families(0))
	}
}

// routeUpdate is a run of NLRI sharing one attrs (nil: withdrawals).
type routeUpdate struct {
	fam  family
	a    *attrs
	nlri []pfxKey
	keys [][]byte // a generic family's route keys, instead of nlri
}

// ribBatch is what a session reader hands the RIB loop.
type ribBatch struct {
	updates []routeUpdate
	eor     families
	raw     [][]byte // the UPDATEs' bodies as received, when monitored
}

// update applies a batch from member m.
func (rl *ribLoop) update(m *member, b *ribBatch) {
	rp := m.rp
	if rp.member != m {
		return // the session is gone
	}
	rl.mon.updates(m, b.raw)
	defer rl.met.observeBestPath(time.Now())
	if rp.imp != nil {
		for _, u := range b.updates {
			if u.fam.generic() {
				rl.updateGen(rp, u)
			} else {
				rl.updateFiltered(rp, u)
			}
			// With an import policy the limit bounds what is held:
			// every path received, accepted or not.
			if rp.maxPrefix > 0 && rp.received() > rp.maxPrefix {
				rl.overLimit(m)
				return
			}
		}
		rl.endOfRIB(rp, b.eor)
		rl.storeCounts(rp)
		return
	}
	for _, u := range b.updates {
		t := rl.tables[u.fam]
		if u.fam.generic() {
			rl.updateGen(rp, u)
			if rp.maxPrefix > 0 && rp.prefixes > rp.maxPrefix {
				rl.overLimit(m)
				return
			}
			continue
		}
		if u.a == nil {
			for _, k := range u.nlri {
				if t.withdraw(k, rp, rl.attrs, &rl.cmp) {
					rp.prefixes--
				}
			}
			continue
		}
		a := rl.attrs.get(u.a)
		for _, k := range u.nlri {
			if t.announce(k, rp, a, rl.attrs, &rl.cmp) {
				rp.prefixes++
			}
		}
		rl.attrs.dropUnused(a)
		if rp.maxPrefix > 0 && rp.prefixes > rp.maxPrefix {
			rl.overLimit(m)
			return
		}
	}
	rl.endOfRIB(rp, b.eor)
	rp.stats.prefixesIn.Store(int64(rp.prefixes))
	rp.publishFamilies()
}

// endOfRIB handles End-of-RIB of families eor: the stale paths go.
func (rl *ribLoop) endOfRIB(rp *ribPeer, eor families) {
	if eor != 0 {
		rl.sweep(rp, true, eor)
		rp.eor |= eor
		rp.llgr &^= eor // synchronised: its long-lived stale period ends
		if rl.deferring {
			rl.checkDeferral()
		}
	}
}

// overLimit ends member m, whose peer went over its maximum number of
// prefixes. It runs before the loop flushes, inside the op that applied
// the batch, so that none of the batch's routes is ever sent: the peer
// leaves the RIB at once (its routes are swept, and a prefix whose paths
// end as they were before the round sends nothing), and the session's
// own peer-down later finds the member gone.
func (rl *ribLoop) overLimit(m *member) {
	// The Cease first, so that BMP's peer down carries it (monitor.go).
	m.conn.closeWith(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED,
		"maximum number of prefixes reached")
	rl.peerDown(m, false)
}

// RIBStats summarises the RIB.
type RIBStats struct {
	Prefixes [2]int // IPv4, IPv6 unicast
	// FamilyPrefixes are the routes of every family, by family name
	// (FamilyNames), unicast included.
	FamilyPrefixes map[string]int
	Paths          int
	AttrSets       int
	UpdateGroups   int
}

func (rl *ribLoop) stats() RIBStats {
	var s RIBStats
	rl.flush() // so that emptied prefixes are gone
	s.FamilyPrefixes = make(map[string]int, numFamilies)
	for i, t := range rl.tables {
		if i < len(s.Prefixes) {
			s.Prefixes[i] = t.len()
		}
		s.FamilyPrefixes[t.fam.String()] = t.len()
		s.Paths += t.npaths
	}
	s.AttrSets = len(rl.attrs.byKey)
	s.UpdateGroups = len(rl.groups)
	return s
}
