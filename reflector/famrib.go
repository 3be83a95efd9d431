package reflector

import (
	"slices"

	"github.com/bgpfabric/bgpfabric/routepolicy"
)

// Route policy on the generic families. Rules of the VPN and EVPN lists
// (routepolicy.VPNRulesFor) match their families' routes on the route's
// key (famgen.go: RD, EVPN route type, the VPN prefix inside the RD) and
// on its attrs (communities, route targets); the other generic families
// (labeled unicast, flowspec, RTC) have no rules and take the chain's
// default. Import is as for unicast (policyrib.go): a neighbour with an
// import policy keeps the paths it sent that the policy rejected or
// changed in its Adj-RIB-In, here keyed by the route's key bytes (a
// rejected route has no slot in the table, whose slot numbers are the
// generic families' pfxKeys), so that a policy change evaluates them
// again without a reset; export runs per update group as for unicast.

// vpnLists maps the families that have rule lists to theirs.
var vpnLists = map[family]routepolicy.VPNFamily{
	famEVPN:  routepolicy.EVPN,
	famVPNv4: routepolicy.VPNv4,
	famVPNv6: routepolicy.VPNv6,
}

// genView is what rules see of a generic route's key.
type genView struct {
	pfx       pfxKey // a VPN route's prefix (inside the RD), as unicast keys are
	hasPrefix bool
	rd        uint64 // the RD's 8 bytes
	hasRD     bool
	typ       uint8 // an EVPN route's type
}

// be64 reads 8 bytes of s at i, big-endian, zero-padded past its end.
func be64(s string, i int) uint64 {
	var v uint64
	for j := range 8 {
		v <<= 8
		if i+j < len(s) {
			v |= uint64(s[i+j])
		}
	}
	return v
}

// parseGenKey reads a VPN or EVPN route's key (famgen.go).
func parseGenKey(f family, key string) genView {
	var r genView
	switch f {
	case famVPNv4, famVPNv6: // genPrefix, prefix length, RD, prefix
		if len(key) < 2+rdLen || key[0] != genPrefix {
			return r
		}
		r.rd, r.hasRD = be64(key, 2), true
		r.pfx = pfxKey{hi: be64(key, 2+rdLen), lo: be64(key, 2+rdLen+8), bits: key[1]}
		r.hasPrefix = true
	case famEVPN:
		switch {
		case len(key) >= 2+rdLen && (key[0] == genEVPNTail || key[0] == genEVPNESI): // form, type, RD, ...
			r.typ, r.rd, r.hasRD = key[1], be64(key, 2), true
		case len(key) >= 3+rdLen && key[0] == genWhole: // form, type, length, RD, ...
			r.typ, r.rd, r.hasRD = key[1], be64(key, 3), true
		case len(key) >= 2:
			r.typ = key[1]
		}
	}
	return r
}

// matchesGen is matches for a VPN or EVPN route.
func (x *xrule) matchesGen(r *genView, a *attrs) bool {
	if !x.noPrefix && (!r.hasPrefix || !x.matchesPrefix(r.pfx)) {
		return false
	}
	if len(x.rds) > 0 && (!r.hasRD || !slices.Contains(x.rds, r.rd)) {
		return false
	}
	if len(x.types) > 0 && !slices.Contains(x.types, r.typ) {
		return false
	}
	if len(x.rts) > 0 && !slices.ContainsFunc(a.rts, func(v uint64) bool { return slices.Contains(x.rts, v) }) {
		return false
	}
	return x.matchesCommunities(a)
}

// evalGen is eval for a generic family's route of key.
func (c *xchain) evalGen(f family, key string, a *attrs) (*xrule, bool) {
	if c == nil {
		return nil, true
	}
	if rules := c.rules[f]; len(rules) > 0 {
		r := parseGenKey(f, key)
		for _, x := range rules {
			if x.matchesGen(&r, a) {
				if !x.accept {
					return nil, false
				}
				if x.hasSet {
					return x, true
				}
				return nil, true
			}
		}
	}
	return nil, !c.reject
}

