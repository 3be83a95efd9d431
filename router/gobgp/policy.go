package gobgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"

	bfapi "github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/routepolicy"
	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// Per-session route policy (BGPFilters, RFC 8212) on GoBGP.
//
// GoBGP's import and export policies are global (per peer only for
// route-server clients), so each session (a peer's address, or a range's
// prefix) whose policy is not "accept everything" gets its own GoBGP
// policy per direction whose statements all match its neighbor set: the
// rules of its filters in order, each for its family (an afi-safi
// condition), then a last statement with the default. The global import
// assignment lists these policies (default accept); the global export
// assignment lists them after bgpfabric-export (which rejects what must
// not leave the node before a filter is asked). Peers come before
// ranges, so that a configured peer inside a range gets its own policy. A statement whose route
// action is accept or reject ends the evaluation, which gives
// routepolicy's first-match semantics; a filter without a matching rule
// falls through to the next filter's statements.
//
// A rule becomes one statement, or several when GoBGP needs an OR: a rule
// with both standard and large communities gives one statement per kind;
// an export rule with source RemotePeers one per route type (internal,
// external). A change replaces the session's policies and sets under new
// names (a generation number), swaps the assignments, deletes the old
// ones, and then soft-resets the session: in (GoBGP evaluates the
// Adj-RIB-In again, without a route refresh) and out.

const (
	importAssignment = "global"
	peerPolicyPrefix = "bgpfabric-session-"
)

// installedPolicy is what one session has in GoBGP.
type installedPolicy struct {
	policy   routepolicy.Policy
	in, out  string // GoBGP policy names, "" for none
	sets     []*api.DefinedSet
	neighbor string // the neighbor set's name
}

// needsPolicy reports whether a session's policy needs statements.
func needsPolicy(p routepolicy.Policy) bool {
	return !p.Import.AcceptsAll() || !p.Export.AcceptsAll()
}

// setSessionPolicyLocked installs who's policy (replacing any), and
// reports whether anything changed. s.peerMu is held.
func (s *Speaker) setSessionPolicyLocked(ctx context.Context, who netip.Prefix, p routepolicy.Policy) (bool, error) {
	old, had := s.policies[who]
	if had && policyEqual(old.policy, p) || !had && !needsPolicy(p) {
		return false, nil
	}
	var next *installedPolicy
	if needsPolicy(p) {
		s.policyGen++
		b := &policyBuilder{base: peerPolicyPrefix + strconv.FormatUint(s.policyGen, 10)}
		np, err := b.build(who, p)
		if err != nil {
			return false, err
		}
		for _, ds := range np.sets {
			if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
				s.dropPolicy(ctx, np)
				return false, fmt.Errorf("policy of %s: adding defined set %s: %w", who, ds.Name, err)
			}
		}
		for _, pol := range b.policies {
			if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
				s.dropPolicy(ctx, np)
				return false, fmt.Errorf("policy of %s: adding %s: %w", who, pol.Name, err)
			}
		}
		next = np
	}
	if next != nil {
		s.policies[who] = next
	} else {
		delete(s.policies, who)
	}
	if err := s.assignPoliciesLocked(ctx); err != nil {
		// Leave the old one in force.
		if had {
			s.policies[who] = old
		} else {
			delete(s.policies, who)
		}
		if next != nil {
			s.dropPolicy(ctx, next)
		}
		return false, err
	}
	if had {
		s.dropPolicy(ctx, old)
	}
	return true, nil
}

// assignPoliciesLocked sets the global import and export assignments to
// the sessions' policies, in address order.
func (s *Speaker) assignPoliciesLocked(ctx context.Context) error {
	keys := make([]netip.Prefix, 0, len(s.policies))
	for k := range s.policies {
		keys = append(keys, k)
	}
	// Peers before ranges (a configured peer inside a range is that
	// peer), then by address.
	slices.SortFunc(keys, func(a, b netip.Prefix) int {
		if a.Bits() != b.Bits() {
			return b.Bits() - a.Bits()
		}
		return a.Addr().Compare(b.Addr())
	})
	in := []*api.Policy{{Name: gshutPolicyName}} // gshut.go
	out := []*api.Policy{{Name: exportPolicyName}}
	for _, k := range keys {
		ip := s.policies[k]
		if ip.in != "" {
			in = append(in, &api.Policy{Name: ip.in})
		}
		if ip.out != "" {
			out = append(out, &api.Policy{Name: ip.out})
		}
	}
	var errs []error
	if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: importAssignment, Direction: api.PolicyDirection_IMPORT, Policies: in, DefaultAction: api.RouteAction_ACCEPT}}); err != nil {
		errs = append(errs, fmt.Errorf("assigning import policies: %w", err))
	}
	if err := s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: importAssignment, Direction: api.PolicyDirection_EXPORT, Policies: out, DefaultAction: api.RouteAction_ACCEPT}}); err != nil {
		errs = append(errs, fmt.Errorf("assigning export policies: %w", err))
	}
	return errors.Join(errs...)
}

