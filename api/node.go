package api

// Node is one host of the fabric: a compute node, a route reflector or any
// other machine that runs bgpfabric.
type Node struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       NodeSpec `json:"spec"`
}

// NodeSpec is a Node's desired configuration.
type NodeSpec struct {
	BGP *NodeBGPSpec `json:"bgp,omitempty"`
}

// NodeBGPSpec is how a node speaks BGP.
type NodeBGPSpec struct {
	// ASNumber overrides BGPConfiguration's default AS for this node.
	ASNumber *uint32 `json:"asNumber,omitempty"`
	// IPv4Address and IPv6Address are the node's peering addresses with
	// their subnet prefix, e.g. "10.0.0.1/24".
	IPv4Address string `json:"ipv4Address,omitempty"`
	IPv6Address string `json:"ipv6Address,omitempty"`
	// RouterID defaults to the IPv4 address.
	RouterID string `json:"routerID,omitempty"`
	// RouteReflectorClusterID makes the node a route reflector of that
	// cluster (a dotted quad).
	RouteReflectorClusterID string `json:"routeReflectorClusterID,omitempty"`
}

func init() {
	register(KindInfo{Kind: KindNode, Plural: "nodes", Short: []string{"no"}, New: func() Resource { return &Node{} }})
}

func (n *Node) GetTypeMeta() *TypeMeta     { return &n.TypeMeta }
func (n *Node) GetObjectMeta() *ObjectMeta { return &n.ObjectMeta }
func (n *Node) DeepCopyResource() Resource { return deepCopy(n) }

func (n *Node) Default() {}

func (n *Node) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, n)
	return fe.result(n)
}
