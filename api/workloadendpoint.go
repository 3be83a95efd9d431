package api

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// WorkloadEndpoint is the network interface of a workload (a pod or
// container) on a node: the host side of its veth, its addresses and the
// profiles and labels that policy selects it by. The CNI plugin writes it
// and felix programs routes and policy for it.
type WorkloadEndpoint struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       WorkloadEndpointSpec `json:"spec"`
}

// WorkloadEndpointSpec describes the endpoint.
type WorkloadEndpointSpec struct {
	// Node is the node the workload runs on.
	Node string `json:"node"`
	// Orchestrator is what created the workload, e.g. "k8s" or "cni".
	Orchestrator string `json:"orchestrator"`
	// Workload is the pod or container name.
	Workload string `json:"workload"`
	// ContainerID is the container runtime's ID.
	ContainerID string `json:"containerID,omitempty"`
	// Endpoint is the interface's name inside the workload, e.g. "eth0".
	Endpoint string `json:"endpoint"`
	// InterfaceName is the host side of the veth (a Linux interface name).
	InterfaceName string `json:"interfaceName"`
	// MAC is the workload interface's MAC address.
	MAC string `json:"mac,omitempty"`
	// IPNetworks are the workload's addresses as host routes: /32 or /128.
	IPNetworks []string `json:"ipNetworks,omitempty"`
	// IPv4Gateway and IPv6Gateway are the gateways the workload uses.
	IPv4Gateway string `json:"ipv4Gateway,omitempty"`
	IPv6Gateway string `json:"ipv6Gateway,omitempty"`
	// Profiles apply their rules and labels to the endpoint.
	Profiles []string `json:"profiles,omitempty"`
	// Ports are the endpoint's named ports.
	Ports []EndpointPort `json:"ports,omitempty"`
}

func init() {
	register(KindInfo{Kind: KindWorkloadEndpoint, Plural: "workloadendpoints", Short: []string{"wep", "weps"}, Namespaced: true,
		New: func() Resource { return &WorkloadEndpoint{} }})
}

// GetTypeMeta implements Resource.
func (w *WorkloadEndpoint) GetTypeMeta() *TypeMeta { return &w.TypeMeta }

// GetObjectMeta implements Resource.
func (w *WorkloadEndpoint) GetObjectMeta() *ObjectMeta { return &w.ObjectMeta }

// DeepCopyResource implements Resource.
func (w *WorkloadEndpoint) DeepCopyResource() Resource { return deepCopy(w) }

// WorkloadEndpointName returns Calico's name for an endpoint: its four
// identifying parts joined by "-", with each "-" inside a part doubled so
// that the name is unambiguous: ("node-1", "k8s", "web", "eth0") gives
// "node--1-k8s-web-eth0".
func WorkloadEndpointName(node, orchestrator, workload, endpoint string) string {
	parts := []string{node, orchestrator, workload, endpoint}
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, "-", "--")
	}
	return strings.Join(parts, "-")
}

// Default implements Resource: addresses are written in canonical form.
func (w *WorkloadEndpoint) Default() {
	setTypeMeta(&w.TypeMeta, KindWorkloadEndpoint)
	s := &w.Spec
	for i, n := range s.IPNetworks {
		if p, err := netip.ParsePrefix(n); err == nil && p.IsSingleIP() {
			s.IPNetworks[i] = p.String()
		}
	}
	if m, err := net.ParseMAC(s.MAC); err == nil && len(m) == 6 {
		s.MAC = m.String()
	}
	defaultPortList(s.Ports)
}

// Validate implements Resource.
func (w *WorkloadEndpoint) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindWorkloadEndpoint, w)
	s := &w.Spec
	validateName(&fe, "spec.node", s.Node)
	for _, f := range []struct{ name, v string }{
		{"orchestrator", s.Orchestrator}, {"workload", s.Workload}, {"endpoint", s.Endpoint},
	} {
		if f.v == "" {
			fe.add("spec."+f.name, nil, "is required")
		}
	}
	if msg := checkIfName(s.InterfaceName); msg != "" {
		fe.add("spec.interfaceName", s.InterfaceName, "%s", msg)
	}
	if s.MAC != "" {
		if m, err := net.ParseMAC(s.MAC); err != nil || len(m) != 6 {
			fe.add("spec.mac", s.MAC, "must be a 48-bit MAC address such as 02:00:0a:00:00:01")
		}
	}
	seen := map[netip.Prefix]bool{}
	for i, n := range s.IPNetworks {
		p := fmt.Sprintf("spec.ipNetworks[%d]", i)
		pfx, err := parsePrefix(n)
		switch {
		case err != nil:
			fe.add(p, n, "%v", err)
		case pfx.Addr().Zone() != "" || pfx.Addr().Is4In6():
			fe.add(p, n, "must be a plain IPv4 or IPv6 address")
		case !pfx.IsSingleIP():
			fe.add(p, n, "must be a host route: /32 for IPv4, /128 for IPv6")
		case seen[pfx]:
			fe.add(p, n, "is listed twice")
		}
		seen[pfx] = true
	}
	validateIP(&fe, "spec.ipv4Gateway", s.IPv4Gateway, 4)
	validateIP(&fe, "spec.ipv6Gateway", s.IPv6Gateway, 6)
	validateProfileNames(&fe, "spec.profiles", s.Profiles)
	validatePortList(&fe, "spec.ports", s.Ports)
	return fe.result(KindWorkloadEndpoint, w)
}

// Addrs returns the endpoint's addresses (those of its valid IPNetworks).
func (s *WorkloadEndpointSpec) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, n := range s.IPNetworks {
		if p, err := netip.ParsePrefix(n); err == nil && p.IsSingleIP() {
			out = append(out, p.Addr())
		}
	}
	return out
}
