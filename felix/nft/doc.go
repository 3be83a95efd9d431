// Package nft renders felix's policy ruleset (package policy) into one
// nftables table, `inet bgpfabric`, and keeps the kernel's copy equal to
// it, one transaction per change. It never touches another table.
//
// # Layout of the table
//
//	chain forward  (hook forward)  workload to workload, and through the host
//	chain input    (hook input)    to the host: workload egress, host endpoint ingress
//	chain output   (hook output)   from the host: workload ingress, host endpoint egress
//	map wl-to, hep-from            ifname : jump ep-in-<hash>   (an endpoint's ingress)
//	map wl-from, hep-to            ifname : jump ep-out-<hash>  (an endpoint's egress)
//	chain ep-in-/ep-out-<hash>     an endpoint program: the policies and profiles of one
//	                               direction, shared by all endpoints that have the same
//	                               (<hash>: of its rules)
//	chain pi-/po-<policy>          a policy's ingress / egress rules, shared by all programs
//	chain pri-/pro-<profile>       a profile's ingress / egress rules, shared
//	set s-<hash>-4, s-<hash>-6     the addresses a rule selector matches (named
//	                               port sets: address . protocol . port)
//
// Base chains accept established and related connections first and drop
// invalid ones, then dispatch by interface name through the verdict maps
// (a workload's ingress is traffic the host sends out of its interface,
// so wl-to is keyed by oifname; a host endpoint's ingress arrives on it,
// so hep-from is keyed by iifname), so that adding an endpoint adds map
// elements and rewrites no base chain. The host endpoint of all
// interfaces ("*") has no map elements: input and output end with a jump
// to its programs. Host endpoint traffic passes the failsafe ports and the
// loopback interface before any policy. With
// Config.WorkloadInterfacePrefixes, traffic of workload-looking interfaces
// without an endpoint is dropped.
//
// Endpoints with the same labels usually have the same programs, so
// program chains are shared: a program chain's name is a hash of its
// rules, and the maps jump from each interface straight to it. The ruleset
// grows with the distinct programs, not with endpoints × policies, and an
// endpoint whose programs exist costs two map elements. A program chain
// is never rewritten (its name says what it holds): when an endpoint's
// program changes, its map element moves to another program chain in the
// same transaction, and a program chain is deleted with the last element
// (or base chain rule) that jumps to it. See programs.go.
//
// Policy chains tell program chains their verdict through two mark bits,
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
// policy change flushes and refills its two chains; an endpoint change
// moves its map elements, creating and deleting program chains as they
// gain their first or lose their last user. Operations are ordered so
// that nothing is referenced before it exists or deleted while
// referenced.
//
// The kernel side is the Dataplane interface: Netlink (google/nftables
// encodes the messages; the whole batch goes to the kernel in one send,
// in a given network namespace) or Fake, which keeps the table in memory,
// checks references like the kernel, and renders `nft list table`-like
// text for golden tests.
package nft
