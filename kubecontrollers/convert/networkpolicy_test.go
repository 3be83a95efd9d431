package convert

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/cni"
)

// Helpers that build Kubernetes policies as the conformance tests write
// them (test/e2e/network/netpol in Kubernetes).

func knp(spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "np", Namespace: "x"}, Spec: spec}
}

func labels(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func proto(p corev1.Protocol) *corev1.Protocol { return &p }
func i32(n int32) *int32                       { return &n }
func num(n int) *intstr.IntOrString            { v := intstr.FromInt32(int32(n)); return &v }
func name(s string) *intstr.IntOrString        { v := intstr.FromString(s); return &v }
func aproto(p api.Protocol) *api.Protocol      { return &p }

var (
	ingress = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egress  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	both    = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
)

// want builds the expected bgpfabric policy x/knp.default.np.
func want(sel string, types []api.PolicyType, in, eg []api.Rule) *api.NetworkPolicy {
	order := float64(PolicyOrder)
	return &api.NetworkPolicy{
		TypeMeta:   api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindNetworkPolicy},
		ObjectMeta: api.ObjectMeta{Name: "knp.default.np", Namespace: "x", Annotations: map[string]string{AnnotationManagedBy: ManagedBy, AnnotationK8sName: "np"}},
		Spec:       api.NetworkPolicySpec{PolicySpec: api.PolicySpec{Order: &order, Selector: sel, Types: types, Ingress: in, Egress: eg}},
	}
}

const k8s = "bgpfabric.io/orchestrator == 'k8s'"

var (
	tIn   = []api.PolicyType{api.PolicyTypeIngress}
	tEg   = []api.PolicyType{api.PolicyTypeEgress}
	tBoth = []api.PolicyType{api.PolicyTypeIngress, api.PolicyTypeEgress}
)