// dropPolicy deletes a session's GoBGP policies and sets (best effort:
// they are no longer assigned).
func (s *Speaker) dropPolicy(ctx context.Context, ip *installedPolicy) {
	for _, name := range []string{ip.in, ip.out} {
		if name != "" {
			_ = s.srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: name}, All: true})
		}
	}
	for _, ds := range ip.sets {
		_ = s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{
			DefinedType: ds.DefinedType, Name: ds.Name}, All: true})
	}
}

// removeSessionPolicyLocked removes who's policy, if any.
func (s *Speaker) removeSessionPolicyLocked(ctx context.Context, who netip.Prefix) error {
	_, err := s.setSessionPolicyLocked(ctx, who, routepolicy.Policy{})
	return err
}

// clearPoliciesLocked forgets every session's policy (Stop: the peers
// are gone), deleting them from GoBGP.
func (s *Speaker) clearPoliciesLocked(ctx context.Context) {
	for who, ip := range s.policies {
		delete(s.policies, who)
		_ = s.assignPoliciesLocked(ctx)
		s.dropPolicy(ctx, ip)
	}
}

func policyEqual(a, b routepolicy.Policy) bool {
	return chainEqual(a.Import, b.Import) && chainEqual(a.Export, b.Export)
}

func chainEqual(a, b routepolicy.Chain) bool {
	return a.Reject == b.Reject && slices.EqualFunc(a.Filters, b.Filters, func(x, y *routepolicy.Filter) bool {
		return x.Name == y.Name && fmt.Sprint(x.Rules) == fmt.Sprint(y.Rules)
	})
}

// policyBuilder translates one session's policy.
type policyBuilder struct {
	base     string
	n        int
	sets     []*api.DefinedSet
	policies []*api.Policy
}

func (b *policyBuilder) name(kind string) string {
	b.n++
	return b.base + "-" + kind + "-" + strconv.Itoa(b.n)
}

func (b *policyBuilder) build(who netip.Prefix, p routepolicy.Policy) (*installedPolicy, error) {
	ip := &installedPolicy{policy: p, neighbor: b.base + "-neighbor"}
	b.sets = append(b.sets, &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: ip.neighbor, List: []string{who.String()}})
	for _, d := range []struct {
		dir   routepolicy.Direction
		chain routepolicy.Chain
		name  *string
	}{{routepolicy.Import, p.Import, &ip.in}, {routepolicy.Export, p.Export, &ip.out}} {
		if d.chain.AcceptsAll() {
			continue
		}
		pol := &api.Policy{Name: b.base + "-" + d.dir.String()}
		for _, f := range d.chain.Filters {
			for _, v6 := range []bool{false, true} {
				for i := range f.RulesFor(d.dir, v6) {
					sts, err := b.statements(ip.neighbor, d.dir, v6, &f.RulesFor(d.dir, v6)[i])
					if err != nil {
						return nil, fmt.Errorf("BGPFilter %s: %w", f.Name, err)
					}
					pol.Statements = append(pol.Statements, sts...)
				}
			}
		}
		def := api.RouteAction_ACCEPT
		if d.chain.Reject {
			def = api.RouteAction_REJECT
		}
		pol.Statements = append(pol.Statements, &api.Statement{Name: b.name("default"),
			Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: ip.neighbor}},
			Actions:    &api.Actions{RouteAction: def}})
		b.policies = append(b.policies, pol)
		*d.name = pol.Name
	}
	ip.sets = b.sets
	return ip, nil
}

func family(v6 bool) *api.Family {
	if v6 {
		return &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
	}
	return &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
}

