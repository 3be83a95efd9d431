// Package kubecontrollers is `bgpfabric kube-controllers`: it makes
// bgpfabric a Kubernetes cluster's network policy and identity source, the
// way calico-kube-controllers does in Calico's etcd datastore mode. It
// watches the API server with client-go shared informers and writes into
// bgpfabric's datastore:
//
//   - NetworkPolicies, converted by package convert (a policy that cannot
//     be converted exactly is written as a deny-all for the pods it
//     selects, so it fails closed, and logged once);
//   - Namespaces as the profiles "ns.<namespace>" (allow all, the
//     namespace's labels under "pcns.");
//   - Pods' labels and named ports onto their WorkloadEndpoints (which the
//     CNI plugin creates);
//   - Services' addresses as ServiceAdvertisements, with the nodes that
//     host a ready endpoint for the Local traffic policy (services.go),
//     which the node routers advertise;
//   - addresses leaked by pods gone without a CNI DEL, released after a
//     grace period (ipamgc.go);
//   - Nodes' labels onto the bgpfabric Nodes of the same name, and the
//     deletion of a Kubernetes Node, after a grace period, onto the
//     bgpfabric Node that it synced and that node's IPAM blocks.
//
// Nothing is deleted that the controller did not write (resources carry
// convert.AnnotationManagedBy), and nothing is deleted on the strength of
// an informer that has not synced: after an API server outage the
// informers list again, and only what that list no longer holds goes.
// Errors are retried per object with exponential backoff.
package kubecontrollers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/backoff"
	"github.com/bgpfabric/bgpfabric/internal/ratelog"
	"github.com/bgpfabric/bgpfabric/ipam"
)

// Log keys.
const (
	logKeyKey   = "key"
	logKeyErr   = "err"
	logKeyField = "field"
	logKeyWhat  = "what"
	// logKeyDeleted and logKeyReleased list IPAM blocks.
	logKeyDeleted  = "deletedBlocks"
	logKeyReleased = "releasedBlocks"
)

// Config configures the controllers.
type Config struct {
	// Kube is the API server's client. Required.
	Kube kubernetes.Interface
	// Datastore is bgpfabric's datastore. Required.
	Datastore *datastore.Client
	// Logger; nil discards.
	Logger *slog.Logger
	// ResyncPeriod makes the informers deliver every object again this
	// often (a safety net: every change arrives as an event anyway). Zero
	// means 10 minutes.
	ResyncPeriod time.Duration
	// RetryMin and RetryMax bound the per-object backoff after an error.
	// Zero means 100 ms and 1 minute.
	RetryMin, RetryMax time.Duration
	// Instance names this replica in the events it records; empty means
	// the host name.
	Instance string
	// NodeGracePeriod is how long a Kubernetes Node must stay deleted
	// before its bgpfabric Node is deleted and its IPAM blocks released.
	// Zero means DefaultNodeGracePeriod.
	NodeGracePeriod time.Duration
	// IPAMGCInterval is how often the IPAM garbage collector looks for
	// addresses leaked by pods gone without a CNI DEL (ipamgc.go); zero
	// means DefaultIPAMGCInterval, a negative value turns it off.
	IPAMGCInterval time.Duration
	// IPAMLeakGracePeriod is how long an allocation must have been leaked,
	// at two checks at least, before it is released; zero means
	// DefaultIPAMLeakGracePeriod.
	IPAMLeakGracePeriod time.Duration
}

// DefaultNodeGracePeriod is Config.NodeGracePeriod's default.
const DefaultNodeGracePeriod = time.Minute

// Controllers is the running set of controllers; Run runs it.
type Controllers struct {
	cfg  Config
	lg   *slog.Logger
	lim  *ratelog.Limiter
	ds   *datastore.Client
	kube kubernetes.Interface

	factory    informers.SharedInformerFactory
	policies   netlisters.NetworkPolicyLister
	namespaces corelisters.NamespaceLister
	pods       corelisters.PodLister
	nodes      corelisters.NodeLister
	services   corelisters.ServiceLister
	slices     discoverylisters.EndpointSliceLister
	synced     []cache.InformerSynced

	queue workqueue.TypedRateLimitingInterface[string]

	ipam *ipam.Client

	mu        sync.Mutex
	refused   map[string]string    // policy key -> the resourceVersion last logged as refused
	goneSince map[string]time.Time // node -> when its Kubernetes Node was first seen gone
}

