package api

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPolicyDefaultTypes(t *testing.T) {
	allow := []Rule{{Action: Allow}}
	tests := []struct {
		name            string
		ingress, egress []Rule
		types, want     []PolicyType
	}{
		{"no rules", nil, nil, nil, []PolicyType{PolicyTypeIngress}},
		{"ingress only", allow, nil, nil, []PolicyType{PolicyTypeIngress}},
		{"egress only", nil, allow, nil, []PolicyType{PolicyTypeEgress}},
		{"both", allow, allow, nil, []PolicyType{PolicyTypeIngress, PolicyTypeEgress}},
		{"explicit kept", nil, nil, []PolicyType{PolicyTypeEgress}, []PolicyType{PolicyTypeEgress}},
	}
	for _, tt := range tests {
		for _, r := range []Resource{
			&NetworkPolicy{Spec: NetworkPolicySpec{PolicySpec{Ingress: tt.ingress, Egress: tt.egress, Types: tt.types}}},
			&GlobalNetworkPolicy{Spec: GlobalNetworkPolicySpec{PolicySpec: PolicySpec{Ingress: tt.ingress, Egress: tt.egress, Types: tt.types}}},
		} {
			r.Default()
			var s *PolicySpec
			switch p := r.(type) {
			case *NetworkPolicy:
				s = &p.Spec.PolicySpec
			case *GlobalNetworkPolicy:
				s = &p.Spec.PolicySpec
			}
			if diff := cmp.Diff(tt.want, s.Types); diff != "" {
				t.Errorf("%s %s: types (-want +got):\n%s", r.GetTypeMeta().Kind, tt.name, diff)
			}
			if s.Selector != "all()" {
				t.Errorf("%s %s: selector %q", r.GetTypeMeta().Kind, tt.name, s.Selector)
			}
		}
	}
}

func TestNetworkPolicyValidate(t *testing.T) {
	base := func() *NetworkPolicy {
		return &NetworkPolicy{ObjectMeta: ObjectMeta{Namespace: "prod", Name: "p"}, Spec: NetworkPolicySpec{PolicySpec{
			Selector: "app == 'web'", Ingress: []Rule{{Action: Allow}},
		}}}
	}
	runValidation(t, base, []validationCase[*NetworkPolicy]{
		{"valid", func(*NetworkPolicy) {}, nil},
		{"no namespace", func(p *NetworkPolicy) { p.Namespace = "" }, []string{"metadata.namespace"}},
		{"bad selector", func(p *NetworkPolicy) { p.Spec.Selector = "app == web" }, []string{"spec.selector"}},
		{"bad types", func(p *NetworkPolicy) { p.Spec.Types = []PolicyType{"ingress", PolicyTypeIngress, PolicyTypeIngress} },
			[]string{"spec.types[0]", "spec.types[2]"}},
		{"ingress rules without Ingress", func(p *NetworkPolicy) { p.Spec.Types = []PolicyType{PolicyTypeEgress} }, []string{"spec.ingress"}},
		{"egress rules without Egress", func(p *NetworkPolicy) {
			p.Spec.Types = []PolicyType{PolicyTypeIngress}
			p.Spec.Egress = []Rule{{Action: Deny}}
		}, []string{"spec.egress"}},
		{"deny-all egress", func(p *NetworkPolicy) { p.Spec.Types = []PolicyType{PolicyTypeIngress, PolicyTypeEgress} }, nil},
		{"order", func(p *NetworkPolicy) { p.Spec.Order = ptr(-5.5) }, nil},
	})
}

func TestGlobalNetworkPolicyValidate(t *testing.T) {
	base := func() *GlobalNetworkPolicy {
		return &GlobalNetworkPolicy{ObjectMeta: ObjectMeta{Name: "g"}, Spec: GlobalNetworkPolicySpec{PolicySpec: PolicySpec{
			Ingress: []Rule{{Action: Allow}},
		}}}
	}
	spec := func(f func(*GlobalNetworkPolicySpec)) func(*GlobalNetworkPolicy) {
		return func(p *GlobalNetworkPolicy) { f(&p.Spec) }
	}
	runValidation(t, base, []validationCase[*GlobalNetworkPolicy]{
		{"valid", func(*GlobalNetworkPolicy) {}, nil},
		{"namespaced", func(p *GlobalNetworkPolicy) { p.Namespace = "x" }, []string{"metadata.namespace"}},
		{"namespace selector", spec(func(s *GlobalNetworkPolicySpec) { s.NamespaceSelector = "team == 'a'" }), nil},
		{"bad namespace selector", spec(func(s *GlobalNetworkPolicySpec) { s.NamespaceSelector = "team ==" }), []string{"spec.namespaceSelector"}},
		// Not implemented: refused, each naming its field.
		{"doNotTrack", spec(func(s *GlobalNetworkPolicySpec) { s.DoNotTrack = true }), []string{"spec.doNotTrack"}},
		{"preDNAT", spec(func(s *GlobalNetworkPolicySpec) { s.PreDNAT = true }), []string{"spec.preDNAT"}},
		{"applyOnForward", spec(func(s *GlobalNetworkPolicySpec) { s.ApplyOnForward = true }), []string{"spec.applyOnForward"}},
		{"all three", spec(func(s *GlobalNetworkPolicySpec) { s.DoNotTrack, s.PreDNAT, s.ApplyOnForward = true, true, true }),
			[]string{"spec.applyOnForward", "spec.doNotTrack", "spec.preDNAT"}},
		{"rules", spec(func(s *GlobalNetworkPolicySpec) { s.Egress = []Rule{{Action: "Drop"}} }), []string{"spec.egress[0].action"}},
	})
}

func TestProfileValidate(t *testing.T) {
	base := func() *Profile {
		return &Profile{ObjectMeta: ObjectMeta{Name: "kns.default"}, Spec: ProfileSpec{
			Ingress: []Rule{{Action: Allow}}, Egress: []Rule{{Action: Allow}}, LabelsToApply: map[string]string{"ns": "default"},
		}}
	}
	runValidation(t, base, []validationCase[*Profile]{
		{"valid", func(*Profile) {}, nil},
		{"bad rule", func(p *Profile) { p.Spec.Egress[0].IPVersion = ptr(0) }, []string{"spec.egress[0].ipVersion"}},
		{"bad labels", func(p *Profile) { p.Spec.LabelsToApply = map[string]string{"a b": "c"} }, []string{`spec.labelsToApply["a b"]`}},
	})
}

func TestPolicyAppliesTo(t *testing.T) {
	s := &PolicySpec{Types: []PolicyType{PolicyTypeEgress}}
	if s.AppliesTo(PolicyTypeIngress) || !s.AppliesTo(PolicyTypeEgress) {
		t.Errorf("AppliesTo wrong for %v", s.Types)
	}
}
