package datastore

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/bgpfabric/bgpfabric/api"
)

// ResourceID names one resource.
type ResourceID struct {
	Kind      string
	Namespace string // empty for kinds that are not namespaced
	Name      string
}

// String renders the ID as "Node node-1" or "WorkloadEndpoint ns/name".
func (id ResourceID) String() string {
	if id.Namespace != "" {
		return id.Kind + " " + id.Namespace + "/" + id.Name
	}
	return id.Kind + " " + id.Name
}

// IDOf returns the ID of r.
func IDOf(r api.Resource) ResourceID {
	m := r.GetObjectMeta()
	return ResourceID{Kind: r.GetTypeMeta().Kind, Namespace: m.Namespace, Name: m.Name}
}

// lookupKey resolves a kind name and checks that the namespace fits it.
func lookupKey(kind, namespace, name string) (*api.KindInfo, string, error) {
	ki, err := api.LookupKind(kind)
	if err != nil {
		return nil, "", err
	}
	switch {
	case name == "":
		return nil, "", fmt.Errorf("%s: name is required", ki.Kind)
	case ki.Namespaced && namespace == "":
		return nil, "", fmt.Errorf("%s %s: namespace is required", ki.Kind, name)
	case !ki.Namespaced && namespace != "":
		return nil, "", fmt.Errorf("%s %s: %s is not namespaced, but namespace %q was given", ki.Kind, name, ki.Kind, namespace)
	}
	return ki, api.Key(ki, namespace, name), nil
}

// prepare copies r, defaults and validates the copy and returns it with
// its key. The caller's resource is never modified.
func prepare(r api.Resource) (api.Resource, string, error) {
	if r == nil {
		return nil, "", fmt.Errorf("nil resource")
	}
	obj := r.DeepCopyResource()
	obj.Default() // fills in TypeMeta as well
	ki, err := api.LookupKind(obj.GetTypeMeta().Kind)
	if err != nil {
		return nil, "", fmt.Errorf("resource %q: %w", obj.GetObjectMeta().Name, err)
	}
	*obj.GetTypeMeta() = api.TypeMeta{APIVersion: api.APIVersion, Kind: ki.Kind}
	if err := obj.Validate(); err != nil {
		return nil, "", err
	}
	m := obj.GetObjectMeta()
	return obj, api.Key(ki, m.Namespace, m.Name), nil
}

// decodeKV turns a stored key-value into a resource whose ResourceVersion
// is the key's mod revision. The key says the kind, and the value must be
// that resource.
//
// Stored values are decoded leniently, unlike api.Decode, which is for
// documents from users: they were validated and encoded by this package,
// a strict decode costs three passes over the JSON (it dominated the time
// to read a large snapshot), and a field added by a newer bgpfabric must
// not make an older one, mid-upgrade, drop the resource.
func decodeKV(kv *mvccpb.KeyValue) (api.Resource, error) {
	key := string(kv.Key)
	ki, ns, name, err := api.ParseKey(key)
	if err != nil {
		return nil, &DecodeError{Key: key, Revision: kv.ModRevision, Err: err}
	}
	r := ki.New()
	if err := json.Unmarshal(kv.Value, r); err != nil {
		return nil, &DecodeError{Key: key, Revision: kv.ModRevision, Err: fmt.Errorf("decoding %s: %w", ki.Kind, err)}
	}
	tm, m := r.GetTypeMeta(), r.GetObjectMeta()
	switch {
	case tm.Kind != ki.Kind:
		return nil, &DecodeError{Key: key, Revision: kv.ModRevision, Err: fmt.Errorf("value has kind %q, the key says %s", tm.Kind, ki.Kind)}
	case tm.APIVersion != api.APIVersion:
		return nil, &DecodeError{Key: key, Revision: kv.ModRevision, Err: fmt.Errorf("apiVersion %q is not supported (want %q)", tm.APIVersion, api.APIVersion)}
	case m.Namespace != ns || m.Name != name:
		return nil, &DecodeError{Key: key, Revision: kv.ModRevision, Err: fmt.Errorf("value is %s, which belongs at another key", IDOf(r))}
	}
	m.ResourceVersion = strconv.FormatInt(kv.ModRevision, 10)
	return r, nil
}

// idFromKey names the resource stored at key, or reports why it cannot.
func idFromKey(key string) (ResourceID, error) {
	ki, ns, name, err := api.ParseKey(key)
	if err != nil {
		return ResourceID{}, err
	}
	return ResourceID{Kind: ki.Kind, Namespace: ns, Name: name}, nil
}

// bareResource is an empty resource carrying only its ID, for deletions
// whose previous value is unknown.
func bareResource(id ResourceID) api.Resource {
	r, err := api.New(id.Kind)
	if err != nil {
		return nil
	}
	m := r.GetObjectMeta()
	m.Namespace, m.Name = id.Namespace, id.Name
	return r
}

// parseRevision reads a ResourceVersion.
func parseRevision(rv string) (int64, error) {
	rev, err := strconv.ParseInt(rv, 10, 64)
	if err != nil || rev <= 0 {
		return 0, fmt.Errorf("resourceVersion %q is not a revision", rv)
	}
	return rev, nil
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails, as crypto/rand documents
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// now is the creation timestamp format of ObjectMeta.
func now() string { return time.Now().UTC().Format(time.RFC3339) }

// sortIDs orders IDs as their keys sort.
func sortIDs(ids []ResourceID) {
	slices.SortFunc(ids, func(a, b ResourceID) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

// encode renders a prepared object (a private copy with its TypeMeta set)
// as api.Encode does, without api.Encode's extra deep copy.
func encode(obj api.Resource) ([]byte, error) {
	m := obj.GetObjectMeta()
	rv := m.ResourceVersion
	m.ResourceVersion = ""
	defer func() { m.ResourceVersion = rv }()
	return json.Marshal(obj)
}
