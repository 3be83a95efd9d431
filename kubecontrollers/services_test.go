package kubecontrollers

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgpfabric/bgpfabric/api"
)

// testServices: a LoadBalancer Service's cluster, external and
// load-balancer addresses reach its ServiceAdvertisement; with the Local
// policy the record lists exactly the nodes of the ready pods it selects
// (a pod that is not Ready, or not selected, does not count); the record
// goes with the Service.
func testServices(t *testing.T, e *env) {
	ctx := t.Context()
	k := e.kube
	const ns = "team-a"
	svc, err := k.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "lb", Namespace: ns},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "lb"},
			ExternalIPs:           []string{"203.0.113.7"},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
			Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.ClusterIP == "" {
		t.Fatal("the API server gave the Service no cluster IP")
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.20"}}
	if svc, err = k.CoreV1().Services(ns).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	spec := func(r api.Resource) api.ServiceAdvertisementSpec {
		if r == nil {
			return api.ServiceAdvertisementSpec{}
		}
		return r.(*api.ServiceAdvertisement).Spec
	}
	want := api.ServiceAdvertisementSpec{ClusterIPs: []string{svc.Spec.ClusterIP}, ExternalIPs: []string{"203.0.113.7"},
		LoadBalancerIPs: []string{"192.0.2.20"}, ExternalTrafficPolicy: api.ServiceTrafficCluster}
	got := waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "lb", func(r api.Resource) bool {
		return r != nil && len(spec(r).LoadBalancerIPs) > 0
	})
	if diff := cmp.Diff(want, spec(got)); diff != "" {
		t.Errorf("ServiceAdvertisement (-want +got):\n%s", diff)
	}

	// Local: the nodes of the ready endpoints.
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	if svc, err = k.CoreV1().Services(ns).Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "lb", func(r api.Resource) bool {
		return spec(r).ExternalTrafficPolicy == api.ServiceTrafficLocal && len(spec(r).Nodes) == 0
	})
	pod := func(name, node string, labels map[string]string, ready bool) {
		t.Helper()
		p, err := k.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.invalid/lb"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		setReady(t, e, p, ready)
	}
	pod("lb-1", "node-1", map[string]string{"app": "lb"}, false)
	pod("lb-2", "node-2", map[string]string{"app": "lb"}, true)
	pod("other-3", "node-3", map[string]string{"app": "other"}, true)
	nodes := func(want ...string) func(api.Resource) bool {
		return func(r api.Resource) bool { return slices.Equal(spec(r).Nodes, want) }
	}
	waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "lb", nodes("node-2"))
	p1, err := k.CoreV1().Pods(ns).Get(ctx, "lb-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setReady(t, e, p1, true)
	waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "lb", nodes("node-1", "node-2"))
	if err := k.CoreV1().Pods(ns).Delete(ctx, "lb-2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "lb", nodes("node-1"))
	p1, err = k.CoreV1().Pods(ns).Get(ctx, "lb-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setReady(t, e, p1, false)
	waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "lb", nodes())

	// A Service without a selector: the ready endpoints of its
	// EndpointSlices (ready unset counts as ready), not those of another
	// Service's.
	manual, err := k.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: ns},
		Spec: corev1.ServiceSpec{ExternalIPs: []string{"203.0.113.9"}, Type: corev1.ServiceTypeNodePort,
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports:                 []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	slice := func(name, svc string, eps ...discoveryv1.Endpoint) {
		t.Helper()
		if _, err := k.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4, Endpoints: eps,
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ep := func(node string, ready *bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{"10.65.0.9"}, NodeName: &node, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
	}
	slice("manual-a", "manual", ep("node-5", &yes), ep("node-6", &no))
	slice("manual-b", "manual", ep("node-7", nil))
	slice("other-a", "other", ep("node-8", &yes))
	got = waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "manual", nodes("node-5", "node-7"))
	if diff := cmp.Diff([]string{manual.Spec.ClusterIP}, spec(got).ClusterIPs); diff != "" {
		t.Errorf("cluster IPs of the Service without selector (-want +got):\n%s", diff)
	}
	if err := k.DiscoveryV1().EndpointSlices(ns).Delete(ctx, "manual-a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "manual", nodes("node-7"))
	if err := k.CoreV1().Services(ns).Delete(ctx, "manual", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// A headless Service has nothing to advertise; a deleted one goes.
	if _, err := k.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: ns},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "lb"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := k.CoreV1().Services(ns).Delete(ctx, "lb", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "lb", gone)
	waitFor(t, e.ds, api.KindServiceAdvertisement, ns, "manual", gone)
	rs, _, err := e.ds.List(ctx, api.KindServiceAdvertisement, ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 0 {
		t.Errorf("ServiceAdvertisements left: %v (a headless Service has none)", rs)
	}
}

// setReady sets a pod's Ready condition through its status, as a kubelet
// would.
func setReady(t *testing.T, e *env, p *corev1.Pod, ready bool) {
	t.Helper()
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}
	if _, err := e.kube.CoreV1().Pods(p.Namespace).UpdateStatus(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
