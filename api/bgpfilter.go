package api

import (
	"fmt"
	"net/netip"
)

// BGPFilter is a named route policy, Calico's BGPFilter extended with
// communities, local preference, MED and AS-path prepending: ordered rules
// per direction and family. BGPPeers name the filters that apply to their
// sessions (BGPPeerSpec.Filters), in order. Package routepolicy evaluates
// them; docs/policy.md describes the model.
type BGPFilter struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       BGPFilterSpec `json:"spec"`
}

// BGPFilterSpec holds the rules of each direction and family. Within one
// list the first rule that matches a route decides; a route that no rule
// matches passes on to the peer's next filter, and after the last to the
// session's default (see docs/policy.md).
type BGPFilterSpec struct {
	ExportV4 []BGPFilterRule `json:"exportV4,omitempty"`
	ImportV4 []BGPFilterRule `json:"importV4,omitempty"`
	ExportV6 []BGPFilterRule `json:"exportV6,omitempty"`
	ImportV6 []BGPFilterRule `json:"importV6,omitempty"`
}

// BGPFilterRule is one rule. Every condition set must match (an unset one
// matches everything); an Accept rule may also change the route.
type BGPFilterRule struct {
	// CIDR and MatchOperator, set together, compare the route's prefix
	// with CIDR: In (inside it, CIDR itself included), NotIn, Equal,
	// NotEqual.
	CIDR          string `json:"cidr,omitempty"`
	MatchOperator string `json:"matchOperator,omitempty"`
	// PrefixLength bounds the prefix length (with In, or without CIDR);
	// unset bounds are CIDR's length (0 without CIDR) and the family's
	// maximum.
	PrefixLength *BGPFilterPrefixLength `json:"prefixLength,omitempty"`
	// Source RemotePeers matches only routes learned from a BGP peer (not
	// the ones this router originates).
	Source string `json:"source,omitempty"`
	// Interface (Calico's match on the interface of a local route) is not
	// supported yet: Validate refuses it.
	Interface string `json:"interface,omitempty"`
	// Communities matches a route that carries any of them: standard
	// ("65000:100") or large ("65000:1:2").
	Communities []string `json:"communities,omitempty"`
	// Action is Accept or Reject.
	Action string `json:"action"`
	// With Accept only: communities to add (standard or large), the
	// LOCAL_PREF (iBGP) and MED to set, and ASes to prepend to the AS
	// path (export to eBGP peers only).
	AddCommunities []string                `json:"addCommunities,omitempty"`
	LocalPref      *uint32                 `json:"localPref,omitempty"`
	MED            *uint32                 `json:"med,omitempty"`
	PrependASPath  *BGPFilterASPathPrepend `json:"prependASPath,omitempty"`
}

// BGPFilterPrefixLength bounds a matched prefix's length.
type BGPFilterPrefixLength struct {
	Min *int `json:"min,omitempty"`
	Max *int `json:"max,omitempty"`
}

// BGPFilterASPathPrepend prepends ASNumber Repeat times (1..10, default 1).
type BGPFilterASPathPrepend struct {
	ASNumber uint32 `json:"asNumber"`
	Repeat   int    `json:"repeat,omitempty"`
}

// Values of BGPFilterRule fields.
const (
	MatchIn       = "In"
	MatchNotIn    = "NotIn"
	MatchEqual    = "Equal"
	MatchNotEqual = "NotEqual"

	FilterAccept = "Accept"
	FilterReject = "Reject"

	FilterSourceRemotePeers = "RemotePeers"
)

// MaxFilterRules bounds each rule list of a BGPFilter.
const MaxFilterRules = 1000

func init() {
	register(KindInfo{Kind: KindBGPFilter, Plural: "bgpfilters", Short: []string{"bgpfilter"}, New: func() Resource { return &BGPFilter{} }})
}

// GetTypeMeta implements Resource.
func (f *BGPFilter) GetTypeMeta() *TypeMeta { return &f.TypeMeta }

// GetObjectMeta implements Resource.
func (f *BGPFilter) GetObjectMeta() *ObjectMeta { return &f.ObjectMeta }

// DeepCopyResource implements Resource.
func (f *BGPFilter) DeepCopyResource() Resource { return deepCopy(f) }

// Default implements Resource: a prepend's repeat defaults to 1.
func (f *BGPFilter) Default() {
	setTypeMeta(&f.TypeMeta, KindBGPFilter)
	for _, l := range f.Spec.lists() {
		for i := range *l.rules {
			if p := (*l.rules)[i].PrependASPath; p != nil && p.Repeat == 0 {
				p.Repeat = 1
			}
		}
	}
}

// filterList is one rule list of a spec, with its JSON name and family.
type filterList struct {
	name  string
	v6    bool
	rules *[]BGPFilterRule
}

