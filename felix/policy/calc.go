package policy

import (
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

// Calculator computes one node's ACL ruleset from the cluster's endpoints,
// policies, profiles and namespaces. It is not safe for concurrent use:
// one goroutine feeds it updates and takes the results (TakeUpdate).
//
// Updates may come in any order: a policy may name profiles, or select
// endpoints, that arrive later. An update of an object that is unchanged
// does nothing; a removal of an unknown object does nothing.
type Calculator struct {
	cfg Config

	endpoints map[EndpointKey]*endpoint
	// nsLabels are the declared labels of namespaces (without LabelName).
	nsLabels  map[string]map[string]string
	nsMembers map[string]map[EndpointKey]struct{}
	profiles  map[string]*profile
	// profileUsers are all endpoints that name a profile (for labels);
	// localProfileUsers the local ones (for activity).
	profileUsers      map[string]map[EndpointKey]struct{}
	localProfileUsers map[string]map[EndpointKey]struct{}
	policies          map[PolicyKey]*policyState
	sets              map[SetID]*setState

	// polIndex matches local endpoints against policy selectors; setIndex
	// matches all endpoints against the selectors of live IP sets.
	polIndex *index[PolicyKey]
	setIndex *index[SetID]

	changes changeTracker
}

type endpoint struct {
	key          EndpointKey
	node         string
	iface        string
	local        bool
	addrs        []netip.Addr
	own          map[string]string
	profiles     []string
	orchestrator string
	ports        []api.EndpointPort
	labels       map[string]string
}

type profile struct {
	labels map[string]string
	rules  *Rules
	refs   []setRef
	active bool
}

type policyState struct {
	key     PolicyKey
	order   *float64
	ingress bool // types include Ingress
	egress  bool
	sel     *selector.Selector
	rules   *Rules
	refs    []setRef
	active  bool
	failed  bool // enforced as deny-all: see failClosed
}

type setState struct {
	id        SetID
	sel       *selector.Selector
	namedPort *NamedPort
	refs      int
	members   map[Member]int // reference counts: endpoints may share addresses
}

// New returns a Calculator for cfg.Node.
func New(cfg Config) *Calculator {
	c := &Calculator{
		cfg:               cfg.withDefaults(),
		endpoints:         map[EndpointKey]*endpoint{},
		nsLabels:          map[string]map[string]string{},
		nsMembers:         map[string]map[EndpointKey]struct{}{},
		profiles:          map[string]*profile{},
		profileUsers:      map[string]map[EndpointKey]struct{}{},
		localProfileUsers: map[string]map[EndpointKey]struct{}{},
		policies:          map[PolicyKey]*policyState{},
		sets:              map[SetID]*setState{},
	}
	c.polIndex = newIndex(c.onPolicyMatch)
	c.setIndex = newIndex(c.onSetMatch)
	c.changes.init()
	return c
}

// OnWorkloadEndpointUpdate adds or changes a workload endpoint of any node.
// The Calculator keeps the endpoint's label map, profiles and ports (at
// hundreds of endpoints a copy of each costs more than the rest of an
// endpoint's state): the caller must not modify them afterwards (felix
// hands it resources fresh from the datastore, which no one modifies).
func (c *Calculator) OnWorkloadEndpointUpdate(w *api.WorkloadEndpoint) {
	s := &w.Spec
	c.updateEndpoint(&endpoint{
		key:          EndpointKey{Kind: WorkloadEndpoint, Namespace: w.Namespace, Name: w.Name},
		node:         s.Node,
		iface:        s.InterfaceName,
		addrs:        sortedAddrs(s.Addrs()),
		own:          w.Labels,
		profiles:     slices.Clip(s.Profiles),
		orchestrator: s.Orchestrator,
		ports:        slices.Clip(s.Ports),
	})
}

// OnHostEndpointUpdate adds or changes a host endpoint of any node. A host
// endpoint of this node without an interface name gets no program (its
// addresses still count for selectors). As for workload endpoints, the
// Calculator keeps the labels, profiles and ports it is given.
func (c *Calculator) OnHostEndpointUpdate(h *api.HostEndpoint) {
	s := &h.Spec
	var addrs []netip.Addr
	for _, ip := range s.ExpectedIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			addrs = append(addrs, a.Unmap())
		}
	}
	c.updateEndpoint(&endpoint{
		key:      EndpointKey{Kind: HostEndpoint, Name: h.Name},
		node:     s.Node,
		iface:    s.InterfaceName,
		addrs:    sortedAddrs(addrs),
		own:      h.Labels,
		profiles: slices.Clip(s.Profiles),
		ports:    slices.Clip(s.Ports),
	})
}

