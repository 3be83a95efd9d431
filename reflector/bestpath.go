package reflector

// bestPath selects the best path of a prefix (RFC 4271 9.1.2, with the RFC
// 4456 use of ORIGINATOR_ID in place of the router id and the shortest
// CLUSTER_LIST).
type bestPath struct{}

// selectBest moves the best path to the front.
func (bestPath) selectBest(paths []path) {
	best := 0
	for i := 1; i < len(paths); i++ {
		if comparePaths(&paths[i], &paths[best]) < 0 {
			best = i
		}
	}
	if best != 0 {
		paths[0], paths[best] = paths[best], paths[0]
	}
}

// comparePaths returns a negative number when x is better than y, positive
// when y is better, and never zero for paths of different peers.
func comparePaths(x, y *path) int {
	a, b := x.a, y.a
	if a.llgrStale != b.llgrStale { // RFC 9494 4.3: least preferred
		return cmpBool(b.llgrStale)
	}
	if a.localPref != b.localPref {
		return cmpBool(a.localPref > b.localPref)
	}
	if a.asPathLen != b.asPathLen {
		return cmpBool(a.asPathLen < b.asPathLen)
	}
	if a.origin != b.origin {
		return cmpBool(a.origin < b.origin)
	}
	if a.firstAS == b.firstAS && a.med != b.med {
		return cmpBool(a.med < b.med)
	}
	if x.src.ebgp != y.src.ebgp {
		return cmpBool(x.src.ebgp)
	}
	if ox, oy := originator(x), originator(y); ox != oy {
		return cmpBool(ox < oy)
	}
	if len(a.clusterList) != len(b.clusterList) {
		return cmpBool(len(a.clusterList) < len(b.clusterList))
	}
	return x.src.addr.Compare(y.src.addr)
}

// originator is the ORIGINATOR_ID, or the BGP identifier of the peer that
// sent the path when there is none.
func originator(p *path) uint32 {
	if p.a.hasOriginator {
		return p.a.originatorID
	}
	return p.src.routerID
}

func cmpBool(xBetter bool) int {
	if xBetter {
		return -1
	}
	return 1
}
