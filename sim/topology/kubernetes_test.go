package topology

import (
	"strings"
	"testing"
)

// TestKubernetesErrors: the kubernetes section is validated with the
// file, line and field of each problem.
func TestKubernetesErrors(t *testing.T) {
	const good = "name: f\nnodes:\n  - name: n\n    workloads: [{name: w, namespace: shop, labels: {app: web}}]\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown field", good + "kubernetes:\n  enabled: true\n  replicas: 2\n", "t.yaml:7:3: kubernetes.replicas: unknown field (known: enabled, controllers, resources)"},
		{"not enabled", good + "kubernetes:\n  controllers: 2\n", "t.yaml:6:3: kubernetes.enabled: must be true when controllers or resources are given"},
		{"controllers", good + "kubernetes:\n  enabled: true\n  controllers: 4\n", "t.yaml:7:16: kubernetes.controllers: must be from 1 to 3 (got 4)"},
		{"kind", good + "kubernetes:\n  enabled: true\n  resources:\n    - {apiVersion: v1, kind: Pod, metadata: {name: p}}\n",
			`t.yaml:8:30: kubernetes.resources[0].kind: v1 "Pod" is not supported: want v1 Namespace or networking.k8s.io/v1 NetworkPolicy`},
		{"name", good + "kubernetes:\n  enabled: true\n  resources:\n    - {apiVersion: v1, kind: Namespace, metadata: {name: Bad_Name}}\n",
			`kubernetes.resources[0].metadata.name: must be a lower-case DNS subdomain (got "Bad_Name")`},
		{"namespaced namespace", good + "kubernetes:\n  enabled: true\n  resources:\n    - {apiVersion: v1, kind: Namespace, metadata: {name: a, namespace: b}}\n",
			"kubernetes.resources[0].metadata.namespace: a Namespace is not namespaced"},
		{"twice", good + "kubernetes:\n  enabled: true\n  resources:\n    - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: a}}\n    - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, metadata: {name: a, namespace: default}}\n",
			"t.yaml:9:7: kubernetes.resources[1]: NetworkPolicy default/a is given twice"},
		{"reserved pod label", "name: f\nnodes:\n  - name: n\n    workloads: [{name: w, labels: {pcns.team: a}}]\nkubernetes: {enabled: true}\n",
			`t.yaml:4:47: nodes[0].workloads[0].labels["pcns.team"]: is not a pod label that reaches the endpoint`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
	// Without kubernetes, the same labels are fine.
	if _, err := Parse("t.yaml", []byte("name: f\nnodes:\n  - name: n\n    workloads: [{name: w, labels: {pcns.team: a}}]\n")); err != nil {
		t.Errorf("labels without kubernetes: %v", err)
	}
}