// Keys of the work queue: kind/namespace/name.
const (
	kindPolicy    = "networkpolicy"
	kindNamespace = "namespace"
	kindPod       = "pod"
	kindNode      = "node"
	kindService   = "service"
)

func key(kind, ns, name string) string { return kind + "/" + ns + "/" + name }

func splitKey(k string) (kind, ns, name string) {
	parts := strings.SplitN(k, "/", 3)
	if len(parts) != 3 {
		return "", "", ""
	}
	return parts[0], parts[1], parts[2]
}

// New sets up the informers; Run starts them.
func New(cfg Config) (*Controllers, error) {
	if cfg.Kube == nil || cfg.Datastore == nil {
		return nil, errors.New("kube-controllers: Kube and Datastore are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ResyncPeriod == 0 {
		cfg.ResyncPeriod = 10 * time.Minute
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = 100 * time.Millisecond
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = time.Minute
	}
	if cfg.Instance == "" {
		cfg.Instance, _ = os.Hostname()
	}
	if cfg.NodeGracePeriod == 0 {
		cfg.NodeGracePeriod = DefaultNodeGracePeriod
	}
	if cfg.IPAMGCInterval == 0 {
		cfg.IPAMGCInterval = DefaultIPAMGCInterval
	}
	if cfg.IPAMLeakGracePeriod <= 0 {
		cfg.IPAMLeakGracePeriod = DefaultIPAMLeakGracePeriod
	}
	ic, err := ipam.New(ipam.Config{Store: cfg.Datastore, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	c := &Controllers{
		cfg: cfg, lg: cfg.Logger, lim: ratelog.New(ratelog.Config{Logger: cfg.Logger, Interval: time.Minute}), ds: cfg.Datastore, kube: cfg.Kube,
		factory: informers.NewSharedInformerFactory(cfg.Kube, cfg.ResyncPeriod),
		refused: map[string]string{}, goneSince: map[string]time.Time{}, ipam: ic,
	}
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](cfg.RetryMin, cfg.RetryMax),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "kube-controllers"})

	np := c.factory.Networking().V1().NetworkPolicies()
	ns := c.factory.Core().V1().Namespaces()
	pod := c.factory.Core().V1().Pods()
	node := c.factory.Core().V1().Nodes()
	svc := c.factory.Core().V1().Services()
	eps := c.factory.Discovery().V1().EndpointSlices()
	c.policies, c.namespaces, c.pods, c.nodes, c.services = np.Lister(), ns.Lister(), pod.Lister(), node.Lister(), svc.Lister()
	c.slices = eps.Lister()
	if _, err := pod.Informer().AddEventHandler(c.podServiceHandler()); err != nil {
		return nil, fmt.Errorf("kube-controllers: pod informer for services: %w", err)
	}
	if _, err := eps.Informer().AddEventHandler(c.sliceServiceHandler()); err != nil {
		return nil, fmt.Errorf("kube-controllers: endpointslice informer for services: %w", err)
	}
	c.synced = append(c.synced, eps.Informer().HasSynced)
	for kind, inf := range map[string]cache.SharedIndexInformer{
		kindPolicy: np.Informer(), kindNamespace: ns.Informer(), kindPod: pod.Informer(), kindNode: node.Informer(),
		kindService: svc.Informer(),
	} {
		if _, err := inf.AddEventHandler(c.handler(kind)); err != nil {
			return nil, fmt.Errorf("kube-controllers: informer for %s: %w", kind, err)
		}
		c.synced = append(c.synced, inf.HasSynced)
	}
	return c, nil
}

// handler enqueues the key of every object an informer reports.
func (c *Controllers) handler(kind string) cache.ResourceEventHandler {
	add := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		m, err := metaOf(obj)
		if err != nil {
			return
		}
		c.queue.Add(key(kind, m.GetNamespace(), m.GetName()))
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, obj any) { add(obj) },
		DeleteFunc: add,
	}
}

