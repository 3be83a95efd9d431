package policy

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

// ErrUnsupported is wrapped by the errors for policy features that the
// calculation does not implement.
var ErrUnsupported = errors.New("not supported")

// OnNetworkPolicyUpdate adds or changes a namespaced policy. If the policy
// cannot be compiled, it is removed (so that no stale version is enforced)
// and the error says why.
func (c *Calculator) OnNetworkPolicyUpdate(p *api.NetworkPolicy) error {
	key := PolicyKey{Namespace: p.Namespace, Name: p.Name}
	if p.Namespace == "" {
		c.OnPolicyRemove(key)
		return fmt.Errorf("NetworkPolicy %s: metadata.namespace is required", p.Name)
	}
	return c.updatePolicy(key, &p.Spec.PolicySpec, inNamespace(p.Namespace))
}

// OnGlobalNetworkPolicyUpdate adds or changes a global policy. doNotTrack,
// preDNAT and applyOnForward are not implemented (api validation refuses
// them): a policy that sets them anyway fails closed (see failClosed) and
// the error, wrapping ErrUnsupported, says so.
func (c *Calculator) OnGlobalNetworkPolicyUpdate(p *api.GlobalNetworkPolicy) error {
	key := PolicyKey{Name: p.Name}
	s := &p.Spec
	var scope selector.Expr
	var scopeErr error
	if s.NamespaceSelector != "" {
		ns, err := parseSel(s.NamespaceSelector)
		if err != nil {
			// Unscoped is broader: the fail-closed policy denies at least
			// what the scoped one would have.
			scopeErr = fmt.Errorf("GlobalNetworkPolicy %s: spec.namespaceSelector: %w", p.Name, err)
		} else {
			scope = selector.And{Exprs: []selector.Expr{selector.Has{Key: LabelNamespace}, inNamespaces(ns.Expr())}}
		}
	}
	if f := api.UnsupportedGlobalPolicyFields(s); len(f) > 0 {
		return c.failClosed(key, &s.PolicySpec, scope,
			fmt.Errorf("GlobalNetworkPolicy %s: %s: %w", p.Name, strings.Join(f, ", "), ErrUnsupported))
	}
	if scopeErr != nil {
		return c.failClosed(key, &s.PolicySpec, scope, scopeErr)
	}
	return c.updatePolicy(key, &s.PolicySpec, scope)
}

// FailedClosed returns the policies that are enforced as deny-all because
// they cannot be enforced as written (see failClosed), sorted.
func (c *Calculator) FailedClosed() []PolicyKey {
	var out []PolicyKey
	for k, ps := range c.policies {
		if ps.failed {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b PolicyKey) int { return cmp.Compare(a.String(), b.String()) })
	return out
}

// OnPolicyRemove removes a policy of either kind.
func (c *Calculator) OnPolicyRemove(key PolicyKey) {
	if c.policies[key] == nil {
		return
	}
	c.polIndex.RemoveItem(key) // deactivates it
	delete(c.policies, key)
	c.changes.policy(key)
}

func (c *Calculator) updatePolicy(key PolicyKey, spec *api.PolicySpec, scope selector.Expr) error {
	ps, err := compilePolicy(key, spec, scope)
	if err != nil {
		return c.failClosed(key, spec, scope, err)
	}
	c.setPolicy(key, ps)
	return nil
}

// failClosed handles a policy that cannot be enforced as written (a
// feature not implemented, a selector or rule that does not compile:
// anything the api validation would have refused, so it was written to
// the datastore some other way). Dropping it would fail open: traffic it
// was written to deny would flow. So, as long as its selector compiles,
// it is enforced as deny-all instead: for the endpoints it selects, in the
// directions of its types, ahead of every other policy (the failsafe
// ports of host endpoints stay open, as they are ahead of any policy).
// When its selector does not compile either, the endpoints it is meant for
// are unknown: the last good version of the policy stays in force, and
// without one it denies all the local endpoints in its scope. The returned
// error says what was done; cause is why. (The caller logs it: the ACL
// logs every resource that cannot be enforced.)
func (c *Calculator) failClosed(key PolicyKey, spec *api.PolicySpec, scope selector.Expr, cause error) error {
	first := math.Inf(-1) // before any order a policy can have (api validation allows finite ones only)
	ps := &policyState{key: key, order: &first, failed: true}
	sel, err := parseSel(spec.Selector)
	switch {
	case err == nil:
		ps.sel = and(scope, sel.Expr())
	case c.policies[key] != nil:
		return fmt.Errorf("%w; its selector does not compile: keeping its last good version in force", cause)
	default:
		ps.sel = and(scope)
	}
	ps.ingress, ps.egress = policyTypes(spec)
	if !ps.ingress && !ps.egress { // types that do not parse: both
		ps.ingress, ps.egress = true, true
	}
	ps.rules = &Rules{}
	if ps.ingress {
		ps.rules.Ingress = []Rule{{Action: Deny}}
	}
	if ps.egress {
		ps.rules.Egress = []Rule{{Action: Deny}}
	}
	c.setPolicy(key, ps)
	return fmt.Errorf("%w: enforced as deny-all for the endpoints it selects (fail closed)", cause)
}

