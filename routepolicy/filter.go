package routepolicy

import (
	"fmt"
	"net/netip"

	"github.com/bgpfabric/bgpfabric/api"
)

// Direction is import (routes received) or export (routes sent).
type Direction int

const (
	Import Direction = iota
	Export
)

func (d Direction) String() string {
	if d == Export {
		return "export"
	}
	return "import"
}

// Operator is a rule's CIDR comparison.
type Operator string

// Operators; OpNone is a rule without CIDR.
const (
	OpNone     Operator = ""
	OpIn       Operator = api.MatchIn
	OpNotIn    Operator = api.MatchNotIn
	OpEqual    Operator = api.MatchEqual
	OpNotEqual Operator = api.MatchNotEqual
)

// Rule is one compiled rule. Its fields are exported so that a speaker
// adapter can translate it; Matches and Apply are the reference
// semantics.
type Rule struct {
	// CIDR is valid when Op is not OpNone.
	CIDR netip.Prefix
	Op   Operator
	// MinLen and MaxLen bound the prefix length (In, NotIn, or no CIDR);
	// they are always set (defaults filled in).
	MinLen, MaxLen int
	// FromPeersOnly is Source RemotePeers.
	FromPeersOnly bool
	// Communities: the route must carry any of them (none: no condition).
	Communities []api.Community
	// VPN and EVPN rules only: the route must carry any of RouteTargets,
	// its RD must be one of RDs, an EVPN route's type one of RouteTypes
	// (none: no condition). NoPrefix (EVPN) skips the prefix conditions.
	RouteTargets []api.RouteTarget
	RDs          []api.RouteTarget
	RouteTypes   []uint8
	NoPrefix     bool
	Accept       bool
	// Set actions (Accept only).
	AddCommunities []api.Community
	LocalPref      *uint32
	MED            *uint32
	PrependAS      uint32
	PrependRepeat  int
	// VPN and EVPN rules only: route targets to remove, then to add.
	AddRouteTargets, RemoveRouteTargets []api.RouteTarget
}

// VPNFamily is a family of the VPN rule lists (route reflectors only).
type VPNFamily int

// The VPN families; Unicast is a route of the IPv4 and IPv6 lists.
const (
	Unicast VPNFamily = iota
	EVPN
	VPNv4
	VPNv6
)

// Filter is a compiled BGPFilter: rules per direction and family.
type Filter struct {
	Name string
	// Rules[dir][0] are the IPv4 rules, Rules[dir][1] the IPv6 ones.
	Rules [2][2][]Rule
	// VPN[dir][fam] are the rules of the VPN family fam (EVPN, VPNv4,
	// VPNv6; VPN[dir][Unicast] is empty).
	VPN [2][4][]Rule
}

// VPNRulesFor returns the rules of a direction and VPN family.
func (f *Filter) VPNRulesFor(dir Direction, fam VPNFamily) []Rule { return f.VPN[dir][fam] }

// RulesFor returns the rules that apply to a direction and family.
func (f *Filter) RulesFor(dir Direction, v6 bool) []Rule {
	fam := 0
	if v6 {
		fam = 1
	}
	return f.Rules[dir][fam]
}

// Compile validates a BGPFilter (as apply does) and compiles it.
func Compile(bf *api.BGPFilter) (*Filter, error) {
	c := bf.DeepCopyResource().(*api.BGPFilter)
	if err := api.ValidateResource(c); err != nil {
		return nil, err
	}
	f := &Filter{Name: c.Name}
	for _, l := range c.Spec.Lists() {
		dir := Import
		if l.Export {
			dir = Export
		}
		v6 := l.Kind == api.FilterListV6 || l.Kind == api.FilterListVPNv6
		for i := range *l.Rules {
			r, err := compileRule(&(*l.Rules)[i], v6)
			if err != nil { // validated above: cannot happen
				return nil, fmt.Errorf("BGPFilter %s: %w", c.Name, err)
			}
			switch l.Kind {
			case api.FilterListV4:
				f.Rules[dir][0] = append(f.Rules[dir][0], r)
			case api.FilterListV6:
				f.Rules[dir][1] = append(f.Rules[dir][1], r)
			case api.FilterListEVPN:
				r.NoPrefix = true
				f.VPN[dir][EVPN] = append(f.VPN[dir][EVPN], r)
			case api.FilterListVPNv4:
				f.VPN[dir][VPNv4] = append(f.VPN[dir][VPNv4], r)
			case api.FilterListVPNv6:
				f.VPN[dir][VPNv6] = append(f.VPN[dir][VPNv6], r)
			}
		}
	}
	return f, nil
}

func compileRule(ar *api.BGPFilterRule, v6 bool) (Rule, error) {
	r := Rule{Op: Operator(ar.MatchOperator), MinLen: 0, MaxLen: 32, FromPeersOnly: ar.Source == api.FilterSourceRemotePeers,
		Accept: ar.Action == api.FilterAccept, LocalPref: ar.LocalPref, MED: ar.MED}
	if v6 {
		r.MaxLen = 128
	}
	for _, t := range ar.EVPNRouteTypes {
		r.RouteTypes = append(r.RouteTypes, uint8(t))
	}
	var err error
	for _, l := range []struct {
		dst *[]api.RouteTarget
		src []string
	}{{&r.RouteTargets, ar.RouteTargets}, {&r.RDs, ar.RouteDistinguishers}, {&r.AddRouteTargets, ar.AddRouteTargets}, {&r.RemoveRouteTargets, ar.RemoveRouteTargets}} {
		if *l.dst, err = parseRouteTargets(l.src); err != nil {
			return Rule{}, err
		}
	}
	if ar.CIDR != "" {
		p, err := netip.ParsePrefix(ar.CIDR)
		if err != nil {
			return Rule{}, err
		}
		r.CIDR, r.MinLen = p, p.Bits()
	}
	if pl := ar.PrefixLength; pl != nil {
		if pl.Min != nil {
			r.MinLen = *pl.Min
		}
		if pl.Max != nil {
			r.MaxLen = *pl.Max
		}
	}
	if r.Communities, err = parseCommunities(ar.Communities); err != nil {
		return Rule{}, err
	}
	if r.AddCommunities, err = parseCommunities(ar.AddCommunities); err != nil {
		return Rule{}, err
	}
	if p := ar.PrependASPath; p != nil {
		r.PrependAS, r.PrependRepeat = p.ASNumber, max(p.Repeat, 1)
	}
	return r, nil
}

func parseCommunities(ss []string) ([]api.Community, error) {
	var out []api.Community
	for _, s := range ss {
		c, err := api.ParseCommunity(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseRouteTargets(ss []string) ([]api.RouteTarget, error) {
	var out []api.RouteTarget
	for _, s := range ss {
		t, err := api.ParseRouteTarget(s)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}
