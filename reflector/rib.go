package reflector

import (
	"net/netip"
	"time"
)

// path is one path of a prefix as the RIB's users see it: at most one per
// source peer, since add-path is never negotiated for receiving. The tables
// store paths in the compact form spath and hand out paths built on demand.
type path struct {
	src   *ribPeer
	a     *attrs
	stale bool
}

// spath is a path as stored: a peer index (with staleBit) and an attrs
// handle (see index). Indices instead of pointers keep the slots free of
// pointers, so a table of millions of paths costs the garbage collector
// nothing to scan and 8 bytes a path.
type spath struct{ src, a uint32 }

const staleBit = 1 << 31

// slot holds one prefix's paths, best first: the first inline (most
// prefixes have one path), the others in table.more.
type slot struct {
	first spath  // src 0: no paths
	more  uint32 // 1 + index into table.more; 0 when at most one path
	gen   uint32 // the round in which it was last marked changed
}

// slotChunk is the size of the slot arrays: the slab grows a chunk at a
// time, never copying what it holds.
const slotChunk = 1 << 14

// change is a prefix changed in this round, with its paths before.
type change struct {
	k   pfxKey
	old []path
}

// index maps the stored peer indices and attrs handles back to pointers.
// It belongs to the RIB loop. Index 0 means none.
type index struct {
	peers     []*ribPeer
	freePeers []uint32
	attrs     *internTable
}

func newIndex() *index {
	return &index{peers: []*ribPeer{nil}, attrs: newInternTable()}
}

// addPeer gives rp an index.
func (ix *index) addPeer(rp *ribPeer) {
	if n := len(ix.freePeers); n > 0 {
		rp.idx = ix.freePeers[n-1]
		ix.freePeers = ix.freePeers[:n-1]
		ix.peers[rp.idx] = rp
		return
	}
	rp.idx = uint32(len(ix.peers))
	ix.peers = append(ix.peers, rp)
}

// dropPeer frees rp's index; rp must have no paths left.
func (ix *index) dropPeer(rp *ribPeer) {
	if rp.idx != 0 && ix.peers[rp.idx] == rp {
		ix.peers[rp.idx] = nil
		ix.freePeers = append(ix.freePeers, rp.idx)
		rp.idx = 0
	}
}

func (ix *index) pack(p path) spath {
	s := spath{src: p.src.idx, a: p.a.handle}
	if p.stale {
		s.src |= staleBit
	}
	return s
}

func (ix *index) unpack(s spath) path {
	return path{src: ix.peers[s.src&^staleBit], a: ix.attrs.slab[s.a], stale: s.src&staleBit != 0}
}

// table is the RIB of one family. It belongs to the RIB loop. Prefixes map
// to slot numbers: IPv4 prefixes through 8-byte keys, IPv6 through pfxKey,
// the routes of a generic family through their key bytes (famgen.go), and
// their pfxKey is the slot number (hi), valid until the prefix goes.
type table struct {
	fam   family
	ix    *index
	v4    map[uint64]uint32
	v6    map[pfxKey]uint32
	byKey map[string]uint32
	keys  []string // a generic family's keys by slot number

	slots     [][]slot // chunks of slotChunk
	nslots    uint32   // slots handed out, including freed ones
	freeSlots []uint32
	more      [][]spath // the second and further paths of a prefix
	freeMore  []uint32

	changed []change // this round's changes, one per prefix
	gen     uint32   // this round
	npaths  int
	scratch []path
}

func newTable(f family, ix *index) *table {
	t := &table{fam: f, ix: ix, gen: 1}
	switch {
	case f == famV4:
		t.v4 = map[uint64]uint32{}
	case f.generic():
		t.byKey = map[string]uint32{}
	default:
		t.v6 = map[pfxKey]uint32{}
	}
	return t
}

func v4Key(k pfxKey) uint64 { return k.hi | uint64(k.bits) }

func v4PfxKey(v uint64) pfxKey { return pfxKey{hi: v &^ 0xffffffff, bits: uint8(v)} }

// len is the number of prefixes, including those emptied in this round.
func (t *table) len() int {
	if t.v4 != nil {
		return len(t.v4)
	}
	if t.byKey != nil {
		return len(t.byKey)
	}
	return len(t.v6)
}

func (t *table) lookup(k pfxKey) (uint32, bool) {
	if t.v4 != nil {
		n, ok := t.v4[v4Key(k)]
		return n, ok
	}
	if t.byKey != nil {
		n := uint32(k.hi)
		return n, n < t.nslots && t.keys[n] != ""
	}
	n, ok := t.v6[k]
	return n, ok
}

// insert adds an empty slot for k, which must be absent.
func (t *table) insert(k pfxKey) uint32 {
	n := t.newSlot()
	if t.v4 != nil {
		t.v4[v4Key(k)] = n
	} else {
		t.v6[k] = n
	}
	return n
}

