package felix

import "github.com/bgpfabric/bgpfabric/api"

// stripFor returns the syncer's Strip for node (datastore.SyncerConfig):
// what felix reads of a resource, so that the syncer keeps no more than
// that of the many resources that are not this node's. At 300 nodes the
// decoded IPAM blocks (an allocation table of 64 entries and the owners
// of the allocations each) and the other nodes' endpoints were the
// largest part of the agent's heap that grew with the fabric
// (docs/scale.md, "Memory at rest").
//
// What each calculation reads, and so what is kept:
//   - an IPAM block: its CIDR, affinity and deletion mark (felix/calc:
//     the blackhole route of this node's blocks); the allocations are
//     IPAM's business;
//   - another node's workload endpoint: what the policy calculation
//     matches and puts in IP sets (felix/policy: namespace and name,
//     labels, node, orchestrator, addresses, profiles, named ports); its
//     interface, MAC, container and gateways are programmed on its own
//     node only (felix/calc uses this node's endpoints);
//   - everything else (this node's endpoints, host endpoints, pools,
//     policies, profiles) whole.
//
// The object metadata kept is the identity and the labels; felix reads
// no resource version, UID, annotation or timestamp.
func stripFor(node string) func(api.Resource) api.Resource {
	return func(r api.Resource) api.Resource {
		switch r := r.(type) {
		case *api.IPAMBlock:
			return &api.IPAMBlock{
				TypeMeta:   r.TypeMeta,
				ObjectMeta: api.ObjectMeta{Name: r.Name, Namespace: r.Namespace},
				Spec:       api.IPAMBlockSpec{CIDR: r.Spec.CIDR, Affinity: r.Spec.Affinity, Deleted: r.Spec.Deleted},
			}
		case *api.WorkloadEndpoint:
			if r.Spec.Node == node {
				return r
			}
			s := &r.Spec
			return &api.WorkloadEndpoint{
				TypeMeta:   r.TypeMeta,
				ObjectMeta: api.ObjectMeta{Name: r.Name, Namespace: r.Namespace, Labels: r.Labels},
				Spec: api.WorkloadEndpointSpec{
					Node: s.Node, Orchestrator: s.Orchestrator, IPNetworks: s.IPNetworks,
					Profiles: s.Profiles, Ports: s.Ports,
				},
			}
		}
		return r
	}
}
