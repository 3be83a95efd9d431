package api

import "slices"

// GlobalNetworkPolicy is a cluster-wide policy: it applies to the workload
// and host endpoints of every namespace that its selectors match.
type GlobalNetworkPolicy struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       GlobalNetworkPolicySpec `json:"spec"`
}

// GlobalNetworkPolicySpec is the policy.
type GlobalNetworkPolicySpec struct {
	PolicySpec `json:",inline"`
	// NamespaceSelector restricts the policy to endpoints in the
	// namespaces it matches.
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	// DoNotTrack applies the policy before connection tracking, to host
	// endpoints only; it needs ApplyOnForward.
	DoNotTrack bool `json:"doNotTrack,omitempty"`
	// PreDNAT applies the policy, ingress only, to host endpoints before
	// DNAT; it needs ApplyOnForward.
	PreDNAT bool `json:"preDNAT,omitempty"`
	// ApplyOnForward applies the policy to host endpoints also for traffic
	// the host forwards.
	ApplyOnForward bool `json:"applyOnForward,omitempty"`
}

func init() {
	register(KindInfo{Kind: KindGlobalNetworkPolicy, Plural: "globalnetworkpolicies", Short: []string{"gnp"},
		New: func() Resource { return &GlobalNetworkPolicy{} }})
}

// GetTypeMeta implements Resource.
func (p *GlobalNetworkPolicy) GetTypeMeta() *TypeMeta { return &p.TypeMeta }

// GetObjectMeta implements Resource.
func (p *GlobalNetworkPolicy) GetObjectMeta() *ObjectMeta { return &p.ObjectMeta }

// DeepCopyResource implements Resource.
func (p *GlobalNetworkPolicy) DeepCopyResource() Resource { return deepCopy(p) }

// Default implements Resource: see PolicySpec for the defaults.
func (p *GlobalNetworkPolicy) Default() {
	setTypeMeta(&p.TypeMeta, KindGlobalNetworkPolicy)
	defaultPolicy(&p.Spec.PolicySpec)
}

// Validate implements Resource.
func (p *GlobalNetworkPolicy) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindGlobalNetworkPolicy, p)
	s := &p.Spec
	validatePolicy(&fe, &s.PolicySpec)
	if s.NamespaceSelector != "" {
		validateSelector(&fe, "spec.namespaceSelector", s.NamespaceSelector)
	}
	if s.DoNotTrack && s.PreDNAT {
		fe.add("spec.preDNAT", nil, "must not be set with spec.doNotTrack")
	}
	if (s.DoNotTrack || s.PreDNAT) && !s.ApplyOnForward {
		fe.add("spec.applyOnForward", nil, "must be true with spec.doNotTrack or spec.preDNAT")
	}
	if s.PreDNAT && (len(s.Egress) > 0 || slices.Contains(s.Types, PolicyTypeEgress)) {
		fe.add("spec.egress", nil, "a preDNAT policy applies to ingress only: no egress rules or Egress type")
	}
	return fe.result(KindGlobalNetworkPolicy, p)
}
