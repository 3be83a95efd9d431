// Package k8slabels holds the label rules that the Kubernetes conversion
// (kubecontrollers/convert) and the CNI plugin share: which pod labels a
// workload endpoint carries, how a namespace's labels are prefixed, and
// the service-account label. It imports no Kubernetes package, so that
// the CNI plugin, a mode of the node binary, can use it without linking
// the Kubernetes libraries (docs/kubernetes.md).
package k8slabels

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/bgpfabric/bgpfabric/felix/policy"
)

const (
	// NamespaceLabelPrefix prefixes a namespace's labels among the labels
	// of its endpoints (Calico's "pcns.").
	NamespaceLabelPrefix = "pcns."
	// LabelServiceAccount is the endpoint label that names its pod's
	// service account (Calico's projectcalico.org/serviceaccount). Its
	// reserved prefix keeps a pod from setting it through its own labels.
	LabelServiceAccount = policy.ReservedLabelPrefix + "serviceaccount"
)

// Reserved reports whether a pod label key is reserved: it could
// otherwise claim a namespace's labels or felix's own.
func Reserved(k string) bool {
	return strings.HasPrefix(k, NamespaceLabelPrefix) || strings.HasPrefix(k, policy.ReservedLabelPrefix)
}

var (
	dnsSubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	labelNameRE    = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

// ValidKey reports whether k is a label key that bgpfabric stores:
// [prefix/]name, prefix a DNS-1123 subdomain of at most 253 characters and
// name 1 to 63 characters of [A-Za-z0-9-_.].
func ValidKey(k string) bool {
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		prefix, name = "", k
	} else if prefix == "" || len(prefix) > 253 || !dnsSubdomainRE.MatchString(prefix) {
		return false
	}
	return len(name) >= 1 && len(name) <= 63 && labelNameRE.MatchString(name)
}

// ValidValue reports whether v is a label value: empty or at most 63
// characters of [A-Za-z0-9-_.], alphanumeric at both ends.
func ValidValue(v string) bool {
	return v == "" || len(v) <= 63 && labelNameRE.MatchString(v)
}

// NamespaceKey returns the key a namespace label has among its
// endpoints' labels, and false when that key is not a valid label key
// (the prefix makes a 59- to 63-character name, or a 249- to 253-character
// DNS prefix, too long).
func NamespaceKey(k string) (string, bool) {
	pk := NamespaceLabelPrefix + k
	return pk, ValidKey(k) && ValidKey(pk)
}

// Pod returns the labels of a pod's endpoints: the pod's labels but those
// with a reserved key or that are not valid label keys or values (their
// keys returned in dropped, sorted), and LabelServiceAccount when the pod
// names a service account that is a valid label value.
func Pod(podLabels map[string]string, serviceAccount string) (labels map[string]string, dropped []string) {
	labels = make(map[string]string, len(podLabels)+1)
	for _, k := range slices.Sorted(maps.Keys(podLabels)) {
		v := podLabels[k]
		if Reserved(k) || !ValidKey(k) || !ValidValue(v) {
			dropped = append(dropped, k)
			continue
		}
		labels[k] = v
	}
	if serviceAccount != "" && ValidValue(serviceAccount) {
		labels[LabelServiceAccount] = serviceAccount
	}
	return labels, dropped
}
