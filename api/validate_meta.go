package api

import (
	"regexp"
)

// nameRE is a DNS-1123 subdomain, as Kubernetes and Calico use for names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// validateMeta checks the metadata common to every kind.
func validateMeta(fe *fieldErrors, r Resource) {
	m := r.GetObjectMeta()
	ki, err := LookupKind(r.GetTypeMeta().Kind)
	if err != nil {
		fe.add("kind", r.GetTypeMeta().Kind, "unknown kind")
		return
	}
	switch {
	case m.Name == "":
		fe.add("metadata.name", nil, "is required")
	case len(m.Name) > 253 || !nameRE.MatchString(m.Name):
		fe.add("metadata.name", m.Name, "must be a lower-case DNS-1123 subdomain of at most 253 characters")
	}
	switch {
	case ki.Namespaced && m.Namespace == "":
		fe.add("metadata.namespace", nil, "is required for %s", ki.Kind)
	case !ki.Namespaced && m.Namespace != "":
		fe.add("metadata.namespace", m.Namespace, "must be empty: %s is not namespaced", ki.Kind)
	case ki.Namespaced && (len(m.Namespace) > 63 || !nameRE.MatchString(m.Namespace)):
		fe.add("metadata.namespace", m.Namespace, "must be a lower-case DNS-1123 label")
	}
}
