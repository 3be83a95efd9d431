package topology

import (
	"go.yaml.in/yaml/v3"
)

// Topology is a topology file as written: the configuration type. Expand
// turns it into a Plan, the concrete runtime description. The YAML field
// names are documented in docs/topologies.md.
type Topology struct {
	// Name names the fabric (a DNS label).
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// BGP is the routing model.
	BGP BGP `yaml:"bgp"`
	// Addressing gives the management ranges that segment and link
	// addresses come from; empty means ranges derived from the run.
	Addressing Addressing `yaml:"addressing"`
	// Segments are the L2 segments (racks): one bridge each.
	Segments []Segment `yaml:"segments"`
	// Nodes are groups of nodes.
	Nodes []NodeGroup `yaml:"nodes"`
	// Links are point-to-point links between two nodes.
	Links []Link `yaml:"links"`
	// Pools are the workload IP pools; none means one IPv4 pool derived
	// from the run.
	Pools []Pool `yaml:"pools"`
	// Resources are extra documents, exactly as `bgpfabric apply` takes
	// them; a resource with the kind and name of a generated one replaces it.
	Resources []yaml.Node `yaml:"resources"`
	// Faults are injected in order after the first checks.
	Faults []Fault `yaml:"faults"`
	// Checks are what the sim verifies once the fabric has converged.
	Checks Checks `yaml:"checks"`
	// Kubernetes runs a kube-apiserver and kube-controllers beside the
	// fabric, workloads as Pods.
	Kubernetes *Kubernetes `yaml:"kubernetes"`

	// file and root locate fields for error messages.
	file string
	root *yaml.Node
}

// BGP models.
const (
	ModelMesh       = "mesh"
	ModelReflectors = "reflectors"
	ModelASPerRack  = "as-per-rack"
	ModelASPerNode  = "as-per-node"
)

// BGP says how the fabric's routing is organised.
type BGP struct {
	// Model is mesh (default), reflectors, as-per-rack or as-per-node.
	Model string `yaml:"model"`
	// ASNumber is the fabric's AS (mesh, reflectors) or the base that
	// per-rack and per-node AS numbers are counted from.
	ASNumber uint32 `yaml:"asNumber"`
	// KeepaliveTime and HoldTime go into the default BGPConfiguration.
	KeepaliveTime string `yaml:"keepaliveTime"`
	HoldTime      string `yaml:"holdTime"`
	// ListenPort is the port bgpfabric nodes listen on (default 179).
	ListenPort int `yaml:"listenPort"`
	// ClusterID is the reflectors' cluster ID (default 244.0.0.1).
	ClusterID string `yaml:"clusterID"`
	// BFD goes into the default BGPConfiguration's bfd: every session of
	// the fabric's nodes and reflectors (docs/bfd.md).
	BFD *BFD `yaml:"bfd"`
}

// BFD is the fabric's BFD (api.BFD): intervals such as "300ms".
type BFD struct {
	Enabled    bool   `yaml:"enabled"`
	MinTx      string `yaml:"minTx"`
	MinRx      string `yaml:"minRx"`
	Multiplier int    `yaml:"multiplier"`
	RequireUp  bool   `yaml:"requireUp"`
}

// Addressing gives the management ranges.
type Addressing struct {
	// IPv4 is the range segments (/24 each) and point-to-point links (/31
	// each) are numbered from: a /16, by default 10.(64+slot).0.0/16.
	IPv4 string `yaml:"ipv4"`
	// IPv6 turns on dual-stack management addresses: a /48, or "auto" for
	// fd00:bf:<slot>::/48.
	IPv6 string `yaml:"ipv6"`
}

// Segment is an L2 segment: a bridge in a namespace of its own, with a
// veth from every node on it.
type Segment struct {
	Name string `yaml:"name"`
	// IPv4 and IPv6 are the subnet; default: the next /24 (/64) of the
	// management range.
	IPv4 string `yaml:"ipv4"`
	IPv6 string `yaml:"ipv6"`
	// Impair degrades what every node on the segment sends into it (each
	// port's egress); a node group's own impair replaces it for its nodes.
	Impair *Impairment `yaml:"impair"`
}

