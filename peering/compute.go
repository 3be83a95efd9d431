package peering

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
)

// Compute returns the sessions that one node should have. It is New
// followed by Model.Compute; to compute many nodes of one fabric, build the
// Model once (or call Fabric).
func Compute(in Input, node string) (Result, error) {
	m, err := New(in)
	if err != nil {
		return Result{}, err
	}
	return m.Compute(node)
}

// ReflectorSessions is Compute for a route reflector: a reflector is just
// a node with a cluster ID, and its client sessions come from the same
// rules as every other node's sessions, so that reflectors, routers and
// the simulator always agree. It fails if the node is not a reflector.
func ReflectorSessions(in Input, node string) (Result, error) {
	r, err := Compute(in, node)
	if err != nil {
		return Result{}, err
	}
	if !r.Local.IsReflector() {
		return Result{}, fmt.Errorf("Node %s has no spec.bgp.routeReflectorClusterID: it is not a route reflector", node)
	}
	return r, nil
}

// Fabric computes the sessions of every BGP node at once, keyed by node
// name. See Model.Fabric.
func Fabric(in Input) (map[string]Result, error) {
	m, err := New(in)
	if err != nil {
		return nil, err
	}
	return m.Fabric()
}

// Fabric returns the Result of every BGP node that can speak BGP; the
// error lists the nodes that cannot (they are missing from the map).
func (m *Model) Fabric() (map[string]Result, error) {
	out := make(map[string]Result, len(m.nodes))
	for _, n := range m.nodes {
		out[n.name] = m.compute(n)
	}
	var errs []error
	for _, name := range m.Nodes() {
		if err := m.broken[name]; err != nil {
			errs = append(errs, fmt.Errorf("Node %s: %w", name, err))
		}
	}
	return out, errors.Join(errs...)
}

// Compute returns the sessions of the named node.
func (m *Model) Compute(name string) (Result, error) {
	if err := m.broken[name]; err != nil {
		return Result{}, fmt.Errorf("Node %s: %w", name, err)
	}
	n := m.byName[name]
	if n == nil {
		return Result{}, fmt.Errorf("no BGP-speaking Node named %q (a Node needs spec.bgp to peer)", name)
	}
	return m.compute(n), nil
}

// builder collects one node's candidate sessions in order of precedence;
// sessions then keeps the first candidate for each peer address.
type builder struct {
	m        *Model
	n        *node
	cands    []Session
	ranges   []PeerRange // in order of precedence, as cands
	warnings []Warning
}

func (m *Model) compute(n *node) Result {
	b := &builder{m: m, n: n}
	// 1. Global BGPPeers, 2. BGPPeers for this node (node or nodeSelector),
	// 3. reverse sessions of BGPPeers whose peer side is this node,
	// 4. the node-to-node mesh. Within each, BGPPeers in name order.
	for _, p := range m.peers {
		if p.global {
			b.forward(p, api.PeerTypeGlobal)
		}
	}
	for _, p := range m.peers {
		if !p.global && p.inLocal[n.i] {
			b.forward(p, api.PeerTypeNode)
		}
	}
	for _, p := range m.peers {
		if p.inReverse[n.i] {
			b.reverse(p)
		}
	}
	if m.cfg.mesh && !n.isReflector() {
		b.mesh()
	}
	sessions := b.sessions()
	ranges := b.peerRanges()
	if n.isReflector() && len(sessions) == 0 && len(ranges) == 0 {
		b.warn(api.KindNode, n.name, "route reflector has no sessions: reflectors are left out of the node-to-node mesh; select them with a BGPPeer peerSelector")
	}
	ws := slices.Clone(m.warnings)
	if len(b.warnings) > 0 {
		ws = append(ws, b.warnings...)
		slices.SortFunc(ws, compareWarnings)
		ws = slices.Compact(ws)
	}
	return Result{
		Local: Local{
			Node:       n.name,
			AS:         n.as,
			RouterID:   n.routerID,
			IPv4:       n.prefix[v4],
			IPv6:       n.prefix[v6],
			ListenPort: n.port,
			ClusterID:  n.clusterID,
		},
		Sessions:   sessions,
		PeerRanges: ranges,
		Warnings:   ws,
	}
}

