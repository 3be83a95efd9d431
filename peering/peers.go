package peering

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

// peer is a BGPPeer, parsed, with its selectors evaluated against every
// node.
type peer struct {
	name string
	// global peers (neither node nor nodeSelector) apply to every node.
	global bool
	// local are the nodes that have the session (every node when global);
	// inLocal is the same as a set indexed by node.i.
	local   []*node
	inLocal []bool
	// The remote end is ip (with port, 0 if not given) or, with a
	// peerSelector, the nodes in remote.
	ip   netip.Addr
	port uint16
	// ipNode is the Node that owns ip, if any.
	ipNode *node
	remote []*node
	// prefix is the peerPrefix: the range of dynamic neighbours, instead
	// of ip or remote.
	prefix netip.Prefix
	// inReverse are the nodes that get the reverse sessions, to every node
	// of local: the remote nodes, or ipNode if its AS and port agree.
	inReverse []bool
	as        *uint32
	s         settings
}

// settings are what a BGPPeer sets on each of its sessions.
type settings struct {
	sourceNone      bool
	password        SecretRef
	keepNextHop     bool
	nextHopSelf     bool
	localAS         uint32 // BGPPeer localASNumber, 0 for the node's
	maxPrefixes     uint32
	hold, keepalive time.Duration
	ttlSecurity     uint8
	ebgpMultihop    uint8
	bfd             BFD
	// families is api.CanonicalFamilies of spec.families; onlyUnicast
	// says that it asks for no family beyond IPv4 and IPv6 unicast.
	families    string
	onlyUnicast bool
}

// parsePeers validates and indexes the BGPPeers, in name order. It must
// run after parseNodes.
func (m *Model) parsePeers(ps []*api.BGPPeer) error {
	sorted := slices.Clone(ps)
	slices.SortStableFunc(sorted, func(a, b *api.BGPPeer) int { return strings.Compare(a.Name, b.Name) })
	var errs []error
	for i, ap := range sorted {
		if i > 0 && sorted[i-1].Name == ap.Name {
			errs = append(errs, errors.New("two BGPPeers are named "+ap.Name))
			continue
		}
		if err := ap.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		m.peers = append(m.peers, m.parsePeer(ap))
	}
	return errors.Join(errs...)
}

