package policy

import (
	"reflect"
	"slices"
	"strings"
)

// changeTracker remembers what changed since the last TakeUpdate, and what
// was sent, so that an Update carries only net changes.
type changeTracker struct {
	endpoints map[EndpointKey]struct{}
	policies  map[PolicyKey]struct{}
	profiles  map[string]struct{}
	sets      map[SetID]struct{} // may have been created or deleted
	// members are net membership changes of sent sets: true is add.
	members map[SetID]map[Member]bool

	sentEndpoints map[EndpointKey]*Endpoint
	sentPolicies  map[PolicyKey]*Rules
	sentProfiles  map[string]*Rules
	sentSets      map[SetID]bool
	sentFailsafes bool
}

func (t *changeTracker) init() {
	t.endpoints = map[EndpointKey]struct{}{}
	t.policies = map[PolicyKey]struct{}{}
	t.profiles = map[string]struct{}{}
	t.sets = map[SetID]struct{}{}
	t.members = map[SetID]map[Member]bool{}
	t.sentEndpoints = map[EndpointKey]*Endpoint{}
	t.sentPolicies = map[PolicyKey]*Rules{}
	t.sentProfiles = map[string]*Rules{}
	t.sentSets = map[SetID]bool{}
}

func (t *changeTracker) endpoint(k EndpointKey) { t.endpoints[k] = struct{}{} }
func (t *changeTracker) policy(k PolicyKey)     { t.policies[k] = struct{}{} }
func (t *changeTracker) profile(name string)    { t.profiles[name] = struct{}{} }
func (t *changeTracker) set(id SetID)           { t.sets[id] = struct{}{} }

// member notes a membership change; changes of sets not sent yet need no
// note, since the whole set goes out.
func (t *changeTracker) member(id SetID, m Member, add bool) {
	if !t.sentSets[id] {
		return
	}
	pm := t.members[id]
	if pm == nil {
		pm = map[Member]bool{}
		t.members[id] = pm
	}
	if prev, ok := pm[m]; ok && prev != add {
		delete(pm, m) // added and removed again: no change
		return
	}
	pm[m] = add
}

// TakeUpdate returns what changed since the previous call (the first call
// returns everything) and starts collecting anew.
func (c *Calculator) TakeUpdate() *Update {
	t := &c.changes
	u := &Update{
		Endpoints: map[EndpointKey]*Endpoint{},
		Policies:  map[PolicyKey]*Rules{},
		Profiles:  map[string]*Rules{},
		IPSets:    map[SetID]*IPSet{},
	}
	if !t.sentFailsafes {
		u.Failsafes = &Failsafes{Inbound: slices.Clone(c.cfg.FailsafeInbound), Outbound: slices.Clone(c.cfg.FailsafeOutbound)}
		t.sentFailsafes = true
	}
	for k := range t.endpoints {
		var cur *Endpoint
		if ep := c.endpoints[k]; ep != nil && ep.local {
			cur = c.program(ep)
		}
		diff(u.Endpoints, t.sentEndpoints, k, cur)
	}
	for k := range t.policies {
		var cur *Rules
		if ps := c.policies[k]; ps != nil && ps.active {
			cur = ps.rules
		}
		diff(u.Policies, t.sentPolicies, k, cur)
	}
	for name := range t.profiles {
		var cur *Rules
		if pr := c.profiles[name]; pr != nil && pr.active {
			cur = pr.rules
		}
		diff(u.Profiles, t.sentProfiles, name, cur)
	}
	for id := range t.sets {
		s, sent := c.sets[id], t.sentSets[id]
		switch {
		case s != nil && !sent:
			u.IPSets[id] = s.snapshot()
			t.sentSets[id] = true
			delete(t.members, id)
		case s == nil && sent:
			u.IPSets[id] = nil
			delete(t.sentSets, id)
			delete(t.members, id)
		}
	}
	for id, pm := range t.members {
		for m, add := range pm {
			u.Members = append(u.Members, MemberDelta{Set: id, Member: m, Add: add})
		}
	}
	slices.SortFunc(u.Members, func(a, b MemberDelta) int {
		if c := strings.Compare(string(a.Set), string(b.Set)); c != 0 {
			return c
		}
		if a.Member.Less(b.Member) {
			return -1
		}
		if b.Member.Less(a.Member) {
			return 1
		}
		return 0
	})
	clear(t.endpoints)
	clear(t.policies)
	clear(t.profiles)
	clear(t.sets)
	clear(t.members)
	return u
}

