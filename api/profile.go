package api

// Profile is a set of rules and labels that endpoints take on by naming it
// in their profiles. Its rules apply after every policy has passed.
type Profile struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ProfileSpec `json:"spec"`
}

// ProfileSpec holds the profile's rules and labels.
type ProfileSpec struct {
	Ingress []Rule `json:"ingress,omitempty"`
	Egress  []Rule `json:"egress,omitempty"`
	// LabelsToApply are added to the labels of every endpoint that uses
	// the profile.
	LabelsToApply map[string]string `json:"labelsToApply,omitempty"`
}

func init() {
	register(KindInfo{Kind: KindProfile, Plural: "profiles", Short: []string{"pro"}, New: func() Resource { return &Profile{} }})
}

// GetTypeMeta implements Resource.
func (p *Profile) GetTypeMeta() *TypeMeta { return &p.TypeMeta }

// GetObjectMeta implements Resource.
func (p *Profile) GetObjectMeta() *ObjectMeta { return &p.ObjectMeta }

// DeepCopyResource implements Resource.
func (p *Profile) DeepCopyResource() Resource { return deepCopy(p) }

// Default implements Resource: rules are written in canonical form.
func (p *Profile) Default() {
	setTypeMeta(&p.TypeMeta, KindProfile)
	defaultRules(p.Spec.Ingress)
	defaultRules(p.Spec.Egress)
}

// Validate implements Resource.
func (p *Profile) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindProfile, p)
	validateRules(&fe, "spec.ingress", p.Spec.Ingress)
	validateRules(&fe, "spec.egress", p.Spec.Egress)
	validateLabels(&fe, "spec.labelsToApply", p.Spec.LabelsToApply)
	return fe.result(KindProfile, p)
}
