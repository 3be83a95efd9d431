// Package ui is the simulator's view of a fabric: a live web page that
// `sim up --ui` and `sim run --ui` serve (server-sent events from an
// in-process hub, assets embedded in the binary, no build step, no CDN),
// and the self-contained HTML report that `sim run --html` writes. Both
// draw the same graph, rendered in Go as SVG: nodes coloured by
// readiness, BGP sessions and links by state, reflectors, routers and
// compute nodes in tiers.
package ui

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"

	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Node states, as CSS classes "state-<state>" and in the events.
const (
	// StateDown: the agent's process does not run.
	StateDown = "down"
	// StateStarting: it runs, but its status does not say ready yet.
	StateStarting = "starting"
	// StateConverging: ready, but a session is not Established or a
	// route to another node's block is missing.
	StateConverging = "converging"
	// StateReady: ready, every session Established, every route in.
	StateReady = "ready"
)

// Session and link states.
const (
	SessionEstablished = "established"
	SessionConnecting  = "connecting" // any state short of Established
	SessionDown        = "down"       // an end's agent does not run
	SessionUnknown     = "unknown"    // neither end reports it
	LinkUp             = "up"
	LinkDown           = "down"
	LinkUnknown        = "unknown"
)

// Node is one node of the graph.
type Node struct {
	Name string `json:"name"`
	// Role is the topology's role (compute, reflector, tor, external).
	Role string `json:"role"`
	// Agent is what runs it: node, reflector or router.
	Agent        string `json:"agent"`
	State        string `json:"state"`
	AgentRunning bool   `json:"agent_running"`
	SessionsUp   int    `json:"sessions_up"`
	Sessions     int    `json:"sessions"`
	// Routes counts the routes of the node's main table; Installed of
	// Expected are the other nodes' IPAM blocks it has a route to.
	Routes    int `json:"routes"`
	Installed int `json:"installed"`
	Expected  int `json:"expected"`
	// X, Y: its place in the drawing.
	X int `json:"x"`
	Y int `json:"y"`
	// Class and Label are its element's CSS classes and status line,
	// derived from the fields above (nodeLook): the page sets them as
	// they come, so that the drawing is described in one place.
	Class  string `json:"class"`
	Label  string `json:"label"`
	Label2 string `json:"label2"`
}

// Edge is a BGP session or a link between two nodes (or a node and a
// segment).
type Edge struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"` // "session" or "link"
	A     string `json:"a"`
	B     string `json:"b"`
	State string `json:"state"`
	// Detail is the sessions' states as each end reports them, or the
	// link's interfaces.
	Detail string `json:"detail,omitempty"`
	// Class and Title are its element's CSS classes and tooltip (edgeLook).
	Class string `json:"class"`
	Title string `json:"title"`
}

// Segment is an L2 segment, drawn as a bar the nodes' ports hang from.
type Segment struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
	X       int      `json:"x"`
	Y       int      `json:"y"`
	W       int      `json:"w"`
}

// TimelineEntry is one moment of the run.
type TimelineEntry struct {
	// At is seconds since the view started following the run.
	At   float64 `json:"at"`
	Kind string  `json:"kind"` // "phase", "fault", "check"
	Text string  `json:"text"`
	// Status is "passed", "failed" or "" (no verdict).
	Status string `json:"status,omitempty"`
}

// Snapshot is the whole view at one moment: what a new page gets first,
// and what a page that fell behind gets again.
type Snapshot struct {
	Seq      uint64            `json:"seq"`
	Fabric   string            `json:"fabric"`
	RunID    string            `json:"run_id"`
	Phase    string            `json:"phase"`
	Progress string            `json:"progress,omitempty"`
	Graph    string            `json:"graph"` // identifies the drawing's elements
	Width    int               `json:"width"`
	Height   int               `json:"height"`
	Nodes    []Node            `json:"nodes"`
	Edges    []Edge            `json:"edges"`
	Segments []Segment         `json:"segments"`
	Checks   []sim.CheckResult `json:"checks"`
	Faults   []sim.FaultResult `json:"faults"`
	Timeline []TimelineEntry   `json:"timeline"`
}

func (s *Snapshot) clone() Snapshot {
	c := *s
	c.Nodes = slices.Clone(s.Nodes)
	c.Edges = slices.Clone(s.Edges)
	c.Segments = slices.Clone(s.Segments)
	c.Checks = slices.Clone(s.Checks)
	c.Faults = slices.Clone(s.Faults)
	c.Timeline = slices.Clone(s.Timeline)
	return c
}

// NodeID, SessionID, LinkID and SegmentID are the ids of the drawing's
// elements (HTML ids: a node's name is a DNS label, so they need no
// escaping beyond the template's).
func NodeID(name string) string       { return "node-" + name }
func SegmentID(name string) string    { return "segment-" + name }
func edgeID(kind, a, b string) string { return kind + "-" + a + "--" + b }

// Drawing geometry.
const (
	tierGap   = 170
	nodeGap   = 150
	margin    = 80
	nodeR     = 26
	segmentDY = 120
	rowGap    = 110
	// maxPerRow is the most nodes of a tier drawn side by side.
	maxPerRow = 12
)

