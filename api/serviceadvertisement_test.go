package api

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestServiceAdvertisementValidate(t *testing.T) {
	base := func() *ServiceAdvertisement {
		return &ServiceAdvertisement{
			ObjectMeta: ObjectMeta{Name: "web", Namespace: "team-a"},
			Spec: ServiceAdvertisementSpec{ClusterIPs: []string{"10.96.0.10", "fd00:96::a"}, ExternalIPs: []string{"203.0.113.5"},
				LoadBalancerIPs: []string{"192.0.2.10"}, ExternalTrafficPolicy: ServiceTrafficLocal, Nodes: []string{"node-2", "node-1"}},
		}
	}
	spec := func(f func(*ServiceAdvertisementSpec)) func(*ServiceAdvertisement) {
		return func(s *ServiceAdvertisement) { f(&s.Spec) }
	}
	runValidation(t, base, []validationCase[*ServiceAdvertisement]{
		{"valid", func(*ServiceAdvertisement) {}, nil},
		{"no namespace", func(s *ServiceAdvertisement) { s.Namespace = "" }, []string{"metadata.namespace"}},
		{"empty spec", spec(func(s *ServiceAdvertisementSpec) { *s = ServiceAdvertisementSpec{} }), nil},
		{"bad addresses", spec(func(s *ServiceAdvertisementSpec) {
			s.ClusterIPs = []string{"10.96.0.10/32", "fe80::1%eth0"}
			s.ExternalIPs = []string{"::ffff:192.0.2.1", "0.0.0.0", "127.0.0.1", "224.0.0.5", "fe80::1"}
			s.LoadBalancerIPs = []string{"192.0.2.10", "192.0.2.010", "192.0.2.10"}
		}), []string{"spec.clusterIPs[0]", "spec.clusterIPs[1]", "spec.externalIPs[0]", "spec.externalIPs[1]", "spec.externalIPs[2]",
			"spec.externalIPs[3]", "spec.externalIPs[4]", "spec.loadBalancerIPs[1]", "spec.loadBalancerIPs[2]"}},
		{"canonical duplicate", spec(func(s *ServiceAdvertisementSpec) { s.ClusterIPs = []string{"fd00::a", "FD00:0::A"} }), []string{"spec.clusterIPs[1]"}},
		{"policy", spec(func(s *ServiceAdvertisementSpec) { s.ExternalTrafficPolicy = "local" }), []string{"spec.externalTrafficPolicy", "spec.nodes"}},
		{"nodes with Cluster", spec(func(s *ServiceAdvertisementSpec) { s.ExternalTrafficPolicy = "" }), []string{"spec.nodes"}},
		{"Local without nodes", spec(func(s *ServiceAdvertisementSpec) { s.Nodes = nil }), nil},
		{"bad nodes", spec(func(s *ServiceAdvertisementSpec) { s.Nodes = []string{"Node_1", "n", "n", ""} }),
			[]string{"spec.nodes[0]", "spec.nodes[1]", "spec.nodes[3]"}}, // sorted first
	})
	s := base()
	s.Spec.ExternalTrafficPolicy = ""
	s.Spec.Nodes = nil
	s.Spec.ClusterIPs = []string{"FD00:96:0::A"}
	s.Default()
	if s.Spec.ExternalTrafficPolicy != ServiceTrafficCluster || s.Spec.ClusterIPs[0] != "fd00:96::a" {
		t.Errorf("defaulted: %+v", s.Spec)
	}
}

// TestServiceRoutes: Cluster services' external and load-balancer
// addresses inside their ranges are announced by every node; Local ones,
// with their cluster addresses, only by the nodes listed; addresses
// outside the ranges, or in the range of the other kind, never.
func TestServiceRoutes(t *testing.T) {
	c := &BGPConfiguration{ObjectMeta: ObjectMeta{Name: "default"}, Spec: BGPConfigurationSpec{
		ServiceClusterIPs:      []ServiceIPBlock{{CIDR: "10.96.0.0/16"}, {CIDR: "fd00:96::/112"}},
		ServiceExternalIPs:     []ServiceIPBlock{{CIDR: "203.0.113.0/24"}},
		ServiceLoadBalancerIPs: []ServiceIPBlock{{CIDR: "192.0.2.0/24"}},
	}}
	a := ParseAdvertisements(c)
	svcs := []*ServiceAdvertisement{
		{Spec: ServiceAdvertisementSpec{ClusterIPs: []string{"10.96.0.1"}, ExternalIPs: []string{"203.0.113.1", "192.0.2.99", "198.51.100.1"},
			LoadBalancerIPs: []string{"192.0.2.1", "203.0.113.99"}, ExternalTrafficPolicy: ServiceTrafficCluster}},
		{Spec: ServiceAdvertisementSpec{ClusterIPs: []string{"10.96.0.2", "fd00:96::2", "10.97.0.2"}, ExternalIPs: []string{"203.0.113.2"},
			LoadBalancerIPs: []string{"192.0.2.2", "192.0.2.1"}, ExternalTrafficPolicy: ServiceTrafficLocal, Nodes: []string{"n1", "n3"}}},
	}
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	for _, tt := range []struct {
		node string
		want []netip.Prefix
	}{
		{"n1", pfx("10.96.0.2/32", "192.0.2.1/32", "192.0.2.2/32", "203.0.113.1/32", "203.0.113.2/32", "fd00:96::2/128")},
		{"n2", pfx("192.0.2.1/32", "203.0.113.1/32")},
	} {
		if diff := cmp.Diff(tt.want, ServiceRoutes(tt.node, &a, svcs), cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
			t.Errorf("node %s (-want +got):\n%s", tt.node, diff)
		}
	}
}