// genKey returns the key of a generic family's route, adding an empty
// slot for it when absent and create is set.
func (t *table) genKey(b []byte, create bool) (pfxKey, bool) {
	if n, ok := t.byKey[string(b)]; ok {
		return pfxKey{hi: uint64(n)}, true
	}
	if !create || len(b) == 0 {
		return pfxKey{}, false
	}
	return t.genKeyString(string(b), true)
}

// genKeyString is genKey for a key held as a string.
func (t *table) genKeyString(s string, create bool) (pfxKey, bool) {
	if n, ok := t.byKey[s]; ok {
		return pfxKey{hi: uint64(n)}, true
	}
	if !create || len(s) == 0 {
		return pfxKey{}, false
	}
	n := t.newSlot()
	t.byKey[s] = n
	if int(n) >= len(t.keys) {
		t.keys = append(t.keys, make([]string, int(n)+1-len(t.keys))...)
	}
	t.keys[n] = s
	return pfxKey{hi: uint64(n)}, true
}

func (t *table) newSlot() uint32 {
	var n uint32
	if l := len(t.freeSlots); l > 0 {
		n = t.freeSlots[l-1]
		t.freeSlots = t.freeSlots[:l-1]
	} else {
		n = t.nslots
		t.nslots++
		if int(n/slotChunk) == len(t.slots) {
			t.slots = append(t.slots, make([]slot, slotChunk))
		}
	}
	return n
}

// remove drops k and its slot n, which must hold no paths.
func (t *table) remove(k pfxKey, n uint32) {
	switch {
	case t.v4 != nil:
		delete(t.v4, v4Key(k))
	case t.byKey != nil:
		delete(t.byKey, t.keys[n])
		t.keys[n] = ""
	default:
		delete(t.v6, k)
	}
	*t.slot(n) = slot{}
	t.freeSlots = append(t.freeSlots, n)
	if len(t.freeSlots) == int(t.nslots) { // empty: give the memory back
		t.slots, t.nslots, t.freeSlots = nil, 0, nil
		t.more, t.freeMore = nil, nil
		t.keys = nil
	}
}

func (t *table) slot(n uint32) *slot { return &t.slots[n/slotChunk][n%slotChunk] }

// each calls fn for every prefix and its slot number.
func (t *table) each(fn func(k pfxKey, n uint32)) {
	if t.v4 != nil {
		for v, n := range t.v4 {
			fn(v4PfxKey(v), n)
		}
		return
	}
	if t.byKey != nil {
		for _, n := range t.byKey {
			fn(pfxKey{hi: uint64(n)}, n)
		}
		return
	}
	for k, n := range t.v6 {
		fn(k, n)
	}
}

// load appends slot s's paths, best first, to dst.
func (t *table) load(s *slot, dst []path) []path {
	if s.first.src == 0 {
		return dst
	}
	dst = append(dst, t.ix.unpack(s.first))
	if s.more != 0 {
		for _, sp := range t.more[s.more-1] {
			dst = append(dst, t.ix.unpack(sp))
		}
	}
	return dst
}

// paths returns the paths of slot n in a slice that the next table
// operation reuses.
func (t *table) paths(n uint32) []path {
	t.scratch = t.load(t.slot(n), t.scratch[:0])
	return t.scratch
}

// store replaces slot s's paths with ps.
func (t *table) store(s *slot, ps []path) {
	if len(ps) == 0 {
		s.first = spath{}
	} else {
		s.first = t.ix.pack(ps[0])
	}
	if len(ps) <= 1 {
		if s.more != 0 {
			t.more[s.more-1] = t.more[s.more-1][:0]
			t.freeMore = append(t.freeMore, s.more-1)
			s.more = 0
		}
		return
	}
	if s.more == 0 {
		if l := len(t.freeMore); l > 0 {
			s.more = t.freeMore[l-1] + 1
			t.freeMore = t.freeMore[:l-1]
		} else {
			t.more = append(t.more, nil)
			s.more = uint32(len(t.more))
		}
	}
	m := t.more[s.more-1][:0]
	for _, p := range ps[1:] {
		m = append(m, t.ix.pack(p))
	}
	t.more[s.more-1] = m
}

// markChanged records the prefix's paths (ps) before its first change in
// this round.
func (t *table) markChanged(k pfxKey, s *slot, ps []path) {
	if s.gen == t.gen {
		return
	}
	s.gen = t.gen
	var old []path
	if len(ps) > 0 {
		old = append(make([]path, 0, len(ps)), ps...)
	}
	t.changed = append(t.changed, change{k, old})
}

// current returns the paths now of every prefix changed in this round, in
// the order of t.changed, sharing one backing array.
func (t *table) current() [][]path {
	cur := make([][]path, len(t.changed))
	var all []path
	offs := make([]int, len(t.changed)+1)
	for i, c := range t.changed {
		if n, ok := t.lookup(c.k); ok {
			all = t.load(t.slot(n), all)
		}
		offs[i+1] = len(all)
	}
	for i := range cur {
		cur[i] = all[offs[i]:offs[i+1]:offs[i+1]]
	}
	return cur
}