// statements translates one rule.
func (b *policyBuilder) statements(neighbor string, dir routepolicy.Direction, v6 bool, r *routepolicy.Rule) ([]*api.Statement, error) {
	cond := &api.Conditions{
		NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: neighbor},
		AfiSafiIn:   []*api.Family{family(v6)},
	}
	maxBits := 32
	if v6 {
		maxBits = 128
	}
	var prefix *api.Prefix
	match := api.MatchSet_ANY
	switch r.Op {
	case routepolicy.OpNone:
		if r.MinLen > 0 || r.MaxLen < maxBits {
			any := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if v6 {
				any = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
			prefix = &api.Prefix{IpPrefix: any.String(), MaskLengthMin: uint32(r.MinLen), MaskLengthMax: uint32(r.MaxLen)}
		}
	case routepolicy.OpIn, routepolicy.OpNotIn:
		prefix = &api.Prefix{IpPrefix: r.CIDR.String(), MaskLengthMin: uint32(r.MinLen), MaskLengthMax: uint32(r.MaxLen)}
		if r.Op == routepolicy.OpNotIn {
			match = api.MatchSet_INVERT
		}
	case routepolicy.OpEqual, routepolicy.OpNotEqual:
		bits := uint32(r.CIDR.Bits())
		prefix = &api.Prefix{IpPrefix: r.CIDR.String(), MaskLengthMin: bits, MaskLengthMax: bits}
		if r.Op == routepolicy.OpNotEqual {
			match = api.MatchSet_INVERT
		}
	default:
		return nil, fmt.Errorf("unknown match operator %q", r.Op)
	}
	if prefix != nil {
		name := b.name("prefix")
		b.sets = append(b.sets, &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name, Prefixes: []*api.Prefix{prefix}})
		cond.PrefixSet = &api.MatchSet{Type: match, Name: name}
	}
	acts := &api.Actions{RouteAction: api.RouteAction_REJECT}
	if r.Accept {
		acts.RouteAction = api.RouteAction_ACCEPT
		std, large := splitCommunities(r.AddCommunities)
		if len(std) > 0 {
			acts.Community = &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: std}
		}
		if len(large) > 0 {
			acts.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: large}
		}
		if r.LocalPref != nil {
			acts.LocalPref = &api.LocalPrefAction{Value: *r.LocalPref}
		}
		if r.MED != nil {
			acts.Med = &api.MedAction{Type: api.MedAction_REPLACE, Value: int64(*r.MED)}
		}
		if r.PrependRepeat > 0 {
			acts.AsPrepend = &api.AsPrependAction{Asn: r.PrependAS, Repeat: uint32(r.PrependRepeat)}
		}
	}
	// The OR of GoBGP conditions: one statement per alternative.
	variants := []*api.Conditions{cond}
	if std, large := splitCommunities(r.Communities); len(std)+len(large) > 0 {
		variants = nil
		if len(std) > 0 {
			c := cloneConditions(cond)
			name := b.name("community")
			b.sets = append(b.sets, &api.DefinedSet{DefinedType: api.DefinedType_COMMUNITY, Name: name, List: std})
			c.CommunitySet = &api.MatchSet{Type: api.MatchSet_ANY, Name: name}
			variants = append(variants, c)
		}
		if len(large) > 0 {
			c := cloneConditions(cond)
			name := b.name("large")
			b.sets = append(b.sets, &api.DefinedSet{DefinedType: api.DefinedType_LARGE_COMMUNITY, Name: name, List: large})
			c.LargeCommunitySet = &api.MatchSet{Type: api.MatchSet_ANY, Name: name}
			variants = append(variants, c)
		}
	}
	// Every imported route is from a peer: source RemotePeers is a
	// condition on export only.
	if r.FromPeersOnly && dir == routepolicy.Export {
		var out []*api.Conditions
		for _, c := range variants {
			for _, rt := range []api.Conditions_RouteType{api.Conditions_ROUTE_TYPE_INTERNAL, api.Conditions_ROUTE_TYPE_EXTERNAL} {
				c2 := cloneConditions(c)
				c2.RouteType = rt
				out = append(out, c2)
			}
		}
		variants = out
	}
	sts := make([]*api.Statement, 0, len(variants))
	for _, c := range variants {
		sts = append(sts, &api.Statement{Name: b.name("rule"), Conditions: c, Actions: acts})
	}
	return sts, nil
}

func cloneConditions(c *api.Conditions) *api.Conditions {
	return proto.Clone(c).(*api.Conditions)
}

func splitCommunities(cs []bfapi.Community) (std, large []string) {
	for _, c := range cs {
		if c.Large {
			large = append(large, c.String())
		} else {
			std = append(std, c.String())
		}
	}
	return std, large
}