// Impairment degrades the packets a node sends through one interface: a
// netem qdisc on the interface's egress, set through netlink. Percentages
// are written "2%" or "2" (0 to 100); durations as "100ms".
type Impairment struct {
	// Delay is added to every packet; Jitter varies it (uniformly, or as
	// Distribution says) by up to that much either way, and
	// DelayCorrelation ties each packet's variation to the last one's.
	Delay            string `yaml:"delay"`
	Jitter           string `yaml:"jitter"`
	DelayCorrelation string `yaml:"delayCorrelation"`
	// Distribution of the jitter: uniform (default) or normal.
	Distribution string `yaml:"distribution"`
	// Loss drops packets at random; LossCorrelation makes losses come in
	// bursts (each loss decision depends that much on the last one).
	Loss            string `yaml:"loss"`
	LossCorrelation string `yaml:"lossCorrelation"`
	// Duplicate sends that share of packets twice.
	Duplicate string `yaml:"duplicate"`
	// Reorder sends that share of packets at once, ahead of the delayed
	// rest (it needs a delay).
	Reorder string `yaml:"reorder"`
	// Corrupt flips a random bit in that share of packets.
	Corrupt string `yaml:"corrupt"`
	// Rate limits the interface's egress, such as "10mbit" (bit, kbit,
	// mbit, gbit per second); packets beyond it queue and then drop.
	Rate string `yaml:"rate"`
}

// Node roles.
const (
	RoleCompute   = "compute"
	RoleReflector = "reflector"
	RoleToR       = "tor"
	RoleExternal  = "external"
)

// Routers from Debian packages, for tor, external and reflector nodes.
const (
	RouterBIRD   = "bird"
	RouterFRR    = "frr"
	RouterGoBGPd = "gobgpd"
)

// NodeGroup is one or more nodes of one role.
type NodeGroup struct {
	// Name names the group; its nodes are Name-1 .. Name-Count, or just
	// Name when count is not given.
	Name string `yaml:"name"`
	// Count is how many nodes the group has; omitted means one node named
	// Name.
	Count *int `yaml:"count"`
	// Role is compute (default), reflector, tor or external.
	Role string `yaml:"role"`
	// Router is the software of a tor or external node: frr (default),
	// bird or gobgpd; of a reflector node: bgpfabric's own reflector when
	// empty, or bird, frr or gobgpd.
	Router string `yaml:"router"`
	// Segment is the L2 segment the nodes sit on; default the first.
	Segment string `yaml:"segment"`
	// ASNumber overrides the AS the model gives the group's nodes.
	ASNumber uint32 `yaml:"asNumber"`
	// Addresses fixes the nodes' segment addresses (one per node, with
	// prefix length) instead of numbering them from the segment.
	Addresses []string `yaml:"addresses"`
	// Labels go on the nodes' Node resources.
	Labels map[string]string `yaml:"labels"`
	// RouterConfig is text appended, as it is, to the configuration the
	// sim generates for the group's router (tor, external, or a reflector
	// run by a router): frr.conf, bird.conf or gobgpd.toml. It adds what
	// the generated sessions do not say, such as routes to originate or
	// BIRD filters and tables.
	RouterConfig string `yaml:"routerConfig"`
	// Workloads are started on every node of the group.
	Workloads []WorkloadGroup `yaml:"workloads"`
	// Impair degrades what the group's nodes send into their segment
	// (their port's egress), from boot on.
	Impair *Impairment `yaml:"impair"`
}

// WorkloadGroup is a set of workloads on each node of a group.
type WorkloadGroup struct {
	// Name names the workloads: <node>-<name>, or <node>-<name>-<i> with
	// a count.
	Name  string `yaml:"name"`
	Count *int   `yaml:"count"`
	// Namespace is the orchestrator namespace (default "default").
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
	// Ports are TCP ports the sim listens on inside the workload, for
	// checks.
	Ports []int `yaml:"ports"`
}

// Link is a point-to-point link between two nodes.
type Link struct {
	Between []string `yaml:"between"`
	// IPv4 and IPv6 are the link's subnet (/31, /30; /127, /126); default
	// the next one of the management range.
	IPv4 string `yaml:"ipv4"`
	IPv6 string `yaml:"ipv6"`
	// Impair degrades the link in both directions (each end's egress),
	// from boot on.
	Impair *Impairment `yaml:"impair"`
}

