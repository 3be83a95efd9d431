package peering

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// PeerRange is a range of dynamic neighbours that a node should accept: any
// router that connects from an address inside Prefix (a BGPPeer's
// peerPrefix). The node never connects to them, it only waits. Every node
// that a peerPrefix BGPPeer selects has the range, as BIRD's `neighbor
// range` and FRR's `bgp listen range`: a route reflector (reflector/, or
// router/ on a node with a cluster ID) takes an iBGP range's routers as its
// clients; any other node takes them as plain iBGP neighbours, and an eBGP
// range's as eBGP neighbours.
//
// A session with an address that the node also has as a Session (a node
// of the fabric, a peerIP) is that Session: the explicit one wins.
type PeerRange struct {
	Prefix netip.Prefix
	// PeerAS is the BGPPeer's asNumber, else the node's own AS (iBGP).
	PeerAS  uint32
	LocalAS uint32
	EBGP    bool
	// Type is reflectorClient for iBGP ranges of a route reflector (the
	// routers that connect are its clients), else the BGPPeer's kind
	// (global or node).
	Type api.BGPPeerType
	// Source is the name of the BGPPeer.
	Source string
	// RouteReflectorClient and ClusterID are set on iBGP ranges of a
	// route reflector: the routers that connect are clients of its
	// cluster.
	RouteReflectorClient bool
	ClusterID            netip.Addr
	// The settings are a Session's, from the BGPPeer and the global
	// BGPConfiguration (KeepOriginalNextHop for eBGP only).
	HoldTime            time.Duration
	KeepaliveTime       time.Duration
	GracefulRestart     GracefulRestart
	Password            SecretRef
	KeepOriginalNextHop bool
	// NextHopSelf sets our address as the next hop of every route sent
	// (iBGP only: BGPPeer nextHopMode Self).
	NextHopSelf  bool
	MaxPrefixes  uint32
	TTLSecurity  uint8
	EBGPMultihop uint8
	// Families are as a Session's (route reflectors only).
	Families string
}

// String renders the range on one line, as Session.String does, e.g.
// "10.1.0.0/16 reflectorClient iBGP as 64512 bgppeer racks rr-client
// cluster 10.0.0.1".
func (r PeerRange) String() string {
	var b strings.Builder
	kind := "iBGP"
	if r.EBGP {
		kind = "eBGP"
	}
	fmt.Fprintf(&b, "%s %s %s", r.Prefix, r.Type, kind)
	if r.EBGP {
		fmt.Fprintf(&b, " as %d->%d", r.LocalAS, r.PeerAS)
	} else {
		fmt.Fprintf(&b, " as %d", r.PeerAS)
	}
	fmt.Fprintf(&b, " bgppeer %s", r.Source)
	if r.RouteReflectorClient {
		fmt.Fprintf(&b, " rr-client cluster %s", r.ClusterID)
	}
	writeOptions(&b, r.Password, r.KeepOriginalNextHop, r.MaxPrefixes, r.TTLSecurity, r.EBGPMultihop)
	if r.NextHopSelf {
		b.WriteString(" next-hop-self")
	}
	if r.Families != "" {
		b.WriteString(" families " + r.Families)
	}
	return b.String()
}

