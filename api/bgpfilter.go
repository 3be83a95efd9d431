package api

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
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
	// The VPN and EVPN lists (l2vpn-evpn, ipv4-vpn, ipv6-vpn routes,
	// which route reflectors carry): rules may also match route targets
	// and route distinguishers, and in the EVPN lists the route type; in
	// the VPN lists cidr and prefixLength apply to the prefix inside the
	// route distinguisher. The EVPN lists have no cidr or prefixLength.
	ExportEVPN  []BGPFilterRule `json:"exportEVPN,omitempty"`
	ImportEVPN  []BGPFilterRule `json:"importEVPN,omitempty"`
	ExportVPNv4 []BGPFilterRule `json:"exportVPNv4,omitempty"`
	ImportVPNv4 []BGPFilterRule `json:"importVPNv4,omitempty"`
	ExportVPNv6 []BGPFilterRule `json:"exportVPNv6,omitempty"`
	ImportVPNv6 []BGPFilterRule `json:"importVPNv6,omitempty"`
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
	// RouteTargets (VPN and EVPN lists only) matches a route that carries
	// any of them as a route target extended community (RFC 4360):
	// "65000:100" (2-octet AS), "4200000000:100" (4-octet AS),
	// "192.0.2.1:100" (IPv4 address).
	RouteTargets []string `json:"routeTargets,omitempty"`
	// RouteDistinguishers (VPN and EVPN lists only) matches a route whose
	// RD is any of them, written as route targets are (RFC 4364 4.2).
	RouteDistinguishers []string `json:"routeDistinguishers,omitempty"`
	// EVPNRouteTypes (EVPN lists only) matches an EVPN route of any of
	// these types (1 to 255; RFC 7432: 1 to 4, RFC 9136: 5).
	EVPNRouteTypes []int `json:"evpnRouteTypes,omitempty"`
	// Action is Accept or Reject.
	Action string `json:"action"`
	// With Accept only: communities to add (standard or large), the
	// LOCAL_PREF (iBGP) and MED to set, and ASes to prepend to the AS
	// path (export to eBGP peers only).
	AddCommunities []string                `json:"addCommunities,omitempty"`
	LocalPref      *uint32                 `json:"localPref,omitempty"`
	MED            *uint32                 `json:"med,omitempty"`
	PrependASPath  *BGPFilterASPathPrepend `json:"prependASPath,omitempty"`
	// With Accept, VPN and EVPN lists only: route targets to add, and
	// route targets to remove (removal first, so a target in both lists
	// stays).
	AddRouteTargets    []string `json:"addRouteTargets,omitempty"`
	RemoveRouteTargets []string `json:"removeRouteTargets,omitempty"`
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
	for _, l := range f.Spec.Lists() {
		for i := range *l.Rules {
			if p := (*l.Rules)[i].PrependASPath; p != nil && p.Repeat == 0 {
				p.Repeat = 1
			}
		}
	}
}

// FilterListKind is the family of a rule list.
type FilterListKind int

// The families of rule lists.
const (
	FilterListV4 FilterListKind = iota
	FilterListV6
	FilterListEVPN
	FilterListVPNv4
	FilterListVPNv6
)

func (k FilterListKind) v6() bool     { return k == FilterListV6 || k == FilterListVPNv6 }
func (k FilterListKind) vpn() bool    { return k >= FilterListEVPN }
func (k FilterListKind) evpn() bool   { return k == FilterListEVPN }
func (k FilterListKind) noCIDR() bool { return k == FilterListEVPN }

// FilterList is one rule list of a spec, with its JSON name, family and
// direction.
type FilterList struct {
	Name   string
	Kind   FilterListKind
	Export bool
	Rules  *[]BGPFilterRule
}

// Lists returns the spec's rule lists.
func (s *BGPFilterSpec) Lists() []FilterList {
	return []FilterList{
		{"exportV4", FilterListV4, true, &s.ExportV4}, {"importV4", FilterListV4, false, &s.ImportV4},
		{"exportV6", FilterListV6, true, &s.ExportV6}, {"importV6", FilterListV6, false, &s.ImportV6},
		{"exportEVPN", FilterListEVPN, true, &s.ExportEVPN}, {"importEVPN", FilterListEVPN, false, &s.ImportEVPN},
		{"exportVPNv4", FilterListVPNv4, true, &s.ExportVPNv4}, {"importVPNv4", FilterListVPNv4, false, &s.ImportVPNv4},
		{"exportVPNv6", FilterListVPNv6, true, &s.ExportVPNv6}, {"importVPNv6", FilterListVPNv6, false, &s.ImportVPNv6},
	}
}

// Validate implements Resource.
func (f *BGPFilter) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindBGPFilter, f)
	for _, l := range f.Spec.Lists() {
		if len(*l.Rules) > MaxFilterRules {
			fe.add("spec."+l.Name, len(*l.Rules), "must have at most %d rules", MaxFilterRules)
			continue
		}
		for i := range *l.Rules {
			validateFilterRule(&fe, fmt.Sprintf("spec.%s[%d]", l.Name, i), l.Kind, &(*l.Rules)[i])
		}
	}
	return fe.result(KindBGPFilter, f)
}

