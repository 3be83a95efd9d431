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

// ribPath is one received path with its import verdict; the peer it
// came from is recv.Peer.
type ribPath struct {
	// recv is the path as received; mod, when not nil, what the
	// accepting rule changed of it (most rules change nothing: no copy).
	recv     Path
	mod      *attrs
	accepted bool
	ebgp     bool
}

// attrs are what an import rule may change of a path.
type attrs struct {
	communities    []api.Community
	asPath         []uint32
	localPref, med uint32
}

func attrsOf(p *Path) attrs {
	return attrs{communities: p.Communities, asPath: p.ASPath, localPref: p.LocalPref, med: p.MED}
}

// attrs returns the path's attributes after the import policy.
func (rp *ribPath) attrs() attrs {
	if rp.mod != nil {
		return *rp.mod
	}
	return attrsOf(&rp.recv)
}

// out returns the path as the import policy changed it.
func (rp *ribPath) out() Path {
	p := rp.recv
	if a := rp.mod; a != nil {
		p.Communities, p.ASPath, p.LocalPref, p.MED = a.communities, a.asPath, a.localPref, a.med
	}
	return p
}

// adjRIB holds the received paths by prefix. It is the router's only
// copy of them: the best paths of a prefix are selected from it when
// they are needed (best), not kept beside it (docs/scale.md, "Routes in
// the node agent").
type adjRIB struct {
	dests map[netip.Prefix][]ribPath
	// accepted counts the accepted paths by peer (BGPStatus
	// prefixesAccepted).
	accepted map[netip.Addr]uint64
	// withBest counts the prefixes that have an accepted path (a best
	// path).
	withBest int
}

func newAdjRIB() *adjRIB {
	return &adjRIB{dests: map[netip.Prefix][]ribPath{}, accepted: map[netip.Addr]uint64{}}
}

// peerImport is what the router applies to a peer's paths.
type peerImport struct {
	chain routepolicy.Chain
	ebgp  bool
}

// evalImport runs a session's import chain on a received path: whether
// it is accepted and, if the accepting rule changed it, its new
// attributes (nil: unchanged).
func evalImport(pi peerImport, pfx netip.Prefix, p *Path) (*attrs, bool) {
	if pi.chain.AcceptsAll() {
		return nil, true
	}
	in := attrsOf(p)
	r, ok := pi.chain.Evaluate(routepolicy.Import, routepolicy.Route{Prefix: pfx, FromPeer: true,
		Communities: in.communities, LocalPref: in.localPref, MED: in.med, ASPath: in.asPath})
	if !ok {
		return nil, false
	}
	out := attrs{communities: r.Communities, asPath: r.ASPath, localPref: r.LocalPref, med: r.MED}
	if attrsEqual(in, out) {
		return nil, true
	}
	mod := new(attrs)
	*mod = out
	return mod, true
}

// set records a received path (replacing the peer's earlier one) and
// reports whether the prefix's accepted paths changed.
func (rib *adjRIB) set(pfx netip.Prefix, p Path, pi peerImport) bool {
	mod, ok := evalImport(pi, pfx, &p)
	rp := ribPath{recv: p, mod: mod, accepted: ok, ebgp: pi.ebgp}
	paths := rib.dests[pfx]
	had := anyAccepted(paths)
	i := slices.IndexFunc(paths, func(x ribPath) bool { return x.recv.Peer == p.Peer })
	if i < 0 {
		paths = append(paths, rp)
		rib.dests[pfx] = paths
		if ok {
			rib.accepted[p.Peer]++
		}
		rib.countBest(had, anyAccepted(paths))
		return ok
	}
	old := paths[i]
	paths[i] = rp
	rib.count(old.recv.Peer, old.accepted, ok)
	rib.countBest(had, anyAccepted(paths))
	return old.accepted || ok
}