// diff records cur under k in out if it differs from what was sent.
func diff[K comparable, V any](out, sent map[K]*V, k K, cur *V) {
	prev, had := sent[k]
	switch {
	case cur == nil && had:
		out[k] = nil
		delete(sent, k)
	case cur != nil && (!had || !reflect.DeepEqual(prev, cur)):
		out[k] = cur
		sent[k] = cur
	}
}

func (s *setState) snapshot() *IPSet {
	out := &IPSet{ID: s.id, Selector: s.sel.String(), Members: make([]Member, 0, len(s.members))}
	if s.namedPort != nil {
		np := *s.namedPort
		out.NamedPort = &np
	}
	for m := range s.members {
		out.Members = append(out.Members, m)
	}
	sortMembers(out.Members)
	return out
}

func sortMembers(ms []Member) {
	slices.SortFunc(ms, func(a, b Member) int {
		if a.Less(b) {
			return -1
		}
		if b.Less(a) {
			return 1
		}
		return 0
	})
}

// Snapshot returns the whole current ruleset. It shares nothing mutable
// with the Calculator; it does not affect TakeUpdate.
func (c *Calculator) Snapshot() *Ruleset {
	rs := NewRuleset()
	rs.FailsafeInbound = slices.Clone(c.cfg.FailsafeInbound)
	rs.FailsafeOutbound = slices.Clone(c.cfg.FailsafeOutbound)
	for k, ep := range c.endpoints {
		if ep.local {
			rs.Endpoints[k] = c.program(ep)
		}
	}
	for k, ps := range c.policies {
		if ps.active {
			rs.Policies[k] = ps.rules
		}
	}
	for name, pr := range c.profiles {
		if pr.active {
			rs.Profiles[name] = pr.rules
		}
	}
	for id, s := range c.sets {
		rs.IPSets[id] = s.snapshot()
	}
	return rs
}

// NewRuleset returns an empty Ruleset.
func NewRuleset() *Ruleset {
	return &Ruleset{
		Endpoints: map[EndpointKey]*Endpoint{},
		Policies:  map[PolicyKey]*Rules{},
		Profiles:  map[string]*Rules{},
		IPSets:    map[SetID]*IPSet{},
	}
}

// Apply merges an Update into the ruleset. The ruleset takes over the
// update's values, which must not be modified afterwards; IP sets are
// copied before their members change.
func (rs *Ruleset) Apply(u *Update) {
	if u.Failsafes != nil {
		rs.FailsafeInbound = slices.Clone(u.Failsafes.Inbound)
		rs.FailsafeOutbound = slices.Clone(u.Failsafes.Outbound)
	}
	applyMap(rs.Endpoints, u.Endpoints)
	applyMap(rs.Policies, u.Policies)
	applyMap(rs.Profiles, u.Profiles)
	applyMap(rs.IPSets, u.IPSets)
	changed := map[SetID]map[Member]bool{}
	for _, d := range u.Members {
		if changed[d.Set] == nil {
			changed[d.Set] = map[Member]bool{}
		}
		changed[d.Set][d.Member] = d.Add
	}
	for id, ch := range changed {
		old := rs.IPSets[id]
		if old == nil {
			continue
		}
		s := *old
		s.Members = make([]Member, 0, len(old.Members)+len(ch))
		for _, m := range old.Members {
			if add, ok := ch[m]; !ok || add {
				s.Members = append(s.Members, m)
			}
			delete(ch, m)
		}
		for m, add := range ch {
			if add {
				s.Members = append(s.Members, m)
			}
		}
		sortMembers(s.Members)
		rs.IPSets[id] = &s
	}
}

func applyMap[K comparable, V any](dst, src map[K]*V) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
}