// peerRange adds the range that peerPrefix BGPPeer p gives this node.
func (b *builder) peerRange(p *peer, typ api.BGPPeerType) {
	n := b.n
	f := familyOf(p.prefix.Addr())
	if !n.addr(f).IsValid() {
		b.warn(api.KindBGPPeer, p.name, "Node %s has no %s address to accept peers from %s on", n.name, f, p.prefix)
		return
	}
	c := &b.m.cfg
	r := PeerRange{
		Prefix:        p.prefix,
		PeerAS:        n.as,
		LocalAS:       p.localAS(n),
		Type:          typ,
		Source:        p.name,
		HoldTime:      p.s.hold,
		KeepaliveTime: p.s.keepalive,
		// Graceful restart is global, as for every session.
		GracefulRestart:     c.gr,
		Password:            p.s.password,
		KeepOriginalNextHop: p.s.keepNextHop,
		NextHopSelf:         p.s.nextHopSelf,
		MaxPrefixes:         p.s.maxPrefixes,
		TTLSecurity:         p.s.ttlSecurity,
		EBGPMultihop:        p.s.ebgpMultihop,
	}
	if p.as != nil {
		r.PeerAS = *p.as
	}
	r.EBGP = r.PeerAS != r.LocalAS
	if r.EBGP {
		r.NextHopSelf = false
	} else {
		r.KeepOriginalNextHop = false
		if n.isReflector() {
			r.RouteReflectorClient, r.ClusterID = true, n.clusterID
			r.Type = api.PeerTypeReflectorClient
		}
	}
	if n.isReflector() {
		r.Families = p.s.families
	}
	b.ranges = append(b.ranges, r)
}

// peerRanges returns the first range offered for each prefix, sorted by
// prefix (IPv4 first, then by address and length). A later one from
// another BGPPeer with other settings is reported as shadowed.
func (b *builder) peerRanges() []PeerRange {
	if len(b.ranges) == 0 {
		return nil
	}
	var out []PeerRange
	for _, r := range b.ranges {
		i := slices.IndexFunc(out, func(o PeerRange) bool { return o.Prefix == r.Prefix })
		if i < 0 {
			out = append(out, r)
			continue
		}
		w := out[i]
		cw, cr := w, r
		cw.Type, cw.Source, cr.Type, cr.Source = "", "", "", ""
		if cw != cr {
			b.warn(api.KindBGPPeer, r.Source, "Node %s: the peers from %s come from BGPPeer %s instead, whose settings differ", b.n.name, r.Prefix, w.Source)
		}
	}
	slices.SortFunc(out, comparePeerRanges)
	return out
}

// RangeDelta is what turns one set of peer ranges into another.
type RangeDelta struct {
	// Add and Remove are ranges whose prefix is only in the desired, or
	// only in the running set.
	Add, Remove []PeerRange
	// Update are ranges whose prefix is in both but whose settings
	// differ.
	Update []RangeUpdate
}

// RangeUpdate is one range whose settings changed.
type RangeUpdate struct {
	Old, New PeerRange
	// Reset says that the speaker must configure the range again, which
	// ends the sessions it accepted (their routers connect again, with the
	// new settings): any change but Type and Source, which only describe
	// the range. A speaker applies a range's settings when a router
	// connects, so even a limit like MaxPrefixes is not changed live.
	Reset bool
}

// Empty reports whether there is nothing to do.
func (d RangeDelta) Empty() bool { return len(d.Add) == 0 && len(d.Remove) == 0 && len(d.Update) == 0 }

// DiffRanges compares the running peer ranges with the desired ones, keyed
// by prefix (one range per prefix, as a speaker holds them). If a list has
// two ranges with one prefix, the last counts. Each list in the delta is
// sorted as Result.PeerRanges.
func DiffRanges(running, desired []PeerRange) RangeDelta {
	var d RangeDelta
	d.Add, d.Remove = diffKeyed(running, desired, func(r PeerRange) netip.Prefix { return r.Prefix }, comparePeerRanges,
		func(o, r PeerRange) {
			co, cr := o, r
			co.Type, co.Source, cr.Type, cr.Source = "", "", "", ""
			d.Update = append(d.Update, RangeUpdate{Old: o, New: r, Reset: co != cr})
		})
	slices.SortFunc(d.Update, func(a, b RangeUpdate) int { return comparePeerRanges(a.New, b.New) })
	return d
}

// comparePeerRanges orders ranges by prefix: IPv4 first, then by address
// and length.
func comparePeerRanges(x, y PeerRange) int {
	if c := x.Prefix.Addr().Compare(y.Prefix.Addr()); c != 0 {
		return c
	}
	return x.Prefix.Bits() - y.Prefix.Bits()
}
