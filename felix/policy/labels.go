package policy

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/bgpfabric/bgpfabric/api/selector"
)

// Reserved labels that the calculation adds to endpoints (and namespaces),
// overriding any label of the same key that the user set.
const (
	// ReservedLabelPrefix starts every reserved label key.
	ReservedLabelPrefix = "bgpfabric.io/"
	// LabelNamespace is a workload endpoint's namespace.
	LabelNamespace = ReservedLabelPrefix + "namespace"
	// LabelOrchestrator is a workload endpoint's orchestrator.
	LabelOrchestrator = ReservedLabelPrefix + "orchestrator"
	// LabelName is a namespace's own name, among its labels.
	LabelName = ReservedLabelPrefix + "name"
	// NamespaceLabelPrefix prefixes the labels of a workload endpoint's
	// namespace among the endpoint's labels, so that a namespaceSelector
	// is an ordinary selector over endpoint labels (Calico's "pcns.").
	NamespaceLabelPrefix = ReservedLabelPrefix + "ns."
)

// endpointLabels computes the labels selectors see: profile labels (an
// earlier profile wins), then the endpoint's own, then the reserved ones.
// nsLabels is nil for host endpoints.
func endpointLabels(own map[string]string, profiles []map[string]string, ns, orchestrator string, nsLabels map[string]string) map[string]string {
	out := make(map[string]string, len(own)+len(nsLabels)+2)
	for i := len(profiles) - 1; i >= 0; i-- {
		for k, v := range profiles[i] {
			out[k] = v
		}
	}
	for k, v := range own {
		out[k] = v
	}
	if nsLabels != nil {
		out[LabelNamespace] = ns
		out[LabelOrchestrator] = orchestrator
		for k, v := range nsLabels {
			out[NamespaceLabelPrefix+k] = v
		}
	}
	return out
}

// namespaceLabels adds LabelName to a namespace's labels.
func namespaceLabels(name string, labels map[string]string) map[string]string {
	out := make(map[string]string, len(labels)+1)
	for k, v := range labels {
		out[k] = v
	}
	out[LabelName] = name
	return out
}

// inNamespaces rewrites a namespace selector into a selector over endpoint
// labels: every key gets NamespaceLabelPrefix.
func inNamespaces(e selector.Expr) selector.Expr {
	p := NamespaceLabelPrefix
	switch e := e.(type) {
	case selector.Has:
		return selector.Has{Key: p + e.Key}
	case selector.Equal:
		return selector.Equal{Key: p + e.Key, Value: e.Value}
	case selector.NotEqual:
		return selector.NotEqual{Key: p + e.Key, Value: e.Value}
	case selector.In:
		return selector.In{Key: p + e.Key, Values: e.Values}
	case selector.NotIn:
		return selector.NotIn{Key: p + e.Key, Values: e.Values}
	case selector.Contains:
		return selector.Contains{Key: p + e.Key, Value: e.Value}
	case selector.StartsWith:
		return selector.StartsWith{Key: p + e.Key, Value: e.Value}
	case selector.EndsWith:
		return selector.EndsWith{Key: p + e.Key, Value: e.Value}
	case selector.Not:
		return selector.Not{X: inNamespaces(e.X)}
	case selector.And:
		xs := make([]selector.Expr, len(e.Exprs))
		for i, x := range e.Exprs {
			xs[i] = inNamespaces(x)
		}
		return selector.And{Exprs: xs}
	case selector.Or:
		xs := make([]selector.Expr, len(e.Exprs))
		for i, x := range e.Exprs {
			xs[i] = inNamespaces(x)
		}
		return selector.Or{Exprs: xs}
	}
	return e // All
}

// inNamespace is the selector of the endpoints of one namespace.
func inNamespace(ns string) selector.Expr {
	return selector.Equal{Key: LabelNamespace, Value: ns}
}

// parseSel parses a selector; "" is all().
func parseSel(s string) (*selector.Selector, error) {
	if strings.TrimSpace(s) == "" {
		return selector.New(selector.All{}), nil
	}
	return selector.Parse(s)
}

// and combines expressions; nil operands are left out.
func and(xs ...selector.Expr) *selector.Selector {
	var ops []selector.Expr
	for _, x := range xs {
		if x != nil {
			ops = append(ops, x)
		}
	}
	switch len(ops) {
	case 0:
		return selector.New(selector.All{})
	case 1:
		return selector.New(ops[0])
	}
	return selector.New(selector.And{Exprs: ops})
}

// setID names the set of a canonical selector (and named port).
func setID(canonical string) SetID {
	sum := sha256.Sum256([]byte(canonical))
	return SetID("s-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10])))
}
