package kubecontrollers

import (
	"context"
	"errors"

	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/ipam"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/convert"
)

// gcEnv is a datastore with a pool and a node, where allocations are made
// as the CNI plugin makes them.
type gcEnv struct {
	ds *datastore.Client
	ic *ipam.Client
}

// alloc allocates an address for pod ns/name's eth0 on node-1 with the
// CNI plugin's attributes (orchestrator k8s, or cni for a plain
// container), and writes its endpoint.
func (g *gcEnv) alloc(t *testing.T, orch, ns, name string) netip.Addr {
	t.Helper()
	wep := api.WorkloadEndpointName("node-1", orch, name, "eth0")
	a, err := g.ic.AutoAssign(t.Context(), ipam.AssignArgs{Node: "node-1", Handle: "k8s-pod-network:" + name + "-cid:eth0", Num4: 1,
		Attrs: map[string]string{ipam.AttrNamespace: ns, ipam.AttrEndpoint: wep, ipam.AttrWorkload: name}})
	if err != nil {
		t.Fatal(err)
	}
	ip := a.IPv4[0]
	if _, err := g.ds.Create(t.Context(), &api.WorkloadEndpoint{
		ObjectMeta: api.ObjectMeta{Name: wep, Namespace: ns},
		Spec: api.WorkloadEndpointSpec{Node: "node-1", Orchestrator: orch, Workload: name, Endpoint: "eth0",
			InterfaceName: "bf" + strings.Repeat("0", 11), IPNetworks: []string{ip.String() + "/32"}},
	}); err != nil {
		t.Fatal(err)
	}
	return ip
}

// allocated reports whether ip is allocated.
func (g *gcEnv) allocated(t *testing.T, ip netip.Addr) bool {
	t.Helper()
	as, err := g.ic.Allocations(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.IP == ip {
			return true
		}
	}
	return false
}

// waitReleased waits, watching the blocks, until ip is free.
func (g *gcEnv) waitReleased(t *testing.T, ip netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	_, rev, err := g.ds.List(ctx, api.KindIPAMBlock, "")
	if err != nil {
		t.Fatal(err)
	}
	if !g.allocated(t, ip) {
		return
	}
	for ev := range g.ds.Watch(ctx, api.KindIPAMBlock, "", rev+1) {
		if ev.Err != nil {
			t.Fatalf("watching blocks: %v", ev.Err)
		}
		if !g.allocated(t, ip) {
			return
		}
	}
	t.Fatalf("%s still allocated after %v", ip, waitTimeout)
}

