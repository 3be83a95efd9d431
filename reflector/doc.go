// Package reflector is bgpfabric's route-reflector BGP engine: its own FSM,
// RIB, best-path selection and update groups, built on GoBGP's message codec
// (github.com/osrg/gobgp/v3/pkg/packet/bgp) but not on GoBGP's server.
//
// # Goroutines and data flow
//
//	listener (one per listen address) ──accept──▶ peer manager (one per neighbour)
//	peer manager ──dial / collision / GR timers──▶ session (one per TCP connection)
//	session reader: read, parse with the codec, RFC 7606 handling, loop checks,
//	    convert to compact batches ──▶ RIB loop (ops channel of closures)
//	RIB loop (one goroutine, sole owner of the RIB, the interned attributes and
//	    the update groups): apply batches, best path, then per update group
//	    compute the outbound change once, encode packed UPDATEs once and
//	    queue the same bytes to every member ──▶ session writer
//	session writer: drains its out queue into a buffered writer, one flush per
//	    burst, and sends KEEPALIVEs.
//
// The RIB loop drains every op that is already queued before it encodes, so
// a burst of UPDATEs from many peers becomes one outbound computation. Split
// horizon (never send a route back to the peer it came from) is done by
// encoding the changes of one batch partitioned by source peer: a member
// receives every partition but its own, and a short member-specific
// partition of withdrawals where its own route replaced one it had received.
//
// The RIB (rib.go) keeps memory per path small and invisible to the garbage
// collector: a prefix maps to a pointer-free slot holding its first path as
// a peer index and an interned-attrs handle (the index type turns them back
// into pointers); paths as []path exist only transiently, for best path and
// the outbound diff.
//
// # Lifecycle and operations
//
// Graceful restart as helper (peer.go, rib.go: stale paths), as restarting
// speaker (restart.go: deferred advertisement until End-of-RIB), and
// ErrGracefulRestart to stop without NOTIFICATIONs; RFC 9494 long-lived
// graceful restart (llgr.go: LLGR-stale paths); RFC 8326 graceful
// shutdown (gshut.go); Prometheus metrics (metrics.go); configuration files
// (fileconfig.go); dynamic neighbours from prefix ranges (neighbors.go),
// with TCP MD5 prefix keys (md5.go); GTSM and eBGP TTLs (ttl.go); Changes,
// a coalescing signal of sessions going up or down, for status writers.
// Hostile peers cost their own session and nothing else: codec guards
// (codecguard.go), peer-down on every session end, max-prefix before
// reflection, hold-down after a peer's fault (peer.go), bounded output
// queues and coalesced table dumps (writer.go), accept backoff
// (accept.go) and logs rate-limited per neighbour (internal/ratelog);
// docs/reflector.md lists the bounds.
// Reconfigure (reload.go) applies a reloaded configuration file through
// the datastore controller's reconcile; Summary, NeighborDetails and
// Routes (show.go) are `bgpfabric reflector show`'s views, whole-RIB
// dumps a chunk per RIB-loop op.
// lists the bounds. BMP export to collectors (bmp.go, monitor.go) and
// MRT snapshots and update logs (mrt.go) watch the RIB loop without ever
// making it wait.
// The datastore-driven controller is in reflector/fabric, the comparison
// benchmark against BIRD, FRR and gobgpd in reflector/bench.
//
// # Kernel FIB
//
// Off by default: without Config.ProgramFIB nothing opens a netlink
// socket. With it, the RIB loop turns each changed prefix's paths into
// the kernel route it wants (fib.go: best path, ECMP over equal paths) and
// hands them over without waiting; a writer goroutine (fibwriter.go)
// applies them in batches through felix's routetable reconciler, under
// one route protocol, never touching other protocols' routes, deleting
// what an earlier run left, and removing its routes on a clean stop.
//
// # Limits (by design, for now)
//
// Add-path is negotiated for sending only (we never receive path
// identifiers), so each peer contributes at most one path per prefix.
// Peers must support 4-octet AS numbers (RFC 6793); a peer without the
// capability is refused with an OPEN error. Route policy is BGPFilter's
// (policy.go, policyrib.go; famrib.go for the EVPN and VPN lists and the
// generic families' Adj-RIB-In): import per neighbour through an
// Adj-RIB-In, export per update group, RFC 8212 on eBGP, changed live.
package reflector
