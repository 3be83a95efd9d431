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
	Accept      bool
	// Set actions (Accept only).
	AddCommunities []api.Community
	LocalPref      *uint32
	MED            *uint32
	PrependAS      uint32
	PrependRepeat  int
}

// Filter is a compiled BGPFilter: rules per direction and family.
type Filter struct {
	Name string
	// Rules[dir][0] are the IPv4 rules, Rules[dir][1] the IPv6 ones.
	Rules [2][2][]Rule
}

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
	for _, l := range []struct {
		dir   Direction
		v6    bool
		rules []api.BGPFilterRule
	}{
		{Import, false, c.Spec.ImportV4}, {Export, false, c.Spec.ExportV4},
		{Import, true, c.Spec.ImportV6}, {Export, true, c.Spec.ExportV6},
	} {
		fam := 0
		if l.v6 {
			fam = 1
		}
		for i := range l.rules {
			r, err := compileRule(&l.rules[i], l.v6)
			if err != nil { // validated above: cannot happen
				return nil, fmt.Errorf("BGPFilter %s: %w", c.Name, err)
			}
			f.Rules[l.dir][fam] = append(f.Rules[l.dir][fam], r)
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
	var err error
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
