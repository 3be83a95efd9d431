// Package calc is felix's pure route and interface calculation for one
// node: from the datastore's workload endpoints, host endpoints, IPAM blocks
// and IP pools it computes the routes the node's kernel must hold and the
// settings of each workload interface. It imports no kernel or socket code;
// the felix agent turns its output into routetable and ifaces calls.
//
// Desired state:
//
//   - a route to each address of each local workload endpoint (a /32 or
//     /128) through the endpoint's host-side interface, scope link;
//   - a blackhole route for every IPAM block affine to this node (and not
//     being released), so that the node owns the aggregate it advertises
//     and drops traffic to the block's unallocated addresses instead of
//     sending it back along a default route;
//   - for each workload interface: IPv4 and/or IPv6 settings, depending on
//     the families of its endpoint's addresses, and the IPv6 gateways the
//     host must answer neighbour solicitations for.
//
// Conflicts are resolved so that the result depends only on the set of
// resources, never on the order in which they arrived: when two local
// endpoints claim one address, the endpoint with the smallest
// namespace/name wins; a workload route wins over a blackhole on the same
// prefix (a /32 block holding one workload); the settings of an interface
// named by two endpoints are the union of both.
//
// Calc is a single-goroutine state machine: feed it with OnSnapshot,
// OnUpdate and OnRemove, and collect the changes with TakeDelta. Routes and
// Interfaces return the whole desired state.
package calc
