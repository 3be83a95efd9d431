package router_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestKubeServicesOnTheWire: two nodes peer with an FRR ToR; the
// ServiceAdvertisements kube-controllers writes reach it as Calico
// advertises Services. A Cluster service's load-balancer and external
// addresses inside their ranges come from both nodes as host routes
// (ECMP), its cluster address only inside the whole range, an address
// outside the ranges or in the other kind's range not at all; a Local
// service's addresses, its cluster address too, come only from the node
// listed as hosting an endpoint, and move when the endpoint moves; a
// deleted ServiceAdvertisement is withdrawn.
func TestKubeServicesOnTheWire(t *testing.T) {
	f := newFabric(t)
	cfg := fastTimers()
	off := false
	cfg.Spec.NodeToNodeMeshEnabled = &off
	cfg.Spec.EBGPDefaultPolicy = api.FilterAccept
	cfg.Spec.ServiceClusterIPs = []api.ServiceIPBlock{{CIDR: "10.96.0.0/16"}}
	cfg.Spec.ServiceLoadBalancerIPs = []api.ServiceIPBlock{{CIDR: "192.0.2.0/24"}}
	cfg.Spec.ServiceExternalIPs = []api.ServiceIPBlock{{CIDR: "203.0.113.0/24"}}
	cluster := &api.ServiceAdvertisement{ObjectMeta: api.ObjectMeta{Namespace: "team-a", Name: "web"}, Spec: api.ServiceAdvertisementSpec{
		ClusterIPs: []string{"10.96.0.10"}, ExternalIPs: []string{"203.0.113.7", "198.51.100.7"},
		LoadBalancerIPs: []string{"192.0.2.20", "203.0.113.20"}, ExternalTrafficPolicy: api.ServiceTrafficCluster,
	}}
	f.apply(cfg, cluster, &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.99.0.100", ASNumber: ptrTo(uint32(65100))}})
	n1 := f.addNode("n1", "10.99.0.1/24")
	n2 := f.addNode("n2", "10.99.0.2/24")
	for _, n := range []*fabricNode{n1, n2} {
		f.apply(&api.Node{ObjectMeta: api.ObjectMeta{Name: n.name}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{
			IPv4Address: n.addr.String(), ASNumber: ptrTo(uint32(65001))}}})
	}
	torNS := f.addHost("tor", "10.99.0.100/24")
	tor := startFRRToR(t, f, torNS, "tor", "10.99.0.100", map[string]uint32{"10.99.0.1": 65001, "10.99.0.2": 65001})
	f.start(n1)
	f.start(n2)

	both := []string{"10.99.0.1", "10.99.0.2"}
	from := func(peers ...string) func(frrRoute) bool {
		return func(r frrRoute) bool { return slices.Equal(r.peers(), peers) }
	}
	ecmp := func(r frrRoute) bool {
		return slices.Equal(r.peers(), both) && r.Paths[0].Multipath && r.Paths[1].Multipath
	}
	waitFRRRoute(t, tor, "10.96.0.0/16", "the cluster IP range from both nodes", from(both...))
	waitFRRRoute(t, tor, "192.0.2.20/32", "the Cluster service's load-balancer address from both nodes, multipath", ecmp)
	waitFRRRoute(t, tor, "203.0.113.7/32", "the Cluster service's external address from both nodes, multipath", ecmp)
	for _, p := range []string{"10.96.0.10/32", "198.51.100.7/32", "203.0.113.20/32"} {
		if r := waitFRRRoute(t, tor, p, "", func(frrRoute) bool { return true }); len(r.Paths) != 0 {
			t.Errorf("%s was advertised (a Cluster service's cluster address, or outside its kind's range): %s", p, r)
		}
	}

	// A Local service whose endpoint is on n2, then on n1.
	local := &api.ServiceAdvertisement{ObjectMeta: api.ObjectMeta{Namespace: "team-a", Name: "db"}, Spec: api.ServiceAdvertisementSpec{
		ClusterIPs: []string{"10.96.0.30"}, LoadBalancerIPs: []string{"192.0.2.30"},
		ExternalTrafficPolicy: api.ServiceTrafficLocal, Nodes: []string{"n2"},
	}}
	f.apply(local)
	for _, p := range []string{"10.96.0.30/32", "192.0.2.30/32"} {
		waitFRRRoute(t, tor, p, "the Local service's address from n2 only", from("10.99.0.2"))
	}
	local.Spec.Nodes = []string{"n1"}
	local.ResourceVersion = ""
	f.apply(local)
	for _, p := range []string{"10.96.0.30/32", "192.0.2.30/32"} {
		waitFRRRoute(t, tor, p, "the Local service's address moved to n1", from("10.99.0.1"))
	}
	local.Spec.Nodes = nil
	f.apply(local)
	waitFRRRoute(t, tor, "192.0.2.30/32", "withdrawn: no node hosts an endpoint", from())

	if err := f.client.Delete(context.Background(), api.KindServiceAdvertisement, "team-a", "web", ""); err != nil {
		t.Fatal(fmt.Errorf("deleting the ServiceAdvertisement: %w", err))
	}
	waitFRRRoute(t, tor, "192.0.2.20/32", "withdrawn with its ServiceAdvertisement", from())
	waitFRRRoute(t, tor, "10.96.0.0/16", "the cluster IP range stays", from(both...))
}
