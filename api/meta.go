// Package api holds bgpfabric's resource model: the types every component
// reads from and writes to the datastore, their defaults and validation,
// and the datastore key layout. Calico-style label selectors live in the
// subpackage api/selector; Validate parses every selector field with it.
//
// The package is pure: it imports no kernel, socket or datastore code.
package api

// Group and Version name the API every resource belongs to.
const (
	Group      = "bgpfabric.io"
	Version    = "v1"
	APIVersion = Group + "/" + Version
)

// TypeMeta says what a document is, as in Kubernetes-style resources.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta is the metadata every resource carries.
type ObjectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// ResourceVersion is the datastore revision at which the resource was
	// last modified. It is set by the datastore on read and is the guard for
	// compare-and-swap updates and deletes; it is never stored in the value.
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// UID is assigned by the datastore on create and stays for the life of
	// the object.
	UID string `json:"uid,omitempty"`
	// CreationTimestamp is set by the datastore on create (RFC 3339).
	CreationTimestamp string `json:"creationTimestamp,omitempty"`
}

// Resource is implemented by every kind of the model.
type Resource interface {
	// GetTypeMeta and GetObjectMeta return pointers into the resource, so
	// that callers (the codec, the datastore) can fill them in.
	GetTypeMeta() *TypeMeta
	GetObjectMeta() *ObjectMeta
	// Default fills in every unset field that has a default. It is
	// idempotent.
	Default()
	// Validate checks the resource (after Default) and returns a
	// *ValidationError listing every field that is wrong, or nil.
	Validate() error
	// DeepCopyResource returns a copy that shares no memory with the
	// receiver.
	DeepCopyResource() Resource
}