// OnWorkloadEndpointRemove removes a workload endpoint.
func (c *Calculator) OnWorkloadEndpointRemove(namespace, name string) {
	c.OnEndpointRemove(EndpointKey{Kind: WorkloadEndpoint, Namespace: namespace, Name: name})
}

// OnHostEndpointRemove removes a host endpoint.
func (c *Calculator) OnHostEndpointRemove(name string) {
	c.OnEndpointRemove(EndpointKey{Kind: HostEndpoint, Name: name})
}

func (c *Calculator) updateEndpoint(ep *endpoint) {
	k := ep.key
	ep.local = ep.node == c.cfg.Node && ep.iface != ""
	old := c.endpoints[k]
	if old != nil && old.equal(ep) {
		return
	}
	c.setUses(old, ep)
	ep.labels = c.labelsOf(ep)
	c.endpoints[k] = ep
	if old != nil && (!slices.Equal(old.addrs, ep.addrs) || !slices.Equal(old.ports, ep.ports)) {
		// Set members come from addresses and ports: take the old ones
		// out, then put the new ones in.
		c.endpoints[k] = old
		c.setIndex.RemoveEndpoint(k)
		c.endpoints[k] = ep
	}
	c.setIndex.SetEndpoint(k, ep.labels)
	switch {
	case ep.local:
		c.polIndex.SetEndpoint(k, ep.labels)
		c.changes.endpoint(k)
	case old != nil && old.local:
		c.polIndex.RemoveEndpoint(k)
		c.changes.endpoint(k)
	}
}

// OnEndpointRemove removes an endpoint of either kind.
func (c *Calculator) OnEndpointRemove(k EndpointKey) {
	old := c.endpoints[k]
	if old == nil {
		return
	}
	c.setIndex.RemoveEndpoint(k)
	if old.local {
		c.polIndex.RemoveEndpoint(k)
		c.changes.endpoint(k)
	}
	c.setUses(old, nil)
	delete(c.endpoints, k)
}

// setUses moves an endpoint's profile and namespace memberships from old
// to ep (either may be nil).
func (c *Calculator) setUses(old, ep *endpoint) {
	k := (func() EndpointKey {
		if ep != nil {
			return ep.key
		}
		return old.key
	})()
	if old != nil {
		for _, p := range old.profiles {
			delFrom2(c.profileUsers, p, k)
			if old.local {
				delFrom2(c.localProfileUsers, p, k)
			}
		}
		if k.Kind == WorkloadEndpoint {
			delFrom2(c.nsMembers, k.Namespace, k)
		}
	}
	if ep != nil {
		for _, p := range ep.profiles {
			addTo2(c.profileUsers, p, k)
			if ep.local {
				addTo2(c.localProfileUsers, p, k)
			}
		}
		if k.Kind == WorkloadEndpoint {
			addTo2(c.nsMembers, k.Namespace, k)
		}
	}
	if old != nil {
		for _, p := range old.profiles {
			c.refreshProfile(p)
		}
	}
	if ep != nil {
		for _, p := range ep.profiles {
			c.refreshProfile(p)
		}
	}
}

func (c *Calculator) labelsOf(ep *endpoint) map[string]string {
	var profLabels []map[string]string
	for _, p := range ep.profiles {
		if pr := c.profiles[p]; pr != nil {
			profLabels = append(profLabels, pr.labels)
		}
	}
	var ns map[string]string
	if ep.key.Kind == WorkloadEndpoint {
		ns = namespaceLabels(ep.key.Namespace, c.nsLabels[ep.key.Namespace])
	}
	return endpointLabels(ep.own, profLabels, ep.key.Namespace, ep.orchestrator, ns)
}