// updateGen applies a run of a generic family's routes from rp: through
// the import policy and the Adj-RIB-In when rp has one.
func (rl *ribLoop) updateGen(rp *ribPeer, u routeUpdate) {
	t := rl.tables[u.fam]
	if u.a == nil {
		for _, b := range u.keys {
			if rp.adj != nil {
				rl.adjGenDel(rp, u.fam, string(b))
			}
			if k, ok := t.genKey(b, false); ok && t.withdraw(k, rp, rl.attrs, &rl.cmp) {
				rp.prefixes--
			}
		}
		return
	}
	a := rl.attrs.get(u.a)
	if rp.imp == nil {
		for _, b := range u.keys {
			k, _ := t.genKey(b, true)
			if t.announce(k, rp, a, rl.attrs, &rl.cmp) {
				rp.prefixes++
			}
		}
		rl.attrs.dropUnused(a)
		return
	}
	a.refs++ // held while an Adj-RIB-In entry of it may go
	var mods []importMod
	for _, b := range u.keys {
		rl.importGen(rp, t, string(b), a, false, &mods)
	}
	rl.dropMods(mods)
	rl.attrs.release(a)
}

// importGen is importOne for a generic family's route of key.
func (rl *ribLoop) importGen(rp *ribPeer, t *table, key string, a *attrs, stale bool, mods *[]importMod) {
	rule, ok := rp.imp.evalGen(t.fam, key, a)
	ia := rl.imported(rule, ok, rp, a, mods)
	if ia == a {
		rl.adjGenDel(rp, t.fam, key)
	} else {
		rl.adjGenPut(rp, t.fam, key, a, stale, ia != nil)
	}
	k, inRIB := t.genKeyString(key, ia != nil)
	if !inRIB {
		return // rejected, and not in the RIB before either
	}
	rl.installImported(rp, t, k, ia, stale)
}

// adjGenPut is adjPut for a generic family's route of key.
func (rl *ribLoop) adjGenPut(rp *ribPeer, f family, key string, a *attrs, stale, modified bool) {
	h := a.handle
	if stale {
		h |= staleBit
	}
	if modified {
		h |= modBit
	} else {
		rp.rejected++
	}
	m := rp.adj.gen[f]
	if m == nil {
		m = map[string]uint32{}
		rp.adj.gen[f] = m
	}
	if old, ok := m[key]; ok {
		rl.adjForget(rp, old)
	}
	a.refs++
	m[key] = h
}

// adjGenDel is adjDel for a generic family's route of key.
func (rl *ribLoop) adjGenDel(rp *ribPeer, f family, key string) {
	m := rp.adj.gen[f]
	if old, ok := m[key]; ok {
		delete(m, key)
		if len(m) == 0 {
			rp.adj.gen[f] = nil
		}
		rl.adjForget(rp, old)
	}
}

// reimportGen evaluates rp's received paths of generic table t again
// (reimport): those in the RIB as received and those of the Adj-RIB-In.
func (rl *ribLoop) reimportGen(rp *ribPeer, t *table) {
	var todo []reimported[string]
	adj := rp.adj.gen[t.fam]
	t.each(func(_ pfxKey, n uint32) {
		ps := t.paths(n)
		if i := indexOf(ps, rp); i >= 0 {
			if _, changed := adj[t.keys[n]]; !changed {
				todo = append(todo, reimported[string]{t.keys[n], ps[i].a, ps[i].stale})
			}
		}
	})
	for key, h := range adj {
		todo = append(todo, reimported[string]{key, rl.attrs.slab[h&^adjFlags], h&staleBit != 0})
	}
	reimportAll(rl, todo, func(key string, a *attrs, stale bool, mods *[]importMod) {
		rl.importGen(rp, t, key, a, stale, mods)
	})
}

// publishFamilies publishes rp's per-family path counts.
func (rp *ribPeer) publishFamilies() {
	if rp.stats == nil {
		return
	}
	for f := range numFamilies {
		rp.stats.famIn[f].Store(int64(rp.famPaths[f]))
	}
}

// familyStatus returns the session's families and the paths in the RIB
// of each family that has some or that the session carries.
func (s *peerStats) familyStatus() ([]string, map[string]int64) {
	fams := families(s.fams.Load())
	var names []string
	var counts map[string]int64
	for f := range numFamilies {
		if fams.has(f) {
			names = append(names, f.String())
		}
		if n := s.famIn[f].Load(); n != 0 || fams.has(f) {
			if counts == nil {
				counts = map[string]int64{}
			}
			counts[f.String()] = n
		}
	}
	return names, counts
}