// Layout places a plan's nodes in tiers by role — reflectors, top of rack
// and external routers above, compute nodes below, each tier in the
// plan's order — and its segments under the nodes. It is deterministic:
// the same plan draws the same picture.
func Layout(p *topology.Plan) Snapshot {
	tiers := map[int][]*topology.NodePlan{}
	for _, n := range p.Nodes {
		t := tierOf(n)
		tiers[t] = append(tiers[t], n)
	}
	var used []int
	for t := range tiers {
		used = append(used, t)
	}
	sort.Ints(used)
	widest := 1
	for _, ns := range tiers {
		widest = max(widest, min(len(ns), maxPerRow))
	}
	width := 2*margin + (widest-1)*nodeGap
	s := Snapshot{Fabric: p.Name, RunID: p.RunID, Width: width}
	y := margin
	for _, t := range used {
		ns := tiers[t]
		// A wide tier wraps into rows; each row is centred under the
		// widest.
		for len(ns) > 0 {
			row := ns[:min(len(ns), maxPerRow)]
			ns = ns[len(row):]
			x0 := margin + (widest-len(row))*nodeGap/2
			for i, n := range row {
				s.Nodes = append(s.Nodes, Node{Name: n.Name, Role: n.Role, Agent: n.Agent, State: StateStarting, X: x0 + i*nodeGap, Y: y})
			}
			if len(ns) > 0 {
				y += rowGap
			}
		}
		y += tierGap
	}
	bottom := y - tierGap
	for i, seg := range p.Segments {
		sg := Segment{Name: seg.Name, Members: slices.Clone(seg.Members), Y: bottom + segmentDY + i*40}
		lo, hi := width, 0
		for _, m := range seg.Members {
			if n := s.node(m); n != nil {
				lo, hi = min(lo, n.X), max(hi, n.X)
			}
		}
		if lo > hi {
			lo, hi = margin, width-margin
		}
		sg.X, sg.W = lo-nodeR, hi-lo+2*nodeR
		s.Segments = append(s.Segments, sg)
	}
	s.Height = bottom + margin
	if len(s.Segments) > 0 {
		s.Height = s.Segments[len(s.Segments)-1].Y + margin
	}
	s.Edges = planEdges(p)
	s.Graph = graphID(&s)
	s.look()
	return s
}

func tierOf(n *topology.NodePlan) int {
	switch {
	case n.Role == topology.RoleReflector || n.Agent == topology.AgentReflector:
		return 0
	case n.Agent == topology.AgentRouter:
		return 1
	default:
		return 2
	}
}

// look sets the classes and labels of the nodes and edges.
func (s *Snapshot) look() {
	for i := range s.Nodes {
		nodeLook(&s.Nodes[i])
	}
	for i := range s.Edges {
		edgeLook(&s.Edges[i])
	}
}

func (s *Snapshot) node(name string) *Node {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

// planEdges lists the links and the sessions the plan expects: sessions
// of bgpfabric nodes (as their agents compute them) and of the routers
// (their neighbours), one edge per pair of nodes.
func planEdges(p *topology.Plan) []Edge {
	var out []Edge
	for _, l := range p.Links {
		a, b := l.A, l.B
		if a.Node > b.Node {
			a, b = b, a
		}
		out = append(out, Edge{ID: edgeID("link", a.Node, b.Node) + "-" + a.Interface, Kind: "link", A: a.Node, B: b.Node,
			State: LinkUnknown, Detail: a.Node + ":" + a.Interface + " - " + b.Node + ":" + b.Interface})
	}
	for _, seg := range p.Segments {
		for _, m := range seg.Members {
			out = append(out, Edge{ID: edgeID("port", m, seg.Name), Kind: "link", A: m, B: "segment:" + seg.Name, State: LinkUnknown})
		}
	}
	seen := map[string]bool{}
	for _, pr := range sessionPairs(p) {
		id := edgeID("session", pr[0], pr[1])
		if !seen[id] {
			seen[id] = true
			out = append(out, Edge{ID: id, Kind: "session", A: pr[0], B: pr[1], State: SessionUnknown})
		}
	}
	return out
}

// sessionPairs lists the pairs of nodes that have a session, each as
// (lower name, higher name), in a stable order.
func sessionPairs(p *topology.Plan) [][2]string {
	owner := addrOwners(p)
	var pairs [][2]string
	add := func(a, b string) {
		if a == b || b == "" {
			return
		}
		if a > b {
			a, b = b, a
		}
		pairs = append(pairs, [2]string{a, b})
	}
	exp := sim.ExpectedSessions(p)
	for _, n := range p.Nodes {
		for _, a := range exp[n.Name] {
			add(n.Name, owner[a.String()])
		}
		for _, nb := range n.Neighbors {
			add(n.Name, owner[nb.Address.String()])
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	return slices.Compact(pairs)
}

// addrOwners maps every address of the plan's nodes (peering and link
// addresses) to its node.
func addrOwners(p *topology.Plan) map[string]string {
	m := map[string]string{}
	for _, n := range p.Nodes {
		for _, pfx := range []string{n.IPv4.String(), n.IPv6.String()} {
			if a, _, ok := strings.Cut(pfx, "/"); ok {
				m[a] = n.Name
			}
		}
	}
	for _, l := range p.Links {
		for _, e := range []topology.LinkEnd{l.A, l.B} {
			if e.IPv4.IsValid() {
				m[e.IPv4.Addr().String()] = e.Node
			}
			if e.IPv6.IsValid() {
				m[e.IPv6.Addr().String()] = e.Node
			}
		}
	}
	return m
}

func graphID(s *Snapshot) string {
	h := fnv.New64a()
	for _, n := range s.Nodes {
		fmt.Fprintf(h, "n%s,%d,%d;", n.Name, n.X, n.Y)
	}
	for _, e := range s.Edges {
		fmt.Fprintf(h, "e%s;", e.ID)
	}
	for _, g := range s.Segments {
		fmt.Fprintf(h, "s%s;", g.Name)
	}
	return fmt.Sprintf("%016x", h.Sum64())
}
