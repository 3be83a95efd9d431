package reflector

// updateGen applies a run of a generic family's routes from rp. Route
// policy rules match unicast prefixes only: an import policy whose default
// rejects (as RFC 8212's for eBGP) refuses the other families' routes, one
// that accepts by default lets them through.
func (rl *ribLoop) updateGen(rp *ribPeer, u routeUpdate) {
	t := rl.tables[u.fam]
	if u.a == nil || (rp.imp != nil && rp.imp.reject) {
		for _, b := range u.keys {
			if k, ok := t.genKey(b, false); ok && t.withdraw(k, rp, rl.attrs, &rl.cmp) {
				rp.prefixes--
			}
		}
		return
	}
	a := rl.attrs.get(u.a)
	for _, b := range u.keys {
		k, _ := t.genKey(b, true)
		if t.announce(k, rp, a, rl.attrs, &rl.cmp) {
			rp.prefixes++
		}
	}
	rl.attrs.dropUnused(a)
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
