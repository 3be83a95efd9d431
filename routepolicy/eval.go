package routepolicy

import (
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
)

// Route is what a rule sees of a route, and what an Accept rule changes.
type Route struct {
	Prefix netip.Prefix
	// FromPeer is set on routes learned from a BGP peer (Source
	// RemotePeers), not on the ones this router originates.
	FromPeer    bool
	Communities []api.Community
	LocalPref   uint32
	MED         uint32
	ASPath      []uint32
}

// Chain is what one session applies in one direction.
type Chain struct {
	Filters []*Filter
	// Reject is the default: what happens to a route no rule decides
	// (the zero Chain accepts everything).
	Reject bool
}

// Evaluate runs the chain on a route and returns whether it is accepted
// and, if so, the route as changed by the accepting rule (r is not
// modified).
func (c Chain) Evaluate(dir Direction, r Route) (Route, bool) {
	v6 := r.Prefix.Addr().Is6()
	for _, f := range c.Filters {
		for i := range f.RulesFor(dir, v6) {
			rule := &f.RulesFor(dir, v6)[i]
			if !rule.Matches(r) {
				continue
			}
			if !rule.Accept {
				return Route{}, false
			}
			return rule.Apply(r), true
		}
	}
	return r, !c.Reject
}

// Matches reports whether every condition of the rule holds for r.
func (rule *Rule) Matches(r Route) bool {
	p := r.Prefix
	inLen := p.Bits() >= rule.MinLen && p.Bits() <= rule.MaxLen
	switch rule.Op {
	case OpNone:
		if !inLen {
			return false
		}
	case OpIn, OpNotIn:
		in := inLen && p.Bits() >= rule.CIDR.Bits() && rule.CIDR.Contains(p.Addr())
		if in != (rule.Op == OpIn) {
			return false
		}
	case OpEqual, OpNotEqual:
		if (p == rule.CIDR) != (rule.Op == OpEqual) {
			return false
		}
	default:
		return false
	}
	if rule.FromPeersOnly && !r.FromPeer {
		return false
	}
	if len(rule.Communities) > 0 && !slices.ContainsFunc(rule.Communities, func(c api.Community) bool {
		return slices.Contains(r.Communities, c)
	}) {
		return false
	}
	return true
}

// Apply returns r changed by an Accept rule's actions.
func (rule *Rule) Apply(r Route) Route {
	if len(rule.AddCommunities) > 0 {
		comms := slices.Clone(r.Communities)
		for _, c := range rule.AddCommunities {
			if !slices.Contains(comms, c) {
				comms = append(comms, c)
			}
		}
		r.Communities = comms
	}
	if rule.LocalPref != nil {
		r.LocalPref = *rule.LocalPref
	}
	if rule.MED != nil {
		r.MED = *rule.MED
	}
	if rule.PrependRepeat > 0 {
		path := make([]uint32, 0, rule.PrependRepeat+len(r.ASPath))
		for range rule.PrependRepeat {
			path = append(path, rule.PrependAS)
		}
		r.ASPath = append(path, r.ASPath...)
	}
	return r
}
