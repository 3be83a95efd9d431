package reflector

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/routepolicy"
)

// Route policy (BGPFilter, docs/policy.md) in the engine.
//
// PolicyConfig says which filters each neighbour applies, by name, and the
// eBGP default (RFC 8212); both configuration paths, the datastore
// controller (reflector/fabric) and the configuration file, hand the
// engine one (Config.Policy, Reflector.SetPolicy) and nothing else, so that
// they behave the same. The engine resolves each neighbour's chains with
// routepolicy.Resolve (the node router's semantics: filters in order,
// first matching rule decides, then the default; a missing filter leaves
// the default alone) and compiles them into xchains, which match on the
// RIB's prefix keys without building a netip.Prefix or a Route per path;
// routepolicy's Chain.Evaluate is the reference they are tested against
// (policy_test.go).
//
// Import (policyrib.go) runs in the RIB loop on every received path before
// it enters the RIB; neighbours whose import chain is not accept-all keep
// their pre-policy paths in an Adj-RIB-In, so that a changed policy is
// evaluated again at once, without a reset and without asking the peer.
// Export runs per update group: the group key includes the export chain,
// so neighbours with the same effective export policy share one group and
// one encoding, and a change moves a neighbour to its new group and sends
// it the difference.

// PolicyConfig is the engine's route policy.
type PolicyConfig struct {
	// Filters are the BGPFilters by name (validated as apply does).
	Filters []*api.BGPFilter
	// Neighbors are the filter names of configured neighbours, in order.
	Neighbors map[netip.Addr][]string
	// Ranges are the filter names of dynamic-neighbour ranges. A dynamic
	// neighbour takes the most specific range that contains its address,
	// as DynamicNeighbors do.
	Ranges map[netip.Prefix][]string
	// EBGPDefaultAccept restores accepting and sending everything on eBGP
	// sessions that no filter decides; false is RFC 8212 (nothing in or
	// out without a filter that accepts it), the default.
	EBGPDefaultAccept bool
}

// CheckFilter refuses what the reflector cannot honour in a BGPFilter
// that apply accepts, naming the field: match on interface (a reflector
// originates no routes). The error's fields are relative to the filter,
// e.g. "spec.importV4[2].interface".
func CheckFilter(f *api.BGPFilter) error {
	var errs []string
	spec := f.Spec
	for _, l := range spec.Lists() {
		for i, r := range *l.Rules {
			if r.Interface != "" {
				errs = append(errs, fmt.Sprintf("spec.%s[%d].interface: %q: a reflector has no local routes to match by interface", l.Name, i, r.Interface))
			}
		}
	}
	if errs != nil {
		return fmt.Errorf("BGPFilter %s: %s", f.Name, strings.Join(errs, "; "))
	}
	return nil
}

// xrule is a routepolicy.Rule compiled for pfxKeys and attrs.
type xrule struct {
	op             routepolicy.Operator
	net            pfxKey // CIDR, masked
	maskHi, maskLo uint64
	minLen, maxLen uint8
	// Communities to match (any), split by kind.
	std   []uint32
	large []bgp.LargeCommunity
	// Action and changes.
	accept   bool
	hasSet   bool
	addStd   []uint32
	addLarge []bgp.LargeCommunity
	// localPref and med are valid when setLP and setMED.
	localPref, med uint32
	setLP, setMED  bool
	prependAS      uint32
	prependN       int
	// VPN and EVPN rules (famrib.go): route targets (their extended
	// communities' 8 bytes) and RDs (their 8 bytes) to match (any), EVPN
	// route types; noPrefix: no prefix conditions (EVPN); route targets
	// to remove and add.
	rts, rds       []uint64
	types          []uint8
	noPrefix       bool
	addRTs, delRTs []uint64
}

// xchain is a compiled routepolicy.Chain: the rules of every filter, in
// order, per family (a filter without a matching rule passes the route on
// to the next, so the chain is the concatenation), and the default.
type xchain struct {
	rules  [numFamilies][]*xrule
	segs   [numFamilies][]segment
	reject bool
}

// segment is a run of rules of a chain. A run of In rules is indexed by
// the first byte of the address: an In rule can only match a route whose
// address its CIDR contains, so a route is tried against just the rules
// whose CIDR covers its first byte, in their order, and first-match order
// is kept (what a prefix list's trie does in BIRD). Most filters are such
// lists: a route is then tried against a few rules, not all of them. Any
// other rule is a segment of its own.
type segment struct {
	rules []*xrule
	idx   *[256][]*xrule // nil: try rules in order
}

// minIndexed is the shortest run of In rules worth an index.
const minIndexed = 4

