package api

import (
	"fmt"
	"math"
	"slices"
)

// PolicyType is a direction of traffic a policy applies to.
type PolicyType string

// Policy types.
const (
	PolicyTypeIngress PolicyType = "Ingress"
	PolicyTypeEgress  PolicyType = "Egress"
)

// PolicySpec is what NetworkPolicy and GlobalNetworkPolicy have in common.
type PolicySpec struct {
	// Order ranks policies: lower first; unset is after every ordered one.
	Order *float64 `json:"order,omitempty"`
	// Selector selects the endpoints the policy applies to (default
	// "all()").
	Selector string `json:"selector,omitempty"`
	// Types are the directions the policy applies to. Unset, as in Calico,
	// it is [Egress] for a policy with egress rules only, [Ingress, Egress]
	// for one with both, and [Ingress] otherwise. A direction in Types
	// with no rules denies all traffic in that direction.
	Types []PolicyType `json:"types,omitempty"`
	// Ingress and Egress are the rules, in order.
	Ingress []Rule `json:"ingress,omitempty"`
	Egress  []Rule `json:"egress,omitempty"`
}

// defaultPolicy fills in the selector and types and canonicalizes rules.
func defaultPolicy(s *PolicySpec) {
	if s.Selector == "" {
		s.Selector = "all()"
	}
	if len(s.Types) == 0 {
		switch {
		case len(s.Ingress) == 0 && len(s.Egress) > 0:
			s.Types = []PolicyType{PolicyTypeEgress}
		case len(s.Egress) > 0:
			s.Types = []PolicyType{PolicyTypeIngress, PolicyTypeEgress}
		default:
			s.Types = []PolicyType{PolicyTypeIngress}
		}
	}
	defaultRules(s.Ingress)
	defaultRules(s.Egress)
}

// validatePolicy checks the common part of a policy.
func validatePolicy(fe *fieldErrors, s *PolicySpec) {
	if s.Order != nil && (math.IsNaN(*s.Order) || math.IsInf(*s.Order, 0)) {
		fe.add("spec.order", *s.Order, "must be a finite number")
	}
	if s.Selector != "" {
		validateSelector(fe, "spec.selector", s.Selector)
	}
	for i, t := range s.Types {
		p := fmt.Sprintf("spec.types[%d]", i)
		switch {
		case t != PolicyTypeIngress && t != PolicyTypeEgress:
			fe.add(p, string(t), "must be Ingress or Egress")
		case slices.Index(s.Types, t) < i:
			fe.add(p, string(t), "is listed twice")
		}
	}
	if len(s.Types) > 0 {
		if len(s.Ingress) > 0 && !slices.Contains(s.Types, PolicyTypeIngress) {
			fe.add("spec.ingress", nil, "must be empty when spec.types does not include Ingress")
		}
		if len(s.Egress) > 0 && !slices.Contains(s.Types, PolicyTypeEgress) {
			fe.add("spec.egress", nil, "must be empty when spec.types does not include Egress")
		}
	}
	validateRules(fe, "spec.ingress", s.Ingress)
	validateRules(fe, "spec.egress", s.Egress)
}

// AppliesTo reports whether the policy applies to traffic in direction t.
func (s *PolicySpec) AppliesTo(t PolicyType) bool { return slices.Contains(s.Types, t) }