func (s *BGPFilterSpec) lists() []filterList {
	return []filterList{
		{"exportV4", false, &s.ExportV4}, {"importV4", false, &s.ImportV4},
		{"exportV6", true, &s.ExportV6}, {"importV6", true, &s.ImportV6},
	}
}

// Validate implements Resource.
func (f *BGPFilter) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindBGPFilter, f)
	for _, l := range f.Spec.lists() {
		if len(*l.rules) > MaxFilterRules {
			fe.add("spec."+l.name, len(*l.rules), "must have at most %d rules", MaxFilterRules)
			continue
		}
		for i := range *l.rules {
			validateFilterRule(&fe, fmt.Sprintf("spec.%s[%d]", l.name, i), l.v6, &(*l.rules)[i])
		}
	}
	return fe.result(KindBGPFilter, f)
}

func validateFilterRule(fe *fieldErrors, path string, v6 bool, r *BGPFilterRule) {
	family, maxBits := "IPv4", 32
	if v6 {
		family, maxBits = "IPv6", 128
	}
	minBits := 0
	switch {
	case r.CIDR == "" && r.MatchOperator != "":
		fe.add(path+".matchOperator", r.MatchOperator, "must not be set without cidr")
	case r.CIDR != "":
		p, err := netip.ParsePrefix(r.CIDR)
		switch {
		case err != nil || p.Addr().Zone() != "":
			fe.add(path+".cidr", r.CIDR, "must be a network such as \"10.0.0.0/8\" or \"fd00::/8\"")
		case p.Addr().Is6() != v6 || p.Addr().Is4In6():
			fe.add(path+".cidr", r.CIDR, "must be an %s network in this list", family)
		case p != p.Masked():
			fe.add(path+".cidr", r.CIDR, "has host bits set (the network is %s)", p.Masked())
		default:
			minBits = p.Bits()
		}
		switch r.MatchOperator {
		case MatchIn, MatchNotIn:
		case MatchEqual, MatchNotEqual:
			if r.PrefixLength != nil {
				fe.add(path+".prefixLength", nil, "must not be set with matchOperator %s", r.MatchOperator)
			}
		case "":
			fe.add(path+".matchOperator", nil, "is required with cidr (In, NotIn, Equal or NotEqual)")
		default:
			fe.add(path+".matchOperator", r.MatchOperator, "must be In, NotIn, Equal or NotEqual")
		}
	}
	if pl := r.PrefixLength; pl != nil {
		lo, hi := minBits, maxBits
		if pl.Min != nil {
			if *pl.Min < minBits || *pl.Min > maxBits {
				fe.add(path+".prefixLength.min", *pl.Min, "must be from %d to %d", minBits, maxBits)
			}
			lo = *pl.Min
		}
		if pl.Max != nil {
			if *pl.Max < minBits || *pl.Max > maxBits {
				fe.add(path+".prefixLength.max", *pl.Max, "must be from %d to %d", minBits, maxBits)
			}
			hi = *pl.Max
		}
		if lo > hi {
			fe.add(path+".prefixLength", nil, "min %d is above max %d", lo, hi)
		}
	}
	switch r.Source {
	case "", FilterSourceRemotePeers:
	default:
		fe.add(path+".source", r.Source, "must be RemotePeers or unset")
	}
	if r.Interface != "" {
		fe.add(path+".interface", r.Interface, "matching by interface is not supported yet")
	}
	for i, c := range r.Communities {
		if _, err := ParseCommunity(c); err != nil {
			fe.add(fmt.Sprintf("%s.communities[%d]", path, i), c, "%v", err)
		}
	}
	switch r.Action {
	case FilterAccept:
	case FilterReject:
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"addCommunities", len(r.AddCommunities) > 0}, {"localPref", r.LocalPref != nil},
			{"med", r.MED != nil}, {"prependASPath", r.PrependASPath != nil},
		} {
			if f.set {
				fe.add(path+"."+f.name, nil, "may only be set with action Accept")
			}
		}
	default:
		fe.add(path+".action", r.Action, "must be Accept or Reject")
	}
	for i, c := range r.AddCommunities {
		if _, err := ParseCommunity(c); err != nil {
			fe.add(fmt.Sprintf("%s.addCommunities[%d]", path, i), c, "%v", err)
		}
	}
	if p := r.PrependASPath; p != nil {
		if p.ASNumber == 0 {
			fe.add(path+".prependASPath.asNumber", p.ASNumber, "must be an AS number from 1 to 4294967295")
		}
		if p.Repeat < 1 || p.Repeat > 10 {
			fe.add(path+".prependASPath.repeat", p.Repeat, "must be from 1 to 10")
		}
	}
}
