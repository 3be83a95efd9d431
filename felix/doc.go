// Package felix is bgpfabric's per-host agent, after Calico's Felix: it
// watches the datastore and keeps the node's kernel in line with it —
// routes to the local workloads and blackholes for the node's IPAM blocks
// (felix/routetable), the settings of the workload interfaces and
// forwarding (felix/ifaces), and the ACLs (an ACL component, see acl.go) —
// and reports its state as a FelixStatus record under a lease.
//
// # Structure
//
// An Agent's Run goroutine owns all mutable state. Three goroutines feed
// it, each owned by Run and stopped before Run returns: the datastore
// syncer (snapshot, then updates), the netlink link watch, and the status
// reporter, which writes FelixStatus records so that a slow or absent etcd
// never blocks the dataplane. Datastore events queue in an inbox and wake
// the loop through a size-1 channel, so a burst becomes one batch: the
// loop feeds the batch to the pure calculation (felix/calc and the ACL's
// policy calculation), passes the calculation's delta to the dataplane
// components and applies them once (ACLs first, so that a new workload is
// never reachable before its policy is in place; then interfaces; then
// routes).
//
// # Guarantees
//
//   - Nothing is programmed before the first complete snapshot: until then
//     the desired state is partial, and reconciling to it would delete the
//     routes a previous run left for workloads that still exist.
//   - A dataplane error is not fatal: it is reported in the status
//     (Dataplane.State Failed, with the error) and retried with
//     exponential backoff; successes reset the backoff.
//   - A lost datastore leaves the programmed state in place: the syncer
//     reports Disconnected, the status says not in sync (once it can be
//     written again) and the kernel keeps serving the last known state
//     until the syncer is back and catches up.
//   - Run returns when its context ends and leaves routes, interface
//     settings and ACLs in place, so that a restart (an upgrade) does not
//     drop traffic; the next run adopts them (routes carry felix's
//     protocol number) and removes only what is stale. A clean stop
//     revokes the status lease, so the FelixStatus record disappears at
//     once; a crash leaves it to expire with the lease (StatusTTL).
//   - Every ResyncInterval the components re-read the kernel and repair
//     whatever changed behind felix's back.
package felix