// parsePeer indexes a validated BGPPeer.
func (m *Model) parsePeer(ap *api.BGPPeer) *peer {
	s := &ap.Spec
	p := &peer{name: ap.Name, as: s.ASNumber}
	warn := func(format string, args ...any) { m.warn(api.KindBGPPeer, ap.Name, format, args...) }

	// Validate has checked the selectors and the address.
	switch {
	case s.Node != "":
		p.inLocal = make([]bool, len(m.nodes))
		if n := m.byName[s.Node]; n != nil {
			p.local = []*node{n}
			p.inLocal[n.i] = true
		} else {
			warn("spec.node %s is not a BGP node of the fabric", s.Node)
		}
	case s.NodeSelector != "":
		p.local, p.inLocal = m.selectNodes(selector.MustParse(s.NodeSelector))
	default:
		p.global = true
		p.local = m.nodes
	}
	switch {
	case s.PeerPrefix != "":
		// No reverse sessions: the routers in the range are not known.
		p.inReverse = make([]bool, len(m.nodes))
		p.prefix, _ = netip.ParsePrefix(s.PeerPrefix)
	case s.PeerSelector != "":
		p.remote, p.inReverse = m.selectNodes(selector.MustParse(s.PeerSelector))
		if p.as != nil {
			for _, n := range p.remote {
				if n.as != *p.as {
					warn("spec.asNumber %d is not the AS %d of the selected Node %s", *p.as, n.as, n.name)
				}
			}
		}
	default:
		p.inReverse = make([]bool, len(m.nodes))
		p.ip, p.port, _ = api.ParsePeerIP(s.PeerIP)
		if n := m.byAddr[p.ip]; n != nil {
			p.ipNode = n
			switch {
			case *p.as != n.as:
				warn("spec.asNumber %d is not the AS %d of Node %s, whose address peerIP is", *p.as, n.as, n.name)
			case p.port != 0 && p.port != n.port:
				warn("spec.peerIP port %d is not the listen port %d of Node %s, whose address peerIP is", p.port, n.port, n.name)
			default:
				p.inReverse[n.i] = true
			}
		}
	}

	st := &p.s
	st.sourceNone = s.SourceAddress == api.SourceAddressNone
	if pw := s.Password; pw != nil && pw.SecretKeyRef != nil {
		st.password = SecretRef{Name: pw.SecretKeyRef.Name, Key: pw.SecretKeyRef.Key}
	}
	st.keepNextHop = s.KeepOriginalNextHop || s.NextHopMode == api.NextHopModeKeep
	st.nextHopSelf = s.NextHopMode == api.NextHopModeSelf
	if s.LocalASNumber != nil {
		st.localAS = *s.LocalASNumber
	}
	st.maxPrefixes = s.MaxPrefixes
	var fixed string
	st.hold, st.keepalive, fixed = resolveTimers(m.cfg.hold, m.cfg.keepalive, s.HoldTime, s.KeepaliveTime)
	if fixed != "" {
		warn("%s", fixed)
	}
	if s.TTLSecurity != nil {
		st.ttlSecurity = uint8(*s.TTLSecurity)
	}
	if s.EBGPMultihop != nil {
		st.ebgpMultihop = uint8(*s.EBGPMultihop)
	}
	st.bfd = resolveBFD(m.cfg.bfd, s.BFD)
	st.families, st.onlyUnicast = api.CanonicalFamilies(s.Families), api.OnlyUnicast(s.Families)
	if users := p.nonReflectorUsers(m); len(users) > 0 {
		warn("spec.families: families other than ipv4-unicast and ipv6-unicast are carried by route reflectors only, and Nodes %s, which have this BGPPeer's sessions, are not route reflectors (no spec.bgp.routeReflectorClusterID): their sessions carry the unicast family of the peer's address",
			strings.Join(users, ", "))
	}
	return p
}

// nonReflectorUsers returns the names of the Nodes without a cluster ID
// that have sessions or ranges of p, when p asks for a family beyond
// unicast; nil otherwise.
func (p *peer) nonReflectorUsers(m *Model) []string {
	if p.s.onlyUnicast {
		return nil
	}
	var names []string
	for _, n := range m.nodes {
		if !n.isReflector() && (p.inLocal != nil && p.inLocal[n.i] || p.global || p.inReverse[n.i]) {
			names = append(names, n.name)
		}
	}
	return names
}

// NonReflectorUsers returns, for the BGPPeer named peer, the Nodes that
// are not route reflectors but would have its sessions or ranges, when
// its spec.families asks for a family beyond IPv4 and IPv6 unicast (which
// only route reflectors carry); nil when there are none. `bgpfabric apply`
// refuses such a BGPPeer.
func (m *Model) NonReflectorUsers(peer string) []string {
	for _, p := range m.peers {
		if p.name == peer {
			return p.nonReflectorUsers(m)
		}
	}
	return nil
}

// selection is a selector's result over every node: as a list in name
// order and as a set indexed by node.i.
type selection struct {
	list []*node
	set  []bool
}

// selectNodes evaluates a selector against every node, once per distinct
// selector (BGPPeers often share one, such as has(rr)). The result is
// shared: callers must not modify it.
func (m *Model) selectNodes(sel *selector.Selector) ([]*node, []bool) {
	if r, ok := m.selections[sel.String()]; ok {
		return r.list, r.set
	}
	var r selection
	r.set = make([]bool, len(m.nodes))
	for _, n := range m.nodes {
		if sel.Evaluate(n.labels) {
			r.list = append(r.list, n)
			r.set[n.i] = true
		}
	}
	m.selections[sel.String()] = r
	return r.list, r.set
}