// testIPAMGC: with a collector checking every 100 ms and a grace of
// 300 ms, the address of a pod deleted without a CNI DEL is released and
// its endpoint deleted; a live pod's address, and a plain container's,
// never; while the API server is down nothing is released, and the leak
// found meanwhile goes once it is back.
func testIPAMGC(t *testing.T, e *env) {
	ctx := t.Context()
	k := e.kube
	g := &gcEnv{ds: etcdtest.Start(t).Client(t)}
	var err error
	if g.ic, err = ipam.New(ipam.Config{Store: g.ds}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ds.Create(ctx, &api.IPPool{ObjectMeta: api.ObjectMeta{Name: "pool"}, Spec: api.IPPoolSpec{CIDR: "10.70.0.0/16"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ds.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "node-1"}}); err != nil {
		t.Fatal(err)
	}
	const ns = "gc"
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mkPod := func(name string) {
		t.Helper()
		if _, err := k.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "example.invalid/x"}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mkPod("live")
	mkPod("leaky")
	live := g.alloc(t, convert.OrchestratorK8s, ns, "live")
	leaky := g.alloc(t, convert.OrchestratorK8s, ns, "leaky")
	plain := g.alloc(t, "cni", ns, "abc123")
	// The pod goes without a CNI DEL: its address and endpoint stay. (No
	// kubelet runs: a pod bound to a node is gone at once only when
	// deleted with grace period 0, as `kubectl delete --force` does.)
	if err := k.CoreV1().Pods(ns).Delete(ctx, "leaky", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}

	logs := &logWatch{}
	c, err := New(Config{Kube: k, Datastore: g.ds, Logger: slog.New(logs), RetryMin: 50 * time.Millisecond, RetryMax: time.Second,
		IPAMGCInterval: 100 * time.Millisecond, IPAMLeakGracePeriod: 300 * time.Millisecond})
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

	g.waitReleased(t, leaky)
	waitFor(t, g.ds, api.KindWorkloadEndpoint, ns, api.WorkloadEndpointName("node-1", "k8s", "leaky", "eth0"), gone)
	logs.waitLog(t, "released leaked addresses", leaky.String()+" (gc/leaky)")
	// Several more checks, each past the grace period: the others stay.
	n := logs.count(logGCChecked)
	logs.waitCount(t, n+5, logGCChecked)
	for _, ip := range []netip.Addr{live, plain} {
		if !g.allocated(t, ip) {
			t.Errorf("%s (a live pod's, or a plain container's) was released", ip)
		}
	}
	if _, err := g.ds.Get(ctx, api.KindWorkloadEndpoint, ns, api.WorkloadEndpointName("node-1", "k8s", "live", "eth0")); err != nil {
		t.Errorf("the live pod's endpoint: %v", err)
	}

	// An outage: a leak found meanwhile is not released until the API
	// server answers again.
	e.api.Stop()
	gone2 := g.alloc(t, convert.OrchestratorK8s, ns, "gone-2")
	// Eight checks begun, seven ended: 700 ms, past twice the grace.
	n = logs.count(logGCStart)
	logs.waitCount(t, n+8, logGCStart)
	if !g.allocated(t, gone2) {
		t.Fatal("an address was released while the API server was down")
	}
	if got := logs.count("released leaked addresses"); got != 1 {
		t.Errorf("%d release log lines, want 1", got)
	}
	if logs.count(logGCSkipped) == 0 {
		t.Error("no check was logged as skipped during the outage")
	}
	e.api.Restart()
	g.waitReleased(t, gone2)
	if !g.allocated(t, live) {
		t.Error("the live pod's address was released after the outage")
	}
}

// count returns how many logged lines contain every part.
func (l *logWatch) count(parts ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(m, p)
		}
		if all {
			n++
		}
	}
	return n
}

// waitCount waits until n logged lines contain every part.
func (l *logWatch) waitCount(t *testing.T, n int, parts ...string) {
	t.Helper()
	timeout := time.After(waitTimeout)
	for {
		if l.count(parts...) >= n {
			return
		}
		l.mu.Lock()
		if l.wake == nil {
			l.wake = make(chan struct{})
		}
		wake := l.wake
		l.mu.Unlock()
		if l.count(parts...) >= n {
			return
		}
		select {
		case <-wake:
		case <-timeout:
			t.Fatalf("fewer than %d log lines with %q after %v", n, parts, waitTimeout)
		}
	}
}

// TestPodOf: which allocations are a Kubernetes pod's, by the CNI
// plugin's attributes, with dashes in the node and pod names (doubled in
// the endpoint name).
func TestPodOf(t *testing.T) {
	attrs := func(node, ns, pod, wep string) ipam.Allocation {
		return ipam.Allocation{Attrs: map[string]string{ipam.AttrNode: node, ipam.AttrNamespace: ns, ipam.AttrWorkload: pod, ipam.AttrEndpoint: wep}}
	}
	for _, tt := range []struct {
		name string
		a    ipam.Allocation
		pod  string // "" for not a pod's
	}{
		{"pod", attrs("node-1", "ns", "web-0", "node--1-k8s-web--0-eth0"), "ns/web-0"},
		{"second interface", attrs("node-1", "ns", "web-0", "node--1-k8s-web--0-net1"), "ns/web-0"},
		{"plain container", attrs("node-1", "ns", "abc123", "node--1-cni-abc123-eth0"), ""},
		{"endpoint of another pod", attrs("node-1", "ns", "web", "node--1-k8s-web--0-eth0"), ""},
		{"no interface", attrs("node-1", "ns", "web-0", "node--1-k8s-web--0-"), ""},
		{"no namespace", attrs("node-1", "", "web-0", "node--1-k8s-web--0-eth0"), ""},
		{"no node", attrs("", "ns", "web-0", "-k8s-web--0-eth0"), ""},
		{"no attributes", ipam.Allocation{}, ""},
	} {
		ns, pod, _, ok := podOf(tt.a)
		got := ""
		if ok {
			got = ns + "/" + pod
		}
		if got != tt.pod {
			t.Errorf("%s: podOf = %q, want %q", tt.name, got, tt.pod)
		}
	}
}