func validateFilterRule(fe *fieldErrors, path string, kind FilterListKind, r *BGPFilterRule) {
	v6 := kind.v6()
	family, maxBits := "IPv4", 32
	if v6 {
		family, maxBits = "IPv6", 128
	}
	validateVPNFields(fe, path, kind, r)
	if kind.noCIDR() {
		for _, f := range []struct {
			name string
			set  bool
		}{{"cidr", r.CIDR != ""}, {"matchOperator", r.MatchOperator != ""}, {"prefixLength", r.PrefixLength != nil}} {
			if f.set {
				fe.add(path+"."+f.name, nil, "EVPN routes have no prefix to match (match evpnRouteTypes, routeDistinguishers, routeTargets)")
			}
		}
		c := *r // the rest of the checks without the refused fields
		c.CIDR, c.MatchOperator, c.PrefixLength = "", "", nil
		r = &c
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
			{"addRouteTargets", len(r.AddRouteTargets) > 0}, {"removeRouteTargets", len(r.RemoveRouteTargets) > 0},
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

// validateVPNFields checks the VPN and EVPN fields of a rule: refused in
// the lists of other families, parsed in theirs.
func validateVPNFields(fe *fieldErrors, path string, kind FilterListKind, r *BGPFilterRule) {
	lists := []struct {
		name string
		vals []string
	}{
		{"routeTargets", r.RouteTargets}, {"routeDistinguishers", r.RouteDistinguishers},
		{"addRouteTargets", r.AddRouteTargets}, {"removeRouteTargets", r.RemoveRouteTargets},
	}
	if !kind.vpn() {
		for _, l := range lists {
			if len(l.vals) > 0 {
				fe.add(path+"."+l.name, nil, "applies to VPN and EVPN routes only (the VPNv4, VPNv6 and EVPN lists)")
			}
		}
	} else {
		for _, l := range lists {
			for i, v := range l.vals {
				if _, err := ParseRouteTarget(v); err != nil {
					fe.add(fmt.Sprintf("%s.%s[%d]", path, l.name, i), v, "%v", err)
				}
			}
		}
	}
	if len(r.EVPNRouteTypes) > 0 && !kind.evpn() {
		fe.add(path+".evpnRouteTypes", nil, "applies to EVPN routes only (the EVPN lists)")
		return
	}
	for i, t := range r.EVPNRouteTypes {
		if t < 1 || t > 255 {
			fe.add(fmt.Sprintf("%s.evpnRouteTypes[%d]", path, i), t, "must be an EVPN route type from 1 to 255")
		}
	}
}

// RouteTarget is a route target extended community (RFC 4360 4) or a
// route distinguisher (RFC 4364 4.2), which share their forms: Type 0 is
// a 2-octet AS and a 4-octet number, 1 an IPv4 address and a 2-octet
// number, 2 a 4-octet AS and a 2-octet number.
type RouteTarget struct {
	Type   uint8
	Global uint32
	Local  uint32
}

// ParseRouteTarget reads "65000:100" (type 0), "192.0.2.1:100" (type 1)
// or "4200000000:100" (type 2: an AS above 65535).
func ParseRouteTarget(s string) (RouteTarget, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return RouteTarget{}, fmt.Errorf("must be \"asn:number\" or \"ipv4-address:number\"")
	}
	global, local := s[:i], s[i+1:]
	if a, err := netip.ParseAddr(global); err == nil {
		if !a.Is4() {
			return RouteTarget{}, fmt.Errorf("the address must be IPv4")
		}
		n, err := strconv.ParseUint(local, 10, 16)
		if err != nil {
			return RouteTarget{}, fmt.Errorf("after an IPv4 address the number must be from 0 to 65535")
		}
		b := a.As4()
		return RouteTarget{Type: 1, Global: binary.BigEndian.Uint32(b[:]), Local: uint32(n)}, nil
	}
	asn, err := strconv.ParseUint(global, 10, 32)
	if err != nil {
		return RouteTarget{}, fmt.Errorf("must be \"asn:number\" or \"ipv4-address:number\" (AS from 0 to 4294967295)")
	}
	bits, typ := 32, uint8(0)
	if asn > 0xffff {
		bits, typ = 16, 2
	}
	n, err := strconv.ParseUint(local, 10, bits)
	if err != nil {
		return RouteTarget{}, fmt.Errorf("after AS %d the number must be from 0 to %d", asn, uint64(1)<<bits-1)
	}
	return RouteTarget{Type: typ, Global: uint32(asn), Local: uint32(n)}, nil
}

// Value returns the 6-octet value of the extended community or RD after
// its type.
func (t RouteTarget) Value() [6]byte {
	var b [6]byte
	switch t.Type {
	case 0:
		binary.BigEndian.PutUint16(b[:], uint16(t.Global))
		binary.BigEndian.PutUint32(b[2:], t.Local)
	default:
		binary.BigEndian.PutUint32(b[:], t.Global)
		binary.BigEndian.PutUint16(b[4:], uint16(t.Local))
	}
	return b
}

// String renders t as ParseRouteTarget reads it.
func (t RouteTarget) String() string {
	if t.Type == 1 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], t.Global)
		return fmt.Sprintf("%s:%d", netip.AddrFrom4(b), t.Local)
	}
	return fmt.Sprintf("%d:%d", t.Global, t.Local)
}
