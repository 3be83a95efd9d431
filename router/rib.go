package router

import (
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/routepolicy"
)

// The router's own Adj-RIB-In and best-path selection (docs/policy.md,
// "Where import policy runs").
//
// With a speaker that reports every received path (PathWatcher), the
// speaker accepts whatever the session allows and the router keeps the
// paths, one per peer and prefix, each with the verdict of its session's
// import chain (BGPFilters and the default, RFC 8212 on eBGP). The best
// paths of a prefix (its multipath set, what the kernel gets) are chosen
// among the accepted ones by GoBGP's decision process. A policy change
// evaluates again only the paths of the sessions whose chain changed, and
// marks only the prefixes whose best paths changed: the kernel gets the
// difference, and the speaker does nothing (no soft reset in).

// ribPath is one received path with its import verdict.
type ribPath struct {
	peer netip.Addr
	// recv is the path as received; out is recv as the accepting rule
	// changed it (the same when no rule changed anything).
	recv, out Path
	accepted  bool
	ebgp      bool
}

// adjRIB holds the received paths by prefix.
type adjRIB struct {
	dests map[netip.Prefix][]ribPath
	// accepted counts the accepted paths by peer (BGPStatus
	// prefixesAccepted).
	accepted map[netip.Addr]uint64
}

func newAdjRIB() *adjRIB {
	return &adjRIB{dests: map[netip.Prefix][]ribPath{}, accepted: map[netip.Addr]uint64{}}
}

// peerImport is what the router applies to a peer's paths.
type peerImport struct {
	chain routepolicy.Chain
	ebgp  bool
}

// evalImport runs a session's import chain on a received path.
func evalImport(pi peerImport, pfx netip.Prefix, p Path) (Path, bool) {
	if pi.chain.AcceptsAll() {
		return p, true
	}
	r, ok := pi.chain.Evaluate(routepolicy.Import, routepolicy.Route{Prefix: pfx, FromPeer: true,
		Communities: p.Communities, LocalPref: p.LocalPref, MED: p.MED, ASPath: p.ASPath})
	if !ok {
		return Path{}, false
	}
	out := p
	out.Communities, out.LocalPref, out.MED, out.ASPath = r.Communities, r.LocalPref, r.MED, r.ASPath
	return out, true
}

// set records a received path (replacing the peer's earlier one) and
// reports whether the prefix's accepted paths changed.
func (rib *adjRIB) set(pfx netip.Prefix, p Path, pi peerImport) bool {
	out, ok := evalImport(pi, pfx, p)
	rp := ribPath{peer: p.Peer, recv: p, out: out, accepted: ok, ebgp: pi.ebgp}
	paths := rib.dests[pfx]
	i := slices.IndexFunc(paths, func(x ribPath) bool { return x.peer == p.Peer })
	if i < 0 {
		rib.dests[pfx] = append(paths, rp)
		if ok {
			rib.accepted[p.Peer]++
		}
		return ok
	}
	old := paths[i]
	paths[i] = rp
	rib.count(old.peer, old.accepted, ok)
	return old.accepted || ok
}

// remove forgets a peer's path and reports whether an accepted one went.
func (rib *adjRIB) remove(pfx netip.Prefix, peer netip.Addr) bool {
	paths := rib.dests[pfx]
	i := slices.IndexFunc(paths, func(x ribPath) bool { return x.peer == peer })
	if i < 0 {
		return false
	}
	old := paths[i]
	paths = slices.Delete(paths, i, i+1)
	if len(paths) == 0 {
		delete(rib.dests, pfx)
	} else {
		rib.dests[pfx] = paths
	}
	rib.count(peer, old.accepted, false)
	return old.accepted
}

func (rib *adjRIB) count(peer netip.Addr, was, is bool) {
	switch {
	case was && !is:
		if rib.accepted[peer]--; rib.accepted[peer] == 0 {
			delete(rib.accepted, peer)
		}
	case !was && is:
		rib.accepted[peer]++
	}
}

