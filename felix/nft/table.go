package nft

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"

	"github.com/bgpfabric/bgpfabric/felix/policy"
)

// Config configures a Table.
type Config struct {
	// MarkAccept and MarkPass are the packet mark bits by which policy
	// chains tell program chains that a packet was allowed or passed
	// (Calico's defaults, 0x10000 and 0x20000). They must be distinct
	// single bits that nothing else on the host uses.
	MarkAccept, MarkPass uint32
	// WorkloadInterfacePrefixes, e.g. "wl", make traffic to and from
	// interfaces with these prefixes that have no workload endpoint be
	// dropped (Calico does this for "cali").
	WorkloadInterfacePrefixes []string
	// LogPrefix starts the prefix of Log rules (default "bgpfabric").
	LogPrefix string
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MarkAccept == 0 {
		c.MarkAccept = 0x10000
	}
	if c.MarkPass == 0 {
		c.MarkPass = 0x20000
	}
	if c.LogPrefix == "" {
		c.LogPrefix = "bgpfabric"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Table keeps the nftables table equal to the policy calculation's
// ruleset. Feed it every policy.Update in turn (Apply). The first Apply,
// and the first after a failed one or after Resync, replaces the whole
// table in one transaction (deleting any table of the same name first);
// the others change only what the update touches: set elements for
// membership changes, the chains of changed policies, profiles and
// endpoints. Every Apply is one transaction.
//
// A Table is not safe for concurrent use.
type Table struct {
	cfg Config
	dp  Dataplane
	r   renderer

	// The desired model, merged from updates.
	endpoints map[policy.EndpointKey]*policy.Endpoint
	policies  map[policy.PolicyKey]*policy.Rules
	profiles  map[string]*policy.Rules
	sets      map[policy.SetID]*modelSet
	failsafes *policy.Failsafes
	// claims: which endpoints name each (kind, interface); the lowest key
	// owns it.
	claims map[ifaceKey]map[policy.EndpointKey]struct{}

	// What the kernel has (as far as we wrote it).
	chains   map[string][]*Rule
	elements map[string]map[string]Element // set name → key → element
	setTypes map[string]SetType
	progs    map[ifaceKey]progPair // the program chains of each interface
	progRefs map[string]int        // program chain → interfaces that use it

	needFull bool
}

type ifaceKey struct {
	kind  policy.EndpointKind
	iface string
}

type modelSet struct {
	named   bool
	members map[policy.Member]struct{}
}

// New returns a Table that writes through dp.
func New(dp Dataplane, cfg Config) *Table {
	cfg = cfg.withDefaults()
	return &Table{
		cfg: cfg, dp: dp, r: renderer{cfg: cfg},
		endpoints: map[policy.EndpointKey]*policy.Endpoint{},
		policies:  map[policy.PolicyKey]*policy.Rules{},
		profiles:  map[string]*policy.Rules{},
		sets:      map[policy.SetID]*modelSet{},
		claims:    map[ifaceKey]map[policy.EndpointKey]struct{}{},
		chains:    map[string][]*Rule{},
		elements:  map[string]map[string]Element{},
		setTypes:  map[string]SetType{},
		progs:     map[ifaceKey]progPair{},
		progRefs:  map[string]int{},
		needFull:  true,
	}
}

// Resync makes the next Apply rewrite the whole table, which repairs
// anything changed behind our back.
func (t *Table) Resync() { t.needFull = true }

// dirty collects what an update touches.
type dirty struct {
	ifaces   map[ifaceKey]struct{}
	policies map[policy.PolicyKey]struct{}
	profiles map[string]struct{}
	sets     map[policy.SetID]struct{} // added or removed
	base     bool
	members  []policy.MemberDelta
}

// Apply merges u into the desired state and writes the change to the
// kernel in one transaction.
func (t *Table) Apply(ctx context.Context, u *policy.Update) error {
	d := t.merge(u)
	if t.needFull {
		return t.full(ctx)
	}
	return t.incremental(ctx, d)
}

func (t *Table) merge(u *policy.Update) *dirty {
	d := &dirty{ifaces: map[ifaceKey]struct{}{}, policies: map[policy.PolicyKey]struct{}{},
		profiles: map[string]struct{}{}, sets: map[policy.SetID]struct{}{}}
	if u.Failsafes != nil {
		t.failsafes = u.Failsafes
		d.base = true
	}
	for k, ep := range u.Endpoints {
		if old := t.endpoints[k]; old != nil {
			ik := ifaceKey{k.Kind, old.Interface}
			delete(t.claims[ik], k)
			if len(t.claims[ik]) == 0 {
				delete(t.claims, ik)
			}
			d.ifaces[ik] = struct{}{}
		}
		if ep == nil {
			delete(t.endpoints, k)
			continue
		}
		t.endpoints[k] = ep
		ik := ifaceKey{k.Kind, ep.Interface}
		if t.claims[ik] == nil {
			t.claims[ik] = map[policy.EndpointKey]struct{}{}
		}
		t.claims[ik][k] = struct{}{}
		d.ifaces[ik] = struct{}{}
	}
	if _, ok := d.ifaces[ifaceKey{policy.HostEndpoint, allInterfaces}]; ok {
		d.base = true
	}
	for k, p := range u.Policies {
		setOrDelete(t.policies, k, p)
		d.policies[k] = struct{}{}
	}
	for k, p := range u.Profiles {
		setOrDelete(t.profiles, k, p)
		d.profiles[k] = struct{}{}
	}
	for id, s := range u.IPSets {
		d.sets[id] = struct{}{}
		if s == nil {
			delete(t.sets, id)
			continue
		}
		ms := &modelSet{named: s.NamedPort != nil, members: make(map[policy.Member]struct{}, len(s.Members))}
		for _, m := range s.Members {
			ms.members[m] = struct{}{}
		}
		t.sets[id] = ms
	}
	for _, md := range u.Members {
		ms := t.sets[md.Set]
		if ms == nil {
			continue
		}
		if md.Add {
			ms.members[md.Member] = struct{}{}
		} else {
			delete(ms.members, md.Member)
		}
		d.members = append(d.members, md)
	}
	return d
}

func setOrDelete[K comparable, V any](m map[K]*V, k K, v *V) {
	if v == nil {
		delete(m, k)
	} else {
		m[k] = v
	}
}

// owner returns the endpoint that owns an interface: the lowest key that
// claims it.
func (t *Table) owner(ik ifaceKey) *policy.Endpoint {
	var best *policy.EndpointKey
	for k := range t.claims[ik] {
		if best == nil || k.Less(*best) {
			kk := k
			best = &kk
		}
	}
	if best == nil {
		return nil
	}
	if len(t.claims[ik]) > 1 {
		t.cfg.Logger.Warn("interface claimed by more than one endpoint; programming the first",
			logKeyInterface, ik.iface, logKeyEndpoint, best.String())
	}
	return t.endpoints[*best]
}

// Log keys.
const (
	logKeyInterface = "interface"
	logKeyEndpoint  = "endpoint"
)

func (t *Table) hasPolicy(k policy.PolicyKey) bool { return t.policies[k] != nil }
func (t *Table) hasProfile(n string) bool          { return t.profiles[n] != nil }

// desiredIface returns the program chains of one interface (none if no
// endpoint owns it), their rules and the interface's map elements.
func (t *Table) desiredIface(ik ifaceKey, ps *programs) (p progPair, chains map[string][]*Rule, elems map[string]Element) {
	chains, elems = map[string][]*Rule{}, map[string]Element{}
	ep := t.owner(ik)
	if ep == nil {
		return p, chains, elems
	}
	in, out := ps.of(&ep.Ingress, true), ps.of(&ep.Egress, false)
	p = progPair{in.name, out.name}
	chains[in.name], chains[out.name] = in.rules, out.rules
	if ik.iface == allInterfaces {
		return p, chains, elems
	}
	ingMap, egMap := endpointMaps(ik.kind)
	elems[ingMap] = ifnameElement(ik.iface, in.name)
	elems[egMap] = ifnameElement(ik.iface, out.name)
	return p, chains, elems
}

func (t *Table) desiredPolicy(k policy.PolicyKey) map[string][]*Rule {
	out := map[string][]*Rule{}
	if p := t.policies[k]; p != nil {
		out[policyChain(k, true)] = t.r.policyRules(p.Ingress, k.String(), true, false)
		out[policyChain(k, false)] = t.r.policyRules(p.Egress, k.String(), false, false)
	}
	return out
}

func (t *Table) desiredProfile(name string) map[string][]*Rule {
	out := map[string][]*Rule{}
	if p := t.profiles[name]; p != nil {
		out[profileChain(name, true)] = t.r.policyRules(p.Ingress, "profile/"+name, true, true)
		out[profileChain(name, false)] = t.r.policyRules(p.Egress, "profile/"+name, false, true)
	}
	return out
}

// setsOf returns the two kernel sets of an IP set, with their elements.
func (t *Table) setsOf(id policy.SetID) map[string]*kset {
	ms := t.sets[id]
	if ms == nil {
		return nil
	}
	t4, t6 := SetIPv4, SetIPv6
	if ms.named {
		t4, t6 = SetIPv4Port, SetIPv6Port
	}
	s4 := &kset{Set{setName(id, 4), t4}, nil}
	s6 := &kset{Set{setName(id, 6), t6}, nil}
	for m := range ms.members {
		e := memberElement(m, ms.named)
		if m.Addr.Is4() {
			s4.elems = append(s4.elems, e)
		} else {
			s6.elems = append(s6.elems, e)
		}
	}
	return map[string]*kset{s4.Name: s4, s6.Name: s6}
}

type kset struct {
	Set
	elems []Element
}

func memberElement(m policy.Member, named bool) Element {
	if named {
		return addrPortElement(m.Addr, m.Protocol, m.Port)
	}
	return addrElement(m.Addr)
}

// full rewrites the whole table.
func (t *Table) full(ctx context.Context) error {
	chains := map[string][]*Rule{}
	vmaps := map[string]map[string]Element{mapWlFrom: {}, mapWlTo: {}, mapHepFrom: {}, mapHepTo: {}}
	ps := t.programs()
	progs, progRefs := map[ifaceKey]progPair{}, map[string]int{}
	for ik := range t.claims {
		p, cs, es := t.desiredIface(ik, ps)
		if p == (progPair{}) {
			continue
		}
		progs[ik] = p
		progRefs[p.in]++
		progRefs[p.out]++
		maps.Copy(chains, cs)
		for m, e := range es {
			vmaps[m][string(e.Key)] = e
		}
	}
	maps.Copy(chains, t.r.baseChains(t.failsafes, allHEP(progs)))
	for k := range t.policies {
		for n, rs := range t.desiredPolicy(k) {
			chains[n] = rs
		}
	}
	for name := range t.profiles {
		for n, rs := range t.desiredProfile(name) {
			chains[n] = rs
		}
	}
	ops := []Op{{Kind: OpReplaceTable}}
	elements := map[string]map[string]Element{}
	setTypes := map[string]SetType{}
	for _, m := range sortedKeys(vmaps) { // elements come after the chains
		ops = append(ops, Op{Kind: OpAddSet, Set: &Set{m, MapIfname}})
		elements[m], setTypes[m] = vmaps[m], MapIfname
	}
	for _, id := range sortedKeys(t.sets) {
		kss := t.setsOf(id)
		for _, name := range sortedKeys(kss) {
			ks := kss[name]
			ops = append(ops, Op{Kind: OpAddSet, Set: &ks.Set, Elements: sortElems(ks.elems)})
			elements[name], setTypes[name] = elemMap(ks.elems), ks.Type
		}
	}
	names := sortedKeys(chains)
	for _, n := range names {
		ops = append(ops, Op{Kind: OpAddChain, Chain: t.chainOf(n)})
	}
	for _, n := range names {
		c := &Chain{Name: n}
		for _, r := range chains[n] {
			ops = append(ops, Op{Kind: OpAddRule, Chain: c, Rule: r})
		}
	}
	for _, m := range sortedKeys(vmaps) {
		if es := sortedElements(vmaps[m]); len(es) > 0 {
			ops = append(ops, Op{Kind: OpAddElements, Set: &Set{m, MapIfname}, Elements: es})
		}
	}
	if err := t.dp.Commit(ctx, ops); err != nil {
		t.needFull = true
		return fmt.Errorf("replacing nftables table: %w", err)
	}
	t.chains, t.elements, t.setTypes, t.needFull = chains, elements, setTypes, false
	t.progs, t.progRefs = progs, progRefs
	return nil
}

func (t *Table) chainOf(name string) *Chain {
	c := &Chain{Name: name}
	switch name {
	case chainForward, chainInput, chainOutput:
		c.Hook = &Hook{Name: name}
	}
	return c
}

// incremental writes what d touches.
func (t *Table) incremental(ctx context.Context, d *dirty) error {
	want := map[string][]*Rule{} // chains to have (possibly changed)
	gone := map[string]bool{}    // chains that may have to go
	consider := func(cs map[string][]*Rule, owned ...string) {
		for _, n := range owned {
			gone[n] = true
		}
		for n, rs := range cs {
			want[n] = rs
			delete(gone, n)
		}
	}
	mapWant := map[string]map[string]*Element{} // map → key → element (nil: delete)
	// Interfaces: which program chains they jump to, and so how many
	// interfaces use each program chain.
	ps := t.programs()
	newProgs := map[ifaceKey]progPair{} // zero: the interface has none
	progDelta := map[string]int{}
	progRules := map[string][]*Rule{}
	for ik := range d.ifaces {
		p, cs, es := t.desiredIface(ik, ps)
		if old, ok := t.progs[ik]; ok {
			progDelta[old.in]--
			progDelta[old.out]--
		}
		if p != (progPair{}) {
			progDelta[p.in]++
			progDelta[p.out]++
			maps.Copy(progRules, cs)
		}
		newProgs[ik] = p
		if ik.iface == allInterfaces {
			continue
		}
		ingMap, egMap := endpointMaps(ik.kind)
		for _, m := range []string{ingMap, egMap} {
			if mapWant[m] == nil {
				mapWant[m] = map[string]*Element{}
			}
			key := string(ifname(ik.iface))
			if e, ok := es[m]; ok {
				mapWant[m][key] = &e
			} else {
				mapWant[m][key] = nil
			}
		}
	}
	for k := range d.policies {
		consider(t.desiredPolicy(k), policyChain(k, true), policyChain(k, false))
	}
	for name := range d.profiles {
		consider(t.desiredProfile(name), profileChain(name, true), profileChain(name, false))
	}
	for n, delta := range progDelta {
		_, have := t.chains[n]
		switch refs := t.progRefs[n] + delta; {
		case refs > 0 && !have:
			want[n] = progRules[n]
		case refs <= 0 && have:
			gone[n] = true
		}
	}
	if d.base {
		all := allHEP(t.progs)
		if p, ok := newProgs[ifaceKey{policy.HostEndpoint, allInterfaces}]; ok {
			all = nil
			if p != (progPair{}) {
				all = &p
			}
		}
		consider(t.r.baseChains(t.failsafes, all))
	}
	for n := range gone {
		if _, ok := want[n]; ok {
			delete(gone, n)
		}
	}
	var (
		addSets, delSets                []Op
		addChains, flushes, rules, dels []Op
		delElems, addElems, mapAdds     []Op
	)
	// Sets.
	newSets := map[string]*kset{}
	for id := range d.sets {
		ks := t.setsOf(id)
		for _, f := range []int{4, 6} {
			name := setName(id, f)
			_, have := t.setTypes[name]
			switch s := ks[name]; {
			case s != nil && !have:
				newSets[name] = s
				addSets = append(addSets, Op{Kind: OpAddSet, Set: &s.Set, Elements: sortElems(s.elems)})
			case s == nil && have:
				delSets = append(delSets, Op{Kind: OpDelSet, Set: &Set{name, t.setTypes[name]}})
			}
		}
	}
	// Member deltas of sets that stay, net of what the kernel has.
	elemAdds, elemDels := map[string][]Element{}, map[string][]Element{}
	for _, md := range d.members {
		name := setName(md.Set, fam(md.Member.Addr))
		have, ok := t.elements[name]
		if !ok || newSets[name] != nil {
			continue
		}
		e := memberElement(md.Member, t.setTypes[name] == SetIPv4Port || t.setTypes[name] == SetIPv6Port)
		_, present := have[string(e.Key)]
		switch {
		case md.Add && !present:
			elemAdds[name] = append(elemAdds[name], e)
		case !md.Add && present:
			elemDels[name] = append(elemDels[name], e)
		}
	}
	for _, name := range sortedKeys(elemDels) {
		delElems = append(delElems, Op{Kind: OpDelElements, Set: &Set{name, t.setTypes[name]}, Elements: elemDels[name]})
	}
	for _, name := range sortedKeys(elemAdds) {
		addElems = append(addElems, Op{Kind: OpAddElements, Set: &Set{name, t.setTypes[name]}, Elements: elemAdds[name]})
	}
	// Chains.
	changed := map[string][]*Rule{}
	for _, n := range sortedKeys(want) {
		rs := want[n]
		old, have := t.chains[n]
		c := t.chainOf(n)
		switch {
		case !have:
			addChains = append(addChains, Op{Kind: OpAddChain, Chain: c})
		case sameRules(old, rs):
			continue
		default:
			flushes = append(flushes, Op{Kind: OpFlushChain, Chain: c})
		}
		changed[n] = rs
		for _, r := range rs {
			rules = append(rules, Op{Kind: OpAddRule, Chain: c, Rule: r})
		}
	}
	var deleted []string
	for _, n := range sortedKeys(gone) {
		if _, have := t.chains[n]; have {
			deleted = append(deleted, n)
			flushes = append(flushes, Op{Kind: OpFlushChain, Chain: &Chain{Name: n}})
			dels = append(dels, Op{Kind: OpDelChain, Chain: &Chain{Name: n}})
		}
	}
	// Map elements.
	mapChanges := map[string]map[string]*Element{}
	for _, m := range sortedKeys(mapWant) {
		var adds, rm []Element
		for _, key := range sortedKeys(mapWant[m]) {
			e := mapWant[m][key]
			old, have := t.elements[m][key]
			if have && e != nil && old.Jump == e.Jump {
				continue
			}
			if have {
				rm = append(rm, old)
			}
			if e != nil {
				adds = append(adds, *e)
			}
			if mapChanges[m] == nil {
				mapChanges[m] = map[string]*Element{}
			}
			mapChanges[m][key] = e
		}
		if len(rm) > 0 {
			delElems = append(delElems, Op{Kind: OpDelElements, Set: &Set{m, MapIfname}, Elements: rm})
		}
		if len(adds) > 0 {
			mapAdds = append(mapAdds, Op{Kind: OpAddElements, Set: &Set{m, MapIfname}, Elements: adds})
		}
	}
	// Order: create sets and chains; drop stale elements; add members;
	// rewrite chains (and empty the ones that go); point the maps at the
	// new chains; delete chains, then sets, that nothing refers to any
	// more.
	ops := slices.Concat(addSets, addChains, delElems, addElems, flushes, rules, mapAdds, dels, delSets)
	if len(ops) == 0 {
		return nil
	}
	if err := t.dp.Commit(ctx, ops); err != nil {
		t.needFull = true
		return fmt.Errorf("updating nftables table: %w", err)
	}
	// Record what the kernel now has.
	for name, s := range newSets {
		t.elements[name], t.setTypes[name] = elemMap(s.elems), s.Type
	}
	for _, op := range delSets {
		delete(t.elements, op.Set.Name)
		delete(t.setTypes, op.Set.Name)
	}
	for name, es := range elemAdds {
		for _, e := range es {
			t.elements[name][string(e.Key)] = e
		}
	}
	for name, es := range elemDels {
		for _, e := range es {
			delete(t.elements[name], string(e.Key))
		}
	}
	for m, ch := range mapChanges {
		for key, e := range ch {
			if e == nil {
				delete(t.elements[m], key)
			} else {
				t.elements[m][key] = *e
			}
		}
	}
	for n, rs := range changed {
		t.chains[n] = rs
	}
	for _, n := range deleted {
		delete(t.chains, n)
	}
	for ik, p := range newProgs {
		if p == (progPair{}) {
			delete(t.progs, ik)
		} else {
			t.progs[ik] = p
		}
	}
	for n, delta := range progDelta {
		if refs := t.progRefs[n] + delta; refs > 0 {
			t.progRefs[n] = refs
		} else {
			delete(t.progRefs, n)
		}
	}
	return nil
}

func sameRules(a, b []*Rule) bool {
	return slices.EqualFunc(a, b, func(x, y *Rule) bool { return x.Text == y.Text })
}

func sortedKeys[K interface{ ~string }, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedElements(m map[string]Element) []Element {
	out := make([]Element, 0, len(m))
	for _, e := range m {
		out = append(out, e)
	}
	return sortElems(out)
}

func sortElems(es []Element) []Element {
	sort.Slice(es, func(i, j int) bool { return bytes.Compare(es[i].Key, es[j].Key) < 0 })
	return es
}

func elemMap(es []Element) map[string]Element {
	m := make(map[string]Element, len(es))
	for _, e := range es {
		m[string(e.Key)] = e
	}
	return m
}
