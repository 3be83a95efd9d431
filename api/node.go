package api

import (
	"net/netip"
)

// Node is one host of the fabric: a compute node, a route reflector or any
// other machine that runs bgpfabric. Its labels (metadata.labels) are what
// BGPPeer node and peer selectors and IPPool node selectors match.
type Node struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NodeSpec `json:"spec"`
}

// NodeSpec is a Node's desired configuration.
type NodeSpec struct {
	// BGP is unset on a node that does not speak BGP.
	BGP *NodeBGPSpec `json:"bgp,omitempty"`
}

// NodeBGPSpec is how a node speaks BGP.
type NodeBGPSpec struct {
	// ASNumber overrides BGPConfiguration's default AS for this node.
	ASNumber *uint32 `json:"asNumber,omitempty"`
	// IPv4Address and IPv6Address are the node's peering addresses with
	// their subnet prefix, e.g. "10.0.0.1/24" (a host address, not the
	// subnet's network address).
	IPv4Address string `json:"ipv4Address,omitempty"`
	IPv6Address string `json:"ipv6Address,omitempty"`
	// RouterID is the BGP identifier, a dotted quad. Default sets it to the
	// IPv4 address; an IPv6-only node must set it.
	RouterID string `json:"routerID,omitempty"`
	// RouteReflectorClusterID makes the node a route reflector of that
	// cluster (a dotted quad).
	RouteReflectorClusterID string `json:"routeReflectorClusterID,omitempty"`
	// Drain starts a graceful shutdown of the node's BGP (RFC 8326, set by
	// `bgpfabric node drain`): it advertises its routes again with the
	// GRACEFUL_SHUTDOWN community for BGPConfiguration's drainTime, so
	// that peers move their traffic away, then closes its sessions, and
	// keeps them closed until drain is unset (`bgpfabric node undrain`).
	Drain bool `json:"drain,omitempty"`
}

func init() {
	register(KindInfo{Kind: KindNode, Plural: "nodes", Short: []string{"no"}, New: func() Resource { return &Node{} }})
}

// GetTypeMeta implements Resource.
func (n *Node) GetTypeMeta() *TypeMeta { return &n.TypeMeta }

// GetObjectMeta implements Resource.
func (n *Node) GetObjectMeta() *ObjectMeta { return &n.ObjectMeta }

// DeepCopyResource implements Resource.
func (n *Node) DeepCopyResource() Resource { return deepCopy(n) }

// Default implements Resource: the router ID comes from the IPv4 address,
// and addresses are written in canonical form.
func (n *Node) Default() {
	setTypeMeta(&n.TypeMeta, KindNode)
	b := n.Spec.BGP
	if b == nil {
		return
	}
	for _, a := range []*string{&b.IPv4Address, &b.IPv6Address} {
		if p, err := netip.ParsePrefix(*a); err == nil {
			*a = p.String()
		}
	}
	if b.RouterID == "" {
		if p, err := netip.ParsePrefix(b.IPv4Address); err == nil && p.Addr().Is4() {
			b.RouterID = p.Addr().String()
		}
	}
}

// Validate implements Resource.
func (n *Node) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindNode, n)
	if b := n.Spec.BGP; b != nil {
		validateASN(&fe, "spec.bgp.asNumber", b.ASNumber)
		validateHostPrefix(&fe, "spec.bgp.ipv4Address", b.IPv4Address, 4)
		validateHostPrefix(&fe, "spec.bgp.ipv6Address", b.IPv6Address, 6)
		if b.IPv4Address == "" && b.IPv6Address == "" {
			fe.add("spec.bgp", nil, "needs ipv4Address or ipv6Address")
		}
		if b.RouterID == "" && b.IPv4Address == "" {
			fe.add("spec.bgp.routerID", nil, "is required when the node has no ipv4Address")
		}
		validateDottedQuad(&fe, "spec.bgp.routerID", b.RouterID)
		validateDottedQuad(&fe, "spec.bgp.routeReflectorClusterID", b.RouteReflectorClusterID)
	}
	return fe.result(KindNode, n)
}

// IPv4 returns the node's IPv4 address and subnet, if it has a valid one.
func (b *NodeBGPSpec) IPv4() (netip.Prefix, bool) { return hostPrefix(b.IPv4Address, 4) }

// IPv6 returns the node's IPv6 address and subnet, if it has a valid one.
func (b *NodeBGPSpec) IPv6() (netip.Prefix, bool) { return hostPrefix(b.IPv6Address, 6) }

func hostPrefix(s string, version int) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(s)
	if err != nil || ipVersion(p.Addr()) != version || p.Addr().Is4In6() {
		return netip.Prefix{}, false
	}
	return p, true
}

// validateHostPrefix checks an optional interface address with its subnet
// prefix length, of the given IP version.
func validateHostPrefix(fe *fieldErrors, path, s string, version int) {
	if s == "" {
		return
	}
	p, err := parsePrefix(s)
	if err != nil {
		fe.add(path, s, "%v", err)
		return
	}
	a := p.Addr()
	switch {
	case a.Zone() != "":
		fe.add(path, s, "must not have a zone")
	case ipVersion(a) != version || a.Is4In6():
		fe.add(path, s, "must be an IPv%d address", version)
	case a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
		fe.add(path, s, "must be a unicast host address")
	case p.Bits() < a.BitLen()-1 && p.Masked().Addr() == a:
		fe.add(path, s, "is the network address of its subnet, not a host address")
	}
}
