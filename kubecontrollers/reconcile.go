package kubecontrollers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/convert"
)

// Annotations kube-controllers keeps on bgpfabric resources.
const (
	// AnnotationRefused, on a converted policy, says that the Kubernetes
	// policy could not be converted exactly and why; the policy then
	// denies everything in its directions for the pods it selects.
	AnnotationRefused = "bgpfabric.io/refused"
	// AnnotationK8sNode, on a bgpfabric Node, names the Kubernetes Node
	// whose labels it carries; the Node is deleted with it.
	AnnotationK8sNode = "bgpfabric.io/k8s-node"
	// AnnotationK8sLabels, on a bgpfabric Node, holds (JSON) the labels
	// last copied from the Kubernetes Node, so that labels removed there
	// are removed here and labels set only here stay.
	AnnotationK8sLabels = "bgpfabric.io/k8s-labels"
)

func managed(r api.Resource) bool {
	return r.GetObjectMeta().Annotations[convert.AnnotationManagedBy] == convert.ManagedBy
}

// syncPolicy writes the conversion of NetworkPolicy ns/name, or deletes
// the converted policy when the Kubernetes one is gone.
func (c *Controllers) syncPolicy(ctx context.Context, ns, name string) error {
	np, err := c.policies.NetworkPolicies(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		delete(c.refused, ns+"/"+name)
		c.mu.Unlock()
		return c.deleteManaged(ctx, api.KindNetworkPolicy, ns, convert.PolicyName(name))
	}
	if err != nil {
		return err
	}
	p, cerr := convert.NetworkPolicy(np)
	if cerr != nil {
		if p = denyAll(np, cerr); p == nil {
			return fmt.Errorf("NetworkPolicy %s/%s: not even a deny-all can be written: %w", ns, name, cerr)
		}
		c.mu.Lock()
		first := c.refused[ns+"/"+name] != np.ResourceVersion
		c.refused[ns+"/"+name] = np.ResourceVersion
		c.mu.Unlock()
		if first {
			var ce *convert.Error
			field := ""
			if errors.As(cerr, &ce) {
				field = ce.Field
			}
			c.lg.Error("kube-controllers: NetworkPolicy refused: it cannot be expressed exactly, so it denies all traffic of the pods it selects in its directions",
				logKeyKey, ns+"/"+name, logKeyField, field, logKeyErr, cerr)
			c.refusedEvent(ctx, np, cerr)
		}
	} else {
		c.mu.Lock()
		delete(c.refused, ns+"/"+name)
		c.mu.Unlock()
	}
	return c.apply(ctx, p)
}

// refusedEvent records a Warning event on a refused NetworkPolicy, so that
// `kubectl describe networkpolicy` shows why. Failing to (no RBAC for
// events) is logged, rate-limited, and not retried.
func (c *Controllers) refusedEvent(ctx context.Context, np *networkingv1.NetworkPolicy, why error) {
	now := metav1.NowMicro()
	ev := &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", np.Name, now.UnixNano()), Namespace: np.Namespace},
		EventTime:  now,
		Regarding: corev1.ObjectReference{
			APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy", Namespace: np.Namespace, Name: np.Name,
			UID: np.UID, ResourceVersion: np.ResourceVersion,
		},
		Reason: "Refused", Action: "Convert", Type: corev1.EventTypeWarning,
		Note:                truncate("bgpfabric cannot express this policy exactly and denies all traffic of the pods it selects in its directions instead: "+why.Error(), 1024),
		ReportingController: "bgpfabric.io/kube-controllers",
		ReportingInstance:   c.cfg.Instance,
	}
	if _, err := c.kube.EventsV1().Events(np.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil {
		c.lim.Warn("kube-controllers: recording an event on a refused NetworkPolicy (RBAC: create events.events.k8s.io)", logKeyKey, np.Namespace+"/"+np.Name, logKeyErr, err)
	}
}

