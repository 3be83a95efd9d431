// Package peering decides who peers with whom. From the fabric's Nodes,
// BGPConfigurations and BGPPeers it computes the BGP sessions that each
// node should have: the node-to-node mesh, global and per-node peers,
// selector peers, route-reflector clusters and eBGP to top-of-rack routers.
// The router, the reflector and the simulator all call it, so they always
// agree; it is pure (no I/O) and deterministic: the same resources in any
// order give the same Result.
//
// The rules are Calico's (confd's BGP peer processing and BIRD templates),
// with the differences listed at the end.
//
// # Nodes
//
// A Node peers if it has spec.bgp. Its AS is spec.bgp.asNumber, else the
// "default" BGPConfiguration's asNumber, else 64512. Its listen port, which
// is the port other nodes connect to, is that of BGPConfiguration
// "node.<name>", else "default", else 179. A node with a
// routeReflectorClusterID is a route reflector of that cluster.
//
// # Where sessions come from
//
// Node-to-node mesh (BGPConfiguration nodeToNodeMeshEnabled, default on):
// every node peers with every other node, once per address family that
// both have, with the peer node's AS. Route reflectors are left out of the
// mesh on both sides: a reflector has no mesh sessions, and other nodes
// have none with it. Reflectors get their sessions from BGPPeers.
//
// BGPPeers: which nodes have the sessions is spec.node (that node),
// spec.nodeSelector (the nodes it matches) or neither (every node: a
// "global" peer). With whom:
//   - spec.peerIP: one session with that address (and port, else 179), AS
//     spec.asNumber, if the node has an address of that family (a warning
//     otherwise). A node never peers with its own address.
//   - spec.peerSelector: a session with each matching node except itself,
//     over each family that both have (a warning when the selected node
//     lacks a family this node has), with spec.asNumber if set, else the
//     node's own AS; the port is that node's listen port.
//   - spec.peerPrefix: no session, but a range of dynamic neighbours
//     (Result.PeerRanges): any router connecting from inside the prefix
//     is accepted, with spec.asNumber, else the node's own AS (iBGP).
//     Every selected node gets the range, if it has an address of the
//     prefix's family (a warning otherwise): on a route reflector an
//     iBGP range's routers are its clients (reflectorClient, its cluster
//     ID); on any other node they are plain iBGP neighbours of the
//     BGPPeer's type (global or node), and an eBGP range's are eBGP
//     neighbours. One prefix from two BGPPeers follows the precedence
//     below. A range has no reverse sessions, and an explicit session
//     with an address inside a range stays that session. DiffRanges
//     compares two sets of ranges by prefix.
//
// Reverse sessions: the nodes on the peer side of a BGPPeer (those its
// peerSelector matches, or the node whose address peerIP is, if its AS is
// asNumber and the port, if given, is its listen port) get the sessions
// back to every node on the local side, with the same settings. So one
// BGPPeer "nodeSelector: all(), peerSelector: has(rr)" gives every node
// its sessions with the reflectors and gives each reflector its sessions
// with every node: both ends of every session between two nodes are
// configured, and every node can compute its own alone.
//
// # Session settings
//
//   - LocalAS is the node's AS; eBGP when PeerAS differs.
//   - LocalAddress is the node's own address of the peer's family, unless
//     the BGPPeer says sourceAddress: None (the kernel chooses).
//   - Hold and keepalive times: the BGPPeer's, else the "default"
//     BGPConfiguration's, else 90s and 30s. Where only a hold time is set,
//     the keepalive is a third of it; a hold time of 0 means no
//     keepalives. A keepalive not below the hold time it ends up with
//     becomes a third of it, with a warning. Mesh sessions use the
//     BGPConfiguration's.
//   - Graceful restart (enabled, restart time 120s, stale routes time
//     360s) comes from the "default" BGPConfiguration, for every session.
//   - Password (a secret name and key: reading it is the router's job),
//     maxPrefixes, ttlSecurity and ebgpMultihop come from the BGPPeer;
//     mesh sessions have none.
//   - keepOriginalNextHop applies to eBGP sessions only, as in Calico;
//     iBGP does not rewrite next hops anyway.
//   - Passive: between two nodes, the end with the lower address waits
//     for the other to connect (Calico makes its mesh one-directional so;
//     here every session between two nodes is, since both ends are always
//     configured). A session with a peerIP that is a node's address is
//     passive only if that node has the reverse session.
//
// # Route reflection
//
// On iBGP sessions only:
//   - if this node is a reflector and the peer is not a reflector of the
//     same cluster (a client node, an external router, or a reflector of
//     another cluster), the peer is this node's client:
//     RouteReflectorClient, ClusterID = this node's, Type reflectorClient;
//   - otherwise, if the peer is a reflector of another cluster than this
//     node's (none, for a compute node), Type is reflector: this node is
//     its client.
//
// Reflectors of the same cluster peer as plain iBGP neighbours (the
// redundant pair); reflectors of different clusters are each other's
// clients. Otherwise Type is mesh, global (a global BGPPeer) or node (a
// node or nodeSelector BGPPeer, or a reverse session).
//
// # Precedence
//
// A node has at most one session per peer address. When several sources
// give one, the first in this order wins:
//  1. global BGPPeers,
//  2. BGPPeers with node or nodeSelector,
//  3. reverse sessions,
//  4. the mesh;
//
// and within each, BGPPeers in name order. An explicit BGPPeer therefore
// always beats the mesh (silently: that is how one customises a mesh
// session), and when another BGPPeer with different settings loses, a
// warning names both.
//
// # Errors and warnings
//
// New (and so Compute and Fabric) fails, keeping the caller on the
// sessions it runs, when the fabric's intent is ambiguous or invalid: two
// Nodes with one address (the error names both), two resources with one
// name, or an invalid BGPPeer or BGPConfiguration (the api package's
// validation error, naming the field). A Node that cannot peer (no
// address, an unparsable one, an IPv6-only node without router ID) is
// left out of every other node's sessions with a warning, and computing
// its own sessions fails. Everything else that cannot be set up (a family
// missing at one end, a spec.node that names no node, an asNumber that is
// not the selected node's, a reflector with no sessions) is a Warning in
// the Result: the rest is computed.
//
// # Diff
//
// Diff compares running and desired sessions by peer address: a speaker
// holds one session per neighbour address. Adding or removing a node adds
// or removes just its sessions; a change to the BGPConfiguration's timers
// updates just the sessions that inherit them. Each Update says whether
// the change needs the session reset:
//   - live (no reset): maxPrefixes (a limit the speaker checks on each
//     UPDATE), keepOriginalNextHop (re-advertise: a soft reset out), and
//     the descriptive Type, Source, PeerNode and PeerClusterID;
//   - reset: everything else, because it is negotiated in OPEN (AS, hold
//     time, graceful restart, the reflector-client role), belongs to the
//     TCP connection (addresses, port, password, TTL security, multihop),
//     or decides who connects (Passive). A changed port is thus an Update
//     that resets, not a removal and an addition.
//
// # Differences from Calico
//
//   - Precedence is deterministic (Calico's depends on map order among
//     BGPPeers of one kind), and mesh and BGPPeer sessions with one
//     address never coexist (Calico renders both into BIRD).
//   - A peerIP that is a node's address is recognised as that node: its
//     cluster ID decides the reflector rules, and without a port its
//     listen port is used (Calico does the latter only).
//   - Every session between two nodes is one-directional (Calico: mesh and
//     global ones).
//   - The unidirectional rule compares addresses numerically (Calico
//     compares strings, which agrees on both ends just as well).
package peering