// relabel recomputes an endpoint's labels after a profile or namespace
// changed.
func (c *Calculator) relabel(k EndpointKey) {
	ep := c.endpoints[k]
	if ep == nil {
		return
	}
	labels := c.labelsOf(ep)
	if mapsEqual(labels, ep.labels) {
		return
	}
	ep.labels = labels
	c.setIndex.SetEndpoint(k, labels)
	if ep.local {
		c.polIndex.SetEndpoint(k, labels)
	}
}

// OnNamespaceUpdate sets the labels of a namespace, which
// namespaceSelectors match. A namespace that was never updated has only
// LabelName.
func (c *Calculator) OnNamespaceUpdate(name string, labels map[string]string) {
	if old, ok := c.nsLabels[name]; ok && mapsEqual(old, labels) {
		return
	}
	c.nsLabels[name] = cloneMap(labels)
	for k := range c.nsMembers[name] {
		c.relabel(k)
	}
}

// OnNamespaceRemove forgets a namespace's labels.
func (c *Calculator) OnNamespaceRemove(name string) {
	if _, ok := c.nsLabels[name]; !ok {
		return
	}
	delete(c.nsLabels, name)
	for k := range c.nsMembers[name] {
		c.relabel(k)
	}
}

// onSetMatch is setIndex's callback: an endpoint started or stopped
// matching the selector of a set.
func (c *Calculator) onSetMatch(id SetID, k EndpointKey, matched bool) {
	s, ep := c.sets[id], c.endpoints[k]
	d := -1
	if matched {
		d = 1
	}
	for _, m := range s.membersOf(ep) {
		n := s.members[m] + d
		switch {
		case n <= 0:
			delete(s.members, m)
			c.changes.member(id, m, false)
		case n == 1 && d > 0:
			s.members[m] = n
			c.changes.member(id, m, true)
		default:
			s.members[m] = n
		}
	}
}

func (s *setState) membersOf(ep *endpoint) []Member {
	var out []Member
	if s.namedPort == nil {
		for _, a := range ep.addrs {
			out = append(out, Member{Addr: a})
		}
		return out
	}
	for _, p := range ep.ports {
		n, _ := p.Protocol.Number()
		if p.Name != s.namedPort.Name || n != s.namedPort.Protocol {
			continue
		}
		for _, a := range ep.addrs {
			out = append(out, Member{Addr: a, ProtoPort: ProtoPort{Protocol: n, Port: uint16(p.Port)}})
		}
	}
	return out
}

// addRefs and delRefs count the users of IP sets; a set lives (is indexed
// and part of the ruleset) while it has users.
func (c *Calculator) addRefs(refs []setRef) {
	for _, r := range refs {
		s := c.sets[r.id]
		if s == nil {
			s = &setState{id: r.id, sel: r.sel, namedPort: r.namedPort, members: map[Member]int{}}
			c.sets[r.id] = s
			c.changes.set(r.id)
			c.setIndex.SetItem(r.id, r.sel)
		}
		s.refs++
	}
}

func (c *Calculator) delRefs(refs []setRef) {
	for _, r := range refs {
		s := c.sets[r.id]
		if s.refs--; s.refs > 0 {
			continue
		}
		c.setIndex.RemoveItem(r.id)
		delete(c.sets, r.id)
		c.changes.set(r.id)
	}
}

func (e *endpoint) equal(o *endpoint) bool {
	return e.key == o.key && e.node == o.node && e.iface == o.iface && e.local == o.local &&
		slices.Equal(e.addrs, o.addrs) && mapsEqual(e.own, o.own) && slices.Equal(e.profiles, o.profiles) &&
		e.orchestrator == o.orchestrator && slices.Equal(e.ports, o.ports)
}

func sortedAddrs(a []netip.Addr) []netip.Addr {
	slices.SortFunc(a, netip.Addr.Compare)
	return slices.Compact(a)
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func addTo2[K comparable](m map[string]map[K]struct{}, a string, k K) {
	mk := m[a]
	if mk == nil {
		mk = map[K]struct{}{}
		m[a] = mk
	}
	mk[k] = struct{}{}
}

func delFrom2[K comparable](m map[string]map[K]struct{}, a string, k K) {
	if mk := m[a]; mk != nil {
		delete(mk, k)
		if len(mk) == 0 {
			delete(m, a)
		}
	}
}
