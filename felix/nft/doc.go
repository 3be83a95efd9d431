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
// loopback interface before any policy. IPv6 neighbour discovery and MLD
// (ICMPv6 types 130-133, 135, 136, 143) to and from the host pass ahead
// of every endpoint's policy, as Calico lets them from workloads: without
// them a policy that allows only, say, TCP 8080 would cut the endpoint
// off from IPv6 altogether. With
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
// A rule's CIDRs restrict it to their family, as in Calico: a rule whose
// nets and notNets (at both ends) are all IPv6 is an IPv6 rule, which no
// IPv4 packet matches. A rule with CIDRs of both families is rendered for
// each with that family's nets.
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
// # One description of a rule
//
// A rule is built once, as the nftables expressions the kernel gets
// (build.go). Its text — what the fake keeps, the golden files
// (testdata/*.golden, rewritten with `go test -update`) show, program
// chain names hash and incremental updates compare — is rendered from
// those expressions (text.go), and so are its references to chains and
// sets. The kernel tests read every rule back from the kernel and render
// it the same way: each chain must read exactly as the fake's.
//
// # Conformance
//
// TestConformance (conformance_test.go, root) checks the policy model
// against the kernel with real packets. One node namespace holds felix's
// table, programmed through the real path (policy.Calculator, Table,
// Netlink); three dual-stack workloads hang off it on veths (a: app=a and
// b: app=b with named ports web TCP 8081 and stats UDP 8082, in namespace
// prod; c: app=c and label quarantine, in namespace dev), and an outside
// peer sits behind host interface eth0. Each case programs its policies
// and sends TCP connects, UDP echoes and ICMP echo requests (with a chosen
// code), over IPv4 and IPv6, each of which must be answered (allowed) or
// silently dropped (denied: no reply within 300 ms; a reset or ICMP error
// fails the case). A baseline first shows that every probe goes through
// without policy, so what a case denies, its policy denies. After every
// case the kernel's rules, sets and maps are read back and must render as
// the fake's for the same ruleset. Every feature below is seen both
// allowing and denying:
//
//	protocols       TCP, UDP, ICMP, ICMPv6 (ICMP is not ICMPv6), notProtocol, ipVersion
//	ICMP            type; type and code; another type; notICMP type, and
//	                type and code
//	nets            source nets (CIDR), notNets, destination nets and notNets
//	                (egress); CIDRs of one family restrict the rule to it;
//	                nets and ports together
//	ports           destination port, range, list, notPorts, UDP port, named
//	                ports (TCP and UDP), a list with a named port, named
//	                notPorts, source ports and notPorts
//	selectors       source selector, notSelector, !has(label); destination
//	                selector and notSelector (egress); a selector of a host
//	                endpoint (its expected IPs)
//	namespaces      a NetworkPolicy's selectors stay in its namespace;
//	                namespaceSelector
//	actions         Deny before Allow; Pass to the profile (ingress, egress);
//	                Log goes on to the next rule (ingress, egress; the kernel
//	                rule is checked to log with the policy's prefix and not
//	                to end in a verdict)
//	profiles        a profile's rules; Pass in a profile goes to the next
//	                profile; profiles after a policy's Pass
//	directions      workload ingress (forwarded, and from the host), workload
//	                egress (forwarded, and to the host)
//	host endpoints  ingress, egress, the endpoint of all interfaces ("*"),
//	                failsafe ports in and out under a deny-all policy
//	IPv6 NDP        neighbour discovery between host, workload and peer
//	                under policies that do not mention it
//
// The matrix (54 cases, 249 probes, as many again in the baseline) takes
// about 20 s. Not covered: log messages themselves
// (the kernel's nf_log does not log from a non-initial network namespace
// unless a host-wide sysctl allows it), SCTP and UDPLite.
//
// The kernel side is the Dataplane interface: Netlink (google/nftables
// encodes the messages; the whole batch goes to the kernel in one send,
// in a given network namespace) or Fake, which keeps the table in memory,
// checks references like the kernel, and renders `nft list table`-like
// text for golden tests.
package nft
