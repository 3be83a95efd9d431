package kubecontrollers

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/internal/kubetest"
	"github.com/bgpfabric/bgpfabric/ipam"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/convert"
)

// waitTimeout bounds every wait for the controller: generous for a loaded
// machine; the waits end on the datastore event, not on a clock.
const waitTimeout = time.Minute

// env is a real API server, an embedded etcd as bgpfabric's datastore and
// a running controller between them.
type env struct {
	api  *kubetest.APIServer
	kube kubernetes.Interface
	ds   *datastore.Client
	logs *logWatch
}

func newEnv(t *testing.T) *env {
	s := kubetest.Start(t)
	e := &env{api: s, kube: s.Client(t), ds: etcdtest.Start(t).Client(t), logs: &logWatch{}}
	e.run(t, e.kube)
	return e
}

// run starts a controller with the client kube; it stops at the end of
// the test.
func (e *env) run(t *testing.T, kube kubernetes.Interface) {
	t.Helper()
	c, err := New(Config{Kube: kube, Datastore: e.ds, Logger: slog.New(e.logs), RetryMin: 50 * time.Millisecond, RetryMax: time.Second,
		NodeGracePeriod: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("controller ended with %v", err)
		}
	})
}

// waitFor waits until the datastore's resource kind ns/name satisfies ok
// (nil when it does not exist), watching the datastore for each change.
func waitFor(t *testing.T, ds *datastore.Client, kind, ns, name string, ok func(api.Resource) bool) api.Resource {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	rs, rev, err := ds.List(ctx, kind, ns)
	if err != nil {
		t.Fatalf("listing %s: %v", kind, err)
	}
	var cur api.Resource
	for _, r := range rs {
		if r.GetObjectMeta().Name == name {
			cur = r
		}
	}
	if ok(cur) {
		return cur
	}
	for ev := range ds.Watch(ctx, kind, ns, rev+1) {
		if ev.Err != nil {
			t.Fatalf("watching %s: %v", kind, ev.Err)
		}
		if ev.ID.Name != name {
			continue
		}
		cur = ev.Resource
		if ev.Type == datastore.Deleted {
			cur = nil
		}
		if ok(cur) {
			return cur
		}
	}
	t.Fatalf("%s %s/%s: not as expected after %v; last seen: %+v", kind, ns, name, waitTimeout, cur)
	return nil
}

func gone(r api.Resource) bool   { return r == nil }
func exists(r api.Resource) bool { return r != nil }

// logWatch is a slog handler that records messages and wakes waiters.
type logWatch struct {
	mu   sync.Mutex
	msgs []string
	wake chan struct{}
}

func (l *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (l *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logWatch) WithGroup(string) slog.Handler            { return l }
func (l *logWatch) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	l.msgs = append(l.msgs, line)
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
	return nil
}

// waitLog waits for a logged line containing every part.
func (l *logWatch) waitLog(t *testing.T, parts ...string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		l.mu.Lock()
		for _, m := range l.msgs {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(m, p)
			}
			if all {
				l.mu.Unlock()
				return
			}
		}
		if l.wake == nil {
			l.wake = make(chan struct{})
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-timeout:
			t.Fatalf("no log line with %q after %v", parts, waitTimeout)
		}
	}
}