// reevaluate applies the chains in pis again to the paths of those peers
// and calls changed with every prefix whose accepted paths changed.
func (rib *adjRIB) reevaluate(pis map[netip.Addr]peerImport, changed func(netip.Prefix)) {
	// Most prefixes have one path, and most changes are one peer's: the
	// last peer's lookup is kept (hashing the address was a third of the
	// time).
	var lastPeer netip.Addr
	var lastPI peerImport
	lastOK := false
	for pfx, paths := range rib.dests {
		dirty := false
		for i := range paths {
			rp := &paths[i]
			if rp.peer != lastPeer || !lastPeer.IsValid() {
				lastPeer = rp.peer
				lastPI, lastOK = pis[rp.peer]
			}
			if !lastOK {
				continue
			}
			pi := lastPI
			out, acc := evalImport(pi, pfx, rp.recv)
			if acc != rp.accepted || acc && !pathEqual(out, rp.out) || pi.ebgp != rp.ebgp {
				dirty = true
			}
			rib.count(rp.peer, rp.accepted, acc)
			rp.out, rp.accepted, rp.ebgp = out, acc, pi.ebgp
		}
		if dirty {
			changed(pfx)
		}
	}
}

// pathEqual compares what a policy can change of a path. A rule that
// changes no list leaves the received one in place: the same array is
// equal without comparing its elements.
func pathEqual(a, b Path) bool {
	return a.LocalPref == b.LocalPref && a.MED == b.MED && sameOrEqual(a.ASPath, b.ASPath) && sameOrEqual(a.Communities, b.Communities)
}

func sameOrEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	return slices.Equal(a, b)
}

// best returns a prefix's destination as WatchBestPaths would: the
// multipath set of the accepted paths, best first (no paths: none).
func (rib *adjRIB) best(pfx netip.Prefix) Destination {
	d := Destination{Prefix: pfx}
	var cand []*ribPath
	paths := rib.dests[pfx]
	for i := range paths {
		if paths[i].accepted {
			cand = append(cand, &paths[i])
		}
	}
	if len(cand) == 0 {
		return d
	}
	slices.SortStableFunc(cand, func(a, b *ribPath) int { return -better(a, b) })
	top := cand[0]
	for _, c := range cand {
		if multipathEqual(top, c) {
			p := c.out
			p.Best = c == top
			d.Paths = append(d.Paths, p)
		}
	}
	return d
}

// llgrStale is the LLGR_STALE community (RFC 9494).
var llgrStale = api.Community{Global: 0xffff, Local1: 6}

// better is GoBGP's best-path order (table.Destination.sort): 1 when a is
// better, -1 when b is, 0 for a tie. The steps GoBGP has and a node's
// received paths do not need: next-hop reachability (GoBGP does not track
// next hops here), local origin (the node's own paths are never in
// here), IGP cost (none). The router ID tie-break uses the peer's
// address instead (the speaker does not report the router ID); both are
// a peer's stable identity.
func better(a, b *ribPath) int {
	as, bs := slices.Contains(a.out.Communities, llgrStale), slices.Contains(b.out.Communities, llgrStale)
	if as != bs {
		return boolCmp(!as, !bs)
	}
	if a.out.LocalPref != b.out.LocalPref {
		return cmpU(a.out.LocalPref, b.out.LocalPref)
	}
	if la, lb := len(a.out.ASPath), len(b.out.ASPath); la != lb {
		return cmpU(uint32(lb), uint32(la))
	}
	if a.out.Origin != b.out.Origin {
		return cmpU(uint32(b.out.Origin), uint32(a.out.Origin))
	}
	internal := len(a.out.ASPath) == 0 && len(b.out.ASPath) == 0
	sameAS := len(a.out.ASPath) > 0 && len(b.out.ASPath) > 0 && a.out.ASPath[0] == b.out.ASPath[0]
	if (internal || sameAS) && a.out.MED != b.out.MED {
		return cmpU(b.out.MED, a.out.MED)
	}
	if a.ebgp != b.ebgp {
		return boolCmp(a.ebgp, b.ebgp)
	}
	if a.ebgp && b.ebgp && !a.out.Age.Equal(b.out.Age) {
		return boolCmp(a.out.Age.Before(b.out.Age), b.out.Age.Before(a.out.Age))
	}
	return -a.peer.Compare(b.peer)
}

// multipathEqual is GoBGP's Path.Compare == 0: the paths of one
// multipath set.
func multipathEqual(a, b *ribPath) bool {
	return a.ebgp == b.ebgp && a.out.LocalPref == b.out.LocalPref && len(a.out.ASPath) == len(b.out.ASPath) &&
		a.out.Origin == b.out.Origin && a.out.MED == b.out.MED
}

func cmpU(a, b uint32) int {
	switch {
	case a > b:
		return 1
	case a < b:
		return -1
	}
	return 0
}

func boolCmp(a, b bool) int {
	switch {
	case a && !b:
		return 1
	case b && !a:
		return -1
	}
	return 0
}
