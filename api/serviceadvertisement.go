package api

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// KindServiceAdvertisement is the kind of ServiceAdvertisement.
const KindServiceAdvertisement = "ServiceAdvertisement"

// ServiceAdvertisement is what a Kubernetes Service asks the node routers
// to advertise (docs/kubernetes.md "Services"). kube-controllers writes
// one per Service that has an address, in the Service's namespace and
// under its name; the node routers read them all. Which of the addresses
// a node announces, and how, is decided by the node against
// BGPConfiguration's service ranges (docs/policy.md):
//
//   - an external or load-balancer address inside a serviceExternalIPs
//     or serviceLoadBalancerIPs range is announced as a host route (/32,
//     /128) by every node when the policy is Cluster, and only by the
//     nodes listed in spec.nodes when it is Local;
//   - a cluster address inside a serviceClusterIPs range is covered by
//     that range, which every node announces whole; when the policy is
//     Local, the nodes in spec.nodes announce its host route too.
type ServiceAdvertisement struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ServiceAdvertisementSpec `json:"spec"`
}

// Service traffic policies: Kubernetes' externalTrafficPolicy.
const (
	ServiceTrafficCluster = "Cluster"
	ServiceTrafficLocal   = "Local"
)

// ServiceAdvertisementSpec holds a Service's addresses and who serves it.
type ServiceAdvertisementSpec struct {
	// ClusterIPs are the Service's cluster addresses (spec.clusterIPs).
	ClusterIPs []string `json:"clusterIPs,omitempty"`
	// ExternalIPs are its spec.externalIPs.
	ExternalIPs []string `json:"externalIPs,omitempty"`
	// LoadBalancerIPs are the addresses of its status.loadBalancer.ingress.
	LoadBalancerIPs []string `json:"loadBalancerIPs,omitempty"`
	// ExternalTrafficPolicy is Cluster (the default) or Local.
	ExternalTrafficPolicy string `json:"externalTrafficPolicy,omitempty"`
	// Nodes are the nodes that host a ready endpoint of the Service; only
	// with the Local policy (sorted, each once).
	Nodes []string `json:"nodes,omitempty"`
}

func init() {
	register(KindInfo{Kind: KindServiceAdvertisement, Plural: "serviceadvertisements", Short: []string{"svcadv"}, Namespaced: true,
		New: func() Resource { return &ServiceAdvertisement{} }})
}

// GetTypeMeta implements Resource.
func (s *ServiceAdvertisement) GetTypeMeta() *TypeMeta { return &s.TypeMeta }

// GetObjectMeta implements Resource.
func (s *ServiceAdvertisement) GetObjectMeta() *ObjectMeta { return &s.ObjectMeta }

// DeepCopyResource implements Resource.
func (s *ServiceAdvertisement) DeepCopyResource() Resource { return deepCopy(s) }

// Default implements Resource: addresses in canonical form, the policy
// spelled out, the nodes sorted.
func (s *ServiceAdvertisement) Default() {
	setTypeMeta(&s.TypeMeta, KindServiceAdvertisement)
	for _, as := range [][]string{s.Spec.ClusterIPs, s.Spec.ExternalIPs, s.Spec.LoadBalancerIPs} {
		for i, a := range as {
			if ip, err := netip.ParseAddr(a); err == nil && ip.Zone() == "" {
				as[i] = ip.String()
			}
		}
	}
	if s.Spec.ExternalTrafficPolicy == "" {
		s.Spec.ExternalTrafficPolicy = ServiceTrafficCluster
	}
	slices.Sort(s.Spec.Nodes)
}

// Validate implements Resource.
func (s *ServiceAdvertisement) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindServiceAdvertisement, s)
	sp := &s.Spec
	for _, f := range []struct {
		name  string
		addrs []string
	}{{"clusterIPs", sp.ClusterIPs}, {"externalIPs", sp.ExternalIPs}, {"loadBalancerIPs", sp.LoadBalancerIPs}} {
		seen := map[netip.Addr]bool{}
		for i, a := range f.addrs {
			path := fmt.Sprintf("spec.%s[%d]", f.name, i)
			if err := CheckServiceAddress(a); err != nil {
				fe.add(path, a, "%v", err)
				continue
			}
			ip := netip.MustParseAddr(a)
			if seen[ip] {
				fe.add(path, a, "is listed twice")
			}
			seen[ip] = true
		}
	}
	switch sp.ExternalTrafficPolicy {
	case "", ServiceTrafficCluster, ServiceTrafficLocal:
	default:
		fe.add("spec.externalTrafficPolicy", sp.ExternalTrafficPolicy, "must be %q or %q", ServiceTrafficCluster, ServiceTrafficLocal)
	}
	if len(sp.Nodes) > 0 && sp.ExternalTrafficPolicy != ServiceTrafficLocal {
		fe.add("spec.nodes", sp.Nodes, "is only for the %q externalTrafficPolicy: with %q every node advertises the service", ServiceTrafficLocal, ServiceTrafficCluster)
	}
	seen := map[string]bool{}
	for i, n := range sp.Nodes {
		path := fmt.Sprintf("spec.nodes[%d]", i)
		validateName(&fe, path, n)
		if seen[n] {
			fe.add(path, n, "is listed twice")
		}
		seen[n] = true
	}
	return fe.result(KindServiceAdvertisement, s)
}

// CheckServiceAddress says why s cannot be a ServiceAdvertisement's
// address, or nil when it can.
func CheckServiceAddress(s string) error {
	ip, err := netip.ParseAddr(s)
	switch {
	case err != nil || ip.Zone() != "":
		return errors.New("must be an IP address")
	case ip.Is4In6():
		return errors.New("must be an IPv4 address in dotted form, not IPv4-mapped IPv6")
	case ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() || ip.IsLinkLocalUnicast():
		return errors.New("must be a unicast address that can be routed (not unspecified, loopback, multicast or link-local)")
	}
	return nil
}

// ServiceRoutes returns the host routes that node announces for the
// Services in svcs, given the service ranges of a: see
// ServiceAdvertisement. The result is sorted and has no duplicates.
func ServiceRoutes(node string, a *Advertisements, svcs []*ServiceAdvertisement) []netip.Prefix {
	var out []netip.Prefix
	add := func(addrs []string, ranges []netip.Prefix) {
		for _, s := range addrs {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				continue
			}
			for _, r := range ranges {
				if r.Contains(ip) {
					out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
					break
				}
			}
		}
	}
	for _, s := range svcs {
		local := s.Spec.ExternalTrafficPolicy == ServiceTrafficLocal
		if local {
			if !slices.Contains(s.Spec.Nodes, node) {
				continue
			}
			add(s.Spec.ClusterIPs, a.ClusterIPs)
		}
		add(s.Spec.ExternalIPs, a.ExternalIPs)
		add(s.Spec.LoadBalancerIPs, a.LoadBalancerIPs)
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	return slices.Compact(out)
}