// TestAgainstAPIServer runs the controller against a real kube-apiserver:
// namespaces become profiles, NetworkPolicies converted policies (and a
// policy it cannot convert a deny-all), pod labels reach their endpoints,
// Node labels and deletions reach bgpfabric Nodes, missing RBAC is
// reported, and the controller goes on after the API server restarts.
func TestAgainstAPIServer(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	k := e.kube

	t.Run("namespace profile", func(t *testing.T) {
		if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: "team-a", Labels: map[string]string{"team": "a"},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindProfile, "", "ns.team-a", func(r api.Resource) bool {
			return r != nil && maps.Equal(r.(*api.Profile).Spec.LabelsToApply, map[string]string{
				"pcns.team": "a", "pcns.kubernetes.io/metadata.name": "team-a",
			})
		})
		ns, err := k.CoreV1().Namespaces().Get(ctx, "team-a", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ns.Labels["team"] = "b"
		if _, err := k.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindProfile, "", "ns.team-a", func(r api.Resource) bool {
			return r != nil && r.(*api.Profile).Spec.LabelsToApply["pcns.team"] == "b"
		})
	})

	t.Run("network policy", func(t *testing.T) {
		tcp := corev1.ProtocolTCP
		port := intstr.FromString("http")
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team-a"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &port}},
				}},
			},
		}
		created, err := k.NetworkingV1().NetworkPolicies("team-a").Create(ctx, np, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, err := convert.NetworkPolicy(created)
		if err != nil {
			t.Fatal(err)
		}
		got := waitFor(t, e.ds, api.KindNetworkPolicy, "team-a", "knp.default.web", exists).(*api.NetworkPolicy)
		if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
			t.Errorf("converted policy in the datastore (-want +got):\n%s", diff)
		}
		if err := k.NetworkingV1().NetworkPolicies("team-a").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindNetworkPolicy, "team-a", "knp.default.web", gone)
	})

	t.Run("refused policy denies", func(t *testing.T) {
		// A namespace label key the API server accepts but that is too long
		// for the pcns. prefix.
		long := strings.Repeat("k", 60)
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "odd", Namespace: "team-a"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: long, Operator: metav1.LabelSelectorOpDoesNotExist},
					}}}},
				}},
			},
		}
		evs, err := k.EventsV1().Events("team-a").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, waitTimeout)
		defer wcancel()
		w, err := k.EventsV1().Events("team-a").Watch(wctx, metav1.ListOptions{ResourceVersion: evs.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		if _, err := k.NetworkingV1().NetworkPolicies("team-a").Create(ctx, np, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got := waitFor(t, e.ds, api.KindNetworkPolicy, "team-a", "knp.default.odd", exists).(*api.NetworkPolicy)
		for found := false; !found; {
			ev, ok := <-w.ResultChan()
			if !ok {
				t.Fatal("no Warning event on the refused NetworkPolicy")
			}
			if e, isEv := ev.Object.(*eventsv1.Event); isEv && e.Regarding.Name == "odd" {
				found = e.Type == corev1.EventTypeWarning && e.Reason == "Refused" &&
					strings.Contains(e.Note, "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].key")
				if !found {
					t.Fatalf("event on the refused policy: %s %s %q", e.Type, e.Reason, e.Note)
				}
			}
		}
		if got.Annotations[AnnotationRefused] == "" || len(got.Spec.Ingress) != 0 || len(got.Spec.Egress) != 0 ||
			!cmp.Equal(got.Spec.Types, []api.PolicyType{api.PolicyTypeIngress}) ||
			got.Spec.Selector != "app == 'db' && bgpfabric.io/orchestrator == 'k8s'" {
			t.Errorf("refused policy stored as %+v (annotations %v); want a deny-all ingress for app == 'db'", got.Spec, got.Annotations)
		}
		e.logs.waitLog(t, "NetworkPolicy refused", "team-a/odd", "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].key")
		// One line for this version of the policy.
		if n := e.logs.count("NetworkPolicy refused", "team-a/odd"); n != 1 {
			t.Errorf("%d log lines for the refused policy, want 1", n)
		}
	})

	t.Run("pod labels reach the endpoint", func(t *testing.T) {
		// The endpoint the CNI plugin writes for the pod's eth0.
		wepName := api.WorkloadEndpointName("node-1", "k8s", "web-0", "eth0")
		if _, err := e.ds.Create(ctx, &api.WorkloadEndpoint{
			ObjectMeta: api.ObjectMeta{Name: wepName, Namespace: "team-a", Labels: map[string]string{"from-cni": "x"}},
			Spec: api.WorkloadEndpointSpec{Node: "node-1", Orchestrator: "k8s", Workload: "web-0", Endpoint: "eth0",
				InterfaceName: "bf0123456789a", IPNetworks: []string{"10.65.0.2/32"}, Profiles: []string{"ns.team-a"}},
		}); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "team-a", Labels: map[string]string{"app": "web", "pcns.team": "forged"}},
			Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{
				Name: "c", Image: "example.invalid/web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}}},
		}
		pod, err := k.CoreV1().Pods("team-a").Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := waitFor(t, e.ds, api.KindWorkloadEndpoint, "team-a", wepName, func(r api.Resource) bool {
			return r != nil && maps.Equal(r.GetObjectMeta().Labels, map[string]string{"app": "web"})
		}).(*api.WorkloadEndpoint)
		if diff := cmp.Diff([]api.EndpointPort{{Name: "http", Protocol: api.ProtocolTCP, Port: 8080}}, got.Spec.Ports); diff != "" {
			t.Errorf("endpoint ports (-want +got):\n%s", diff)
		}
		if got.Spec.InterfaceName != "bf0123456789a" || len(got.Spec.IPNetworks) != 1 {
			t.Errorf("the controller changed the CNI plugin's fields: %+v", got.Spec)
		}
		start := time.Now()
		pod.Labels["app"] = "web2"
		if _, err := k.CoreV1().Pods("team-a").Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindWorkloadEndpoint, "team-a", wepName, func(r api.Resource) bool {
			return r != nil && r.GetObjectMeta().Labels["app"] == "web2"
		})
		t.Logf("pod label change reached the endpoint in %v", time.Since(start))

		// An endpoint written after the pod gets its labels too.
		late := api.WorkloadEndpointName("node-1", "k8s", "late-0", "eth0")
		if _, err := k.CoreV1().Pods("team-a").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "late-0", Namespace: "team-a", Labels: map[string]string{"app": "late"}},
			Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "example.invalid/late"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ds.Create(ctx, &api.WorkloadEndpoint{
			ObjectMeta: api.ObjectMeta{Name: late, Namespace: "team-a"},
			Spec: api.WorkloadEndpointSpec{Node: "node-1", Orchestrator: "k8s", Workload: "late-0", Endpoint: "eth0",
				InterfaceName: "bf0123456789b", IPNetworks: []string{"10.65.0.3/32"}, Profiles: []string{"ns.team-a"}},
		}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindWorkloadEndpoint, "team-a", late, func(r api.Resource) bool {
			return r != nil && r.GetObjectMeta().Labels["app"] == "late"
		})
	})

	t.Run("services", func(t *testing.T) { testServices(t, e) })

	t.Run("IPAM garbage collection", func(t *testing.T) { testIPAMGC(t, e) })

	t.Run("deploy manifests", func(t *testing.T) { testDeployManifests(t, e) })

	t.Run("node labels and deletion", func(t *testing.T) {
		for _, n := range []string{"node-1", "rr-1"} {
			if _, err := e.ds.Create(ctx, &api.Node{
				ObjectMeta: api.ObjectMeta{Name: n, Labels: map[string]string{"local": "kept"}},
				Spec:       api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: "192.0.2.1/24"}},
			}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := k.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: "node-1", Labels: map[string]string{"rack": "r1"},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindNode, "", "node-1", func(r api.Resource) bool {
			return r != nil && maps.Equal(r.GetObjectMeta().Labels, map[string]string{"rack": "r1", "local": "kept"})
		})
		kn, err := k.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		kn.Labels = map[string]string{"zone": "z1"}
		if _, err := k.CoreV1().Nodes().Update(ctx, kn, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindNode, "", "node-1", func(r api.Resource) bool {
			return r != nil && maps.Equal(r.GetObjectMeta().Labels, map[string]string{"zone": "z1", "local": "kept"})
		})
		// Two blocks of node-1: one empty (deleted with the node), one
		// in use (it loses its affinity).
		ic, err := ipam.New(ipam.Config{Store: e.ds})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ds.Create(ctx, &api.IPPool{ObjectMeta: api.ObjectMeta{Name: "pool"},
			Spec: api.IPPoolSpec{CIDR: "10.70.0.0/16", BlockSize: 30}}); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"a", "b", "c", "d", "e"} { // a /30 holds four: two blocks
			if _, err := ic.AutoAssign(ctx, ipam.AssignArgs{Node: "node-1", Handle: h, Num4: 1}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ic.ReleaseByHandle(ctx, "e"); err != nil {
			t.Fatal(err)
		}
		blocks, _, err := e.ds.List(ctx, api.KindIPAMBlock, "")
		if err != nil || len(blocks) != 2 {
			t.Fatalf("blocks of node-1: %d, %v; want 2", len(blocks), err)
		}
		if err := k.CoreV1().Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindNode, "", "node-1", gone)
		blocks, _, err = e.ds.List(ctx, api.KindIPAMBlock, "")
		if err != nil || len(blocks) != 1 {
			t.Fatalf("blocks after node-1 went: %d, %v; want the one in use", len(blocks), err)
		}
		if b := blocks[0].(*api.IPAMBlock); b.Spec.Affinity != "" {
			t.Errorf("block %s in use keeps affinity %q after its node went", b.Spec.CIDR, b.Spec.Affinity)
		}
		// A bgpfabric Node written after its Kubernetes Node gets its labels.
		if _, err := k.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
			Name: "node-2", Labels: map[string]string{"rack": "r2"},
		}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.ds.Create(ctx, &api.Node{
			ObjectMeta: api.ObjectMeta{Name: "node-2"},
			Spec:       api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: "192.0.2.2/24"}},
		}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindNode, "", "node-2", func(r api.Resource) bool {
			return r != nil && maps.Equal(r.GetObjectMeta().Labels, map[string]string{"rack": "r2"})
		})
		// rr-1 has no Kubernetes Node and was never synced: it stays.
		if _, err := e.ds.Get(ctx, api.KindNode, "", "rr-1"); err != nil {
			t.Errorf("bgpfabric Node without a Kubernetes Node: %v", err)
		}
	})

	t.Run("RBAC missing, then granted by deploy/kube-controllers.yaml", func(t *testing.T) {
		unpriv, err := kubernetes.NewForConfig(e.api.Config(kubetest.Unprivileged))
		if err != nil {
			t.Fatal(err)
		}
		// Its own datastore, so that only this controller can write there.
		ds := etcdtest.Start(t).Client(t)
		logs := &logWatch{}
		c, err := New(Config{Kube: unpriv, Datastore: ds, Logger: slog.New(logs), RetryMin: 50 * time.Millisecond, RetryMax: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx) }()
		defer func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("controller ended with %v", err)
			}
		}()
		logs.waitLog(t, "RBAC", "networkpolicies.networking.k8s.io", "forbidden")
		grantManifestRBAC(t, k, kubetest.Unprivileged)
		waitFor(t, ds, api.KindProfile, "", "ns.team-a", exists)

		// The Role lets it hold its Lease.
		lctx, lcancel := context.WithCancel(context.Background())
		defer lcancel()
		led := make(chan struct{})
		ldone := make(chan error, 1)
		go func() {
			ldone <- RunLeader(lctx, unpriv, LeaderConfig{Name: "kc-rbac", Identity: "unprivileged"}, nil, func(ctx context.Context) error {
				close(led)
				<-ctx.Done()
				return ctx.Err()
			})
		}()
		select {
		case <-led:
		case err := <-ldone:
			t.Fatalf("leader election with the manifest's Role ended: %v", err)
		case <-time.After(waitTimeout):
			t.Fatal("no lease with the manifest's Role")
		}
		lcancel()
		<-ldone
	})

	t.Run("leader election", func(t *testing.T) {
		// Two replicas over their own datastore: only the lease holder
		// works, and the other takes over when it stops.
		ds := etcdtest.Start(t).Client(t)
		logs := &logWatch{}
		lc := LeaderConfig{Namespace: "kube-system", Name: "kc-test", LeaseDuration: 10 * time.Second, RenewDeadline: 8 * time.Second, RetryPeriod: 500 * time.Millisecond}
		started := make(chan string, 2)
		replica := func(id string) (stop func() error) {
			c, err := New(Config{Kube: k, Datastore: ds, Logger: slog.New(logs), RetryMin: 50 * time.Millisecond, RetryMax: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			lc := lc
			lc.Identity = id
			go func() {
				done <- RunLeader(ctx, k, lc, slog.New(logs), func(ctx context.Context) error {
					started <- id
					return c.Run(ctx)
				})
			}()
			var once sync.Once
			var err2 error
			stop = func() error { once.Do(func() { cancel(); err2 = <-done }); return err2 }
			t.Cleanup(func() { stop() })
			return stop
		}
		stopA := replica("replica-a")
		if id := <-started; id != "replica-a" {
			t.Fatalf("%s leads, want replica-a", id)
		}
		replica("replica-b")
		logs.waitLog(t, "another replica leads", "replica-a")
		select {
		case id := <-started:
			t.Fatalf("%s started while replica-a holds the lease", id)
		default:
		}
		waitFor(t, ds, api.KindProfile, "", "ns.team-a", exists)
		if err := stopA(); !errors.Is(err, context.Canceled) {
			t.Errorf("replica-a ended with %v, want context.Canceled", err)
		}
		select {
		case id := <-started:
			if id != "replica-b" {
				t.Fatalf("%s took over, want replica-b", id)
			}
		case <-time.After(waitTimeout):
			t.Fatal("replica-b did not take over the lease")
		}
		if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "led-by-b"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ds, api.KindProfile, "", "ns.led-by-b", exists)
	})

	t.Run("API server restart", func(t *testing.T) {
		e.api.Stop()
		// While the API server is away nothing is deleted.
		for _, id := range []datastore.ResourceID{
			{Kind: api.KindProfile, Name: "ns.team-a"},
			{Kind: api.KindNetworkPolicy, Namespace: "team-a", Name: "knp.default.odd"},
		} {
			if _, err := e.ds.Get(ctx, id.Kind, id.Namespace, id.Name); err != nil {
				t.Errorf("%s during the outage: %v", id, err)
			}
		}
		e.api.Restart()
		if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "after"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindProfile, "", "ns.after", exists)
		if err := k.NetworkingV1().NetworkPolicies("team-a").Delete(ctx, "odd", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, e.ds, api.KindNetworkPolicy, "team-a", "knp.default.odd", gone)
		if _, err := e.ds.Get(ctx, api.KindProfile, "", "ns.team-a"); err != nil {
			t.Errorf("profile of a namespace that still exists, after the restart: %v", err)
		}
	})
}

