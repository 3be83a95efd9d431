package cni_test

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/cni"
	"github.com/bgpfabric/bgpfabric/internal/kubetest"
	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/k8slabels"
)

// TestKubernetesPod runs the plugin against a real kube-apiserver: the
// pod's labels and service account reach its endpoint, its pool and fixed
// address annotations steer IPAM, and what cannot be honoured (an address
// outside every pool or in a disabled one, the API server down) fails the
// ADD with nothing left behind.
func TestKubernetesPod(t *testing.T) {
	f := newFabric(t)
	kas := kubetest.Start(t)
	kube := kas.Client(t)
	// The plugin runs in the host namespace the test made; the API server
	// listens on the loopback of the test's own.
	addr := strings.TrimPrefix(kas.URL, "https://")
	fw, err := netnsutil.Forward(f.host.Handle, addr, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	f.conf["kubernetes"] = map[string]any{"kubeconfig": kas.Kubeconfig(t, kubetest.Admin)}
	f.apply(
		&api.IPPool{ObjectMeta: api.ObjectMeta{Name: "pool4b"}, Spec: api.IPPoolSpec{CIDR: "10.245.0.0/24", BlockSize: 28}},
		&api.IPPool{ObjectMeta: api.ObjectMeta{Name: "pool4-off"}, Spec: api.IPPoolSpec{CIDR: "10.246.0.0/24", BlockSize: 28, Disabled: true}},
	)
	if _, err := kube.CoreV1().Namespaces().Create(f.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	newPod := func(name string, labels, ann map[string]string, sa string) {
		t.Helper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: labels, Annotations: ann},
			Spec: corev1.PodSpec{NodeName: f.node, ServiceAccountName: sa,
				Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/c"}}},
		}
		if _, err := kube.CoreV1().Pods("shop").Create(f.ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The runtime's own labels are not used for a pod: its labels come
	// from the API server only, as kube-controllers keeps them.
	list := f.confList(func(p map[string]any) {
		p["args"] = map[string]any{"cni": map[string]any{"labels": []any{map[string]any{"key": "runtime", "value": "x"}}}}
	})
	c := f.cni()
	podArgs := func(name string) [][2]string {
		return [][2]string{{"K8S_POD_NAMESPACE", "shop"}, {"K8S_POD_NAME", name}}
	}
	endpoint := func(pod string) *api.WorkloadEndpoint {
		t.Helper()
		r, err := f.store.Get(f.ctx, api.KindWorkloadEndpoint, "shop", api.WorkloadEndpointName(f.node, "k8s", pod, "eth0"))
		if err != nil {
			t.Fatalf("endpoint of %s: %v", pod, err)
		}
		return r.(*api.WorkloadEndpoint)
	}
	// failsLeavingNothing runs an ADD that must fail with code and a
	// message containing want, and checks that it left no address,
	// endpoint, record or host interface.
	failsLeavingNothing := func(t *testing.T, pod string, code uint, want string) {
		t.Helper()
		allocs, weps, recs, hostLinks := f.allocations(), len(f.endpoints()), f.records(), links(t, f.host)
		cont, rt := f.container("c-"+pod, podArgs(pod)...)
		err := f.inHost(func() error { _, err := c.AddNetworkList(f.ctx, list, rt); return err })
		var te *types.Error
		if !errors.As(err, &te) || te.Code != code || !strings.Contains(te.Msg, want) {
			t.Fatalf("ADD of %s = %v, want code %d containing %q", pod, err, code, want)
		}
		t.Logf("ADD of %s failed as it should: %v", pod, err)
		if got := f.allocations(); !maps.Equal(got, allocs) {
			t.Errorf("allocations changed: %v, before %v", got, allocs)
		}
		if got := len(f.endpoints()); got != weps {
			t.Errorf("%d endpoints, before %d", got, weps)
		}
		if got := f.records(); !slices.Equal(got, recs) {
			t.Errorf("records %v, before %v", got, recs)
		}
		if got := links(t, f.host); !slices.Equal(got, hostLinks) {
			t.Errorf("host links %v, before %v", got, hostLinks)
		}
		if got := links(t, cont); len(got) != 0 {
			t.Errorf("container links %v, want none", got)
		}
	}

	t.Run("labels and service account", func(t *testing.T) {
		newPod("web-1", map[string]string{"app": "web", "tier": "front", "pcns.team": "forged"}, nil, "web-sa")
		_, rt := f.container("c-web-1", podArgs("web-1")...)
		addIP(t, f, c, list, rt)
		want := map[string]string{"app": "web", "tier": "front", k8slabels.LabelServiceAccount: "web-sa"}
		if got := endpoint("web-1").Labels; !maps.Equal(got, want) {
			t.Errorf("endpoint labels %v, want %v", got, want)
		}
	})
	t.Run("pool annotation", func(t *testing.T) {
		newPod("by-name", nil, map[string]string{cni.AnnotationIPv4Pools: `["pool4b"]`}, "")
		newPod("by-cidr", nil, map[string]string{cni.AnnotationIPv4Pools: `["10.245.0.0/24"]`}, "")
		for _, pod := range []string{"by-name", "by-cidr"} {
			_, rt := f.container("c-"+pod, podArgs(pod)...)
			if ip := addIP(t, f, c, list, rt); !netip.MustParsePrefix("10.245.0.0/24").Contains(ip) {
				t.Errorf("%s got %s, not from pool4b (the configuration's pool is pool4)", pod, ip)
			}
		}
	})
	t.Run("fixed address annotation", func(t *testing.T) {
		newPod("fixed", nil, map[string]string{cni.AnnotationIPAddrs: `["10.244.0.77"]`}, "")
		_, rt := f.container("c-fixed", podArgs("fixed")...)
		if ip := addIP(t, f, c, list, rt); ip != netip.MustParseAddr("10.244.0.77") {
			t.Errorf("fixed pod got %s, want 10.244.0.77", ip)
		}
		if h := f.allocations()[netip.MustParseAddr("10.244.0.77")]; h != cni.HandleFor("bgpfabric", "c-fixed", "eth0") {
			t.Errorf("10.244.0.77 held by %q", h)
		}
		if got := endpoint("fixed").Spec.IPNetworks; !slices.Equal(got, []string{"10.244.0.77/32"}) {
			t.Errorf("endpoint addresses %v", got)
		}
		// The same address again is in use.
		newPod("fixed-again", nil, map[string]string{cni.AnnotationIPAddrs: `["10.244.0.77"]`}, "")
		failsLeavingNothing(t, "fixed-again", types.ErrInternal, "10.244.0.77 is already in use")
	})
	t.Run("fixed address outside every pool", func(t *testing.T) {
		newPod("nowhere", nil, map[string]string{cni.AnnotationIPAddrs: `["10.250.0.1"]`}, "")
		failsLeavingNothing(t, "nowhere", types.ErrInternal, "cni.projectcalico.org/ipAddrs: assigning [10.250.0.1] to handle bgpfabric:c-nowhere:eth0 on node node-1: 10.250.0.1 is in no IP pool")
	})
	t.Run("fixed address in a disabled pool", func(t *testing.T) {
		newPod("disabled", nil, map[string]string{cni.AnnotationIPAddrs: `["10.246.0.5"]`}, "")
		failsLeavingNothing(t, "disabled", types.ErrInternal, "10.246.0.5 is in a disabled IP pool (pool4-off)")
	})
	t.Run("bad annotations", func(t *testing.T) {
		newPod("bad-json", nil, map[string]string{cni.AnnotationIPAddrs: `10.244.0.9`}, "")
		failsLeavingNothing(t, "bad-json", types.ErrInternal, "pod annotation cni.projectcalico.org/ipAddrs: \"10.244.0.9\" must be a non-empty JSON list")
		newPod("unknown-pool", nil, map[string]string{cni.AnnotationIPv4Pools: `["10.247.0.0/24"]`}, "")
		failsLeavingNothing(t, "unknown-pool", types.ErrInternal, "cni.projectcalico.org/ipv4pools[0]: no IP pool has the CIDR 10.247.0.0/24")
		newPod("disabled-pool", nil, map[string]string{cni.AnnotationIPv4Pools: `["pool4-off"]`}, "")
		failsLeavingNothing(t, "disabled-pool", types.ErrInternal, "pool pool4-off is disabled")
	})
	t.Run("pod missing", func(t *testing.T) {
		failsLeavingNothing(t, "ghost", types.ErrInternal, `404 Not Found: pods "ghost" not found`)
	})
	t.Run("API server down", func(t *testing.T) {
		newPod("late", map[string]string{"app": "late"}, nil, "")
		kas.Stop()
		failsLeavingNothing(t, "late", types.ErrTryAgainLater, "reading pod shop/late from the Kubernetes API server "+kas.URL+": Kubernetes API server unavailable")
		// Back: the runtime's retry succeeds, labelled.
		kas.Restart()
		_, rt := f.container("c-late-2", podArgs("late")...)
		addIP(t, f, c, list, rt)
		if got := endpoint("late").Labels; !maps.Equal(got, map[string]string{"app": "late"}) {
			t.Errorf("endpoint labels %v after the API server came back", got)
		}
	})
}
