package kubecontrollers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/ipam"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/convert"
)

// IPAM garbage collection (docs/kubernetes.md "IPAM garbage collection"),
// as calico-kube-controllers does it: an address that the CNI plugin
// allocated for a pod stays allocated when the pod goes without a CNI DEL
// (a node that died, a runtime that lost the sandbox). Every
// IPAMGCInterval the collector lists the allocations and finds those of
// Kubernetes pods (the CNI plugin's attributes: namespace, pod, endpoint
// "<node>-k8s-<pod>-<interface>") that are leaked:
//
//   - the pod does not exist, or
//   - it exists but the allocation's endpoint does not, or does not list
//     the address (the pod was recreated under the same name and got
//     another address, or an ADD died between allocating and writing).
//
// A leaked allocation is released when it was leaked at an earlier check
// too and first seen so at least IPAMLeakGracePeriod ago; just before,
// the pod's absence is confirmed by a GET from the API server (the cache
// of an informer may lag), and the pod's endpoint, if it still lists the
// address, is deleted first, so that the address is never in use by an
// endpoint when it is handed out again. A check runs only with synced
// informers and an API server that answers: one that does not answer
// does not count as a check, and releases nothing.

// Defaults of the collector's timing.
const (
	DefaultIPAMGCInterval      = 5 * time.Minute
	DefaultIPAMLeakGracePeriod = 15 * time.Minute
)

// Log keys of the collector.
const (
	logKeyIP     = "ip"
	logKeyHandle = "handle"
	logKeyCount  = "count"
)

// gcCheckTimeout bounds one check, so that an API server or datastore
// that hangs delays the next check instead of stopping the collector.
const gcCheckTimeout = time.Minute

// Log messages the tests wait for.
const (
	logGCSkipped = "kube-controllers: IPAM garbage collection: check skipped or incomplete; nothing released on a view it could not confirm"
	logGCChecked = "kube-controllers: IPAM garbage collection checked"
	logGCStart   = "kube-controllers: IPAM garbage collection checking"
)

// leakKey identifies one allocation.
type leakKey struct {
	ip     netip.Addr
	handle string
}

// ipamGC is the collector's state, owned by its goroutine.
type ipamGC struct {
	c     *Controllers
	since map[leakKey]time.Time // leaked allocations -> when first seen leaked
	// checks counts the checks that ran (with the API server answering),
	// for the log and the tests.
	checks int
}

// runIPAMGC checks every IPAMGCInterval until ctx ends.
func (c *Controllers) runIPAMGC(ctx context.Context) {
	g := &ipamGC{c: c, since: map[leakKey]time.Time{}}
	t := time.NewTicker(c.cfg.IPAMGCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.lg.Debug(logGCStart)
		cctx, cancel := context.WithTimeout(ctx, gcCheckTimeout)
		err := g.check(cctx, time.Now())
		cancel()
		if err != nil && ctx.Err() == nil {
			c.lg.Debug(logGCSkipped, logKeyErr, err)
			c.lim.Warn(logGCSkipped, logKeyErr, err)
		}
	}
}

// check finds the leaked allocations and releases those leaked long
// enough.
func (g *ipamGC) check(ctx context.Context, now time.Time) error {
	c := g.c
	for _, synced := range c.synced {
		if !synced() {
			return errors.New("informers not synced")
		}
	}
	// The API server must answer now: after an outage the informers hold
	// their last state, and absence must be confirmed live anyway.
	if _, err := c.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("the API server does not answer: %w", err)
	}
	allocs, err := c.ipam.Allocations(ctx)
	if err != nil {
		return fmt.Errorf("listing IPAM allocations: %w", err)
	}
	rs, _, err := c.ds.List(ctx, api.KindWorkloadEndpoint, "")
	if err != nil {
		return fmt.Errorf("listing workload endpoints: %w", err)
	}
	weps := make(map[string]*api.WorkloadEndpoint, len(rs))
	for _, r := range rs {
		if w, ok := r.(*api.WorkloadEndpoint); ok {
			weps[w.Namespace+"/"+w.Name] = w
		}
	}
	g.checks++
	leaked := map[leakKey]bool{}
	var released []string
	var errs []error
	for _, a := range allocs {
		ns, pod, wepName, ok := podOf(a)
		if !ok {
			continue
		}
		k := leakKey{a.IP, a.Handle}
		wep := weps[ns+"/"+wepName]
		podExists := c.podExists(ns, pod)
		if podExists && wep != nil && slices.Contains(wep.Spec.Addrs(), a.IP) {
			continue // in use
		}
		if young(a.Attrs[ipam.AttrTimestamp], now, c.cfg.IPAMLeakGracePeriod) {
			continue // an ADD in flight allocates before it writes the endpoint
		}
		leaked[k] = true
		first, seen := g.since[k]
		if !seen {
			g.since[k] = now
			continue
		}
		if now.Sub(first) < c.cfg.IPAMLeakGracePeriod {
			continue
		}
		ok, err := g.release(ctx, a, ns, pod, wep, podExists)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			released = append(released, a.IP.String()+" ("+ns+"/"+pod+")")
			delete(leaked, k)
		}
	}
	for k := range g.since {
		if !leaked[k] {
			delete(g.since, k)
		}
	}
	if len(released) > 0 {
		c.lg.Info("kube-controllers: IPAM garbage collection released leaked addresses",
			logKeyCount, len(released), logKeyWhat, strings.Join(firstN(released, 20), ", "))
	}
	c.lg.Debug(logGCChecked, logKeyCount, g.checks)
	return errors.Join(errs...)
}