// remove forgets a peer's path and reports whether an accepted one went.
func (rib *adjRIB) remove(pfx netip.Prefix, peer netip.Addr) bool {
	paths := rib.dests[pfx]
	i := slices.IndexFunc(paths, func(x ribPath) bool { return x.recv.Peer == peer })
	if i < 0 {
		return false
	}
	had := anyAccepted(paths)
	old := paths[i]
	paths = slices.Delete(paths, i, i+1)
	if len(paths) == 0 {
		delete(rib.dests, pfx)
	} else {
		rib.dests[pfx] = paths
	}
	rib.count(peer, old.accepted, false)
	rib.countBest(had, anyAccepted(paths))
	return old.accepted
}

// anyAccepted reports whether one of paths is accepted.
func anyAccepted(paths []ribPath) bool {
	return slices.ContainsFunc(paths, func(rp ribPath) bool { return rp.accepted })
}

// countBest counts a prefix that gained or lost its last accepted path.
func (rib *adjRIB) countBest(had, has bool) {
	switch {
	case had && !has:
		rib.withBest--
	case !had && has:
		rib.withBest++
	}
}

// hasBest reports whether pfx has an accepted path.
func (rib *adjRIB) hasBest(pfx netip.Prefix) bool { return anyAccepted(rib.dests[pfx]) }

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
		had := anyAccepted(paths)
		for i := range paths {
			rp := &paths[i]
			if rp.recv.Peer != lastPeer || !lastPeer.IsValid() {
				lastPeer = rp.recv.Peer
				lastPI, lastOK = pis[rp.recv.Peer]
			}
			if !lastOK {
				continue
			}
			pi := lastPI
			mod, acc := evalImport(pi, pfx, &rp.recv)
			if acc != rp.accepted || acc && !modEqual(mod, rp.mod) || pi.ebgp != rp.ebgp {
				dirty = true
			}
			rib.count(rp.recv.Peer, rp.accepted, acc)
			rp.mod, rp.accepted, rp.ebgp = mod, acc, pi.ebgp
		}
		rib.countBest(had, anyAccepted(paths))
		if dirty {
			changed(pfx)
		}
	}
}

// attrsEqual compares what a policy can change of a path. A rule that
// changes no list leaves the received one in place: the same array is
// equal without comparing its elements.
func attrsEqual(a, b attrs) bool {
	return a.localPref == b.localPref && a.med == b.med && sameOrEqual(a.asPath, b.asPath) && sameOrEqual(a.communities, b.communities)
}

func modEqual(a, b *attrs) bool {
	if a == nil || b == nil {
		return a == b
	}
	return attrsEqual(*a, *b)
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
			p := c.out()
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
	x, y := a.attrs(), b.attrs()
	as, bs := slices.Contains(x.communities, llgrStale), slices.Contains(y.communities, llgrStale)
	if as != bs {
		return boolCmp(!as, !bs)
	}
	if x.localPref != y.localPref {
		return cmpU(x.localPref, y.localPref)
	}
	if la, lb := len(x.asPath), len(y.asPath); la != lb {
		return cmpU(uint32(lb), uint32(la))
	}
	if a.recv.Origin != b.recv.Origin {
		return cmpU(uint32(b.recv.Origin), uint32(a.recv.Origin))
	}
	internal := len(x.asPath) == 0 && len(y.asPath) == 0
	sameAS := len(x.asPath) > 0 && len(y.asPath) > 0 && x.asPath[0] == y.asPath[0]
	if (internal || sameAS) && x.med != y.med {
		return cmpU(y.med, x.med)
	}
	if a.ebgp != b.ebgp {
		return boolCmp(a.ebgp, b.ebgp)
	}
	if a.ebgp && b.ebgp && !a.recv.Age.Equal(b.recv.Age) {
		return boolCmp(a.recv.Age.Before(b.recv.Age), b.recv.Age.Before(a.recv.Age))
	}
	return -a.recv.Peer.Compare(b.recv.Peer)
}

// multipathEqual is GoBGP's Path.Compare == 0: the paths of one
// multipath set.
func multipathEqual(a, b *ribPath) bool {
	x, y := a.attrs(), b.attrs()
	return a.ebgp == b.ebgp && x.localPref == y.localPref && len(x.asPath) == len(y.asPath) &&
		a.recv.Origin == b.recv.Origin && x.med == y.med
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