// denyAll is what a NetworkPolicy that cannot be converted becomes: no
// rules in its directions, for the pods its podSelector selects or, if
// even that cannot be converted, every pod of its namespace. Kubernetes
// policies only ever allow, so this allows at most what the policy does.
func denyAll(np *networkingv1.NetworkPolicy, why error) *api.NetworkPolicy {
	bare := &networkingv1.NetworkPolicy{ObjectMeta: np.ObjectMeta, Spec: networkingv1.NetworkPolicySpec{
		PodSelector: np.Spec.PodSelector, PolicyTypes: np.Spec.PolicyTypes,
	}}
	if len(bare.Spec.PolicyTypes) == 0 {
		bare.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		if len(np.Spec.Egress) > 0 {
			bare.Spec.PolicyTypes = append(bare.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		}
	}
	p, err := convert.NetworkPolicy(bare)
	if err != nil {
		// Every pod of the namespace, in both directions.
		bare.Spec.PodSelector = metav1.LabelSelector{}
		bare.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
		if p, err = convert.NetworkPolicy(bare); err != nil {
			return nil // cannot happen: nothing is left to refuse
		}
	}
	p.Annotations[AnnotationRefused] = truncate(why.Error(), 1024)
	return p
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// syncNamespace writes the namespace's profile, or deletes it.
func (c *Controllers) syncNamespace(ctx context.Context, name string) error {
	ns, err := c.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteManaged(ctx, api.KindProfile, "", convert.NamespaceProfilePrefix+name)
	}
	if err != nil {
		return err
	}
	p, dropped := convert.NamespaceProfile(ns)
	if len(dropped) > 0 {
		c.lim.Warn("kube-controllers: namespace labels left out of the profile: their keys are too long once prefixed",
			logKeyKey, name, logKeyWhat, strings.Join(dropped, ","))
	}
	return c.apply(ctx, p)
}

// apply writes r unless the datastore already holds it as it is.
func (c *Controllers) apply(ctx context.Context, r api.Resource) error {
	r.Default()
	m := r.GetObjectMeta()
	cur, err := c.ds.Get(ctx, r.GetTypeMeta().Kind, m.Namespace, m.Name)
	switch {
	case err == nil:
		if sameContent(cur, r) {
			return nil
		}
	case !errors.Is(err, datastore.ErrNotFound):
		return err
	}
	if _, err := c.ds.Apply(ctx, r); err != nil {
		return err
	}
	return nil
}

// sameContent compares spec, labels and annotations.
func sameContent(a, b api.Resource) bool {
	am, bm := *a.GetObjectMeta(), *b.GetObjectMeta()
	if !maps.Equal(am.Labels, bm.Labels) || !maps.Equal(am.Annotations, bm.Annotations) {
		return false
	}
	return reflect.DeepEqual(specOf(a), specOf(b))
}

func specOf(r api.Resource) any {
	switch r := r.(type) {
	case *api.NetworkPolicy:
		return r.Spec
	case *api.Profile:
		return r.Spec
	case *api.Node:
		return r.Spec
	case *api.WorkloadEndpoint:
		return r.Spec
	case *api.ServiceAdvertisement:
		return r.Spec
	}
	return nil
}

// deleteManaged deletes a resource if it exists and kube-controllers
// wrote it (at the version read, so that a concurrent rewrite wins).
func (c *Controllers) deleteManaged(ctx context.Context, kind, ns, name string) error {
	cur, err := c.ds.Get(ctx, kind, ns, name)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !managed(cur) {
		return nil
	}
	err = c.ds.Delete(ctx, kind, ns, name, cur.GetObjectMeta().ResourceVersion)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	return err
}

// syncPod copies a pod's labels and named ports onto its endpoint (the
// CNI plugin's endpoint for the pod's eth0 on its node), if there is one
// yet; watchEndpoints enqueues the pod again when the CNI plugin writes it.
func (c *Controllers) syncPod(ctx context.Context, ns, name string) error {
	pod, err := c.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil // the CNI plugin's DEL removes the endpoint
	}
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" || pod.Spec.HostNetwork {
		return nil
	}
	wepName := api.WorkloadEndpointName(pod.Spec.NodeName, convert.OrchestratorK8s, pod.Name, "eth0")
	r, err := c.ds.Get(ctx, api.KindWorkloadEndpoint, ns, wepName)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	wep, ok := r.(*api.WorkloadEndpoint)
	if !ok {
		return fmt.Errorf("%s/%s is a %T", ns, wepName, r)
	}
	labels, dropped := convert.PodLabels(pod)
	if len(dropped) > 0 {
		c.lim.Warn("kube-controllers: pod labels with a reserved or invalid key are not copied to its endpoint",
			logKeyKey, ns+"/"+name, logKeyWhat, strings.Join(dropped, ","))
	}
	if len(labels) == 0 {
		labels = nil
	}
	ports := convert.PodPorts(pod)
	if maps.Equal(wep.Labels, labels) && reflect.DeepEqual(wep.Spec.Ports, ports) {
		return nil
	}
	wep.Labels, wep.Spec.Ports = labels, ports
	_, err = c.ds.Update(ctx, wep) // compare-and-swap: a conflict is retried
	return err
}