// release releases one leaked allocation after confirming the pod's state
// with the API server; it reports whether it did.
func (g *ipamGC) release(ctx context.Context, a ipam.Allocation, ns, pod string, wep *api.WorkloadEndpoint, podExisted bool) (bool, error) {
	c := g.c
	_, err := c.kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	exists := err == nil
	switch {
	case err != nil && !apierrors.IsNotFound(err):
		return false, fmt.Errorf("confirming that pod %s/%s is gone: %w", ns, pod, err)
	case exists != podExisted:
		return false, nil // the cache lags: decide at the next check
	}
	if wep != nil && slices.Contains(wep.Spec.Addrs(), a.IP) && wep.Spec.Orchestrator == convert.OrchestratorK8s && wep.Spec.Workload == pod {
		// The pod is gone (an existing pod's endpoint that lists the
		// address is not a leak) and its endpoint still uses the address.
		err := c.ds.Delete(ctx, api.KindWorkloadEndpoint, wep.Namespace, wep.Name, wep.ResourceVersion)
		if err != nil && !errors.Is(err, datastore.ErrNotFound) {
			return false, fmt.Errorf("deleting the endpoint %s/%s of pod %s/%s, which is gone: %w", wep.Namespace, wep.Name, ns, pod, err)
		}
	}
	ips, err := c.ipam.ReleaseIPsOfHandle(ctx, []netip.Addr{a.IP}, a.Handle)
	if err != nil {
		return false, fmt.Errorf("releasing %s of handle %s: %w", a.IP, a.Handle, err)
	}
	return len(ips) > 0, nil
}

// podExists says whether the informer holds the pod.
func (c *Controllers) podExists(ns, name string) bool {
	_, err := c.pods.Pods(ns).Get(name)
	return err == nil
}

// podOf returns the pod and endpoint an allocation was made for, when the
// CNI plugin made it for a Kubernetes pod.
func podOf(a ipam.Allocation) (ns, pod, wep string, ok bool) {
	ns, pod, wep = a.Attrs[ipam.AttrNamespace], a.Attrs[ipam.AttrWorkload], a.Attrs[ipam.AttrEndpoint]
	node := a.Attrs[ipam.AttrNode]
	if ns == "" || pod == "" || wep == "" || node == "" {
		return "", "", "", false
	}
	// The endpoint name of a pod's interface starts with this; that of a
	// plain container ("cni" orchestrator) does not.
	// What follows is the interface, one part: its dashes doubled, so
	// a single dash means the pod part went on (pod "web" is not "web-0").
	prefix := api.WorkloadEndpointName(node, convert.OrchestratorK8s, pod, "")
	iface, found := strings.CutPrefix(wep, prefix)
	if !found || iface == "" || strings.Contains(strings.ReplaceAll(iface, "--", ""), "-") {
		return "", "", "", false
	}
	return ns, pod, wep, true
}

// young reports whether an allocation stamped ts (RFC 3339) is younger
// than grace.
func young(ts string, now time.Time, grace time.Duration) bool {
	t, err := time.Parse(time.RFC3339, ts)
	return err == nil && now.Sub(t) < grace
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}
