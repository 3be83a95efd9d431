package reflector

import (
	"net/netip"
	"slices"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// roleClass is the outbound policy class of a peer.
type roleClass uint8

const (
	roleClient    roleClass = iota // iBGP route-reflector client
	roleNonClient                  // iBGP, not a client
	roleEBGP
)

func (r roleClass) String() string {
	return [...]string{"client", "non-client", "ebgp"}[r]
}

func (rp *ribPeer) role() roleClass {
	switch {
	case rp.ebgp:
		return roleEBGP
	case rp.client:
		return roleClient
	}
	return roleNonClient
}

// exportable applies the RFC 4456 rules: routes from clients and from eBGP
// go to everyone, routes from non-clients only to clients and eBGP peers.
func exportable(src *ribPeer, to roleClass) bool {
	return src.ebgp || src.client || to != roleNonClient
}

// outAttrs is an attrs as exported to one class of group, encoded once.
type outAttrs struct {
	to        roleClass
	rule      *xrule     // the export rule whose changes it carries, or nil
	origID    uint32     // ORIGINATOR_ID we add when reflecting
	localAddr netip.Addr // next hop we set for eBGP
	// bytes are the encoded path attributes, with NEXT_HOP for an IPv4 next
	// hop; an IPv6 next hop goes into MP_REACH_NLRI at encoding.
	bytes              []byte
	nextHop, nextHopLL netip.Addr
	// rawNH and extra as in attrs (generic families): the next hop goes
	// out unchanged.
	rawNH, extra string
}

// exporter builds outAttrs; it holds the local identity.
type exporter struct {
	asn       uint32
	clusterID uint32
	gshut     bool // graceful shutdown: see gshut.go
}

// export returns the attributes of path p as sent to a group of role to
// whose local address (for next-hop-self) is localAddr, changed by the
// export rule that accepted it (nil: none). Results are cached on the
// attrs, which the RIB frees when no path uses them.
func (e *exporter) export(p *path, to roleClass, localAddr netip.Addr, rule *xrule) *outAttrs {
	a := p.a
	var origID uint32
	switch {
	case to == roleEBGP:
		origID = 0
	case !p.src.ebgp && !a.hasOriginator:
		origID = p.src.routerID
	}
	if to != roleEBGP {
		localAddr = netip.Addr{}
	}
	for _, o := range a.out {
		if o.to == to && o.origID == origID && o.localAddr == localAddr && o.rule == rule {
			return o
		}
	}
	o := &outAttrs{to: to, origID: origID, localAddr: localAddr, nextHop: a.nextHop, nextHopLL: a.nextHopLL, rule: rule,
		rawNH: a.rawNH, extra: a.extra}
	cache := a
	if rule != nil {
		a = rule.modify(a, p.src.ebgp, to == roleEBGP)
	}
	var list []bgp.PathAttributeInterface
	switch {
	case to == roleEBGP:
		list = e.toEBGP(a)
		if rule != nil && rule.setMED { // a MED the policy sets goes to eBGP too
			list = append(list, bgp.NewPathAttributeMultiExitDisc(rule.med))
		}
		if localAddr.IsValid() && localAddr.Is4() == a.nextHop.Is4() {
			o.nextHop, o.nextHopLL = localAddr, netip.Addr{}
		}
	case p.src.ebgp:
		list = append(slices.Clone(a.list), bgp.NewPathAttributeLocalPref(a.localPref))
	default:
		list = e.reflect(a, origID)
	}
	if e.gshut {
		list = withGracefulShutdown(list, to != roleEBGP)
	}
	if o.nextHop.Is4() {
		list = append(list, bgp.NewPathAttributeNextHop(o.nextHop.String()))
	}
	slices.SortStableFunc(list, func(x, y bgp.PathAttributeInterface) int {
		return int(x.GetType()) - int(y.GetType())
	})
	for _, pa := range list {
		if b, err := pa.Serialize(); err == nil {
			o.bytes = append(o.bytes, b...)
		}
	}
	cache.out = append(cache.out, o)
	return o
}

// reflect adds ORIGINATOR_ID when absent and prepends our CLUSTER_ID; it
// never touches NEXT_HOP, LOCAL_PREF or MED.
func (e *exporter) reflect(a *attrs, origID uint32) []bgp.PathAttributeInterface {
	list := make([]bgp.PathAttributeInterface, 0, len(a.list)+2)
	cl := []string{uintToAddr(e.clusterID).String()}
	for _, p := range a.list {
		if c, ok := p.(*bgp.PathAttributeClusterList); ok {
			for _, ip := range c.Value {
				cl = append(cl, ip.String())
			}
			continue
		}
		list = append(list, p)
	}
	if !a.hasOriginator {
		list = append(list, bgp.NewPathAttributeOriginatorId(uintToAddr(origID).String()))
	}
	return append(list, bgp.NewPathAttributeClusterList(cl))
}

// toEBGP prepends our AS and strips LOCAL_PREF, MED and the reflection
// attributes.
func (e *exporter) toEBGP(a *attrs) []bgp.PathAttributeInterface {
	list := make([]bgp.PathAttributeInterface, 0, len(a.list))
	prepended := false
	for _, p := range a.list {
		switch v := p.(type) {
		case *bgp.PathAttributeLocalPref, *bgp.PathAttributeMultiExitDisc,
			*bgp.PathAttributeOriginatorId, *bgp.PathAttributeClusterList:
			continue
		case *bgp.PathAttributeAsPath:
			p = prependAS(v, e.asn)
			prepended = true
		}
		list = append(list, p)
	}
	if !prepended {
		list = append(list, prependAS(&bgp.PathAttributeAsPath{}, e.asn))
	}
	return list
}

func prependAS(p *bgp.PathAttributeAsPath, asn uint32) *bgp.PathAttributeAsPath {
	segs := make([]bgp.AsPathParamInterface, 0, len(p.Value)+1)
	if len(p.Value) > 0 && p.Value[0].GetType() == bgp.BGP_ASPATH_ATTR_TYPE_SEQ && len(p.Value[0].GetAS()) < 255 {
		segs = append(segs, bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, append([]uint32{asn}, p.Value[0].GetAS()...)))
		segs = append(segs, p.Value[1:]...)
	} else {
		segs = append(segs, bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{asn}))
		segs = append(segs, p.Value...)
	}
	return bgp.NewPathAttributeAsPath(segs)
}
