package convert

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/policy"
)

// TestConvertedPolicyInFelix feeds converted policies, namespace profiles
// and endpoints (labelled as kube-controllers labels them) to felix's
// policy calculation and checks which endpoints each rule's IP set holds:
// the pcns. scheme must select exactly the pods Kubernetes means.
func TestConvertedPolicyInFelix(t *testing.T) {
	calc := policy.New(policy.Config{Node: "n1"})
	for ns, team := range map[string]string{"x": "x", "y": "y", "z": "z"} {
		p, _ := NamespaceProfile(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
			"team": team, corev1.LabelMetadataName: ns,
		}}})
		if err := calc.OnProfileUpdate(p); err != nil {
			t.Fatal(err)
		}
	}
	addr := map[string]string{}
	wep := func(node, ns, name, ip string, labels map[string]string) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}}
		l, _ := PodLabels(pod)
		w := &api.WorkloadEndpoint{
			ObjectMeta: api.ObjectMeta{Name: api.WorkloadEndpointName(node, OrchestratorK8s, name, "eth0"), Namespace: ns, Labels: l},
			Spec: api.WorkloadEndpointSpec{Node: node, Orchestrator: OrchestratorK8s, Workload: name, Endpoint: "eth0",
				InterfaceName: "bf" + name, IPNetworks: []string{ip + "/32"}, Profiles: []string{NamespaceProfilePrefix + ns}},
		}
		w.Default()
		calc.OnWorkloadEndpointUpdate(w)
		addr[ns+"/"+name] = ip
	}
	wep("n1", "x", "web", "10.0.0.1", map[string]string{"app": "web"})
	wep("n2", "x", "client", "10.0.0.2", map[string]string{"app": "client"})
	wep("n2", "y", "client", "10.0.0.3", map[string]string{"app": "client"})
	wep("n2", "y", "other", "10.0.0.4", map[string]string{"app": "other"})
	// A pod of z that claims team y: the label is not copied.
	wep("n2", "z", "client", "10.0.0.5", map[string]string{"app": "client", "pcns.team": "y"})

	peers := map[string]networkingv1.NetworkPolicyPeer{
		"same namespace app=client":  {PodSelector: labels("app", "client")},
		"namespace team=y":           {NamespaceSelector: labels("team", "y")},
		"app=client in team=y":       {NamespaceSelector: labels("team", "y"), PodSelector: labels("app", "client")},
		"every namespace app=client": {NamespaceSelector: &metav1.LabelSelector{}, PodSelector: labels("app", "client")},
		"namespace named z":          {NamespaceSelector: labels(corev1.LabelMetadataName, "z")},
		"team not in {y}": {NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "team", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"y"}},
		}}},
	}
	want := map[string][]string{
		"same namespace app=client":  {"x/client"},
		"namespace team=y":           {"y/client", "y/other"},
		"app=client in team=y":       {"y/client"},
		"every namespace app=client": {"x/client", "y/client", "z/client"},
		"namespace named z":          {"z/client"},
		"team not in {y}":            {"x/client", "x/web", "z/client"},
	}
	for name, peer := range peers {
		t.Run(name, func(t *testing.T) {
			np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "x"}, Spec: networkingv1.NetworkPolicySpec{
				PodSelector: *labels("app", "web"),
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{peer}}},
			}}
			p, err := NetworkPolicy(np)
			if err != nil {
				t.Fatal(err)
			}
			if err := calc.OnNetworkPolicyUpdate(p); err != nil {
				t.Fatal(err)
			}
			u := calc.TakeUpdate()
			rules := u.Policies[policy.PolicyKey{Namespace: "x", Name: p.Name}]
			if rules == nil || len(rules.Ingress) != 1 {
				t.Fatalf("felix's rules for the policy: %+v", rules)
			}
			set := u.IPSets[rules.Ingress[0].Src.Set]
			if set == nil {
				t.Fatalf("no IP set %q in the update", rules.Ingress[0].Src.Set)
			}
			var got []string
			for _, m := range set.Members {
				for k, ip := range addr {
					if m.Addr == netip.MustParseAddr(ip) {
						got = append(got, k)
					}
				}
			}
			slices.Sort(got)
			if diff := cmp.Diff(want[name], got); diff != "" {
				t.Errorf("pods the rule's source set holds (-want +got):\n%s", diff)
			}
			calc.OnPolicyRemove(policy.PolicyKey{Namespace: "x", Name: p.Name})
			calc.TakeUpdate()
		})
	}
}
