// Package cni is bgpfabric's CNI plugin: what container runtimes
// (containerd and CRI-O for Kubernetes, Podman, Nomad, ...) call to put a
// workload on the fabric. The bgpfabric binary runs it as `bgpfabric cni`
// and when invoked as `bgpfabric-cni`.
//
// It speaks CNI 1.1.0 and the older versions runtimes still send (0.3.0,
// 0.3.1, 0.4.0, 1.0.0) through github.com/containernetworking/cni/pkg/skel:
//
//   - ADD: for a Kubernetes pod with kubernetes.kubeconfig configured, first
//     the pod from the API server (kube.go, a plain HTTPS GET through
//     internal/kuberest): its labels and service account for the endpoint
//     (k8slabels.Pod, kube-controllers' rules), its Calico pool and
//     fixed-address annotations for IPAM (annotations.go); then addresses
//     from ipam (one IPv4 and/or one IPv6, under the handle
//     "<network>:<container ID>:<interface>"); a veth pair whose host side
//     is named HostIfName(namespace, workload, interface) and stays in the
//     runtime's namespace with proxy ARP on, and whose container side
//     (CNI_IFNAME) gets the /32 and /128 addresses, a default route via
//     169.254.1.1 (and fe80::1) and a permanent neighbour entry mapping
//     that gateway to the host side's MAC; a host route to each address;
//     the namespace's allow-all profile if it is missing; the
//     WorkloadEndpoint. A failure at any step undoes the earlier ones.
//   - DEL: removes whatever of that exists; idempotent.
//   - CHECK: compares the kernel and the endpoint with the ADD result.
//   - STATUS: the datastore answers, the node is registered, its agent (if
//     it reports) is ready.
//   - GC: releases this node's attachments of the network that the
//     runtime no longer lists.
//   - VERSION.
//
// Errors carry the spec's codes: 7 for invalid configuration (naming the
// field), 11 when the datastore or the API server is unreachable or IPAM
// lost too many races (try again later), 50 from STATUS when not available, 999 otherwise.
//
// The datapath work (dataplane_linux.go) goes through netlink handles
// opened in the host and container namespaces, never through the calling
// thread's namespace, so tests run the plugin in-process against
// namespaces they created.
package cni