// grantManifestRBAC creates the ClusterRole and Role of
// deploy/kube-controllers.yaml and binds them to user.
func grantManifestRBAC(t *testing.T, k kubernetes.Interface, user string) {
	t.Helper()
	ctx := t.Context()
	b, err := os.ReadFile("../deploy/kube-controllers.yaml")
	if err != nil {
		t.Fatal(err)
	}
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: user}}
	found := 0
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("deploy/kube-controllers.yaml: %v", err)
		}
		switch meta.Kind {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			r.Name = "test-" + r.Name
			if _, err := k.RbacV1().ClusterRoles().Create(ctx, &r, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := k.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: r.Name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.Name},
				Subjects:   subject,
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			found++
		case "Role":
			var r rbacv1.Role
			if err := yaml.UnmarshalStrict([]byte(doc), &r); err != nil {
				t.Fatal(err)
			}
			r.Name = "test-" + r.Name
			if _, err := k.RbacV1().Roles(r.Namespace).Create(ctx, &r, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := k.RbacV1().RoleBindings(r.Namespace).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.Name},
				Subjects:   subject,
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			found++
		}
	}
	if found != 2 {
		t.Fatalf("deploy/kube-controllers.yaml has %d ClusterRoles and Roles, want 2", found)
	}
}