func TestNetworkPolicyConformanceScenarios(t *testing.T) {
	tests := []struct {
		name string
		in   *networkingv1.NetworkPolicy
		want *api.NetworkPolicy
	}{{
		name: "default deny ingress",
		in:   knp(networkingv1.NetworkPolicySpec{PolicyTypes: ingress}),
		want: want(k8s, tIn, nil, nil),
	}, {
		name: "default deny ingress without policyTypes",
		in:   knp(networkingv1.NetworkPolicySpec{}),
		want: want(k8s, tIn, nil, nil),
	}, {
		name: "default deny all",
		in:   knp(networkingv1.NetworkPolicySpec{PolicyTypes: both}),
		want: want(k8s, tBoth, nil, nil),
	}, {
		name: "default deny egress",
		in:   knp(networkingv1.NetworkPolicySpec{PodSelector: *labels("pod", "a"), PolicyTypes: egress}),
		want: want("bgpfabric.io/orchestrator == 'k8s' && pod == 'a'", tEg, nil, nil),
	}, {
		name: "allow all ingress",
		in: knp(networkingv1.NetworkPolicySpec{
			PolicyTypes: ingress, Ingress: []networkingv1.NetworkPolicyIngressRule{{}},
		}),
		want: want(k8s, tIn, []api.Rule{{Action: api.Allow}}, nil),
	}, {
		name: "allow ingress from pods of the same namespace",
		in: knp(networkingv1.NetworkPolicySpec{
			PodSelector: *labels("pod", "a"),
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: labels("pod", "b")}},
			}},
		}),
		want: want("bgpfabric.io/orchestrator == 'k8s' && pod == 'a'", tIn, []api.Rule{{
			Action: api.Allow, Source: api.EntityRule{Selector: "bgpfabric.io/orchestrator == 'k8s' && pod == 'b'"},
		}}, nil),
	}, {
		name: "allow ingress from a namespace",
		in: knp(networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: labels("kubernetes.io/metadata.name", "y")}},
			}},
		}),
		want: want(k8s, tIn, []api.Rule{{
			Action: api.Allow, Source: api.EntityRule{
				NamespaceSelector: "all()",
				Selector:          "bgpfabric.io/orchestrator == 'k8s' && pcns.kubernetes.io/metadata.name == 'y'",
			},
		}}, nil),
	}, {
		name: "allow ingress from every namespace",
		in: knp(networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
			}},
		}),
		want: want(k8s, tIn, []api.Rule{{
			Action: api.Allow, Source: api.EntityRule{NamespaceSelector: "all()", Selector: k8s},
		}}, nil),
	}, {
		name: "allow ingress from pods in namespaces (one peer, both selectors)",
		in: knp(networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{
					NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "ns", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"y"}},
					}},
					PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "pod", Operator: metav1.LabelSelectorOpIn, Values: []string{"b", "c"}},
						{Key: "legacy", Operator: metav1.LabelSelectorOpDoesNotExist},
						{Key: "app", Operator: metav1.LabelSelectorOpExists},
					}},
				}},
			}},
		}),
		want: want(k8s, tIn, []api.Rule{{
			Action: api.Allow, Source: api.EntityRule{
				NamespaceSelector: "all()",
				Selector:          "!has(legacy) && bgpfabric.io/orchestrator == 'k8s' && has(app) && pcns.ns != 'y' && pod in {'b', 'c'}",
			},
		}}, nil),
	}, {
		name: "allow ingress from a namespace or from pods (two peers)",
		in: knp(networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{NamespaceSelector: labels("ns", "y")},
					{PodSelector: labels("pod", "b")},
				},
			}},
		}),
		want: want(k8s, tIn, []api.Rule{
			{Action: api.Allow, Source: api.EntityRule{NamespaceSelector: "all()", Selector: "bgpfabric.io/orchestrator == 'k8s' && pcns.ns == 'y'"}},
			{Action: api.Allow, Source: api.EntityRule{Selector: "bgpfabric.io/orchestrator == 'k8s' && pod == 'b'"}},
		}, nil),
	}, {
		name: "ingress from an ipBlock with except",
		in: knp(networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
					CIDR: "10.0.0.0/16", Except: []string{"10.0.1.0/24", "10.0.2.7/32"},
				}}},
			}},
		}),
		want: want(k8s, tIn, []api.Rule{{
			Action: api.Allow, Source: api.EntityRule{Nets: []string{"10.0.0.0/16"}, NotNets: []string{"10.0.1.0/24", "10.0.2.7/32"}},
		}}, nil),
	}, {
		name: "egress to an IPv6 ipBlock with except and a port",
		in: knp(networkingv1.NetworkPolicySpec{
			PolicyTypes: egress,
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "fd00::/64", Except: []string{"fd00::/80"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: num(443)}},
			}},
		}),
		want: want(k8s, tEg, nil, []api.Rule{{
			Action: api.Allow, Protocol: aproto(api.ProtocolTCP),
			Destination: api.EntityRule{Nets: []string{"fd00::/64"}, NotNets: []string{"fd00::/80"}, Ports: []api.Port{"443"}},
		}}),
	}, {
		name: "ingress on a named port",
		in: knp(networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				Ports: []networkingv1.NetworkPolicyPort{{Port: name("serve-80")}, {Protocol: proto(corev1.ProtocolUDP), Port: name("serve-81-udp")}},
			}},
		}),
		want: want(k8s, tIn, []api.Rule{
			{Action: api.Allow, Protocol: aproto(api.ProtocolTCP), Destination: api.EntityRule{Ports: []api.Port{"serve-80"}}},
			{Action: api.Allow, Protocol: aproto(api.ProtocolUDP), Destination: api.EntityRule{Ports: []api.Port{"serve-81-udp"}}},
		}, nil),
	}, {
		name: "egress to a port range (endPort)",
		in: knp(networkingv1.NetworkPolicySpec{
			PolicyTypes: egress,
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{PodSelector: labels("pod", "b")}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: num(30000), EndPort: i32(30010)}, {Port: num(80), EndPort: i32(80)}},
			}},
		}),
		want: want(k8s, tEg, nil, []api.Rule{{
			Action: api.Allow, Protocol: aproto(api.ProtocolTCP),
			Destination: api.EntityRule{Selector: "bgpfabric.io/orchestrator == 'k8s' && pod == 'b'", Ports: []api.Port{"30000:30010", "80"}},
		}}),
	}, {
		name: "egress only to DNS and a namespace (egress rules make the types Ingress and Egress)",
		in: knp(networkingv1.NetworkPolicySpec{
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{Ports: []networkingv1.NetworkPolicyPort{{Protocol: proto(corev1.ProtocolUDP), Port: num(53)}, {Protocol: proto(corev1.ProtocolTCP), Port: num(53)}}},
				{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: labels("ns", "y")}}},
			},
		}),
		want: want(k8s, tBoth, nil, []api.Rule{
			{Action: api.Allow, Protocol: aproto(api.ProtocolUDP), Destination: api.EntityRule{Ports: []api.Port{"53"}}},
			{Action: api.Allow, Protocol: aproto(api.ProtocolTCP), Destination: api.EntityRule{Ports: []api.Port{"53"}}},
			{Action: api.Allow, Destination: api.EntityRule{NamespaceSelector: "all()", Selector: "bgpfabric.io/orchestrator == 'k8s' && pcns.ns == 'y'"}},
		}),
	}, {
		name: "peers times protocols; a port without number is every port of its protocol",
		in: knp(networkingv1.NetworkPolicySpec{
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: labels("pod", "b")}, {IPBlock: &networkingv1.IPBlock{CIDR: "192.168.0.5/24"}}},
				Ports: []networkingv1.NetworkPolicyPort{
					{Port: num(80)}, {Protocol: proto(corev1.ProtocolSCTP)}, {Protocol: proto(corev1.ProtocolSCTP), Port: num(9)}, {Port: num(81)},
				},
			}},
		}),
		want: want(k8s, tIn, []api.Rule{
			{Action: api.Allow, Protocol: aproto(api.ProtocolTCP), Source: api.EntityRule{Selector: "bgpfabric.io/orchestrator == 'k8s' && pod == 'b'"}, Destination: api.EntityRule{Ports: []api.Port{"80", "81"}}},
			{Action: api.Allow, Protocol: aproto(api.ProtocolSCTP), Source: api.EntityRule{Selector: "bgpfabric.io/orchestrator == 'k8s' && pod == 'b'"}},
			{Action: api.Allow, Protocol: aproto(api.ProtocolTCP), Source: api.EntityRule{Nets: []string{"192.168.0.0/24"}}, Destination: api.EntityRule{Ports: []api.Port{"80", "81"}}},
			{Action: api.Allow, Protocol: aproto(api.ProtocolSCTP), Source: api.EntityRule{Nets: []string{"192.168.0.0/24"}}},
		}, nil),
	}, {
		name: "ingress rules of a policy whose types leave out Ingress have no effect",
		in: knp(networkingv1.NetworkPolicySpec{
			PolicyTypes: egress,
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
		}),
		want: want(k8s, tEg, nil, nil),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NetworkPolicy(tc.in)
			if err != nil {
				t.Fatalf("NetworkPolicy: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("converted policy (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNetworkPolicyRefused(t *testing.T) {
	long := strings.Repeat("k", 60) // a valid key, but pcns. makes its name 65 characters
	tests := []struct {
		name  string
		in    *networkingv1.NetworkPolicy
		field string
	}{{
		name: "named port with endPort",
		in: knp(networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Port: num(80)}, {Port: name("http"), EndPort: i32(90)}},
		}}}),
		field: "spec.ingress[0].ports[1].endPort",
	}, {
		name: "endPort below port",
		in: knp(networkingv1.NetworkPolicySpec{PolicyTypes: egress, Egress: []networkingv1.NetworkPolicyEgressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Port: num(80), EndPort: i32(79)}},
		}}}),
		field: "spec.egress[0].ports[0].endPort",
	}, {
		name: "except outside the cidr",
		in: knp(networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"10.1.0.0/24"}}}},
		}}}),
		field: "spec.ingress[0].from[0].ipBlock.except[0]",
	}, {
		name: "except of the other family",
		in: knp(networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16", Except: []string{"::/0"}}}},
		}}}),
		field: "spec.ingress[0].from[0].ipBlock.except[0]",
	}, {
		name: "ipBlock with a selector",
		in: knp(networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{}, {IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/16"}, PodSelector: labels("a", "b")}},
		}}}),
		field: "spec.ingress[0].from[0]",
	}, {
		name: "unknown protocol",
		in: knp(networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: proto("ICMP")}},
		}}}),
		field: "spec.ingress[0].ports[0].protocol",
	}, {
		name: "podSelector on a reserved key",
		in: knp(networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{PodSelector: labels("pcns.team", "a")}},
		}}}),
		field: `spec.ingress[0].from[0].podSelector.matchLabels["pcns.team"]`,
	}, {
		name: "policy podSelector on felix's reserved key",
		in: knp(networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "bgpfabric.io/namespace", Operator: metav1.LabelSelectorOpExists},
		}}}),
		field: "spec.podSelector.matchExpressions[0].key",
	}, {
		name: "namespace label key too long once prefixed",
		in: knp(networkingv1.NetworkPolicySpec{PolicyTypes: egress, Egress: []networkingv1.NetworkPolicyEgressRule{{
			To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: long, Operator: metav1.LabelSelectorOpDoesNotExist},
			}}}},
		}}}),
		field: "spec.egress[0].to[0].namespaceSelector.matchExpressions[0].key",
	}, {
		name: "In without values",
		in: knp(networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "a", Operator: metav1.LabelSelectorOpIn},
		}}}),
		field: "spec.podSelector.matchExpressions[0].values",
	}, {
		name:  "unknown policy type",
		in:    knp(networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{"Sideways"}}),
		field: "spec.policyTypes[0]",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NetworkPolicy(tc.in)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("NetworkPolicy = %+v, %v; want an *Error", got, err)
			}
			if ce.Field != tc.field {
				t.Errorf("error %q names field %q, want %q", err, ce.Field, tc.field)
			}
		})
	}
}

