package router

import (
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// TestKubeServiceRoutes: node n1 announces the host routes of the
// ServiceAdvertisements that api.ServiceRoutes gives it, and follows
// their changes, their deletion and a change of the service ranges.
func TestKubeServiceRoutes(t *testing.T) {
	h := start(t, nil)
	cfg := meshConfig("90s")
	cfg.Spec.ServiceClusterIPs = []api.ServiceIPBlock{{CIDR: "10.96.0.0/16"}}
	cfg.Spec.ServiceLoadBalancerIPs = []api.ServiceIPBlock{{CIDR: "192.0.2.0/24"}}
	web := &api.ServiceAdvertisement{ObjectMeta: api.ObjectMeta{Namespace: "a", Name: "web"}, Spec: api.ServiceAdvertisementSpec{
		ClusterIPs: []string{"10.96.0.10"}, LoadBalancerIPs: []string{"192.0.2.20"}}}
	db := &api.ServiceAdvertisement{ObjectMeta: api.ObjectMeta{Namespace: "a", Name: "db"}, Spec: api.ServiceAdvertisementSpec{
		ClusterIPs: []string{"10.96.0.30"}, LoadBalancerIPs: []string{"192.0.2.30"},
		ExternalTrafficPolicy: api.ServiceTrafficLocal, Nodes: []string{"n2"}}}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), cfg, web, db)
	h.fib.ch <- FIBBatch{Snapshot: true}
	announced := func() string {
		var s []string
		for _, r := range h.sp.Announced() {
			s = append(s, r.Prefix.String())
		}
		return strings.Join(s, ",")
	}
	waitUntil(t, "the cluster range and the Cluster service's load-balancer address", func() bool {
		return announced() == "10.96.0.0/16,192.0.2.20/32"
	})
	db.Spec.Nodes = []string{"n1", "n2"}
	h.res.put(t, db)
	waitUntil(t, "the Local service's addresses once n1 hosts an endpoint", func() bool {
		return announced() == "10.96.0.0/16,10.96.0.30/32,192.0.2.20/32,192.0.2.30/32"
	})
	h.res.handler(t).OnUpdates([]datastore.Event{{Type: datastore.Deleted, ID: datastore.IDOf(web)}})
	waitUntil(t, "the deleted Service's address withdrawn", func() bool {
		return announced() == "10.96.0.0/16,10.96.0.30/32,192.0.2.30/32"
	})
	cfg2 := meshConfig("90s")
	cfg2.Spec.ServiceLoadBalancerIPs = []api.ServiceIPBlock{{CIDR: "192.0.2.16/28"}}
	h.res.put(t, cfg2)
	waitUntil(t, "the ranges changed: the cluster range and the cluster address gone, 192.0.2.30 kept by the new range", func() bool {
		return announced() == "192.0.2.30/32"
	})
}