func metaOf(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
	return m, nil
}

// Run checks access to the API server (retrying with backoff while it is
// unreachable or RBAC forbids), starts the informers, waits for them to
// sync, enqueues what the datastore holds that the controller wrote (so
// that deletions missed while it was not running are applied), and
// processes the queue until ctx ends.
func (c *Controllers) Run(ctx context.Context) error {
	defer c.lim.Close()
	if err := c.preflight(ctx); err != nil {
		return err
	}
	c.factory.Start(ctx.Done())
	defer c.factory.Shutdown()
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("kube-controllers: informers did not sync: %w", ctx.Err())
	}
	c.lg.Info("kube-controllers: informers synced")

	var wg sync.WaitGroup
	defer wg.Wait()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); c.watchEndpoints(wctx) }()
	if c.cfg.IPAMGCInterval > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); c.runIPAMGC(wctx) }()
	}
	if err := c.enqueueManaged(ctx); err != nil {
		c.lg.Warn("kube-controllers: listing what the datastore holds; retried at the next resync", logKeyErr, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-wctx.Done()
		c.queue.ShutDown()
	}()
	for c.processNext(ctx) {
	}
	return ctx.Err()
}

// processNext reconciles one key; it returns false when the queue is shut
// down.
func (c *Controllers) processNext(ctx context.Context) bool {
	k, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(k)
	if err := c.reconcile(ctx, k); err != nil {
		if ctx.Err() != nil {
			return false
		}
		c.lim.Warn("kube-controllers: reconciling failed; retrying with backoff", logKeyKey, k, logKeyErr, err)
		c.queue.AddRateLimited(k)
		return true
	}
	c.queue.Forget(k)
	return true
}

func (c *Controllers) reconcile(ctx context.Context, k string) error {
	kind, ns, name := splitKey(k)
	switch kind {
	case kindPolicy:
		return c.syncPolicy(ctx, ns, name)
	case kindNamespace:
		return c.syncNamespace(ctx, name)
	case kindPod:
		return c.syncPod(ctx, ns, name)
	case kindNode:
		return c.syncNode(ctx, name)
	case kindService:
		return c.syncService(ctx, ns, name)
	}
	return nil
}

// preflight lists each kind once, so that missing RBAC permissions or an
// unreachable API server give one clear error (repeated, rate-limited,
// while the controller retries with backoff) instead of the informers'
// endless warnings.
func (c *Controllers) preflight(ctx context.Context) error {
	checks := []struct {
		what string
		list func() error
	}{
		{"networkpolicies.networking.k8s.io", func() error {
			_, err := c.kube.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{Limit: 1})
			return err
		}},
		{"namespaces", func() error {
			_, err := c.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
			return err
		}},
		{"pods", func() error {
			_, err := c.kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{Limit: 1})
			return err
		}},
		{"nodes", func() error {
			_, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
			return err
		}},
		{"services", func() error {
			_, err := c.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{Limit: 1})
			return err
		}},
		{"endpointslices.discovery.k8s.io", func() error {
			_, err := c.kube.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{Limit: 1})
			return err
		}},
	}
	b := backoff.New(c.cfg.RetryMin, c.cfg.RetryMax)
	for _, ch := range checks {
		for {
			err := ch.list()
			if err == nil {
				break
			}
			switch {
			case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
				c.lim.Warn("kube-controllers: RBAC: the controller may not list and watch "+ch.what+
					" (bind it the ClusterRole of deploy/kube-controllers.yaml); retrying", logKeyWhat, ch.what, logKeyErr, err)
			default:
				c.lim.Warn("kube-controllers: the API server does not answer; retrying", logKeyWhat, ch.what, logKeyErr, err)
			}
			if !b.Wait(ctx) {
				return fmt.Errorf("kube-controllers: stopped while listing %s failed (%v): %w", ch.what, err, ctx.Err())
			}
		}
		b.Reset()
	}
	return nil
}
