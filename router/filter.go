package router

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"

	"sigs.k8s.io/yaml"

	"github.com/bgpfabric/bgpfabric/api"
)

// Community is a standard or large BGP community.
type Community = api.Community

// Policy is the router's configurable route policy: an export filter for
// the routes the node advertises and an import filter for the routes it
// installs into the kernel (routes a filter rejects stay in the BGP table,
// shown by `bgpfabric routes`, but never reach the kernel). It is read
// from a YAML file (bgpfabric node --route-policy FILE):
//
//	export:
//	  rules:
//	  - prefixes: ["10.65.0.0/16"]      # inside one of these, by length:
//	    minLength: 26                   # optional bounds on the length
//	    maxLength: 32
//	    action: accept
//	    addCommunities: ["64512:100"]  # export only
//	  default: accept                   # when no rule matches (default accept)
//	import:
//	  rules:
//	  - communities: ["65000:666"]      # paths with any of these
//	    action: reject
//
// Rules are tried in order; the first that matches decides. A rule matches
// a route if every condition it has (prefixes, communities) matches.
type Policy struct {
	Export *Filter `json:"export,omitempty"`
	Import *Filter `json:"import,omitempty"`
}

// Filter is an ordered list of rules with a default action.
type Filter struct {
	Rules []Rule `json:"rules,omitempty"`
	// Default is "accept" (also when empty) or "reject".
	Default Action `json:"default,omitempty"`
}

// Action is what a rule does.
type Action string

const (
	Accept Action = "accept"
	Reject Action = "reject"
)

// Rule is one filter rule.
type Rule struct {
	Prefixes       []netip.Prefix `json:"prefixes,omitempty"`
	MinLength      int            `json:"minLength,omitempty"`
	MaxLength      int            `json:"maxLength,omitempty"`
	Communities    []string       `json:"communities,omitempty"`
	Action         Action         `json:"action"`
	AddCommunities []string       `json:"addCommunities,omitempty"`

	communities, add []Community
}

// LoadPolicy reads and validates a policy file.
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("route policy: %w", err)
	}
	return ParsePolicy(data)
}

// ParsePolicy parses and validates a policy document; errors name the
// field.
func ParsePolicy(data []byte) (*Policy, error) {
	var p Policy
	if err := yaml.UnmarshalStrict(data, &p); err != nil {
		return nil, fmt.Errorf("route policy: %w", err)
	}
	if err := errors.Join(p.Export.compile("export"), p.Import.compile("import")); err != nil {
		return nil, err
	}
	return &p, nil
}

func (f *Filter) compile(name string) error {
	if f == nil {
		return nil
	}
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("route policy: %s.%s: %s", name, field, fmt.Sprintf(format, args...)))
	}
	switch f.Default {
	case "":
		f.Default = Accept
	case Accept, Reject:
	default:
		bad("default", "must be accept or reject, not %q", f.Default)
	}
	for i := range f.Rules {
		r := &f.Rules[i]
		field := fmt.Sprintf("rules[%d]", i)
		if r.Action != Accept && r.Action != Reject {
			bad(field+".action", "must be accept or reject, not %q", r.Action)
		}
		for j, p := range r.Prefixes {
			if !p.IsValid() || p != p.Masked() {
				bad(fmt.Sprintf("%s.prefixes[%d]", field, j), "%s is not a masked prefix", p)
			}
		}
		if r.MinLength < 0 || r.MaxLength < 0 || r.MaxLength > 128 || (r.MaxLength > 0 && r.MinLength > r.MaxLength) {
			bad(field, "minLength %d and maxLength %d are not a length range", r.MinLength, r.MaxLength)
		}
		for j, s := range r.Communities {
			c, err := api.ParseCommunity(s)
			if err != nil {
				bad(fmt.Sprintf("%s.communities[%d]", field, j), "%v", err)
			}
			r.communities = append(r.communities, c)
		}
		for j, s := range r.AddCommunities {
			c, err := api.ParseCommunity(s)
			if err != nil {
				bad(fmt.Sprintf("%s.addCommunities[%d]", field, j), "%v", err)
			}
			r.add = append(r.add, c)
		}
		if name == "import" && len(r.AddCommunities) > 0 {
			bad(field+".addCommunities", "only export rules add communities")
		}
	}
	return errors.Join(errs...)
}

func (r *Rule) matches(p netip.Prefix, comms []Community) bool {
	if len(r.Prefixes) > 0 && !slices.ContainsFunc(r.Prefixes, func(q netip.Prefix) bool {
		return q.Bits() <= p.Bits() && q.Contains(p.Addr())
	}) {
		return false
	}
	if r.MinLength > 0 && p.Bits() < r.MinLength || r.MaxLength > 0 && p.Bits() > r.MaxLength {
		return false
	}
	if len(r.communities) > 0 && !slices.ContainsFunc(r.communities, func(c Community) bool { return slices.Contains(comms, c) }) {
		return false
	}
	return true
}

// Evaluate runs the filter on a route with communities and returns
// whether it passes, with the communities it leaves (those of comms plus
// any the matching rule adds). A nil Filter accepts everything.
func (f *Filter) Evaluate(p netip.Prefix, comms []Community) ([]Community, bool) {
	if f == nil {
		return comms, true
	}
	for i := range f.Rules {
		r := &f.Rules[i]
		if !r.matches(p, comms) {
			continue
		}
		if r.Action == Reject {
			return nil, false
		}
		for _, c := range r.add {
			if !slices.Contains(comms, c) {
				comms = append(comms, c)
			}
		}
		return comms, true
	}
	return comms, f.Default != Reject
}
