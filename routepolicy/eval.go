package routepolicy

import (
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
)

// Route is what a rule sees of a route, and what an Accept rule changes.
type Route struct {
	// Family is Unicast (the V4 and V6 lists by Prefix) or a VPN family.
	Family VPNFamily
	// Prefix: a unicast or VPN route's (for VPN, inside the RD); unset
	// for EVPN.
	Prefix netip.Prefix
	// FromPeer is set on routes learned from a BGP peer (Source
	// RemotePeers), not on the ones this router originates.
	FromPeer    bool
	Communities []api.Community
	LocalPref   uint32
	MED         uint32
	ASPath      []uint32
	// VPN and EVPN routes: the RD, the route targets, an EVPN route's type.
	RD           api.RouteTarget
	RouteTargets []api.RouteTarget
	RouteType    uint8
}

// rulesFor returns the rules of f that apply to r in direction dir.
func (r *Route) rulesFor(f *Filter, dir Direction) []Rule {
	if r.Family != Unicast {
		return f.VPNRulesFor(dir, r.Family)
	}
	return f.RulesFor(dir, r.Prefix.Addr().Is6())
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
	for _, f := range c.Filters {
		rules := r.rulesFor(f, dir)
		for i := range rules {
			rule := &rules[i]
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
	if !rule.NoPrefix && !rule.matchesPrefix(r.Prefix) {
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
	if len(rule.RouteTargets) > 0 && !slices.ContainsFunc(rule.RouteTargets, func(t api.RouteTarget) bool {
		return slices.Contains(r.RouteTargets, t)
	}) {
		return false
	}
	if len(rule.RDs) > 0 && !slices.Contains(rule.RDs, r.RD) {
		return false
	}
	if len(rule.RouteTypes) > 0 && !slices.Contains(rule.RouteTypes, r.RouteType) {
		return false
	}
	return true
}

// matchesPrefix is the CIDR and length conditions.
func (rule *Rule) matchesPrefix(p netip.Prefix) bool {
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
	if len(rule.RemoveRouteTargets) > 0 || len(rule.AddRouteTargets) > 0 {
		rts := slices.DeleteFunc(slices.Clone(r.RouteTargets), func(t api.RouteTarget) bool {
			return slices.Contains(rule.RemoveRouteTargets, t)
		})
		for _, t := range rule.AddRouteTargets {
			if !slices.Contains(rts, t) {
				rts = append(rts, t)
			}
		}
		r.RouteTargets = rts
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
