package reflector

import (
	"context"
	"errors"
	"slices"
	"strings"
)

// The RIB side of route policy (policy.go): import into the RIB through
// an Adj-RIB-In, export changes between update groups, live changes.
//
// Why an Adj-RIB-In and not ROUTE-REFRESH: re-evaluating a changed import
// policy needs the routes as the peer sent them. Asking the peer again
// (RFC 2918) would work only with peers that advertise the capability,
// leaves the RIB wrong until the peer has answered (at the peer's pace, a
// whole table per neighbour for a one-rule change), and a reflector with
// thousands of clients would ask them all at once. Keeping them costs
// memory, but only for the neighbours whose import policy is not
// accept-all, and compactly: only the paths that the policy rejected or
// changed (a key and an interned-attrs handle each, the attrs shared with
// the RIB); a path it accepted unchanged is in the RIB as it was received,
// and is taken from there. Neighbours without an import policy keep
// nothing extra; when they get one, all their paths in the RIB are what
// they sent.

// adjRIBIn holds the paths of a neighbour, as received, that its import
// policy rejected or changed: per family, the key to an attrs handle, with
// staleBit while graceful restart keeps them and modBit when the RIB holds
// the path changed (else the path was rejected). It holds a reference on
// each attrs.
type adjRIBIn struct {
	v4 map[uint64]uint32
	v6 map[pfxKey]uint32
	// gen are the generic families' paths by route key (famrib.go); a
	// family's map exists while it holds some.
	gen [numFamilies]map[string]uint32
}

func newAdjRIBIn() *adjRIBIn {
	return &adjRIBIn{v4: map[uint64]uint32{}, v6: map[pfxKey]uint32{}}
}

func (in *adjRIBIn) len() int {
	n := len(in.v4) + len(in.v6)
	for _, m := range in.gen {
		n += len(m)
	}
	return n
}

func (in *adjRIBIn) get(f family, k pfxKey) (uint32, bool) {
	if f == famV4 {
		h, ok := in.v4[v4Key(k)]
		return h, ok
	}
	h, ok := in.v6[k]
	return h, ok
}

func (in *adjRIBIn) set(f family, k pfxKey, h uint32) {
	if f == famV4 {
		in.v4[v4Key(k)] = h
	} else {
		in.v6[k] = h
	}
}

func (in *adjRIBIn) del(f family, k pfxKey) {
	if f == famV4 {
		delete(in.v4, v4Key(k))
	} else {
		delete(in.v6, k)
	}
}

// holds reports whether the Adj-RIB-In holds the path for k (slot n) of
// table t.
func (in *adjRIBIn) holds(t *table, k pfxKey, n uint32) bool {
	if t.fam.generic() {
		_, ok := in.gen[t.fam][t.keys[n]]
		return ok
	}
	_, ok := in.get(t.fam, k)
	return ok
}

// each calls fn for every path of family f.
func (in *adjRIBIn) each(f family, fn func(k pfxKey, h uint32)) {
	if f == famV4 {
		for v, h := range in.v4 {
			fn(v4PfxKey(v), h)
		}
		return
	}
	for k, h := range in.v6 {
		fn(k, h)
	}
}

// modBit marks an Adj-RIB-In path whose changed form is in the RIB.
const modBit = 1 << 30

const adjFlags = staleBit | modBit

// adjPut stores a received path in rp's Adj-RIB-In, taking a reference on
// a and releasing the one on the path it replaces; modified says the RIB
// holds it changed (else it was rejected).
func (rl *ribLoop) adjPut(rp *ribPeer, f family, k pfxKey, a *attrs, stale, modified bool) {
	h := a.handle
	if stale {
		h |= staleBit
	}
	if modified {
		h |= modBit
	} else {
		rp.rejected++
	}
	old, ok := rp.adj.get(f, k)
	if ok {
		rl.adjForget(rp, old)
	}
	a.refs++
	rp.adj.set(f, k, h)
}

// adjForget releases what an Adj-RIB-In entry held.
func (rl *ribLoop) adjForget(rp *ribPeer, h uint32) {
	if h&modBit == 0 {
		rp.rejected--
	}
	rl.attrs.release(rl.attrs.slab[h&^adjFlags])
}

// adjDel removes a path from rp's Adj-RIB-In.
func (rl *ribLoop) adjDel(rp *ribPeer, f family, k pfxKey) {
	if rp.adj.len() == 0 {
		return
	}
	if old, ok := rp.adj.get(f, k); ok {
		rp.adj.del(f, k)
		rl.adjForget(rp, old)
	}
}