// syncNode copies a Kubernetes Node's labels onto the bgpfabric Node of
// the same name (which the operator or the node agent created), or deletes
// the bgpfabric Node when the Kubernetes Node it synced is gone.
func (c *Controllers) syncNode(ctx context.Context, name string) error {
	r, err := c.ds.Get(ctx, api.KindNode, "", name)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	node := r.(*api.Node)
	kn, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		if node.Annotations[AnnotationK8sNode] != name {
			return nil // never synced from Kubernetes: not ours to delete
		}
		return c.nodeGone(ctx, node)
	}
	c.mu.Lock()
	delete(c.goneSince, name)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	var old map[string]string
	if s := node.Annotations[AnnotationK8sLabels]; s != "" {
		json.Unmarshal([]byte(s), &old) // a bad value: keep every label
	}
	labels := map[string]string{}
	for k, v := range node.Labels {
		if _, synced := old[k]; !synced {
			labels[k] = v
		}
	}
	copied := map[string]string{}
	for k, v := range kn.Labels {
		if validNodeLabel(k, v) {
			labels[k], copied[k] = v, v
		}
	}
	b, _ := json.Marshal(copied)
	if len(labels) == 0 {
		labels = nil
	}
	want := node.DeepCopyResource().(*api.Node)
	want.Labels = labels
	if want.Annotations == nil {
		want.Annotations = map[string]string{}
	}
	want.Annotations[AnnotationK8sNode] = name
	want.Annotations[AnnotationK8sLabels] = string(b)
	if sameContent(node, want) {
		return nil
	}
	_, err = c.ds.Update(ctx, want)
	return err
}

// nodeGone handles a bgpfabric Node whose Kubernetes Node is gone: after
// NodeGracePeriod (a node that comes back meanwhile keeps everything), it
// releases the node's IPAM blocks (empty ones are deleted, the others lose
// their affinity, as Calico's ReleaseHostAffinities) and then deletes the
// Node, so that a failed release is retried while the Node is still there.
func (c *Controllers) nodeGone(ctx context.Context, node *api.Node) error {
	name := node.Name
	c.mu.Lock()
	since, ok := c.goneSince[name]
	if !ok {
		since = time.Now()
		c.goneSince[name] = since
	}
	c.mu.Unlock()
	if wait := c.cfg.NodeGracePeriod - time.Since(since); wait > 0 {
		c.queue.AddAfter(key(kindNode, "", name), wait)
		return nil
	}
	deleted, released, err := c.ipam.ReleaseNodeBlocks(ctx, name)
	if err != nil {
		return err
	}
	err = c.ds.Delete(ctx, api.KindNode, "", name, node.ResourceVersion)
	if err != nil && !errors.Is(err, datastore.ErrNotFound) {
		return err
	}
	c.mu.Lock()
	delete(c.goneSince, name)
	c.mu.Unlock()
	c.lg.Info("kube-controllers: Kubernetes Node deleted: its bgpfabric Node deleted and its IPAM blocks released",
		logKeyKey, name, logKeyDeleted, strings.Join(deleted, ","), logKeyReleased, strings.Join(released, ","))
	return nil
}

// validNodeLabel reports whether a Kubernetes Node label can be stored on
// a bgpfabric Node (the same rules as Kubernetes labels).
func validNodeLabel(k, v string) bool {
	n := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n", Labels: map[string]string{k: v}}}
	n.Default()
	return n.Validate() == nil
}

// enqueueManaged enqueues every policy, profile, node and service advertisement that
// kube-controllers wrote, so that what was deleted in Kubernetes while the
// controller was not running is deleted here too (once the informers have
// synced, a key missing from them is really gone).
func (c *Controllers) enqueueManaged(ctx context.Context) error {
	var errs []error
	for _, kind := range []string{api.KindNetworkPolicy, api.KindProfile, api.KindNode, api.KindServiceAdvertisement} {
		rs, _, err := c.ds.List(ctx, kind, "")
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range rs {
			m := r.GetObjectMeta()
			switch {
			case kind == api.KindNetworkPolicy && managed(r) && m.Annotations[convert.AnnotationK8sName] != "":
				c.queue.Add(key(kindPolicy, m.Namespace, m.Annotations[convert.AnnotationK8sName]))
			case kind == api.KindProfile && managed(r) && strings.HasPrefix(m.Name, convert.NamespaceProfilePrefix):
				c.queue.Add(key(kindNamespace, "", strings.TrimPrefix(m.Name, convert.NamespaceProfilePrefix)))
			case kind == api.KindNode && m.Annotations[AnnotationK8sNode] == m.Name:
				c.queue.Add(key(kindNode, "", m.Name))
			case kind == api.KindServiceAdvertisement && managed(r):
				c.queue.Add(key(kindService, m.Namespace, m.Name))
			}
		}
	}
	return errors.Join(errs...)
}