// segments splits rules into segments.
func segments(rules []*xrule) []segment {
	var out []segment
	for i := 0; i < len(rules); {
		j := i
		for j < len(rules) && rules[j].op == routepolicy.OpIn {
			j++
		}
		if j-i < minIndexed {
			out = append(out, segment{rules: rules[i : i+1]})
			i++
			continue
		}
		idx := new([256][]*xrule)
		for _, x := range rules[i:j] {
			lo, hi := x.net.hi>>56, (x.net.hi|^x.maskHi)>>56
			for b := lo; b <= hi; b++ {
				idx[b] = append(idx[b], x)
			}
		}
		out = append(out, segment{rules: rules[i:j], idx: idx})
		i = j
	}
	return out
}

func prefixMasks(bits int, v6 bool) (hi, lo uint64) {
	if !v6 {
		bits = min(bits, 32)
	}
	switch {
	case bits == 0:
		return 0, 0
	case bits <= 64:
		return ^uint64(0) << (64 - bits), 0
	default:
		return ^uint64(0), ^uint64(0) << (128 - bits)
	}
}

func compileXRule(r *routepolicy.Rule) *xrule {
	x := &xrule{op: r.Op, minLen: uint8(r.MinLen), maxLen: uint8(r.MaxLen), accept: r.Accept}
	if r.Op != routepolicy.OpNone {
		x.net = keyOf(r.CIDR)
		x.maskHi, x.maskLo = prefixMasks(r.CIDR.Bits(), r.CIDR.Addr().Is6())
	}
	for _, c := range r.Communities {
		if c.Large {
			x.large = append(x.large, bgp.LargeCommunity{ASN: c.Global, LocalData1: c.Local1, LocalData2: c.Local2})
		} else {
			x.std = append(x.std, c.Global<<16|c.Local1&0xffff)
		}
	}
	for _, c := range r.AddCommunities {
		if c.Large {
			x.addLarge = append(x.addLarge, bgp.LargeCommunity{ASN: c.Global, LocalData1: c.Local1, LocalData2: c.Local2})
		} else {
			x.addStd = append(x.addStd, c.Global<<16|c.Local1&0xffff)
		}
	}
	if r.LocalPref != nil {
		x.localPref, x.setLP = *r.LocalPref, true
	}
	if r.MED != nil {
		x.med, x.setMED = *r.MED, true
	}
	x.prependAS, x.prependN = r.PrependAS, r.PrependRepeat
	x.types, x.noPrefix = r.RouteTypes, r.NoPrefix
	for _, t := range r.RouteTargets {
		x.rts = append(x.rts, rtValue(t))
	}
	for _, t := range r.RDs {
		v := t.Value()
		x.rds = append(x.rds, uint64(t.Type)<<48|uint64(binary.BigEndian.Uint16(v[:]))<<32|uint64(binary.BigEndian.Uint32(v[2:])))
	}
	for _, t := range r.AddRouteTargets {
		x.addRTs = append(x.addRTs, rtValue(t))
	}
	for _, t := range r.RemoveRouteTargets {
		x.delRTs = append(x.delRTs, rtValue(t))
	}
	x.hasSet = r.Accept && (len(x.addStd) > 0 || len(x.addLarge) > 0 || x.setLP || x.setMED || x.prependN > 0 ||
		len(x.addRTs) > 0 || len(x.delRTs) > 0)
	return x
}

// rtValue is a route target's extended community as routeTargets reads
// it: type, sub-type 2, value.
func rtValue(t api.RouteTarget) uint64 {
	v := t.Value()
	return uint64(t.Type)<<56 | 0x02<<48 | uint64(binary.BigEndian.Uint16(v[:]))<<32 | uint64(binary.BigEndian.Uint32(v[2:]))
}

// matches is routepolicy.Rule.Matches on a key and its attrs. Source
// RemotePeers always holds on a reflector: every route is learned.
func (x *xrule) matches(k pfxKey, a *attrs) bool {
	return x.matchesPrefix(k) && x.matchesCommunities(a)
}

// matchesPrefix is the rule's CIDR and length conditions.
func (x *xrule) matchesPrefix(k pfxKey) bool {
	inLen := k.bits >= x.minLen && k.bits <= x.maxLen
	switch x.op {
	case routepolicy.OpNone:
		if !inLen {
			return false
		}
	case routepolicy.OpIn, routepolicy.OpNotIn:
		in := inLen && k.bits >= x.net.bits && k.hi&x.maskHi == x.net.hi && k.lo&x.maskLo == x.net.lo
		if in != (x.op == routepolicy.OpIn) {
			return false
		}
	case routepolicy.OpEqual, routepolicy.OpNotEqual:
		if (k == x.net) != (x.op == routepolicy.OpEqual) {
			return false
		}
	default:
		return false
	}
	return true
}

