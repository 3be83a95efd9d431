package api

import (
	"fmt"
	"net/netip"
)

// HostEndpoint is a network interface of a node itself, which policy can
// protect like a workload's.
type HostEndpoint struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       HostEndpointSpec `json:"spec"`
}

// HostEndpointSpec describes the endpoint.
type HostEndpointSpec struct {
	// Node is the node the interface belongs to.
	Node string `json:"node"`
	// InterfaceName is the interface, or "*" for all of the node's
	// interfaces. Either it or ExpectedIPs is required.
	InterfaceName string `json:"interfaceName,omitempty"`
	// ExpectedIPs are the interface's addresses, which rules that select
	// the endpoint match.
	ExpectedIPs []string `json:"expectedIPs,omitempty"`
	// Profiles apply their rules and labels to the endpoint.
	Profiles []string `json:"profiles,omitempty"`
	// Ports are the endpoint's named ports.
	Ports []EndpointPort `json:"ports,omitempty"`
}

// AllInterfaces is the InterfaceName of a host endpoint for every
// interface of its node.
const AllInterfaces = "*"

func init() {
	register(KindInfo{Kind: KindHostEndpoint, Plural: "hostendpoints", Short: []string{"hep", "heps"},
		New: func() Resource { return &HostEndpoint{} }})
}

// GetTypeMeta implements Resource.
func (h *HostEndpoint) GetTypeMeta() *TypeMeta { return &h.TypeMeta }

// GetObjectMeta implements Resource.
func (h *HostEndpoint) GetObjectMeta() *ObjectMeta { return &h.ObjectMeta }

// DeepCopyResource implements Resource.
func (h *HostEndpoint) DeepCopyResource() Resource { return deepCopy(h) }

// Default implements Resource: addresses are written in canonical form.
func (h *HostEndpoint) Default() {
	setTypeMeta(&h.TypeMeta, KindHostEndpoint)
	for i, s := range h.Spec.ExpectedIPs {
		if a, err := netip.ParseAddr(s); err == nil {
			h.Spec.ExpectedIPs[i] = a.String()
		}
	}
	defaultPortList(h.Spec.Ports)
}

// Validate implements Resource.
func (h *HostEndpoint) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindHostEndpoint, h)
	s := &h.Spec
	validateName(&fe, "spec.node", s.Node)
	switch {
	case s.InterfaceName == "" && len(s.ExpectedIPs) == 0:
		fe.add("spec.interfaceName", nil, "is required when spec.expectedIPs is empty")
	case s.InterfaceName != "" && s.InterfaceName != AllInterfaces:
		if msg := checkIfName(s.InterfaceName); msg != "" {
			fe.add("spec.interfaceName", s.InterfaceName, "%s (or \"*\")", msg)
		}
	}
	for i, ip := range s.ExpectedIPs {
		p := fmt.Sprintf("spec.expectedIPs[%d]", i)
		if ip == "" {
			fe.add(p, ip, "must be an IP address")
		}
		validateIP(&fe, p, ip, 0)
	}
	validateProfileNames(&fe, "spec.profiles", s.Profiles)
	validatePortList(&fe, "spec.ports", s.Ports)
	return fe.result(KindHostEndpoint, h)
}
