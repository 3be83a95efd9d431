package api

import (
	"maps"
	"regexp"
	"slices"
	"strconv"
)

// nameRE is a DNS-1123 subdomain, as Kubernetes and Calico use for names.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// labelNameRE is the name part of a label key, and a non-empty label value.
var labelNameRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

// validName reports whether s is a valid resource name (DNS-1123 subdomain).
func validName(s string) bool { return len(s) <= 253 && nameRE.MatchString(s) }

// validateName checks a required reference to another resource by name.
func validateName(fe *fieldErrors, path, name string) {
	switch {
	case name == "":
		fe.add(path, nil, "is required")
	case !validName(name):
		fe.add(path, name, "must be a lower-case DNS-1123 subdomain of at most 253 characters")
	}
}

// validateMeta checks the metadata common to every kind: r is of the given
// kind, whose TypeMeta may be empty (as when built in code) but not wrong.
func validateMeta(fe *fieldErrors, kind string, r Resource) {
	ki := kinds[kind]
	if tm := r.GetTypeMeta(); tm.Kind != "" && tm.Kind != kind {
		fe.add("kind", tm.Kind, "must be %q", kind)
	}
	if tm := r.GetTypeMeta(); tm.APIVersion != "" && tm.APIVersion != APIVersion {
		fe.add("apiVersion", tm.APIVersion, "must be %q", APIVersion)
	}
	m := r.GetObjectMeta()
	validateName(fe, "metadata.name", m.Name)
	switch {
	case ki.Namespaced && m.Namespace == "":
		fe.add("metadata.namespace", nil, "is required for %s", ki.Kind)
	case !ki.Namespaced && m.Namespace != "":
		fe.add("metadata.namespace", m.Namespace, "must be empty: %s is not namespaced", ki.Kind)
	case ki.Namespaced && (len(m.Namespace) > 63 || !nameRE.MatchString(m.Namespace)):
		fe.add("metadata.namespace", m.Namespace, "must be a lower-case DNS-1123 label")
	}
	validateLabels(fe, "metadata.labels", m.Labels)
	if n := annotationsSize(m.Annotations); n > MaxAnnotationsSize {
		fe.add("metadata.annotations", nil, "total size of keys and values is %d bytes: at most %d (256 KiB, as in Kubernetes)", n, MaxAnnotationsSize)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Annotations)) {
		if msg := checkLabelKey(k); msg != "" {
			fe.add("metadata.annotations", k, "key %s", msg)
		}
	}
}

// validateLabels checks a map of Kubernetes-style labels: keys are
// [prefix/]name with a DNS-1123 prefix, names and values at most 63
// characters of [A-Za-z0-9-_.] that begin and end alphanumerically.
func validateLabels(fe *fieldErrors, path string, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		p := path + "[" + strconv.Quote(k) + "]"
		if msg := checkLabelKey(k); msg != "" {
			fe.add(p, k, "key %s", msg)
		}
		if v != "" && (len(v) > 63 || !labelNameRE.MatchString(v)) {
			fe.add(p, v, "value must be at most 63 characters of [A-Za-z0-9-_.], beginning and ending alphanumerically")
		}
	}
}

// checkLabelKey returns why k is not a valid label key, or "".
func checkLabelKey(k string) string {
	prefix, name := "", k
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] == '/' {
			prefix, name = k[:i], k[i+1:]
			if prefix == "" || !validName(prefix) {
				return "prefix must be a lower-case DNS-1123 subdomain"
			}
			break
		}
	}
	if name == "" || len(name) > 63 || !labelNameRE.MatchString(name) {
		return "name must be 1 to 63 characters of [A-Za-z0-9-_.], beginning and ending alphanumerically"
	}
	return ""
}