// matchesCommunities is the rule's communities condition.
func (x *xrule) matchesCommunities(a *attrs) bool {
	if len(x.std) == 0 && len(x.large) == 0 {
		return true
	}
	for _, p := range a.list {
		switch v := p.(type) {
		case *bgp.PathAttributeCommunities:
			for _, c := range v.Value {
				if slices.Contains(x.std, c) {
					return true
				}
			}
		case *bgp.PathAttributeLargeCommunities:
			for _, c := range v.Values {
				if c != nil && slices.Contains(x.large, *c) {
					return true
				}
			}
		}
	}
	return false
}

// eval runs the chain on a path: whether it is accepted, and the
// accepting rule when it changes the route (nil otherwise). A nil chain
// accepts everything unchanged.
func (c *xchain) eval(f family, k pfxKey, a *attrs) (*xrule, bool) {
	if c == nil {
		return nil, true
	}
	for i := range c.segs[f] {
		s := &c.segs[f][i]
		rules := s.rules
		if s.idx != nil {
			rules = s.idx[k.hi>>56]
		}
		for _, x := range rules {
			if x.matches(k, a) {
				if !x.accept {
					return nil, false
				}
				if x.hasSet {
					return x, true
				}
				return nil, true
			}
		}
	}
	return nil, !c.reject
}

// modify returns a's attributes changed by an Accept rule, as a new
// (uninterned) attrs: communities added, LOCAL_PREF and MED set; the AS
// path prepended only when toEBGP (export to an eBGP neighbour, as the
// API documents). fromEBGP is the source's kind (newAttrs' rule for
// LOCAL_PREF).
func (x *xrule) modify(a *attrs, fromEBGP, toEBGP bool) *attrs {
	list := make([]bgp.PathAttributeInterface, 0, len(a.list)+3)
	var haveStd, haveLarge, haveMED, haveExt bool
	for _, p := range a.list {
		switch v := p.(type) {
		case *bgp.PathAttributeCommunities:
			haveStd = true
			if len(x.addStd) > 0 {
				vals := slices.Clone(v.Value)
				for _, c := range x.addStd {
					if !slices.Contains(vals, c) {
						vals = append(vals, c)
					}
				}
				p = bgp.NewPathAttributeCommunities(vals)
			}
		case *bgp.PathAttributeLargeCommunities:
			haveLarge = true
			if len(x.addLarge) > 0 {
				vals := slices.Clone(v.Values)
				for i := range x.addLarge {
					c := x.addLarge[i]
					if !slices.ContainsFunc(vals, func(o *bgp.LargeCommunity) bool { return o != nil && *o == c }) {
						vals = append(vals, &c)
					}
				}
				p = bgp.NewPathAttributeLargeCommunities(vals)
			}
		case *bgp.PathAttributeMultiExitDisc:
			haveMED = true
			if x.setMED {
				p = bgp.NewPathAttributeMultiExitDisc(x.med)
			}
		case *bgp.PathAttributeLocalPref:
			if x.setLP {
				continue // set below
			}
		case *bgp.PathAttributeAsPath:
			if toEBGP && x.prependN > 0 {
				p = prependASN(v, x.prependAS, x.prependN)
			}
		case *bgp.PathAttributeExtendedCommunities:
			haveExt = true
			if len(x.addRTs) > 0 || len(x.delRTs) > 0 {
				p = x.changeRTs(v.Value)
			}
		}
		if p != nil {
			list = append(list, p)
		}
	}
	if !haveExt && len(x.addRTs) > 0 {
		list = append(list, x.changeRTs(nil))
	}
	if !haveStd && len(x.addStd) > 0 {
		list = append(list, bgp.NewPathAttributeCommunities(slices.Clone(x.addStd)))
	}
	if !haveLarge && len(x.addLarge) > 0 {
		vals := make([]*bgp.LargeCommunity, len(x.addLarge))
		for i := range x.addLarge {
			c := x.addLarge[i]
			vals[i] = &c
		}
		list = append(list, bgp.NewPathAttributeLargeCommunities(vals))
	}
	if !haveMED && x.setMED {
		list = append(list, bgp.NewPathAttributeMultiExitDisc(x.med))
	}
	if toEBGP && x.prependN > 0 && !slices.ContainsFunc(list, func(p bgp.PathAttributeInterface) bool {
		_, ok := p.(*bgp.PathAttributeAsPath)
		return ok
	}) {
		list = append(list, prependASN(&bgp.PathAttributeAsPath{}, x.prependAS, x.prependN))
	}
	in := attrsInput{list: list, nextHop: a.nextHop, nextHopLL: a.nextHopLL, fromEBGP: fromEBGP,
		gen: a.gen, rawNH: []byte(a.rawNH), extra: []byte(a.extra)}
	switch {
	case x.setLP:
		in.localPref, in.setLocalPref = x.localPref, true
	case fromEBGP && a.localPref != defaultLocalPref:
		in.localPref, in.setLocalPref = a.localPref, true // set on import earlier
	}
	return newAttrs(in)
}

