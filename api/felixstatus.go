package api

import "time"

// FelixStatus is what the felix agent of one node reports (named after the
// node). Agents write it under a lease, so that it expires with them.
type FelixStatus struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Status     FelixStatusReport `json:"status"`
}

// FelixStatusReport is felix's state.
type FelixStatusReport struct {
	// Ready is true when felix is running and has programmed the dataplane
	// at least once.
	Ready bool `json:"ready"`
	// InSync is true when felix has the whole datastore and the dataplane
	// matches it.
	InSync bool `json:"inSync"`
	// LastUpdate is when the report was written (RFC 3339).
	LastUpdate string `json:"lastUpdate"`
	// Dataplane is the state of the last reconcile of the kernel.
	Dataplane DataplaneStatus `json:"dataplane"`
	// Endpoints, Routes and Rules count what felix has programmed.
	Endpoints int `json:"endpoints"`
	Routes    int `json:"routes"`
	Rules     int `json:"rules"`
}

// DataplaneStatus is the state of felix's dataplane.
type DataplaneStatus struct {
	State DataplaneState `json:"state"`
	// Error is the last failure, when State is Failed.
	Error string `json:"error,omitempty"`
}

// DataplaneState is where felix's dataplane stands.
type DataplaneState string

// Dataplane states.
const (
	DataplaneStarting    DataplaneState = "Starting"    // nothing programmed yet
	DataplaneProgramming DataplaneState = "Programming" // applying changes
	DataplaneInSync      DataplaneState = "InSync"      // the kernel matches the desired state
	DataplaneFailed      DataplaneState = "Failed"      // the last apply failed; see Error
)

func init() {
	register(KindInfo{Kind: KindFelixStatus, Plural: "felixstatuses", Status: true, New: func() Resource { return &FelixStatus{} }})
}

// GetTypeMeta implements Resource.
func (f *FelixStatus) GetTypeMeta() *TypeMeta { return &f.TypeMeta }

// GetObjectMeta implements Resource.
func (f *FelixStatus) GetObjectMeta() *ObjectMeta { return &f.ObjectMeta }

// DeepCopyResource implements Resource.
func (f *FelixStatus) DeepCopyResource() Resource { return deepCopy(f) }

// Default implements Resource.
func (f *FelixStatus) Default() {
	setTypeMeta(&f.TypeMeta, KindFelixStatus)
	if f.Status.Dataplane.State == "" {
		f.Status.Dataplane.State = DataplaneStarting
	}
}

// Validate implements Resource.
func (f *FelixStatus) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindFelixStatus, f)
	s := &f.Status
	validateTimestamp(&fe, "status.lastUpdate", s.LastUpdate, true)
	switch s.Dataplane.State {
	case DataplaneStarting, DataplaneProgramming, DataplaneInSync, DataplaneFailed:
	default:
		fe.add("status.dataplane.state", string(s.Dataplane.State), "must be Starting, Programming, InSync or Failed")
	}
	for _, c := range []struct {
		name string
		n    int
	}{{"endpoints", s.Endpoints}, {"routes", s.Routes}, {"rules", s.Rules}} {
		if c.n < 0 {
			fe.add("status."+c.name, c.n, "must not be negative")
		}
	}
	return fe.result(KindFelixStatus, f)
}

// validateTimestamp checks an RFC 3339 time.
func validateTimestamp(fe *fieldErrors, path, s string, required bool) {
	if s == "" {
		if required {
			fe.add(path, nil, "is required")
		}
		return
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		fe.add(path, s, "must be an RFC 3339 time such as 2025-01-02T15:04:05Z")
	}
}
