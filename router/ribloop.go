package router

import (
	"net/netip"
	"reflect"
	"slices"

	"github.com/bgpfabric/bgpfabric/routepolicy"
)

// Where the node's import policy runs (docs/policy.md): with a speaker
// that reports received paths (PathWatcher) on a node that does not
// reflect, in the router (rib.go): the speaker gets the sessions'
// export policy and an import policy that accepts everything, and the
// router evaluates the import chains. A reflecting node passes learned
// routes on, so its speaker's table must hold only what the import policy
// accepts: there the speaker keeps the import policy (a change is a soft
// reset in) and the router takes what it reports as accepted.

// ribImports is the import policy the router applies, by peer.
type ribImports struct {
	// peers are the configured sessions', ranges the ranges' (for their
	// dynamic neighbours); resolved caches the lookup by peer.
	peers    map[netip.Addr]peerImport
	ranges   map[netip.Prefix]peerImport
	resolved map[netip.Addr]peerImport
}

// routerEvaluates reports whether the router applies the import policy
// (the speaker then accepts everything).
func (l *loop) routerEvaluates() bool {
	return l.pathMode && global(l.local).ExportPolicy == ExportLocalOnly
}

// speakerPolicy is the policy the speaker gets for a session: the
// session's, without the import chain when the router evaluates it.
func (l *loop) speakerPolicy(source string, ebgp bool) routepolicy.Policy {
	p := l.sessionPolicy(source, ebgp)
	if l.routerEvaluates() {
		p.Import = routepolicy.Chain{}
		// The export chain's filters without their import rules: a
		// change of those is no change for the speaker.
		fs := make([]*routepolicy.Filter, len(p.Export.Filters))
		for i, f := range p.Export.Filters {
			ef := &routepolicy.Filter{Name: f.Name}
			ef.Rules[routepolicy.Export] = f.Rules[routepolicy.Export]
			fs[i] = ef
		}
		p.Export.Filters = fs
	}
	return p
}

// routerImport is the chain the router applies to a session's paths.
func (l *loop) routerImport(source string, ebgp bool) peerImport {
	if !l.routerEvaluates() {
		return peerImport{ebgp: ebgp}
	}
	return peerImport{chain: l.sessionPolicy(source, ebgp).Import, ebgp: ebgp}
}

// importOf returns the import of a peer's session: its configured
// session's, else its range's (the longest that holds it). A path from an
// address the router has no session for is rejected.
func (l *loop) importOf(a netip.Addr) peerImport {
	ri := &l.ribImport
	if pi, ok := ri.resolved[a]; ok {
		return pi
	}
	pi, ok := ri.peers[a]
	if !ok {
		pi = peerImport{chain: routepolicy.Chain{Reject: true}}
		bits := -1
		for p, rpi := range ri.ranges {
			if p.Contains(a) && p.Bits() > bits {
				pi, bits = rpi, p.Bits()
			}
		}
	}
	if ri.resolved == nil {
		ri.resolved = map[netip.Addr]peerImport{}
	}
	ri.resolved[a] = pi
	return pi
}

// refreshImports takes the sessions' import chains after a reconcile of
// the peers and evaluates again the paths of every peer whose chain
// changed: the prefixes whose best paths change go to the kernel.
func (l *loop) refreshImports() {
	if !l.pathMode {
		return
	}
	peers := make(map[netip.Addr]peerImport, len(l.running))
	for a, s := range l.running {
		peers[a] = l.routerImport(s.Source, s.EBGP)
	}
	ranges := make(map[netip.Prefix]peerImport, len(l.ranges))
	for p, r := range l.ranges {
		ranges[p] = l.routerImport(r.Source, r.EBGP)
	}
	old := l.ribImport
	l.ribImport = ribImports{peers: peers, ranges: ranges}
	changed := map[netip.Addr]peerImport{}
	for a, was := range old.resolved {
		if now := l.importOf(a); !importEqual(was, now) {
			changed[a] = now
		}
	}
	if len(changed) == 0 {
		return
	}
	for a, pi := range changed {
		l.lg.Info("import policy changed: evaluating the peer's paths again", logKeyPeer, a, logKeyFilters, chainNames(pi.chain))
	}
	l.rib.reevaluate(changed, l.markImport)
}

func importEqual(a, b peerImport) bool {
	return a.ebgp == b.ebgp && reflect.DeepEqual(a.chain, b.chain)
}

func chainNames(c routepolicy.Chain) string {
	return filterNames(routepolicy.Policy{Import: c})
}

// takeReceived applies the queued received-path changes.
func (l *loop) takeReceived() {
	rs := l.recvQ.take(l.recvSpare)
	l.onReceived(rs)
	l.recvSpare = spareQueue(rs)
}

// onReceived records received paths and marks the prefixes whose
// accepted paths changed for the kernel, which gets their best paths
// (bestOf) at the next reconcile.
func (l *loop) onReceived(rs []Received) {
	for i := range rs {
		r := &rs[i]
		if r.EndOfRIB.IsValid() {
			l.onPeer(PeerEvent{Address: r.EndOfRIB, EndOfRIB: true})
			continue
		}
		var changed bool
		if r.Withdrawn {
			changed = l.rib.remove(r.Prefix, r.Peer)
		} else {
			changed = l.rib.set(r.Prefix, r.Path, l.importOf(r.Peer))
		}
		if changed {
			l.markImport(r.Prefix)
		}
	}
}

// forgetRIB drops the received paths (the speaker that sent them is
// gone).
func (l *loop) forgetRIB() {
	l.rib = newAdjRIB()
	l.ribImport.resolved = nil
	l.recvSpare = spareQueue(l.recvQ.take(l.recvSpare))
}

// acceptedCounts puts the router's count of accepted paths into the
// speaker's peer counters when the router evaluates the import policy
// (the speaker's count is taken before it).
func (l *loop) acceptedCounts(ps []PeerStatus) {
	if !l.routerEvaluates() {
		return
	}
	for i := range ps {
		ps[i].PrefixesAccepted = l.rib.accepted[ps[i].Address]
	}
}

// ribView returns, for `bgpfabric routes`, the received paths the router
// accepted for each prefix (as the import policy changed them), best
// first, when the router evaluates the import policy; nil otherwise.
func (l *loop) ribView() map[netip.Prefix][]Path {
	if !l.routerEvaluates() {
		return nil
	}
	out := make(map[netip.Prefix][]Path, len(l.rib.dests))
	for pfx, paths := range l.rib.dests {
		var cand []*ribPath
		for i := range paths {
			if paths[i].accepted {
				cand = append(cand, &paths[i])
			}
		}
		slices.SortStableFunc(cand, func(a, b *ribPath) int { return -better(a, b) })
		ps := make([]Path, 0, len(cand))
		for i, c := range cand {
			p := c.out()
			p.Best = i == 0
			ps = append(ps, p)
		}
		out[pfx] = ps
	}
	return out
}