// importOne puts rp's received path a for k through the import policy
// into the RIB, keeping the Adj-RIB-In entry it needs.
func (rl *ribLoop) importOne(rp *ribPeer, t *table, k pfxKey, a *attrs, stale bool, mods *[]importMod) {
	ia := rl.importPath(rp, t.fam, k, a, mods)
	if ia == a {
		rl.adjDel(rp, t.fam, k)
	} else {
		rl.adjPut(rp, t.fam, k, a, stale, ia != nil)
	}
	rl.installImported(rp, t, k, ia, stale)
}

// importPath returns what enters the RIB for rp's path a of prefix k:
// a, a changed by the accepting rule (interned; mods caches them per rule
// for one UPDATE's NLRI), or nil when the import policy rejects it.
func (rl *ribLoop) importPath(rp *ribPeer, f family, k pfxKey, a *attrs, mods *[]importMod) *attrs {
	rule, ok := rp.imp.eval(f, k, a)
	return rl.imported(rule, ok, rp, a, mods)
}

// imported is importPath's result from the import chain's verdict.
func (rl *ribLoop) imported(rule *xrule, ok bool, rp *ribPeer, a *attrs, mods *[]importMod) *attrs {
	if !ok {
		return nil
	}
	if rule == nil {
		return a
	}
	for _, m := range *mods {
		if m.rule == rule && m.from == a {
			return m.to
		}
	}
	to := rl.attrs.get(rule.modify(a, rp.ebgp, false))
	*mods = append(*mods, importMod{rule, a, to})
	return to
}

// importMod is an attrs changed by an import rule.
type importMod struct {
	rule     *xrule
	from, to *attrs
}

// dropMods forgets the changed attrs that no path took.
func (rl *ribLoop) dropMods(mods []importMod) {
	for _, m := range mods {
		rl.attrs.dropUnused(m.to)
	}
}

// updateFiltered applies one routeUpdate of a neighbour with an import
// policy: through the Adj-RIB-In, then the policy, into the RIB.
func (rl *ribLoop) updateFiltered(rp *ribPeer, u routeUpdate) {
	t := rl.tables[u.fam]
	if u.a == nil {
		for _, k := range u.nlri {
			rl.adjDel(rp, u.fam, k)
			if t.withdraw(k, rp, rl.attrs, &rl.cmp) {
				rp.prefixes--
			}
		}
		return
	}
	a := rl.attrs.get(u.a)
	a.refs++ // held while an Adj-RIB-In entry of it may go
	var mods []importMod
	for _, k := range u.nlri {
		rl.importOne(rp, t, k, a, false, &mods)
	}
	rl.dropMods(mods)
	rl.attrs.release(a)
}

// installImported makes rp's path for k in the RIB ia (nil: none),
// keeping it stale when stale.
func (rl *ribLoop) installImported(rp *ribPeer, t *table, k pfxKey, ia *attrs, stale bool) {
	if ia == nil {
		if t.withdraw(k, rp, rl.attrs, &rl.cmp) {
			rp.prefixes--
		}
		return
	}
	if t.announce(k, rp, ia, rl.attrs, &rl.cmp) {
		rp.prefixes++
	}
	if stale {
		t.setStale(k, rp)
		if rp.llgr.has(t.fam) { // in a long-lived stale period (llgr.go)
			rl.llgrMarkOne(t, rp, k, nil)
		}
	}
}

// setStale flags src's path for k stale again (after a re-evaluation
// replaced a stale path).
func (t *table) setStale(k pfxKey, src *ribPeer) {
	n, ok := t.lookup(k)
	if !ok {
		return
	}
	s := t.slot(n)
	ps := t.load(s, t.scratch[:0])
	t.scratch = ps
	if i := indexOf(ps, src); i >= 0 && !ps[i].stale {
		ps[i].stale = true
		t.store(s, ps)
	}
}

// adjSweep removes rp's Adj-RIB-In paths in fams, only the stale ones
// when onlyStale.
func (rl *ribLoop) adjSweep(rp *ribPeer, onlyStale bool, fams families) {
	if rp.adj == nil {
		return
	}
	for f := range numFamilies {
		if !fams.has(f) {
			continue
		}
		if f.generic() {
			for key, h := range rp.adj.gen[f] {
				if !onlyStale || h&staleBit != 0 {
					rl.adjGenDel(rp, f, key)
				}
			}
			continue
		}
		var drop []pfxKey
		rp.adj.each(f, func(k pfxKey, h uint32) {
			if !onlyStale || h&staleBit != 0 {
				drop = append(drop, k)
			}
		})
		for _, k := range drop {
			rl.adjDel(rp, f, k)
		}
	}
}