// changeRTs returns the extended communities vals without the rule's
// route targets to remove and with those to add (nil: none left).
func (x *xrule) changeRTs(vals []bgp.ExtendedCommunityInterface) bgp.PathAttributeInterface {
	out := make([]bgp.ExtendedCommunityInterface, 0, len(vals)+len(x.addRTs))
	have := make([]uint64, 0, len(vals))
	for _, c := range vals {
		b, err := c.Serialize()
		if err == nil && len(b) == 8 {
			v := binary.BigEndian.Uint64(b)
			if slices.Contains(x.delRTs, v) {
				continue
			}
			have = append(have, v)
		}
		out = append(out, c)
	}
	for _, v := range x.addRTs {
		if slices.Contains(have, v) {
			continue
		}
		c, err := bgp.ParseExtended(binary.BigEndian.AppendUint64(nil, v))
		if err == nil {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return bgp.NewPathAttributeExtendedCommunities(out)
}

// prependASN prepends asn n times.
func prependASN(p *bgp.PathAttributeAsPath, asn uint32, n int) *bgp.PathAttributeAsPath {
	for range n {
		p = prependAS(p, asn)
	}
	return p
}

// policyState is the RIB loop's copy of the policy: compiled filters,
// the names per neighbour, and the chains built from them.
type policyState struct {
	cfg     PolicyConfig
	filters map[string]*routepolicy.Filter
	// ids number the compiled filters: a filter whose spec did not change
	// keeps its id, so that chains (and update groups) stay the same.
	ids    map[string]uint64
	specs  map[string]api.BGPFilterSpec
	nextID uint64
	ranges []netip.Prefix // most specific first
	chains map[string]*xchain
	// prev are the chains of the previous configuration, while a new one
	// is applied: a chain whose key is unchanged (same filters, same
	// specs, same default) is kept, so that its neighbours are not
	// evaluated again for nothing.
	prev map[string]*xchain
	// notes are the policy notes last logged per neighbour or range
	// (logged once per change).
	notes map[string]string
}

// compileFilters validates and compiles the filters, keeping the ids of
// unchanged ones.
func (ps *policyState) compileFilters(fs []*api.BGPFilter) error {
	filters := map[string]*routepolicy.Filter{}
	ids := map[string]uint64{}
	specs := map[string]api.BGPFilterSpec{}
	var errs []string
	for _, bf := range fs {
		if err := CheckFilter(bf); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		f, err := routepolicy.Compile(bf)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if _, dup := filters[bf.Name]; dup {
			errs = append(errs, fmt.Sprintf("BGPFilter %s: defined twice", bf.Name))
			continue
		}
		filters[bf.Name] = f
		if old, ok := ps.specs[bf.Name]; ok && equalSpec(old, bf.Spec) {
			ids[bf.Name] = ps.ids[bf.Name]
		} else {
			ps.nextID++
			ids[bf.Name] = ps.nextID
		}
		specs[bf.Name] = bf.DeepCopyResource().(*api.BGPFilter).Spec
	}
	if errs != nil {
		return fmt.Errorf("route policy: %s", strings.Join(errs, "; "))
	}
	ps.filters, ps.ids, ps.specs = filters, ids, specs
	return nil
}

func equalSpec(a, b api.BGPFilterSpec) bool { return reflect.DeepEqual(a, b) }

// namesFor returns the filter names of a neighbour: a configured one's
// own, a dynamic one's the most specific range's that contains it (the
// range it was accepted by).
func (ps *policyState) namesFor(addr netip.Addr, dynamic bool) []string {
	if !dynamic {
		return ps.cfg.Neighbors[addr]
	}
	for _, p := range ps.ranges {
		if p.Contains(addr) {
			return ps.cfg.Ranges[p]
		}
	}
	return nil
}

// RFC8212Note is a neighbour's policy note (NeighborStatus.Policy) when it
// is eBGP without filters under RFC 8212: up, exchanging nothing. The node
// router's status says the same.
const RFC8212Note = "RFC 8212: eBGP without a BGPFilter, nothing accepted or sent (BGPConfiguration ebgpDefaultPolicy Reject)"

// sessionPolicy is one neighbour's resolved policy.
type sessionPolicy struct {
	imp, exp *xchain // nil: accept everything
	expKey   string  // the export chain's identity ("" for nil)
	note     string  // for the status: a missing filter, RFC 8212
	missing  []string
}

// resolve builds the policy of a neighbour.
func (ps *policyState) resolve(addr netip.Addr, ebgp, dynamic bool) sessionPolicy {
	names := ps.namesFor(addr, dynamic)
	accept := !ebgp || ps.cfg.EBGPDefaultAccept
	p, missing := routepolicy.Resolve(names, ps.filters, accept)
	var sp sessionPolicy
	sp.missing = missing
	switch {
	case missing != nil:
		sp.note = fmt.Sprintf("BGPFilter %s not found: default policy only", strings.Join(missing, ", "))
	case ebgp && !accept && len(names) == 0:
		sp.note = RFC8212Note
	}
	var ids []string
	if missing == nil {
		for _, n := range names {
			ids = append(ids, strconv.FormatUint(ps.ids[n], 10))
		}
	}
	sp.imp, _ = ps.chain(routepolicy.Import, p.Import, ids)
	sp.exp, sp.expKey = ps.chain(routepolicy.Export, p.Export, ids)
	return sp
}

// chain compiles (or finds) the xchain of one direction.
func (ps *policyState) chain(dir routepolicy.Direction, c routepolicy.Chain, ids []string) (*xchain, string) {
	if c.AcceptsAll() {
		return nil, ""
	}
	key := fmt.Sprintf("%s:%v:%s", dir, c.Reject, strings.Join(ids, ","))
	if x := ps.chains[key]; x != nil {
		return x, key
	}
	if x := ps.prev[key]; x != nil {
		ps.chains[key] = x
		return x, key
	}
	x := &xchain{reject: c.Reject}
	rules := 0
	for _, f := range c.Filters {
		for fam := range numUnicast {
			for i := range f.RulesFor(dir, fam == famV6) {
				x.rules[fam] = append(x.rules[fam], compileXRule(&f.RulesFor(dir, fam == famV6)[i]))
			}
		}
		for fam, vf := range vpnLists {
			for i := range f.VPNRulesFor(dir, vf) {
				x.rules[fam] = append(x.rules[fam], compileXRule(&f.VPNRulesFor(dir, vf)[i]))
			}
		}
	}
	for fam := range numFamilies {
		rules += len(x.rules[fam])
		if !fam.generic() { // the generic families' rules are tried in order (evalGen)
			x.segs[fam] = segments(x.rules[fam])
		}
	}
	if !x.reject && rules == 0 {
		return nil, "" // filters without rules in this direction: accept-all, no Adj-RIB-In
	}
	if ps.chains == nil {
		ps.chains = map[string]*xchain{}
	}
	ps.chains[key] = x
	return x, key
}

// setConfig takes a new configuration; chains are rebuilt on demand.
func (ps *policyState) setConfig(pc PolicyConfig) error {
	if err := ps.compileFilters(pc.Filters); err != nil {
		return err
	}
	ps.cfg = pc
	ps.ranges = ps.ranges[:0]
	for p := range pc.Ranges {
		ps.ranges = append(ps.ranges, p)
	}
	slices.SortStableFunc(ps.ranges, func(a, b netip.Prefix) int {
		if d := b.Bits() - a.Bits(); d != 0 {
			return d
		}
		return a.Addr().Compare(b.Addr())
	})
	ps.prev, ps.chains = ps.chains, map[string]*xchain{}
	return nil
}

// validatePolicy checks a PolicyConfig without applying it: the filters
// (as apply does, and CheckFilter), and that every name a neighbour or
// range uses exists when strict (the configuration file; the datastore
// allows a filter to be created later).
func validatePolicy(pc PolicyConfig, strict bool) error {
	var ps policyState
	if err := ps.compileFilters(pc.Filters); err != nil {
		return err
	}
	if !strict {
		return nil
	}
	var errs []string
	check := func(who string, names []string) {
		for _, n := range names {
			if _, ok := ps.filters[n]; !ok {
				errs = append(errs, fmt.Sprintf("%s: BGPFilter %s is not defined", who, n))
			}
		}
	}
	for a, ns := range pc.Neighbors {
		check(a.String(), ns)
	}
	for p, ns := range pc.Ranges {
		check(p.String(), ns)
	}
	if errs != nil {
		slices.Sort(errs)
		return fmt.Errorf("route policy: %s", strings.Join(errs, "; "))
	}
	return nil
}