// hasASLoop reports whether a path's AS path holds as (GoBGP rejects
// such paths on receipt: its AllowOwnAs is 0 on our sessions).
func hasASLoop(p *api.Path, as uint32) bool {
	for _, a := range p.Pattrs {
		if a.MessageName() != nameAsPath {
			continue
		}
		var m api.AsPathAttribute
		if err := a.UnmarshalTo(&m); err != nil {
			return false
		}
		for _, seg := range m.Segments {
			if slices.Contains(seg.Numbers, as) {
				return true
			}
		}
	}
	return false
}

// fixAccepted corrects the accepted count of the peers with an import
// policy: GoBGP counts what passed its own checks (loops) before the
// import policy, so a route the policy rejects would count as accepted.
// For those peers (usually eBGP ones with few routes) the Adj-RIB-In is
// listed with the policy applied. The listing also holds, unmarked, the
// paths GoBGP dropped before any policy because their AS path has our AS
// (RFC 4271 9.1.2: a ToR sends a node its own block back): those are not
// counted either. Listing costs about 1.5 CPU-s per 100,000 paths, so a
// peer that sent more than acceptedCountBig is listed at most once per
// acceptedCountEvery (under the same policy) and shows the last count in
// between.
func (s *Speaker) fixAccepted(ctx context.Context, ps []speaker.PeerStatus) {
	s.peerMu.Lock()
	filtered := map[netip.Addr]uint32{} // peer -> our AS on its session (0: the global one)
	gens := map[netip.Addr]string{}     // the import policy's name
	for who, ip := range s.policies {
		if who.IsSingleIP() && ip.in != "" {
			filtered[who.Addr()] = s.peers[who.Addr()].LocalAS
			gens[who.Addr()] = ip.in
		}
	}
	s.peerMu.Unlock()
	s.accepted.retain(gens)
	if len(filtered) == 0 {
		return
	}
	var globalAS uint32
	for a, as := range filtered {
		if as == 0 {
			if globalAS == 0 {
				s.mu.Lock()
				globalAS = s.global.AS
				s.mu.Unlock()
			}
			filtered[a] = globalAS
		}
	}
	now := time.Now()
	for i := range ps {
		localAS, ok := filtered[ps[i].Address]
		if !ok || ps[i].Dynamic {
			continue
		}
		if n, ok := s.accepted.get(ps[i].Address, gens[ps[i].Address], ps[i].PrefixesReceived, now); ok {
			ps[i].PrefixesAccepted = n
			continue
		}
		var n uint64
		ok = true
		for _, fam := range []*api.Family{family(false), family(true)} {
			err := s.srv.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_ADJ_IN, Name: ps[i].Address.String(),
				Family: fam, EnableFiltered: true}, func(d *api.Destination) {
				for _, p := range d.Paths {
					if !p.Filtered && !p.IsWithdraw && !hasASLoop(p, localAS) {
						n++
					}
				}
			})
			if err != nil {
				ok = false // e.g. the family not negotiated: keep GoBGP's count
				break
			}
		}
		if ok {
			ps[i].PrefixesAccepted = n
			s.accepted.put(ps[i].Address, gens[ps[i].Address], ps[i].PrefixesReceived, n, now)
		}
	}
}

const (
	acceptedCountBig   = 10000
	acceptedCountEvery = 30 * time.Second
)

// acceptedCache holds the last accepted count of the peers with more than
// acceptedCountBig paths.
type acceptedCache struct {
	mu sync.Mutex
	m  map[netip.Addr]acceptedCount
}

type acceptedCount struct {
	policy string // the import policy's GoBGP name: a new one counts again
	n      uint64
	at     time.Time
}

// retain forgets the peers that no longer have an import policy.
func (c *acceptedCache) retain(peers map[netip.Addr]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a := range c.m {
		if _, ok := peers[a]; !ok {
			delete(c.m, a)
		}
	}
}

// get returns the cached count if it may stand in for a listing.
func (c *acceptedCache) get(a netip.Addr, policy string, received uint64, now time.Time) (uint64, bool) {
	if received <= acceptedCountBig {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[a]
	if !ok || e.policy != policy || now.Sub(e.at) >= acceptedCountEvery {
		return 0, false
	}
	return min(e.n, received), true
}

func (c *acceptedCache) put(a netip.Addr, policy string, received, n uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if received <= acceptedCountBig {
		delete(c.m, a)
		return
	}
	if c.m == nil {
		c.m = map[netip.Addr]acceptedCount{}
	}
	c.m[a] = acceptedCount{policy: policy, n: n, at: now}
}
