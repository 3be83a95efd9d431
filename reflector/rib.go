package reflector

import "net/netip"

// path is one path of a prefix: at most one per source peer, since add-path
// is never negotiated for receiving.
type path struct {
	src   *ribPeer
	a     *attrs
	stale bool
}

// dest holds a prefix's paths with the best one first. A dest whose last
// path went stays in the map, empty, until the next flush.
type dest struct {
	paths []path
	gen   uint32 // the round in which it was last marked changed
}

// change is a prefix changed in this round, with its paths before.
type change struct {
	k   pfxKey
	old []path
}

// table is the RIB of one family. It belongs to the RIB loop.
type table struct {
	fam     family
	dests   map[pfxKey]dest
	changed []change // this round's changes, one per prefix
	gen     uint32   // this round
	npaths  int
}

func newTable(f family) *table {
	return &table{fam: f, dests: map[pfxKey]dest{}, gen: 1}
}

// markChanged records the prefix's paths before its first change in this
// round; the caller stores d back.
func (t *table) markChanged(k pfxKey, d *dest) {
	if d.gen == t.gen {
		return
	}
	d.gen = t.gen
	var old []path
	if len(d.paths) > 0 {
		old = append(make([]path, 0, len(d.paths)), d.paths...)
	}
	t.changed = append(t.changed, change{k, old})
}

// endRound drops the dests emptied in this round (cur[i] holds the paths
// of changed[i] now) and starts the next round.
func (t *table) endRound(cur [][]path) {
	for i, c := range t.changed {
		if len(cur[i]) == 0 {
			delete(t.dests, c.k)
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
func (t *table) announce(k pfxKey, src *ribPeer, a *attrs, interned internTable, cmp *bestPath) bool {
	d := t.dests[k]
	i := indexOf(d.paths, src)
	if i >= 0 && d.paths[i].a == a {
		d.paths[i].stale = false
		return false
	}
	t.markChanged(k, &d)
	a.refs++
	isNew := i < 0
	if isNew {
		d.paths = append(d.paths, path{src: src, a: a})
		t.npaths++
	} else {
		interned.release(d.paths[i].a)
		d.paths[i] = path{src: src, a: a}
	}
	cmp.selectBest(d.paths)
	t.dests[k] = d
	return isNew
}

// withdraw removes src's path for k and reports whether there was one.
func (t *table) withdraw(k pfxKey, src *ribPeer, interned internTable, cmp *bestPath) bool {
	d, ok := t.dests[k]
	if !ok {
		return false
	}
	i := indexOf(d.paths, src)
	if i < 0 {
		return false
	}
	t.markChanged(k, &d)
	t.removeAt(k, d, i, interned, cmp)
	return true
}

func (t *table) removeAt(k pfxKey, d dest, i int, interned internTable, cmp *bestPath) {
	interned.release(d.paths[i].a)
	t.npaths--
	last := len(d.paths) - 1
	if last == 0 {
		d.paths = nil
		t.dests[k] = d
		return
	}
	// The old slice backs the changed snapshot only when it was copied, so
	// editing in place is safe.
	d.paths[i] = d.paths[last]
	d.paths[last] = path{}
	d.paths = d.paths[:last]
	if i == 0 {
		cmp.selectBest(d.paths)
	}
	t.dests[k] = d
}

// sweep removes src's paths, all of them or only the stale ones, and
// returns how many it removed. It walks the whole table: per-peer prefix
// lists would cost memory for every path to speed up a rare event.
func (t *table) sweep(src *ribPeer, onlyStale bool, interned internTable, cmp *bestPath) int {
	n := 0
	for k, d := range t.dests {
		i := indexOf(d.paths, src)
		if i < 0 || (onlyStale && !d.paths[i].stale) {
			continue
		}
		t.markChanged(k, &d)
		t.removeAt(k, d, i, interned, cmp)
		n++
	}
	return n
}

// markStale flags src's paths as stale (graceful restart helper).
func (t *table) markStale(src *ribPeer) {
	for _, d := range t.dests {
		if i := indexOf(d.paths, src); i >= 0 {
			d.paths[i].stale = true
		}
	}
}

// ribPeer is the RIB's view of one neighbour. It outlives sessions so that a
// restarting neighbour's new paths replace its stale ones.
type ribPeer struct {
	addr      netip.Addr
	pathID    uint32 // path identifier we send with add-path
	routerID  uint32
	asn       uint32
	ebgp      bool
	client    bool
	maxPrefix int
	prefixes  int
	eor       families // End-of-RIB received on the current session
	member    *member  // nil while no session is established
	stats     *peerStats
}