// Pool is a workload IP pool.
type Pool struct {
	Name         string `yaml:"name"`
	CIDR         string `yaml:"cidr"`
	BlockSize    int    `yaml:"blockSize"`
	VXLANMode    string `yaml:"vxlanMode"`
	NATOutgoing  bool   `yaml:"natOutgoing"`
	NodeSelector string `yaml:"nodeSelector"`
}

// Fault actions.
const (
	FaultKillAgent     = "kill-agent"
	FaultRestartAgent  = "restart-agent"
	FaultLinkDown      = "link-down"
	FaultLinkUp        = "link-up"
	FaultStopDatastore = "stop-datastore"
	FaultImpair        = "impair"
	FaultPartition     = "partition"
	FaultPauseAgent    = "pause-agent"
	FaultFlap          = "flap"
	FaultSessionReset  = "session-reset"
)

// Partition directions.
const (
	DirectionBoth   = "both"
	DirectionOneWay = "one-way"
)

// Fault is one failure to inject.
type Fault struct {
	Name string `yaml:"name"`
	// Action is kill-agent, restart-agent, link-down, link-up,
	// stop-datastore, impair, partition, pause-agent, flap or
	// session-reset (of the BGP session between Node and Peer).
	Action string `yaml:"action"`
	// Node is the target of agent, link, impair and flap faults.
	Node string `yaml:"node"`
	// Segment or Peer picks the link of Node for link, impair and flap
	// faults: its port on a segment, or its point-to-point link to Peer.
	Segment string `yaml:"segment"`
	Peer    string `yaml:"peer"`
	// Duration: how long a link stays down, the datastore stopped, an
	// impairment or partition in place or an agent paused before it is
	// restored; 0 leaves it so (required for pause-agent).
	Duration string `yaml:"duration"`
	// Impair is the impairment of an impair fault: it replaces the
	// interface's own (if any) for the fault's duration.
	Impair *Impairment `yaml:"impair"`
	// Nodes and From are the two sides of a partition: node or group
	// names. Datastore, instead of From, cuts Nodes off from the
	// datastore only (runs that `sim run` or the Go API boot).
	Nodes     []string `yaml:"nodes"`
	From      []string `yaml:"from"`
	Datastore bool     `yaml:"datastore"`
	// Direction of a partition: both (default), or one-way: only what
	// Nodes send to From is dropped.
	Direction string `yaml:"direction"`
	// Count and Interval of a flap: the link goes down and up Count
	// times, staying down, then up, for Interval each time.
	Count    int    `yaml:"count"`
	Interval string `yaml:"interval"`
}

// Checks are what the sim verifies.
type Checks struct {
	// Convergence is the deadline for the fabric to converge (default
	// 60s).
	Convergence string `yaml:"convergence"`
	// Connectivity pairs must reach each other.
	Connectivity []Flow `yaml:"connectivity"`
	// Blocked pairs must not.
	Blocked []Flow `yaml:"blocked"`
	// Routes are routes expected on nodes.
	Routes []RouteCheck `yaml:"routes"`
}

// Flow is a set of (source, destination) workload pairs and how to probe
// them.
type Flow struct {
	Name string `yaml:"name"`
	// From and To are label selectors over workloads (default all()).
	// Besides its own labels, a workload carries bgpfabric.io/node,
	// bgpfabric.io/namespace and bgpfabric.io/workload.
	From string `yaml:"from"`
	To   string `yaml:"to"`
	// Protocol is icmp (default) or tcp; Port is required for tcp.
	Protocol string `yaml:"protocol"`
	Port     int    `yaml:"port"`
	// Sample, when set, checks only that many pairs, chosen at random
	// (seeded by the run ID); 0 checks all pairs.
	Sample int `yaml:"sample"`
	// Family is 4 (default), 6 or 0 for both.
	Family *int `yaml:"family"`
}

// RouteCheck is routes that must be (or must not be) on a node.
type RouteCheck struct {
	Node    string   `yaml:"node"`
	Present []string `yaml:"present"`
	Absent  []string `yaml:"absent"`
	// Blocks, when true, expects a route to every IPAM block affine to
	// another node.
	Blocks bool `yaml:"blocks"`
}
