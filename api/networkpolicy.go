package api

// NetworkPolicy is a namespaced policy: it applies to the endpoints of its
// namespace that its selector matches, and its rules' selectors match
// endpoints of its namespace unless they say namespaceSelector.
type NetworkPolicy struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NetworkPolicySpec `json:"spec"`
}

// NetworkPolicySpec is the policy.
type NetworkPolicySpec struct {
	PolicySpec `json:",inline"`
}

func init() {
	register(KindInfo{Kind: KindNetworkPolicy, Plural: "networkpolicies", Short: []string{"netpol", "np"}, Namespaced: true,
		New: func() Resource { return &NetworkPolicy{} }})
}

// GetTypeMeta implements Resource.
func (p *NetworkPolicy) GetTypeMeta() *TypeMeta { return &p.TypeMeta }

// GetObjectMeta implements Resource.
func (p *NetworkPolicy) GetObjectMeta() *ObjectMeta { return &p.ObjectMeta }

// DeepCopyResource implements Resource.
func (p *NetworkPolicy) DeepCopyResource() Resource { return deepCopy(p) }

// Default implements Resource: see PolicySpec for the defaults.
func (p *NetworkPolicy) Default() {
	setTypeMeta(&p.TypeMeta, KindNetworkPolicy)
	defaultPolicy(&p.Spec.PolicySpec)
}

// Validate implements Resource.
func (p *NetworkPolicy) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindNetworkPolicy, p)
	validatePolicy(&fe, &p.Spec.PolicySpec)
	return fe.result(KindNetworkPolicy, p)
}
