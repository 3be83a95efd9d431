package kubecontrollers

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/internal/kubetest"
)

// Scale of BenchmarkInitialSync: the 5,000 pods and 500 policies.
const (
	benchPods     = 5000
	benchPolicies = 500
	benchNodes    = 10
)

// BenchmarkInitialSync: 5,000 Pods and 500 NetworkPolicies exist in the
// API server and the CNI plugin's 5,000 endpoints (unlabelled) in a fresh
// datastore; the controller starts. Measured: the time until every
// endpoint carries its pod's labels and every policy is in the datastore
// (s/sync), and the growth of the process's Go heap over that time
// (heap-MB; the process also runs the datastore's embedded etcd, so this
// bounds the controller's share from above). Run with -benchtime 1x.
func BenchmarkInitialSync(b *testing.B) {
	b.StopTimer() // setup is not measured; syncOnce times the sync
	_, k := benchAPIServer(b)
	for range b.N {
		ds := etcdtest.Start(b).Client(b)
		benchEndpoints(b, ds)
		syncOnce(b, k, ds)
	}
}

// benchAPIServer starts an API server holding the benchmark's pods and
// policies.
func benchAPIServer(b *testing.B) (*kubetest.APIServer, kubernetes.Interface) {
	s := kubetest.Start(b)
	k := s.Client(b)
	ctx := context.Background()
	if _, err := k.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench", Labels: map[string]string{"team": "bench"}}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	parallel(b, benchPods, func(i int) error {
		_, err := k.CoreV1().Pods("bench").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Labels: map[string]string{"app": fmt.Sprintf("a%d", i%100)}},
			Spec: corev1.PodSpec{NodeName: fmt.Sprintf("n-%d", i%benchNodes), Containers: []corev1.Container{{
				Name: "c", Image: "example.invalid/app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}}},
		}, metav1.CreateOptions{})
		return err
	})
	port := intstr.FromString("http")
	parallel(b, benchPolicies, func(j int) error {
		_, err := k.NetworkingV1().NetworkPolicies("bench").Create(ctx, &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("np-%d", j)},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("a%d", j%100)}},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From: []networkingv1.NetworkPolicyPeer{
						{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("a%d", (j+1)%100)}}},
						{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "bench"}}},
					},
					Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
				}},
			},
		}, metav1.CreateOptions{})
		return err
	})
	b.Logf("created %d pods and %d policies through the API server in %v", benchPods, benchPolicies, time.Since(start))
	return s, k
}

// benchEndpoints writes the CNI plugin's endpoints of the benchmark's
// pods, unlabelled.
func benchEndpoints(b *testing.B, ds *datastore.Client) {
	ctx := context.Background()
	{
		weps := make([]api.Resource, 0, benchPods)
		for i := range benchPods {
			node, name := fmt.Sprintf("n-%d", i%benchNodes), fmt.Sprintf("p-%d", i)
			weps = append(weps, &api.WorkloadEndpoint{
				ObjectMeta: api.ObjectMeta{Name: api.WorkloadEndpointName(node, "k8s", name, "eth0"), Namespace: "bench"},
				Spec: api.WorkloadEndpointSpec{Node: node, Orchestrator: "k8s", Workload: name, Endpoint: "eth0",
					InterfaceName: fmt.Sprintf("bf%011x", i), IPNetworks: []string{fmt.Sprintf("10.%d.%d.%d/32", 64+i/65536, i/256%256, i%256)},
					Profiles: []string{"ns.bench"}},
			})
		}
		for lo := 0; lo < len(weps); lo += 1000 {
			if _, err := ds.ApplyAll(ctx, weps[lo:min(lo+1000, len(weps))]); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// syncOnce starts a controller and waits until it has labelled every
// endpoint and written every policy.
func syncOnce(b *testing.B, k kubernetes.Interface, ds *datastore.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, rev, err := ds.List(ctx, api.KindNode, "")
	if err != nil {
		b.Fatal(err)
	}
	w := ds.Watch(ctx, "", "", rev+1)
	c, err := New(Config{Kube: k, Datastore: ds, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.StartTimer()
	start := time.Now()
	go func() { done <- c.Run(rctx) }()
	waitSynced(b, w)
	elapsed := time.Since(start)
	b.StopTimer()
	runtime.ReadMemStats(&after)
	stop()
	<-done
	b.ReportMetric(elapsed.Seconds(), "s/sync")
	b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/(1<<20), "heap-MB")
}

// waitSynced waits on a datastore watch until every endpoint carries
// its pod's labels and every policy is there.
func waitSynced(b *testing.B, w <-chan datastore.WatchEvent) {
	labelled, policies := map[string]bool{}, map[string]bool{}
	for len(labelled) < benchPods || len(policies) < benchPolicies {
		ev, ok := <-w
		if !ok {
			b.Fatalf("watch ended after %d labelled endpoints and %d policies", len(labelled), len(policies))
		}
		if ev.Err != nil || ev.Type == datastore.Deleted {
			continue
		}
		switch r := ev.Resource.(type) {
		case *api.WorkloadEndpoint:
			if r.Labels["app"] != "" {
				labelled[r.Name] = true
			}
		case *api.NetworkPolicy:
			policies[r.Name] = true
		}
	}
}

// parallel runs f(0..n-1) on 16 goroutines and fails b on the first error.
func parallel(b *testing.B, n int, f func(int) error) {
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			b.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}
