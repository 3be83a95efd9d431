// Package fabric runs a route reflector from the datastore: this node's
// Node (with spec.bgp.routeReflectorClusterID) gives the reflector's
// identity, peering.ReflectorSessions gives its neighbours, a
// datastore.Syncer keeps them current, and the reflector's state is
// written as this node's BGPStatus under a lease.
//
// The pure parts (sessions and peer ranges to neighbour configurations,
// neighbour state to status) are in convert.go; controller.go is the event
// loop that applies them: every change in the datastore is coalesced into
// one recomputation, and the new neighbour set is handed to
// Reflector.SetNeighbors, which keeps the sessions of unchanged neighbours
// up, the peer ranges (BGPPeers with peerPrefix) to
// Reflector.SetDynamicNeighbors. BGPStatus is written after each
// recomputation, a short debounce after sessions go up or down
// (Reflector.Changes), and periodically for the prefix counters.
package fabric
