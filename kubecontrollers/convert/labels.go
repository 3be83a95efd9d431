package convert

import (
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
	"github.com/bgpfabric/bgpfabric/felix/policy"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/k8slabels"
)

// Names and labels of the scheme (see the package documentation).
const (
	// NamespaceProfilePrefix starts the name of a namespace's profile; it
	// is the profile the CNI plugin names in every endpoint (cni.ProfilePrefix).
	NamespaceProfilePrefix = "ns."
	// NamespaceLabelPrefix prefixes a namespace's labels among the labels
	// of its endpoints (Calico's "pcns.").
	NamespaceLabelPrefix = k8slabels.NamespaceLabelPrefix
	// OrchestratorK8s is the orchestrator the CNI plugin writes for pods.
	OrchestratorK8s = "k8s"
	// AnnotationManagedBy marks what kube-controllers wrote; it deletes
	// only resources that carry it.
	AnnotationManagedBy = "bgpfabric.io/managed-by"
	// ManagedBy is the value of AnnotationManagedBy.
	ManagedBy = "kube-controllers"
)

// k8sOnly selects Kubernetes pods' endpoints.
var k8sOnly = selector.Equal{Key: policy.LabelOrchestrator, Value: OrchestratorK8s}

// reservedPodLabel, validLabelKey, validLabelValue and NamespaceLabelKey
// are the shared rules of package k8slabels (the CNI plugin applies the
// same ones without linking the Kubernetes libraries).
var (
	reservedPodLabel = k8slabels.Reserved
	validLabelKey    = k8slabels.ValidKey
	validLabelValue  = k8slabels.ValidValue
	// NamespaceLabelKey returns the key a namespace label has among its
	// endpoints' labels, and false when that key is not a valid label key:
	// such a label is not applied, and a namespaceSelector that names it is
	// refused.
	NamespaceLabelKey = k8slabels.NamespaceKey
)

// NamespaceProfile returns the profile of a Kubernetes namespace: allow
// all in both directions, and the namespace's labels under
// NamespaceLabelPrefix. Labels that cannot be represented are returned in
// dropped (sorted) and left out.
func NamespaceProfile(ns *corev1.Namespace) (p *api.Profile, dropped []string) {
	labels := make(map[string]string, len(ns.Labels))
	for _, k := range slices.Sorted(maps.Keys(ns.Labels)) {
		pk, ok := NamespaceLabelKey(k)
		if !ok || !validLabelValue(ns.Labels[k]) {
			dropped = append(dropped, k)
			continue
		}
		labels[pk] = ns.Labels[k]
	}
	p = &api.Profile{
		ObjectMeta: api.ObjectMeta{
			Name:        NamespaceProfilePrefix + ns.Name,
			Annotations: map[string]string{AnnotationManagedBy: ManagedBy},
		},
		Spec: api.ProfileSpec{
			Ingress:       []api.Rule{{Action: api.Allow}},
			Egress:        []api.Rule{{Action: api.Allow}},
			LabelsToApply: labels,
		},
	}
	p.Default()
	return p, dropped
}

// PodLabels returns the labels of a pod's endpoints (k8slabels.Pod, which
// the CNI plugin applies too): the pod's labels but those with a reserved
// key (returned in dropped, sorted) and those that are not valid label
// keys or values, and its service account as k8slabels.LabelServiceAccount.
func PodLabels(pod *corev1.Pod) (labels map[string]string, dropped []string) {
	return k8slabels.Pod(pod.Labels, pod.Spec.ServiceAccountName)
}

// PodPorts returns a pod's named container ports as endpoint ports (in
// the order of the pod spec, the first of a name and protocol winning, as
// Kubernetes resolves named ports).
func PodPorts(pod *corev1.Pod) []api.EndpointPort {
	var out []api.EndpointPort
	seen := map[string]bool{}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == "" {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			key := string(proto) + "/" + p.Name
			if _, ok := api.Port(p.Name).Name(); !ok || seen[key] || p.ContainerPort < 1 || p.ContainerPort > 65535 {
				continue
			}
			seen[key] = true
			out = append(out, api.EndpointPort{Name: p.Name, Protocol: api.Protocol(proto), Port: int(p.ContainerPort)})
		}
	}
	return out
}

// labelSelector converts a Kubernetes label selector whose keys are
// rewritten by key (which returns false for a key it refuses) into a
// selector expression. path names the selector in errors.
func labelSelector(path string, ls *metav1.LabelSelector, key func(string) (string, bool)) (selector.Expr, error) {
	var ops []selector.Expr
	for _, k := range slices.Sorted(maps.Keys(ls.MatchLabels)) {
		p := fmt.Sprintf("%s.matchLabels[%q]", path, k)
		v := ls.MatchLabels[k]
		kk, ok := key(k)
		if !ok {
			return nil, errorf(p, "label key %q cannot be matched by bgpfabric", k)
		}
		if !validLabelValue(v) {
			return nil, errorf(p, "%q is not a label value", v)
		}
		ops = append(ops, selector.Equal{Key: kk, Value: v})
	}
	for i, e := range ls.MatchExpressions {
		p := fmt.Sprintf("%s.matchExpressions[%d]", path, i)
		kk, ok := key(e.Key)
		if !ok {
			return nil, errorf(p+".key", "label key %q cannot be matched by bgpfabric", e.Key)
		}
		for j, v := range e.Values {
			if !validLabelValue(v) {
				return nil, errorf(fmt.Sprintf("%s.values[%d]", p, j), "%q is not a label value", v)
			}
		}
		switch e.Operator {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn:
			if len(e.Values) == 0 {
				return nil, errorf(p+".values", "must not be empty for operator %s", e.Operator)
			}
			vs := slices.Clone(e.Values)
			if e.Operator == metav1.LabelSelectorOpIn {
				ops = append(ops, selector.In{Key: kk, Values: vs})
			} else {
				ops = append(ops, selector.NotIn{Key: kk, Values: vs})
			}
		case metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
			if len(e.Values) != 0 {
				return nil, errorf(p+".values", "must be empty for operator %s", e.Operator)
			}
			if e.Operator == metav1.LabelSelectorOpExists {
				ops = append(ops, selector.Has{Key: kk})
			} else {
				ops = append(ops, selector.Not{X: selector.Has{Key: kk}})
			}
		default:
			return nil, errorf(p+".operator", "unknown operator %q", e.Operator)
		}
	}
	switch len(ops) {
	case 0:
		return selector.All{}, nil
	case 1:
		return ops[0], nil
	}
	return selector.And{Exprs: ops}, nil
}

// podKey accepts pod label keys that endpoints carry.
func podKey(k string) (string, bool) {
	return k, validLabelKey(k) && !reservedPodLabel(k)
}

// render returns the canonical text of the conjunction of xs, checked to
// parse back to the same selector.
func render(path string, xs ...selector.Expr) (string, error) {
	s := selector.New(selector.And{Exprs: xs}).String()
	back, err := selector.Parse(s)
	if err != nil || back.String() != s {
		return "", errorf(path, "cannot be written as a bgpfabric selector")
	}
	return s, nil
}
