// Package ifaces keeps the kernel settings of felix's workload interfaces
// (the host sides of the workloads' veths) equal to what the calculation
// wants, and turns on forwarding for the whole namespace.
//
// For each workload interface, as Calico felix does (see sysctl.go for the
// list and the reasons): IPv4 forwarding, proxy ARP without delay and
// strict reverse-path filtering; IPv6 forwarding, proxy NDP and no router
// advertisements; and a proxy neighbour entry for each IPv6 gateway the
// workloads use (such as fe80::1), so that the host answers their
// neighbour solicitations for it.
//
// How a workload reaches its gateway: the CNI plugin gives the workload a
// default route via 169.254.1.1 (onlink) and a permanent neighbour entry
// mapping 169.254.1.1 to the host side's MAC, so the workload never needs
// an ARP answer for it. Proxy ARP answers only for addresses that the host
// can route through another interface; in a node namespace without a
// default route (as in the simulator) nothing routes 169.254.1.1, so proxy
// ARP alone would not answer, and the static entry is what makes it work.
// Proxy ARP still matters for everything else a workload may ARP for.
//
// Sysctls are written through /proc/sys files opened by a thread that has
// entered the target namespace (/proc/sys/net shows the namespace of the
// thread that opens it); neighbour entries go through netlink in that
// namespace. The Kernel interface hides both; Fake is its in-memory
// version for tests.
//
// A Manager is not safe for concurrent use: felix's loop owns it.
package ifaces