// policyTypes returns the directions of a policy: its types, or Calico's
// default when they are unset.
func policyTypes(spec *api.PolicySpec) (ingress, egress bool) {
	types := spec.Types
	if len(types) == 0 { // not defaulted: Calico's default
		switch {
		case len(spec.Ingress) == 0 && len(spec.Egress) > 0:
			types = []api.PolicyType{api.PolicyTypeEgress}
		case len(spec.Egress) > 0:
			types = []api.PolicyType{api.PolicyTypeIngress, api.PolicyTypeEgress}
		default:
			types = []api.PolicyType{api.PolicyTypeIngress}
		}
	}
	return slices.Contains(types, api.PolicyTypeIngress), slices.Contains(types, api.PolicyTypeEgress)
}

// setPolicy puts a compiled policy in force in place of its previous
// version.
func (c *Calculator) setPolicy(key PolicyKey, ps *policyState) {
	old := c.policies[key]
	if old != nil {
		ps.active = old.active
		if ps.active {
			c.addRefs(ps.refs) // before delRefs, so that shared sets stay
			c.delRefs(old.refs)
		}
		if !reflect.DeepEqual(old.rules, ps.rules) {
			c.changes.policy(key)
		}
		if !orderEqual(old.order, ps.order) || old.ingress != ps.ingress || old.egress != ps.egress {
			for k := range c.polIndex.Members(key) {
				c.changes.endpoint(k)
			}
		}
	}
	c.policies[key] = ps
	c.polIndex.SetItem(key, ps.sel) // (de)activates it as matches change
	c.refreshPolicy(key)
}

func compilePolicy(key PolicyKey, spec *api.PolicySpec, scope selector.Expr) (*policyState, error) {
	kind := "GlobalNetworkPolicy"
	if key.Namespace != "" {
		kind = "NetworkPolicy"
	}
	ps := &policyState{key: key}
	if spec.Order != nil {
		if math.IsNaN(*spec.Order) || math.IsInf(*spec.Order, 0) {
			return nil, fmt.Errorf("%s %s: spec.order: must be a finite number", kind, key)
		}
		o := *spec.Order
		ps.order = &o
	}
	sel, err := parseSel(spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("%s %s: spec.selector: %w", kind, key, err)
	}
	ps.sel = and(scope, sel.Expr())
	ps.ingress, ps.egress = policyTypes(spec)
	comp := &compiler{ns: key.Namespace}
	rules := &Rules{}
	if rules.Ingress, err = comp.rules(spec.Ingress); err != nil {
		return nil, fmt.Errorf("%s %s: spec.ingress: %w", kind, key, err)
	}
	if rules.Egress, err = comp.rules(spec.Egress); err != nil {
		return nil, fmt.Errorf("%s %s: spec.egress: %w", kind, key, err)
	}
	ps.rules, ps.refs = rules, comp.refs
	return ps, nil
}

// onPolicyMatch is polIndex's callback: a local endpoint started or
// stopped matching a policy's selector.
func (c *Calculator) onPolicyMatch(key PolicyKey, k EndpointKey, _ bool) {
	c.changes.endpoint(k)
	c.refreshPolicy(key)
}

// refreshPolicy (de)activates a policy: it is active while it applies to
// some local endpoint.
func (c *Calculator) refreshPolicy(key PolicyKey) {
	ps := c.policies[key]
	if ps == nil {
		return
	}
	active := len(c.polIndex.Members(key)) > 0
	if active == ps.active {
		return
	}
	ps.active = active
	if active {
		c.addRefs(ps.refs)
	} else {
		c.delRefs(ps.refs)
	}
	c.changes.policy(key)
}