// adjMarkStale flags every Adj-RIB-In path of rp stale.
func (rl *ribLoop) adjMarkStale(rp *ribPeer) {
	if rp.adj == nil {
		return
	}
	for _, m := range rp.adj.gen {
		for key, h := range m {
			m[key] = h | staleBit // the same attrs: no reference changes
		}
	}
	for f := range numUnicast {
		var keys []pfxKey
		rp.adj.each(f, func(k pfxKey, h uint32) {
			if h&staleBit == 0 {
				keys = append(keys, k)
			}
		})
		for _, k := range keys {
			h, _ := rp.adj.get(f, k)
			rp.adj.set(f, k, h|staleBit) // the same attrs: no reference changes
		}
	}
}

// SetPolicy replaces the route policy. Sessions stay up: every neighbour
// whose import policy changed has its received paths evaluated again, and
// every one whose export policy changed is moved to its new update group
// and sent the difference (withdrawals of what the new policy rejects,
// announcements of what it accepts or changes). A neighbour that names a
// missing filter gets the default alone (routepolicy.Resolve), logged
// once per change. It returns an error, and changes nothing, when a filter
// is invalid.
func (r *Reflector) SetPolicy(pc PolicyConfig) error {
	if err := validatePolicy(pc, false); err != nil {
		return err
	}
	r.mu.Lock()
	r.cfg.Policy = pc
	if !r.ribStarted { // before Run: the loop is not running, nothing to re-evaluate
		defer r.mu.Unlock()
		return r.env.rib.setPolicy(pc)
	}
	r.mu.Unlock()
	var err error
	if !r.env.rib.call(context.Background(), func(rl *ribLoop) { err = rl.setPolicy(pc) }) {
		return errors.New("route policy: the reflector has stopped")
	}
	return err
}

// setPolicy applies a policy in the RIB loop (or before it runs).
func (rl *ribLoop) setPolicy(pc PolicyConfig) error {
	if err := rl.pol.setConfig(pc); err != nil {
		return err
	}
	rl.flush() // the moves below must line up with what was sent
	for _, a := range rl.attrs.byKey {
		// Exports changed by the old rules are never asked for again.
		a.out = slices.DeleteFunc(a.out, func(o *outAttrs) bool { return o.rule != nil })
	}
	rl.logPolicyNotes()
	// Imports first, sent through the groups as they are; then the moves
	// between groups, each of which compares what a member was sent with
	// what its new group sends, on tables with nothing pending.
	resolved := make(map[*ribPeer]sessionPolicy, len(rl.peers))
	for _, rp := range rl.peers {
		sp := rl.pol.resolve(rp.addr, rp.ebgp, rp.dynamic)
		resolved[rp] = sp
		if rp.stats != nil {
			rp.stats.setPolicyNote(sp.note)
		}
		if sp.imp != rp.imp {
			rl.reimport(rp, sp.imp)
		}
	}
	rl.flush()
	for rp, sp := range resolved {
		if m := rp.member; m != nil && m.group != nil && m.group.key.pol != sp.expKey {
			rl.moveMember(m, sp.expKey, sp.exp)
		}
		rp.exp = sp.exp
	}
	rl.pol.prev = nil
	return nil
}

// logPolicyNotes logs, once per change, each configured neighbour's and
// range's missing filters.
func (rl *ribLoop) logPolicyNotes() {
	notes := map[string]string{}
	check := func(who string, names []string) {
		var miss []string
		for _, n := range names {
			if _, ok := rl.pol.filters[n]; !ok {
				miss = append(miss, n)
			}
		}
		if miss == nil {
			return
		}
		notes[who] = strings.Join(miss, ",")
		if rl.pol.notes[who] != notes[who] {
			rl.log.Warn("neighbour names a missing BGPFilter: it gets the default policy alone",
				logKeyPeer, who, logKeyFilters, notes[who])
		}
	}
	for a, ns := range rl.pol.cfg.Neighbors {
		check(a.String(), ns)
	}
	for p, ns := range rl.pol.cfg.Ranges {
		check(p.String(), ns)
	}
	rl.pol.notes = notes
}

// reimported is one of a peer's received paths that a policy change
// evaluates again: its key in its table (a unicast pfxKey, a generic
// family's NLRI bytes), its attributes and whether it is stale.
type reimported[K any] struct {
	key   K
	a     *attrs
	stale bool
}

