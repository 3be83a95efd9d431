package kubecontrollers

import (
	"context"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/convert"
)

// Services → ServiceAdvertisements (docs/kubernetes.md "Services").
//
// Each Service with an address becomes the ServiceAdvertisement of the
// same namespace and name: its cluster, external and load-balancer
// addresses and its externalTrafficPolicy, and with the Local policy the
// nodes that host a ready endpoint. The node routers decide from it and
// BGPConfiguration's ranges what they announce (api.ServiceRoutes).
//
// No controller-manager runs in a bgpfabric cluster's tests, so there are
// no EndpointSlices to rely on: a Service's endpoints are computed from
// Pods, as the EndpointSlice controller does: the pods of its namespace
// that its selector selects, scheduled on a node, not being deleted and
// Ready. A Service without a selector has the endpoints of the
// EndpointSlices labelled with its name (kept by hand or by another
// controller): those with a node that are ready.

// syncService writes the Service's ServiceAdvertisement, or deletes it
// when the Service is gone or has no address.
func (c *Controllers) syncService(ctx context.Context, ns, name string) error {
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteManaged(ctx, api.KindServiceAdvertisement, ns, name)
	}
	if err != nil {
		return err
	}
	sa, dropped := c.serviceAdvertisement(svc)
	if len(dropped) > 0 {
		c.lim.Warn("kube-controllers: Service addresses that cannot be advertised are left out",
			logKeyKey, ns+"/"+name, logKeyWhat, strings.Join(dropped, ","))
	}
	if sa == nil {
		return c.deleteManaged(ctx, api.KindServiceAdvertisement, ns, name)
	}
	return c.apply(ctx, sa)
}

// serviceAdvertisement converts a Service; nil when it has no address to
// advertise. dropped lists the addresses left out (field: address).
func (c *Controllers) serviceAdvertisement(svc *corev1.Service) (sa *api.ServiceAdvertisement, dropped []string) {
	keep := func(field string, addrs []string) []string {
		var out []string
		for _, a := range addrs {
			if a == "" || a == corev1.ClusterIPNone {
				continue
			}
			if err := api.CheckServiceAddress(a); err != nil {
				dropped = append(dropped, field+": "+a)
				continue
			}
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
		return out
	}
	clusterIPs := svc.Spec.ClusterIPs
	if len(clusterIPs) == 0 && svc.Spec.ClusterIP != "" {
		clusterIPs = []string{svc.Spec.ClusterIP}
	}
	var lbIPs []string
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, in := range svc.Status.LoadBalancer.Ingress {
			lbIPs = append(lbIPs, in.IP)
		}
	}
	spec := api.ServiceAdvertisementSpec{
		ClusterIPs:            keep("spec.clusterIPs", clusterIPs),
		ExternalIPs:           keep("spec.externalIPs", svc.Spec.ExternalIPs),
		LoadBalancerIPs:       keep("status.loadBalancer.ingress", lbIPs),
		ExternalTrafficPolicy: api.ServiceTrafficCluster,
	}
	if len(spec.ClusterIPs)+len(spec.ExternalIPs)+len(spec.LoadBalancerIPs) == 0 {
		return nil, dropped
	}
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		spec.ExternalTrafficPolicy = api.ServiceTrafficLocal
		spec.Nodes = c.endpointNodes(svc)
	}
	return &api.ServiceAdvertisement{
		ObjectMeta: api.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace,
			Annotations: map[string]string{convert.AnnotationManagedBy: convert.ManagedBy}},
		Spec: spec,
	}, dropped
}

// endpointNodes returns the nodes that host a ready pod the Service
// selects, sorted.
func (c *Controllers) endpointNodes(svc *corev1.Service) []string {
	if len(svc.Spec.Selector) == 0 {
		return c.sliceNodes(svc)
	}
	pods, err := c.pods.Pods(svc.Namespace).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return nil // a lister does not fail
	}
	var out []string
	for _, p := range pods {
		if podServes(p) && validNodeName(p.Spec.NodeName) && !slices.Contains(out, p.Spec.NodeName) {
			out = append(out, p.Spec.NodeName)
		}
	}
	slices.Sort(out)
	return out
}

// podServes reports whether a pod is a ready endpoint: scheduled, not
// being deleted, and Ready.
func podServes(p *corev1.Pod) bool {
	if p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func validNodeName(n string) bool {
	return (&api.Node{ObjectMeta: api.ObjectMeta{Name: n}}).Validate() == nil
}

// podServiceHandler enqueues the Local-policy Services that select a pod,
// before and after a change, whose endpoint set the pod may have changed.
func (c *Controllers) podServiceHandler() cache.ResourceEventHandler {
	enqueue := func(objs ...any) {
		for _, obj := range objs {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			p, ok := obj.(*corev1.Pod)
			if !ok {
				continue
			}
			svcs, err := c.services.Services(p.Namespace).List(labels.Everything())
			if err != nil {
				continue
			}
			for _, s := range svcs {
				if s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && len(s.Spec.Selector) > 0 &&
					labels.SelectorFromValidatedSet(s.Spec.Selector).Matches(labels.Set(p.Labels)) {
					c.queue.Add(key(kindService, s.Namespace, s.Name))
				}
			}
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { enqueue(obj) },
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*corev1.Pod)
			n, ok2 := obj.(*corev1.Pod)
			if !ok1 || !ok2 || o.Spec.NodeName != n.Spec.NodeName || podServes(o) != podServes(n) ||
				!labels.Equals(o.Labels, n.Labels) {
				enqueue(old, obj)
			}
		},
		DeleteFunc: func(obj any) { enqueue(obj) },
	}
}

// sliceNodes returns the nodes of the ready endpoints of a Service's
// EndpointSlices, sorted: a Service without a selector.
func (c *Controllers) sliceNodes(svc *corev1.Service) []string {
	sel := labels.SelectorFromValidatedSet(labels.Set{discoveryv1.LabelServiceName: svc.Name})
	eps, err := c.slices.EndpointSlices(svc.Namespace).List(sel)
	if err != nil {
		return nil // a lister does not fail
	}
	var out []string
	for _, s := range eps {
		for _, ep := range s.Endpoints {
			// Ready unset means ready (discovery/v1); a terminating
			// endpoint is not ready.
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if ep.NodeName == nil || !ready || !validNodeName(*ep.NodeName) || slices.Contains(out, *ep.NodeName) {
				continue
			}
			out = append(out, *ep.NodeName)
		}
	}
	slices.Sort(out)
	return out
}

// sliceServiceHandler enqueues the Service an EndpointSlice belongs to.
func (c *Controllers) sliceServiceHandler() cache.ResourceEventHandler {
	enqueue := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if s, ok := obj.(*discoveryv1.EndpointSlice); ok && s.Labels[discoveryv1.LabelServiceName] != "" {
			c.queue.Add(key(kindService, s.Namespace, s.Labels[discoveryv1.LabelServiceName]))
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(old, obj any) { enqueue(old); enqueue(obj) },
		DeleteFunc: enqueue,
	}
}