// OnProfileUpdate adds or changes a profile. A profile whose rules cannot
// be compiled fails closed, as a policy does (failClosed): its rules are
// replaced by a deny in each direction, so that the endpoints that use it
// drop what reaches it instead of going on to their next profile; its
// labels still apply. The error says so.
func (c *Calculator) OnProfileUpdate(p *api.Profile) error {
	name := p.Name
	comp := &compiler{}
	rules := &Rules{}
	var err error
	if rules.Ingress, err = comp.rules(p.Spec.Ingress); err == nil {
		rules.Egress, err = comp.rules(p.Spec.Egress)
	}
	if err != nil {
		err = fmt.Errorf("Profile %s: %w: enforced as deny-all (fail closed)", name, err)
		comp = &compiler{}
		rules = &Rules{Ingress: []Rule{{Action: Deny}}, Egress: []Rule{{Action: Deny}}}
	}
	c.setProfile(name, p, rules, comp.refs)
	return err
}

// setProfile puts a compiled profile in force in place of its previous
// version.
func (c *Calculator) setProfile(name string, p *api.Profile, rules *Rules, refs []setRef) {
	pr := &profile{labels: cloneMap(p.Spec.LabelsToApply), rules: rules, refs: refs}
	old := c.profiles[name]
	c.profiles[name] = pr
	if old == nil {
		for k := range c.localProfileUsers[name] { // their programs now list it
			c.changes.endpoint(k)
		}
		c.changes.profile(name)
	} else {
		pr.active = old.active
		if pr.active {
			c.addRefs(pr.refs)
			c.delRefs(old.refs)
		}
		if !reflect.DeepEqual(old.rules, pr.rules) {
			c.changes.profile(name)
		}
	}
	if old == nil || !mapsEqual(old.labels, pr.labels) {
		for k := range c.profileUsers[name] {
			c.relabel(k)
		}
	}
	c.refreshProfile(name)
}

// OnProfileRemove removes a profile.
func (c *Calculator) OnProfileRemove(name string) {
	pr := c.profiles[name]
	if pr == nil {
		return
	}
	if pr.active {
		c.delRefs(pr.refs)
	}
	delete(c.profiles, name)
	c.changes.profile(name)
	for k := range c.localProfileUsers[name] {
		c.changes.endpoint(k)
	}
	if len(pr.labels) > 0 {
		for k := range c.profileUsers[name] {
			c.relabel(k)
		}
	}
}

// refreshProfile (de)activates a profile: it is active while it exists and
// some local endpoint names it.
func (c *Calculator) refreshProfile(name string) {
	pr := c.profiles[name]
	if pr == nil {
		return
	}
	active := len(c.localProfileUsers[name]) > 0
	if active == pr.active {
		return
	}
	pr.active = active
	if active {
		c.addRefs(pr.refs)
	} else {
		c.delRefs(pr.refs)
	}
	c.changes.profile(name)
}

// program computes a local endpoint's programs.
func (c *Calculator) program(ep *endpoint) *Endpoint {
	out := &Endpoint{Key: ep.key, Interface: ep.iface, Addrs: slices.Clone(ep.addrs)}
	pols := make([]*policyState, 0, len(c.polIndex.Matches(ep.key)))
	for key := range c.polIndex.Matches(ep.key) {
		pols = append(pols, c.policies[key])
	}
	slices.SortFunc(pols, comparePolicies)
	for _, p := range pols {
		if p.ingress {
			out.Ingress.Policies = append(out.Ingress.Policies, p.key)
		}
		if p.egress {
			out.Egress.Policies = append(out.Egress.Policies, p.key)
		}
	}
	for _, name := range ep.profiles {
		if c.profiles[name] != nil && !slices.Contains(out.Ingress.Profiles, name) {
			out.Ingress.Profiles = append(out.Ingress.Profiles, name)
		}
	}
	out.Egress.Profiles = slices.Clone(out.Ingress.Profiles)
	return out
}

// comparePolicies orders policies as Calico does: by order, unset last,
// then by name (here the key's string form, which puts global policies
// before namespaced ones of the same name).
func comparePolicies(a, b *policyState) int {
	switch {
	case a.order != nil && b.order != nil:
		if c := cmp.Compare(*a.order, *b.order); c != 0 {
			return c
		}
	case a.order != nil:
		return -1
	case b.order != nil:
		return 1
	}
	return cmp.Compare(a.key.String(), b.key.String())
}

func orderEqual(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