func TestNamespaceProfile(t *testing.T) {
	long := strings.Repeat("k", 60)
	p, dropped := NamespaceProfile(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "y", Labels: map[string]string{
		"kubernetes.io/metadata.name": "y", "team": "a", long: "v",
	}}})
	want := &api.Profile{
		TypeMeta:   api.TypeMeta{APIVersion: api.APIVersion, Kind: api.KindProfile},
		ObjectMeta: api.ObjectMeta{Name: "ns.y", Annotations: map[string]string{AnnotationManagedBy: ManagedBy}},
		Spec: api.ProfileSpec{
			Ingress: []api.Rule{{Action: api.Allow}}, Egress: []api.Rule{{Action: api.Allow}},
			LabelsToApply: map[string]string{"pcns.kubernetes.io/metadata.name": "y", "pcns.team": "a"},
		},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("profile (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{long}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("profile does not validate: %v", err)
	}
	if NamespaceProfilePrefix != cni.ProfilePrefix {
		t.Errorf("NamespaceProfilePrefix %q is not the CNI plugin's profile prefix %q", NamespaceProfilePrefix, cni.ProfilePrefix)
	}
}

func TestPodLabelsAndPorts(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
			"app": "web", "pcns.team": "a", "bgpfabric.io/namespace": "z",
		}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 9}, {Name: "dns", Protocol: corev1.ProtocolUDP, ContainerPort: 53}}},
			{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8081}, {Name: "metrics", ContainerPort: 9090}}},
		}},
	}
	l, dropped := PodLabels(pod)
	if diff := cmp.Diff(map[string]string{"app": "web"}, l); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bgpfabric.io/namespace", "pcns.team"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	wantPorts := []api.EndpointPort{
		{Name: "http", Protocol: api.ProtocolTCP, Port: 8080},
		{Name: "dns", Protocol: api.ProtocolUDP, Port: 53},
		{Name: "metrics", Protocol: api.ProtocolTCP, Port: 9090},
	}
	if diff := cmp.Diff(wantPorts, PodPorts(pod)); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
}

func TestPolicyNameLong(t *testing.T) {
	long := strings.Repeat("a", 250)
	n := PolicyName(long)
	if len(n) > 253 || !strings.HasPrefix(n, PolicyNamePrefix) || n == PolicyName(long[:249]+"b") {
		t.Errorf("PolicyName of a 250-character name = %q (%d characters): want at most 253, prefixed, unique", n, len(n))
	}
	p, err := NetworkPolicy(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: long, Namespace: "x"}})
	if err != nil {
		t.Fatalf("NetworkPolicy with a 250-character name: %v", err)
	}
	if p.Name != n || p.Annotations[AnnotationK8sName] != long {
		t.Errorf("converted name %q, annotation %q", p.Name, p.Annotations[AnnotationK8sName])
	}
}