func (b *builder) warn(kind, name, format string, args ...any) {
	b.warnings = append(b.warnings, Warning{Kind: kind, Name: name, Msg: fmt.Sprintf(format, args...)})
}

// forward adds the sessions that BGPPeer p gives this node.
func (b *builder) forward(p *peer, typ api.BGPPeerType) {
	n := b.n
	if p.prefix.IsValid() {
		b.peerRange(p, typ)
		return
	}
	if p.ip.IsValid() {
		f := familyOf(p.ip)
		local := n.addr(f)
		switch {
		case p.ip == local:
			return // ourselves
		case !local.IsValid():
			b.warn(api.KindBGPPeer, p.name, "Node %s has no %s address to peer with %s from", n.name, f, p.ip)
			return
		}
		s := b.base(f, typ)
		s.PeerAddress, s.PeerPort, s.PeerAS = p.ip, p.port, *p.as
		s.LocalAS = p.localAS(n)
		if r := p.ipNode; r != nil {
			s.PeerNode, s.PeerClusterID = r.name, r.clusterID
			if s.PeerPort == 0 {
				s.PeerPort = r.port
			}
			// Only wait for the peer if it has the reverse session.
			s.Passive = p.inReverse[r.i] && p.ip.Compare(local) > 0
		}
		if s.PeerPort == 0 {
			s.PeerPort = api.DefaultListenPort
		}
		b.offer(b.finish(s, p))
		return
	}
	b.cands = slices.Grow(b.cands, 2*len(p.remote))
	for _, r := range p.remote {
		if r == n {
			continue
		}
		for _, f := range []family{v4, v6} {
			switch {
			case !n.addr(f).IsValid():
			case !r.addr(f).IsValid():
				b.warn(api.KindBGPPeer, p.name, "selected Node %s has no %s address: no %s session with it from Node %s", r.name, f, f, n.name)
			default:
				as := r.as
				if p.as != nil {
					as = *p.as
				}
				s := b.toNode(r, f, typ, as)
				s.LocalAS = p.localAS(n)
				b.offer(b.finish(s, p))
			}
		}
	}
}

// localAS is the AS node n uses on BGPPeer p's sessions: the peer's
// localASNumber, or n's own.
func (p *peer) localAS(n *node) uint32 {
	if p.s.localAS != 0 {
		return p.s.localAS
	}
	return n.as
}

// reverse adds the sessions back to the nodes that have BGPPeer p's
// sessions with this node, so that both ends of a session between two
// nodes are configured (as Calico does): this is how a route reflector
// that compute nodes select gets its client sessions. A peerSelector peer
// reverses over both families, a peerIP peer over that address's.
func (b *builder) reverse(p *peer) {
	fams := []family{v4, v6}
	if p.ip.IsValid() {
		fams = []family{familyOf(p.ip)}
	}
	b.cands = slices.Grow(b.cands, len(fams)*len(p.local))
	for _, r := range p.local {
		if r == b.n {
			continue
		}
		for _, f := range fams {
			if b.n.addr(f).IsValid() && r.addr(f).IsValid() {
				// r uses p's localASNumber on this session.
				b.offer(b.finish(b.toNode(r, f, api.PeerTypeNode, p.localAS(r)), p))
			}
		}
	}
}

// mesh adds a session with every other node that is not a route
// reflector, per family that both have (Calico's node-to-node mesh).
func (b *builder) mesh() {
	b.cands = slices.Grow(b.cands, 2*len(b.m.nodes))
	for _, r := range b.m.nodes {
		if r == b.n || r.isReflector() {
			continue
		}
		for _, f := range []family{v4, v6} {
			if b.n.addr(f).IsValid() && r.addr(f).IsValid() {
				b.offer(b.finish(b.toNode(r, f, api.PeerTypeMesh, r.as), nil))
			}
		}
	}
}

