package topology

import (
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

// Plan is a topology expanded for one run: every namespace, link, address,
// AS number and resource, concrete. It is the runtime type that the sim
// builds; the same topology and options always give the same plan.
type Plan struct {
	Name  string
	Model string
	RunID string
	// Slot picks the run's address ranges (0..MaxSlot).
	Slot int
	// ManagementV4 and ManagementV6 are the ranges segment and link
	// addresses come from; ManagementV6 is invalid in an IPv4-only fabric.
	ManagementV4, ManagementV6 netip.Prefix

	Segments  []*SegmentPlan
	Nodes     []*NodePlan
	Links     []*LinkPlan
	Workloads []*WorkloadPlan
	// Resources are applied to the datastore before the agents start:
	// generated ones (BGPConfiguration, Nodes, BGPPeers, IPPools) in that
	// order, then the topology's own, which replace generated ones of the
	// same kind and name.
	Resources []api.Resource

	Faults []FaultPlan
	Checks CheckPlan
	// Kubernetes, if set, is the run's Kubernetes control plane.
	Kubernetes *KubernetesPlan

	// byNameMu guards byName, which indexes Nodes: Node builds it when it
	// is missing or stale, and the sim calls Node from many goroutines.
	byNameMu sync.Mutex
	byName   map[string]*NodePlan
}

// Agent kinds: what a node runs.
const (
	AgentNode      = "node"      // bgpfabric node: felix and router
	AgentReflector = "reflector" // bgpfabric reflector
	AgentRouter    = "router"    // a router from Debian (bird, frr, gobgpd)
)

// NodePlan is one node.
type NodePlan struct {
	Name  string
	Group string
	Role  string
	// Agent is AgentNode, AgentReflector or AgentRouter: a tor or
	// external router, or a reflector run by a router from Debian.
	Agent string
	// Router is the router software when Agent is AgentRouter.
	Router string
	// Netns is the node's network namespace.
	Netns    string
	ASNumber uint32
	// Labels are those of the node's Node resource.
	Labels map[string]string
	// Segment is the node's L2 segment, "" for a node on links only.
	Segment string
	// IPv4 and IPv6 are the node's address on its segment (its peering
	// address), or on its first link.
	IPv4, IPv6 netip.Prefix
	// ClusterID is a reflector's cluster ID.
	ClusterID  netip.Addr
	Interfaces []*Interface
	// Neighbors are the BGP sessions of a node that AgentRouter runs.
	Neighbors []Neighbor
	// RouterConfig is appended to the generated configuration of a node
	// that AgentRouter runs (the group's routerConfig).
	RouterConfig string
}

// RouterID is the node's BGP identifier.
func (n *NodePlan) RouterID() netip.Addr { return n.IPv4.Addr() }

// InFabric reports whether the node has a Node resource and takes part in
// the fabric's own peering: compute nodes and reflectors, whether the
// reflector is bgpfabric's or a router's from Debian. Tor and external
// routers are outside it: nodes reach them through BGPPeers with a peerIP.
func (n *NodePlan) InFabric() bool { return n.Agent != AgentRouter || n.Role == RoleReflector }

// Interface is one interface of a node.
type Interface struct {
	// Name inside the node's namespace.
	Name string
	// Segment is set for a port on a segment; PeerNode for a link.
	Segment  string
	PeerNode string
	// BridgePort is the other end's name in the segment's namespace.
	BridgePort string
	IPv4, IPv6 netip.Prefix
	// Impair is the impairment of what the node sends through the
	// interface, from boot on; nil for none.
	Impair *ImpairPlan
}

// Neighbor is one BGP session of a node that AgentRouter runs.
type Neighbor struct {
	Address  netip.Addr
	ASNumber uint32
	// Node is the neighbour's name, or its address when it is not a node
	// of the plan.
	Node string
	// Type is why the session exists, in the terms of BGPStatus.
	Type api.BGPPeerType
	// RRClient: the neighbour is this router's route-reflector client
	// (the cluster ID is the node's ClusterID, or its router ID).
	RRClient bool
	// NextHopSelf: routes sent to the neighbour carry this router as next
	// hop (iBGP to nodes of a rack whose routes come from other racks).
	NextHopSelf bool
	// Passive: wait for the neighbour to connect. A reflector's sessions
	// with nodes are passive on the side with the lower address, as
	// peering decides for every pair of fabric nodes.
	Passive bool
}

// SegmentPlan is one L2 segment.
type SegmentPlan struct {
	Name string
	// Netns holds the bridge.
	Netns  string
	Bridge string
	IPv4   netip.Prefix
	IPv6   netip.Prefix
	// Members are the nodes on the segment, in port order.
	Members []string
}

// LinkPlan is a point-to-point link.
type LinkPlan struct {
	A, B LinkEnd
}

// LinkEnd is one end of a link.
type LinkEnd struct {
	Node       string
	Interface  string
	IPv4, IPv6 netip.Prefix
}

// WorkloadPlan is one workload, created through the CNI plugin.
type WorkloadPlan struct {
	// Name is unique in the fabric: <node>-<group>[-<i>].
	Name      string
	Node      string
	Namespace string
	// Netns is the workload's network namespace.
	Netns string
	// Labels are the workload's own labels plus bgpfabric.io/node,
	// bgpfabric.io/namespace, bgpfabric.io/workload, bgpfabric.io/group
	// and bgpfabric.io/segment (its node's), for check selectors.
	Labels map[string]string
	Ports  []int
}

// FaultPlan is a fault with its target resolved.
type FaultPlan struct {
	Name   string
	Action string
	Node   string
	// Interface is the node's interface for link, impair and flap
	// faults.
	Interface string
	Duration  time.Duration
	// Impair is an impair fault's impairment.
	Impair *ImpairPlan
	// Nodes and From are a partition's sides, as node names; OneWay
	// drops only what Nodes send to From. Datastore cuts Nodes off from
	// the datastore instead.
	Nodes, From []string
	OneWay      bool
	Datastore   bool
	// Count and Interval: a flap's.
	Count    int
	Interval time.Duration
	// Peer is the other end of a session-reset's session.
	Peer string
}

// CheckPlan holds the checks.
type CheckPlan struct {
	Convergence  time.Duration
	Connectivity []FlowPlan
	Blocked      []FlowPlan
	Routes       []RouteCheck
}

// FlowPlan is a flow with its selectors parsed.
type FlowPlan struct {
	Name     string
	From, To *selector.Selector
	Protocol string
	Port     int
	Sample   int
	// Families are 4, 6 or both.
	Families []int
}

// Pair is a source and a destination workload.
type Pair struct{ From, To *WorkloadPlan }

// Pairs lists the (source, destination) pairs of a flow: every two distinct
// workloads that From and To select, in plan order, or, when the flow has a
// Sample smaller than that, a sample chosen pseudo-randomly but
// reproducibly from the run ID and flow name.
func (p *Plan) Pairs(f FlowPlan) []Pair {
	var out []Pair
	for _, a := range p.Workloads {
		if !f.From.Evaluate(a.Labels) {
			continue
		}
		for _, b := range p.Workloads {
			if a != b && f.To.Evaluate(b.Labels) {
				out = append(out, Pair{a, b})
			}
		}
	}
	if f.Sample <= 0 || f.Sample >= len(out) {
		return out
	}
	h := fnv.New64a()
	h.Write([]byte(p.RunID + "/" + f.Name))
	r := rand.New(rand.NewPCG(h.Sum64(), 0))
	idx := r.Perm(len(out))[:f.Sample]
	slices.Sort(idx)
	sample := make([]Pair, len(idx))
	for i, j := range idx {
		sample[i] = out[j]
	}
	return sample
}

// anyPair reports whether a flow selects at least one pair, in linear time.
func (p *Plan) anyPair(f FlowPlan) bool {
	var from, to []*WorkloadPlan
	for _, w := range p.Workloads {
		if f.From.Evaluate(w.Labels) {
			from = append(from, w)
		}
		if f.To.Evaluate(w.Labels) {
			to = append(to, w)
		}
	}
	return len(from) > 0 && len(to) > 0 && !(len(from) == 1 && len(to) == 1 && from[0] == to[0])
}

// DatastorePartition reports whether a fault of the plan cuts nodes off
// from the datastore (the sim then relays each agent's datastore
// connection).
func (p *Plan) DatastorePartition() bool {
	for _, f := range p.Faults {
		if f.Action == FaultPartition && f.Datastore {
			return true
		}
	}
	return false
}

// Node returns the node named name, or nil.
// It is safe for concurrent use, as long as nobody changes Nodes meanwhile.
func (p *Plan) Node(name string) *NodePlan {
	p.byNameMu.Lock()
	defer p.byNameMu.Unlock()
	if len(p.byName) != len(p.Nodes) {
		p.byName = make(map[string]*NodePlan, len(p.Nodes))
		for _, n := range p.Nodes {
			p.byName[n.Name] = n
		}
	}
	return p.byName[name]
}

// Interface returns the name of a node's interface on a segment, or of
// its link to peer (give one of the two), or "".
func (p *Plan) Interface(node, segment, peer string) string {
	n := p.Node(node)
	if n == nil {
		return ""
	}
	for _, ifc := range n.Interfaces {
		if (segment != "" && ifc.Segment == segment) || (peer != "" && ifc.PeerNode == peer) {
			return ifc.Name
		}
	}
	return ""
}

// Segment returns the segment named name, or nil.
func (p *Plan) Segment(name string) *SegmentPlan {
	for _, s := range p.Segments {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Namespaces lists every namespace of the plan: segments first (they hold
// the bridges that node ports attach to), then nodes, then workloads.
func (p *Plan) Namespaces() []string {
	var out []string
	for _, s := range p.Segments {
		out = append(out, s.Netns)
	}
	for _, n := range p.Nodes {
		out = append(out, n.Netns)
	}
	for _, w := range p.Workloads {
		out = append(out, w.Netns)
	}
	return out
}