// reimportAll imports every path of todo again through imp, holding each
// path's attributes while the RIB and the Adj-RIB-In change, and then
// drops what the imports superseded.
func reimportAll[K any](rl *ribLoop, todo []reimported[K], imp func(key K, a *attrs, stale bool, mods *[]importMod)) {
	for _, r := range todo {
		r.a.refs++ // held while the RIB and the Adj-RIB-In change
	}
	var mods []importMod
	for _, r := range todo {
		imp(r.key, r.a, r.stale, &mods)
	}
	rl.dropMods(mods)
	for _, r := range todo {
		rl.attrs.release(r.a)
	}
}

// reimport evaluates rp's received paths with a new import policy: those
// of the Adj-RIB-In and those in the RIB as received.
func (rl *ribLoop) reimport(rp *ribPeer, imp *xchain) {
	if rp.adj == nil { // no policy until now: the RIB holds what rp sent
		rp.adj = newAdjRIBIn()
	}
	rp.imp = imp
	for _, t := range rl.tables {
		if t.fam.generic() {
			rl.reimportGen(rp, t)
			continue
		}
		var todo []reimported[pfxKey]
		t.each(func(k pfxKey, n uint32) {
			ps := t.paths(n)
			if i := indexOf(ps, rp); i >= 0 {
				if _, changed := rp.adj.get(t.fam, k); !changed {
					todo = append(todo, reimported[pfxKey]{k, ps[i].a, ps[i].stale})
				}
			}
		})
		rp.adj.each(t.fam, func(k pfxKey, h uint32) {
			todo = append(todo, reimported[pfxKey]{k, rl.attrs.slab[h&^adjFlags], h&staleBit != 0})
		})
		reimportAll(rl, todo, func(k pfxKey, a *attrs, stale bool, mods *[]importMod) {
			rl.importOne(rp, t, k, a, stale, mods)
		})
	}
	if imp == nil { // accept-all: everything is in the RIB as received
		rp.adj = nil
	}
	rl.storeCounts(rp)
}

// moveMember moves m to the group of its new export policy and sends it
// the difference between what its old group sent it and what the new one
// does. The tables must have no pending changes (flushed).
func (rl *ribLoop) moveMember(m *member, pol string, exp *xchain) {
	old := m.group
	key := old.key
	key.pol = pol
	rl.leave(m)
	rl.join(m, key, exp)
	if rl.deferring || rl.stopping || slices.Contains(rl.deferred, m) {
		return // nothing was sent yet, or nothing will be
	}
	for f := range numFamilies {
		if m.fams.has(f) {
			rl.redump(m, old, f)
		}
	}
}

// redump sends m, of family f, the difference between what group old
// sent it and what its group sends it now.
func (rl *ribLoop) redump(m *member, old *updateGroup, f family) {
	t := rl.tables[f]
	g := m.group
	addPath := g.key.addPath.has(f)
	var p partition
	t.each(func(k pfxKey, n uint32) {
		paths := t.paths(n)
		for i := range paths {
			pa := &paths[i]
			if pa.src != m.rp {
				it := nlriItem{k, pa.src.pathID}
				was, oldRule := old.pass(f, k, pa)
				now, rule := g.pass(f, k, pa)
				switch {
				case now && (!was || oldRule != nil || rule != nil):
					p.announce(rl.exp.export(pa, g.key.role, g.key.localAddr, rule), it)
				case was && !now:
					p.withdraw(it)
				}
			}
			if !addPath {
				break
			}
		}
	})
	ann, wds := p.counts()
	if ann == 0 && wds == 0 {
		return
	}
	b := p.encodeWith(nil, g.encoding(t))
	m.rp.stats.prefixesOut.Add(int64(ann - wds))
	m.rp.stats.updatesOut.Add(int64(countMessages(b)))
	m.conn.send(b)
}

// storeCounts publishes rp's prefix counts: accepted (in the RIB) and,
// with an import policy, received (in the Adj-RIB-In).
func (rl *ribLoop) storeCounts(rp *ribPeer) {
	if rp.stats == nil {
		return
	}
	rp.stats.prefixesIn.Store(int64(rp.prefixes))
	rp.publishFamilies()
	if rp.adj != nil {
		rp.stats.received.Store(int64(rp.received()))
		rp.stats.filtered.Store(true)
	} else {
		rp.stats.filtered.Store(false)
	}
}

// setPolicyNote publishes the neighbour's policy note.
func (s *peerStats) setPolicyNote(note string) {
	if note == "" {
		s.policyNote.Store(nil)
		return
	}
	s.policyNote.Store(&note)
}

// received is how many paths rp sent that the RIB holds or its import
// policy rejected.
func (rp *ribPeer) received() int { return rp.prefixes + rp.rejected }