// endRound drops the prefixes emptied in this round (cur[i] holds the
// paths of changed[i] now) and starts the next round.
func (t *table) endRound(cur [][]path) {
	for i, c := range t.changed {
		if len(cur[i]) == 0 {
			if n, ok := t.lookup(c.k); ok {
				t.remove(c.k, n)
			}
		}
	}
	clear(t.changed)
	if cap(t.changed) > 4*maxPendingChanges {
		t.changed = nil
	}
	t.changed = t.changed[:0]
	t.gen++
}

func indexOf(paths []path, src *ribPeer) int {
	for i := range paths {
		if paths[i].src == src {
			return i
		}
	}
	return -1
}

// announce installs src's path for k with the interned attrs a, taking a
// reference on a. It reports whether the prefix is new for src.
func (t *table) announce(k pfxKey, src *ribPeer, a *attrs, interned *internTable, cmp *bestPath) bool {
	n, ok := t.lookup(k)
	if !ok {
		n = t.insert(k)
	}
	s := t.slot(n)
	ps := t.load(s, t.scratch[:0])
	t.scratch = ps
	i := indexOf(ps, src)
	if i >= 0 && ps[i].a == a {
		if ps[i].stale {
			ps[i].stale = false
			t.store(s, ps)
		}
		return false
	}
	t.markChanged(k, s, ps)
	a.refs++
	isNew := i < 0
	if isNew {
		ps = append(ps, path{src: src, a: a})
		t.scratch = ps
		t.npaths++
		src.famPaths[t.fam]++
	} else {
		interned.release(ps[i].a)
		ps[i] = path{src: src, a: a}
	}
	cmp.selectBest(ps)
	t.store(s, ps)
	return isNew
}

// withdraw removes src's path for k and reports whether there was one.
func (t *table) withdraw(k pfxKey, src *ribPeer, interned *internTable, cmp *bestPath) bool {
	n, ok := t.lookup(k)
	if !ok {
		return false
	}
	s := t.slot(n)
	ps := t.load(s, t.scratch[:0])
	t.scratch = ps
	i := indexOf(ps, src)
	if i < 0 {
		return false
	}
	t.markChanged(k, s, ps)
	t.removeAt(s, ps, i, interned, cmp)
	return true
}

func (t *table) removeAt(s *slot, ps []path, i int, interned *internTable, cmp *bestPath) {
	interned.release(ps[i].a)
	t.npaths--
	ps[i].src.famPaths[t.fam]--
	last := len(ps) - 1
	ps[i] = ps[last]
	ps = ps[:last]
	if i == 0 {
		cmp.selectBest(ps)
	}
	t.store(s, ps)
}

// sweep removes src's paths, all of them or only the stale ones, and
// returns how many it removed. It walks the whole table: per-peer prefix
// lists would cost memory for every path to speed up a rare event.
func (t *table) sweep(src *ribPeer, onlyStale bool, interned *internTable, cmp *bestPath) int {
	removed := 0
	t.each(func(k pfxKey, n uint32) {
		s := t.slot(n)
		ps := t.load(s, t.scratch[:0])
		t.scratch = ps
		i := indexOf(ps, src)
		if i < 0 || (onlyStale && !ps[i].stale) {
			return
		}
		t.markChanged(k, s, ps)
		t.removeAt(s, ps, i, interned, cmp)
		removed++
	})
	return removed
}

// markStale flags src's paths as stale (graceful restart helper).
func (t *table) markStale(src *ribPeer) {
	t.each(func(_ pfxKey, n uint32) {
		s := t.slot(n)
		ps := t.load(s, t.scratch[:0])
		t.scratch = ps
		if i := indexOf(ps, src); i >= 0 {
			ps[i].stale = true
			t.store(s, ps)
		}
	})
}

// ribPeer is the RIB's view of one neighbour. It outlives sessions so that a
// restarting neighbour's new paths replace its stale ones.
type ribPeer struct {
	addr      netip.Addr
	idx       uint32 // in the RIB's index; 0 when not registered
	pathID    uint32 // path identifier we send with add-path
	routerID  uint32
	asn       uint32
	ebgp      bool
	client    bool
	maxPrefix int
	prefixes  int
	eor       families // End-of-RIB received on the current session
	// llgr are the families in a long-lived stale period (llgr.go), each
	// until llgrUntil.
	llgr      families
	llgrUntil [numFamilies]time.Time
	member    *member // nil while no session is established
	stats     *peerStats
	// Route policy (policy.go): nil chains accept everything. adj holds
	// the paths as received while imp is set.
	imp, exp *xchain
	adj      *adjRIBIn
	dynamic  bool               // its policy is its range's
	rtc      *rtcMembership     // its route target membership, when it negotiated RTC
	famPaths [numFamilies]int32 // its paths in the RIB by family
	rejected int                // Adj-RIB-In paths the import policy rejected
}
