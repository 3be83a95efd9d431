// Package routetable keeps the kernel's routes in one routing table equal to
// a desired set, touching only the routes that carry felix's protocol number.
//
// A RouteTable is felix's reconciler for one (table, protocol) pair, after
// Calico felix's routetable and bio-rd's protoBio ownership. The caller
// states the whole desired set (Set) or changes to it (SetRoute,
// DeleteRoute); Apply then converges the kernel: it adds what is missing,
// replaces what differs and deletes routes with our protocol that are no
// longer wanted, in that order. Routes with any other protocol are foreign
// and are never written over or deleted, even when they sit on a prefix we
// want: that prefix is reported as a conflict (ConflictError, Conflicts).
//
// A Route with several NextHops is a multipath (ECMP) route, written as
// one kernel route with RTA_MULTIPATH and read back with its next hops
// decoded, so that a resync compares it like any other (the router
// installs BGP's equal-cost paths this way).
//
// Routes through an interface that does not exist yet, or is down, wait as
// pending and are programmed once OnLinkUpdate says the interface is up
// (WatchLinks turns a netlink link subscription into those updates); when
// the interface goes, its routes become pending again. Apply is incremental:
// it only looks at the prefixes that changed since the last Apply. Resync
// makes the next Apply dump the kernel's routes of our protocol and diff
// them against the desired set, which repairs anything changed behind our
// back; the owner calls it on start (New requests it), periodically and
// after a lost subscription.
//
// The kernel side sits behind the Dataplane interface: NetlinkDataplane
// talks netlink in a given network namespace, writing routes in batches of
// thousands of messages per sendmsg (one ACK per batch, errors reported per
// route), and Fake keeps routes in memory for tests that need no root.
//
// A RouteTable is not safe for concurrent use: one goroutine (felix's
// dataplane loop) owns it and feeds it desired routes and link updates.
package routetable

// ProtoFelix is the route protocol number (rtm_protocol) that felix puts on
// the routes it programs and by which it recognises them as its own.
//
// 80 is unassigned in iproute2's /etc/iproute2/rt_protos, which names 0-18,
// 42 (babel), 99 (openr) and 186-192 (bgp, isis, ospf, rip, eigrp). The
// protocol numbers are a local convention, not an IANA registry: an
// operator whose hosts already use 80 sets Config.Protocol to another one.
// Add "80 felix" to /etc/iproute2/rt_protos.d/bgpfabric.conf to make
// `ip route` print the name.
const ProtoFelix = 80

// ProtoRouter is the protocol of the routes bgpfabric's BGP router
// installs (what it learned from peers). It is defined here, beside
// felix's, so that both owners of the node's routes agree on the numbers:
// felix overrides ProtoRouter routes on the prefixes it wants (its
// workloads and blocks win over what peers say), and the router never
// overrides felix's.
const ProtoRouter = 81

// TableMain is the kernel's main routing table (RT_TABLE_MAIN).
const TableMain = 254
