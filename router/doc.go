// Package router is the node's BGP client: what BIRD is in Calico. It keeps
// a BGP speaker's sessions equal to what package peering computes for this
// node, advertises what felix programmed, installs what peers advertise into
// the kernel, and reports per-peer status.
//
// # Shape
//
// Router.Run owns one event loop (a single goroutine) fed by: a datastore
// syncer of Nodes, BGPConfigurations and BGPPeers; the kernel route feed
// (FIBSource); the speaker's best-path and peer-state watches. Bursts are
// drained, then reconciled once. The BGP engine is behind Speaker (speaker.
// go); router/gobgp implements it on GoBGP v3's pkg/server as a library,
// and FakeSpeaker keeps state in maps for unit tests. The kernel side is
// felix/routetable (a RouteTable owning protocol ProtoRouter, 81).
//
// Wiring: cmd/bgpfabric registers the router as a component of `bgpfabric
// node` (node_router.go): router.New(router.Config{NodeName, Resources:
// DatastoreResources(client), Status: DatastoreStatus(...), Speaker:
// gobgp.New(...), Netns, ...}) then Run(ctx).
//
// # Sessions
//
// On every change of the resources the router computes peering.Compute for
// its node and applies peering.Diff against the running sessions: Add and
// Remove touch only those peers; an Update with Reset restarts only that
// session, a live one (maxPrefixes, keepOriginalNextHop) is applied in
// place. A change of the node's AS, router ID or listen port restarts the
// speaker. An invalid fabric keeps the running sessions. A session that
// cannot be configured (missing password, speaker error) is retried every
// 2s and shown in the status with the reason. Passwords: see Secrets (a
// directory of files <name>/<key>, or BGPFABRIC_SECRET_<NAME>_<KEY>); a
// secret whose content changes is picked up on the next reconcile (any
// resource change or retry).
//
// # Dynamic neighbours
//
// A BGPPeer with peerPrefix that selects the node gives it a range
// (peering.PeerRange), as BIRD's `neighbor range` and FRR's `bgp listen
// range`: the speaker accepts any router that connects from inside the
// prefix, and never connects to them. The router applies peering.
// DiffRanges as it applies sessions (Speaker.AddPeerRange,
// UpdatePeerRange, DeletePeerRange: one range's change touches no other
// session; a change of its settings ends the sessions it accepted, whose
// routers connect again). An iBGP range's routers are plain iBGP
// neighbours, an eBGP range's eBGP ones; on a node with a cluster ID an
// iBGP range's routers are route-reflector clients. A configured session
// with an address inside a range stays that session. The routers that
// connect are in the status (type from the range's BGPPeer: global or
// node; reflectorClient on a reflector) from the start of their session
// to its end, when the speaker forgets them; their routes are imported
// and ours exported as for any peer. They do not hold up the end of a
// graceful restart, and a router that connects after our restart gets a
// fresh session (no R bit). A range whose password secret is missing is
// logged and retried, like a session. router/gobgp implements ranges with
// GoBGP peer groups and dynamic neighbours (see there).
//
// # Export
//
// The router advertises exactly what felix programmed, read from the
// kernel (a netlink route subscription of the main table, opened before a
// dump of the routes with felix's protocol 80): blackholes (affine blocks)
// and host routes of workloads outside those blocks (borrowed addresses);
// see Exports. Withdrawal follows felix's delete at once. Routes carry the
// "default" BGPConfiguration's communities and prefixAdvertisements; its
// service ranges add the cluster IP CIDRs and the node's own addresses in
// the external and load-balancer ranges, and the Kubernetes Services'
// host routes of the ServiceAdvertisements (services.go). A drained Node
// sends them with GRACEFUL_SHUTDOWN, then closes its sessions (drain.go).
// The speaker's export policy
// advertises only routes we originate (no transit: nothing learned from a
// peer is passed on); on a node that is a route reflector (it has a
// routeReflectorClusterID) iBGP routes are reflected, eBGP ones still not.
// Per session, BGPFilters (policy.go, package routepolicy) decide what is
// sent and accepted, with RFC 8212's default on eBGP (docs/policy.md);
// router/gobgp turns them into GoBGP policy and applies changes live.
// Config.Policy adds node-wide export and import filters by prefix (with
// length bounds) and community, from a YAML file.
//
// # Import
//
// Best paths from peers are installed with protocol 81 in the main table,
// with the next hop as received (through a reflector: the originating
// node). Paths we originate, paths whose next hop is ours, and paths the
// import filter rejects are not installed. A prefix that another owner's
// route holds (felix's blackholes and workload routes, an operator's static
// route) is left alone and reported as a conflict; one that another
// owner's route holds at another metric (a DHCP default at metric 100) is
// not installed either, lest ours at metric 0 win (foreign.go). ECMP: with GoBGP's
// multipath on (UseMultiplePaths), the best-path watch delivers each
// destination's multipath set, the equal-cost best paths, and their next
// hops become one multipath kernel route (RTA_MULTIPATH); when all but
// one are withdrawn it is a plain route again.
//
// On start the router lists the routes of protocol 81 an earlier run left.
// Without graceful restart it converges the kernel at once (stale routes
// go). With graceful restart (the BGPConfiguration's, on by default) and
// routes left, it is a restarting speaker (RFC 4724, R bit): the kernel
// keeps forwarding on the old routes until every peer is up and has sent
// End-of-RIB (or the restart time is over), then one reconcile replaces
// them. On a clean stop it stops the speaker (peers get a Cease; with
// RFC 8538 graceful-restart notification support they keep our routes as
// stale) and, without graceful restart, removes its kernel routes; with it,
// the routes stay for the next run. As a helper, GoBGP keeps a restarting
// peer's routes as stale until its End-of-RIB. A restart is a session that
// ends with its TCP connection (the peer's process died or restarted); a
// peer that falls silent until the hold timer expires is dead, not
// restarting, and its routes go at once (as in BIRD without long-lived
// graceful restart), where GoBGP alone would keep them for the restart
// time (osrg/gobgp #2174): see router/gobgp.
//
// # Session features
//
// Hold and keepalive per peer, TCP MD5 (see router/gobgp about MPTCP),
// max-prefix limits (GoBGP warns at 80% and closes the session beyond;
// the status shows "prefix limit reached"), route refresh (SoftReset),
// TTL security and eBGP multihop, and RFC 7606 error handling by GoBGP's
// codec (treat-as-withdraw, attribute discard, session reset): a malformed
// message costs at most that session, and the reason reaches the status.
//
// # Status and tools
//
// The node's BGPStatus (per peer: address, AS, type, state, since,
// prefixes received/accepted/advertised, last error) is written when a
// session or its state changes (at most once a second, latest wins); the
// prefix counts, refreshed every StatusInterval, reach it only on a slow
// jittered period (about a minute) and are on /metrics at any time; an
// unchanged status is never written again. It goes under the node's lease
// (SharedStatus; DatastoreStatus for a router alone). `bgpfabric status`
// prints it. The BGP table and the
// installed routes are served on a unix control socket (ControlSocket;
// RoutesReport), which `bgpfabric routes` reads. With Config.Metrics the
// router registers Prometheus gauges and counters for sessions and
// prefixes (bgpfabric_router_*); `bgpfabric node` gives it the node's
// shared registry (--http-addr's /metrics) and adds Router.Ready to
// /readyz (resources read, speaker started, route feed synced).
//
// # Namespaces
//
// Netns selects the namespace of the route feed and the installed routes.
// The speaker's sockets are opened by GoBGP's own goroutines, in the
// process's namespace: run one router per process, in the node's namespace
// (as `bgpfabric node` in a simulation does), or give the speaker loopback
// addresses (Config.ListenAddresses) as the benchmarks do.
package router
