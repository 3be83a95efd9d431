//go:build !nodeonly

package main

import (
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
)

// The columns of `get serviceadvertisements`, in a file of their own.
func init() {
	sa := func(f func(*api.ServiceAdvertisementSpec) []string) func(api.Resource) string {
		return func(r api.Resource) string { return strings.Join(f(&r.(*api.ServiceAdvertisement).Spec), ",") }
	}
	kindColumns[api.KindServiceAdvertisement] = []column{
		{"POLICY", func(r api.Resource) string { return r.(*api.ServiceAdvertisement).Spec.ExternalTrafficPolicy }},
		{"CLUSTER-IPS", sa(func(s *api.ServiceAdvertisementSpec) []string { return s.ClusterIPs })},
		{"EXTERNAL-IPS", sa(func(s *api.ServiceAdvertisementSpec) []string { return s.ExternalIPs })},
		{"LB-IPS", sa(func(s *api.ServiceAdvertisementSpec) []string { return s.LoadBalancerIPs })},
		{"NODES", sa(func(s *api.ServiceAdvertisementSpec) []string { return s.Nodes })},
	}
}
