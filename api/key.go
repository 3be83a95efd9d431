package api

import (
	"fmt"
	"strings"
)

// KeyRoot is the prefix of every key bgpfabric writes to etcd.
const KeyRoot = "/bgpfabric/v1/"

// Key returns the datastore key of a resource:
// /bgpfabric/v1/<plural>/[<namespace>/]<name>.
func Key(ki *KindInfo, namespace, name string) string {
	if ki.Namespaced {
		return KeyRoot + ki.Plural + "/" + namespace + "/" + name
	}
	return KeyRoot + ki.Plural + "/" + name
}

// KeyOf returns the key of r.
func KeyOf(r Resource) (string, error) {
	ki, err := LookupKind(r.GetTypeMeta().Kind)
	if err != nil {
		return "", err
	}
	m := r.GetObjectMeta()
	return Key(ki, m.Namespace, m.Name), nil
}

// ListPrefix returns the key prefix that holds every resource of a kind, or
// of one namespace of a namespaced kind when namespace is not empty. The
// prefix ends in "/", so that "nodes/a" never matches "nodes/ab...".
func ListPrefix(ki *KindInfo, namespace string) string {
	if ki.Namespaced && namespace != "" {
		return KeyRoot + ki.Plural + "/" + namespace + "/"
	}
	return KeyRoot + ki.Plural + "/"
}

// ParseKey splits a datastore key into its kind, namespace and name.
func ParseKey(key string) (ki *KindInfo, namespace, name string, err error) {
	rest, ok := strings.CutPrefix(key, KeyRoot)
	if !ok {
		return nil, "", "", fmt.Errorf("key %q is not under %s", key, KeyRoot)
	}
	parts := strings.Split(rest, "/")
	for _, k := range kinds {
		if k.Plural != parts[0] {
			continue
		}
		switch {
		case k.Namespaced && len(parts) == 3 && parts[1] != "" && parts[2] != "":
			return k, parts[1], parts[2], nil
		case !k.Namespaced && len(parts) == 2 && parts[1] != "":
			return k, "", parts[1], nil
		}
		return nil, "", "", fmt.Errorf("key %q: malformed for kind %s", key, k.Kind)
	}
	return nil, "", "", fmt.Errorf("key %q: unknown kind segment %q", key, parts[0])
}