// base is a session of this node over family f with the global settings.
func (b *builder) base(f family, typ api.BGPPeerType) Session {
	c := &b.m.cfg
	return Session{
		LocalAS:         b.n.as,
		LocalAddress:    b.n.addr(f),
		Type:            typ,
		Source:          SourceMesh,
		HoldTime:        c.hold,
		KeepaliveTime:   c.keepalive,
		GracefulRestart: c.gr,
		BFD:             c.bfd.effective(),
	}
}

// toNode is a session with node r over family f.
func (b *builder) toNode(r *node, f family, typ api.BGPPeerType, as uint32) Session {
	s := b.base(f, typ)
	s.PeerAddress, s.PeerPort, s.PeerAS = r.addr(f), r.port, as
	s.PeerNode, s.PeerClusterID = r.name, r.clusterID
	s.Passive = s.PeerAddress.Compare(s.LocalAddress) > 0
	return s
}

// finish applies BGPPeer p's settings (p is nil for the mesh) and the
// eBGP and route-reflector rules.
func (b *builder) finish(s Session, p *peer) Session {
	if p != nil {
		s.Source = p.name
		if p.s.sourceNone {
			s.LocalAddress = netip.Addr{}
		}
		s.Password = p.s.password
		s.KeepOriginalNextHop = p.s.keepNextHop
		s.NextHopSelf = p.s.nextHopSelf
		s.MaxPrefixes = p.s.maxPrefixes
		s.HoldTime, s.KeepaliveTime = p.s.hold, p.s.keepalive
		s.TTLSecurity, s.EBGPMultihop = p.s.ttlSecurity, p.s.ebgpMultihop
		s.BFD = p.s.bfd.effective()
		if b.n.isReflector() {
			s.Families = p.s.families
		}
	}
	s.EBGP = s.PeerAS != s.LocalAS
	if s.EBGP {
		s.NextHopSelf = false // always, as eBGP does
	} else {
		s.KeepOriginalNextHop = false
		local := b.n.clusterID
		switch {
		case local.IsValid() && s.PeerClusterID != local:
			s.RouteReflectorClient, s.ClusterID = true, local
			s.Type = api.PeerTypeReflectorClient
		case s.PeerClusterID.IsValid() && s.PeerClusterID != local:
			s.Type = api.PeerTypeReflector
		}
	}
	return s
}

// offer adds a candidate session, after those that take precedence.
func (b *builder) offer(s Session) { b.cands = append(b.cands, s) }

// candidate orders the candidates by peer address, then precedence.
type candidate struct {
	addr netip.Addr
	i    int
}

// sessions returns the first candidate for each peer address, sorted by
// address. A later candidate from another BGPPeer with other settings is
// reported as shadowed.
func (b *builder) sessions() []Session {
	keys := make([]candidate, len(b.cands))
	for i := range b.cands {
		keys[i] = candidate{b.cands[i].PeerAddress, i}
	}
	slices.SortFunc(keys, func(x, y candidate) int {
		if c := x.addr.Compare(y.addr); c != 0 {
			return c
		}
		return x.i - y.i
	})
	unique := 0
	for j := range keys {
		if j == 0 || keys[j].addr != keys[j-1].addr {
			unique++
		}
	}
	out := make([]Session, 0, unique)
	for j, k := range keys {
		s := &b.cands[k.i]
		if j == 0 || k.addr != keys[j-1].addr {
			out = append(out, *s)
			continue
		}
		w := &out[len(out)-1]
		if s.Source == SourceMesh || s.Source == w.Source {
			continue
		}
		cw, cs := *w, *s
		cw.Type, cw.Source, cs.Type, cs.Source = "", "", "", ""
		if cw != cs {
			b.warn(api.KindBGPPeer, s.Source, "Node %s: the session with %s comes from BGPPeer %s instead, whose settings differ", b.n.name, s.PeerAddress, w.Source)
		}
	}
	return out
}
