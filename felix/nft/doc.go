// Package nft renders felix's policy ruleset (package policy) into one
// nftables table, `inet bgpfabric`, and keeps the kernel's copy equal to
// it, one transaction per change. It never touches another table.
//
// # Layout of the table
//
//	chain forward  (hook forward)  workload to workload, and through the host
//	chain input    (hook input)    to the host: workload egress, host endpoint ingress
//	chain output   (hook output)   from the host: workload ingress, host endpoint egress
//	map wl-from, wl-to             ifname : jump fw-<iface> / tw-<iface>
//	map hep-from, hep-to           ifname : jump fh-<iface> / th-<iface>
//	chain tw-/fw-<iface>           a workload's ingress / egress program
//	chain fh-/th-<iface>           a host endpoint's ingress / egress program (fh:all, th:all for "*")
//	chain pi-/po-<policy>          a policy's ingress / egress rules, shared by all endpoints
//	chain pri-/pro-<profile>       a profile's ingress / egress rules, shared
//	set s-<hash>-4, s-<hash>-6     the addresses a rule selector matches (named
//	                               port sets: address . protocol . port)
//
// Base chains accept established and related connections first and drop
// invalid ones, then dispatch by interface name through the verdict maps,
// so that adding an endpoint adds map elements and chains and rewrites no
// base chain. Host endpoint traffic passes the failsafe ports and the
// loopback interface before any policy. With
// Config.WorkloadInterfacePrefixes, traffic of workload-looking interfaces
// without an endpoint is dropped.
//
// Policy chains tell endpoint chains their verdict through two mark bits,
// as Calico's iptables chains do (see endpointRules): Allow accepts
// (ingress) or sets the accept bit and returns (egress, because the
// destination's ingress is still to be checked); Pass sets the pass bit,
// which skips the remaining policies to the profiles; Deny drops; Log logs
// and goes on.
//
// # Transactions
//
// Table.Apply takes each policy.Update in turn. The first Apply (and the
// first after a failure, or after Resync) replaces the table: delete and
// create in one transaction, so no packet ever sees a half-written table
// and a stale table of ours disappears. Later Applies write only what the
// update touches: a membership change is set element adds and deletes; a
// policy change flushes and refills its two chains; an endpoint change its
// chains and map elements. Operations are ordered so that nothing is
// referenced before it exists or deleted while referenced.
//
// The kernel side is the Dataplane interface: Netlink (google/nftables,
// in a given network namespace) or Fake, which keeps the table in memory,
// checks references like the kernel, and renders `nft list table`-like
// text for golden tests.
package nft
