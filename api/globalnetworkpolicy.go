package api

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
	// DoNotTrack, PreDNAT and ApplyOnForward are Calico's host-endpoint
	// policy modes (before connection tracking; before DNAT; also for
	// forwarded traffic). bgpfabric does not implement them: Validate
	// refuses a policy that sets any of them, and felix enforces one that
	// reaches it anyway (written to the datastore without validation) as
	// deny-all for the endpoints it selects (see felix/policy).
	DoNotTrack     bool `json:"doNotTrack,omitempty"`
	PreDNAT        bool `json:"preDNAT,omitempty"`
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
	for _, f := range UnsupportedGlobalPolicyFields(s) {
		fe.add(f, true, "is not implemented: bgpfabric enforces policy on the endpoints' own traffic only (leave it unset)")
	}
	return fe.result(KindGlobalNetworkPolicy, p)
}

// UnsupportedGlobalPolicyFields returns the field paths of the policy modes
// that s sets and bgpfabric does not implement (doNotTrack, preDNAT,
// applyOnForward), in that order; none for a policy it can enforce.
func UnsupportedGlobalPolicyFields(s *GlobalNetworkPolicySpec) []string {
	var out []string
	if s.DoNotTrack {
		out = append(out, "spec.doNotTrack")
	}
	if s.PreDNAT {
		out = append(out, "spec.preDNAT")
	}
	if s.ApplyOnForward {
		out = append(out, "spec.applyOnForward")
	}
	return out
}
