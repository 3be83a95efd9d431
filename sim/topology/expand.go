package topology

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
	"github.com/bgpfabric/bgpfabric/peering"
)

// ExpandOptions are what one run adds to a topology.
type ExpandOptions struct {
	// RunID names the run's namespaces (six hex digits); empty means
	// "000000", for dry runs.
	RunID string
	// Slot picks the default address ranges (0..MaxSlot).
	Slot int
}

// Default AS numbers by model, when bgp.asNumber is not given.
const (
	DefaultASMesh      = 64512
	DefaultASPerRack   = 65000
	DefaultASPerNode   = 4200000000
	perNodeASOffset    = 1000
	DefaultClusterID   = "244.0.0.1"
	DefaultConvergence = 60 * time.Second
	defaultSegment     = "lan"
)

// Labels the sim puts on nodes and workloads.
const (
	LabelRole           = "bgpfabric.io/role"
	LabelSegment        = "bgpfabric.io/segment"
	LabelGroup          = "bgpfabric.io/group"
	LabelNode           = "bgpfabric.io/node"
	LabelNamespace      = "bgpfabric.io/namespace"
	LabelWorkload       = "bgpfabric.io/workload"
	LabelRouteReflector = "route-reflector"
)

// Expand turns a topology into the plan of one run. It validates the
// topology first, so a topology built in code gets the same checks as a
// parsed one.
func Expand(t *Topology, o ExpandOptions) (*Plan, error) {
	if err := t.validate(); err != nil {
		return nil, err
	}
	if o.RunID == "" {
		o.RunID = "000000"
	}
	if !ValidRunID(o.RunID) {
		return nil, fmt.Errorf("run ID %q: want six lower-case hex digits", o.RunID)
	}
	if o.Slot < 0 || o.Slot > MaxSlot {
		return nil, fmt.Errorf("slot %d: want 0..%d", o.Slot, MaxSlot)
	}
	e := &expander{t: t, o: o, c: &checker{t: t}, groupOf: map[string]int{}}
	e.p = &Plan{Name: t.Name, Model: t.BGP.Model, RunID: o.RunID, Slot: o.Slot}
	if e.p.Model == "" {
		e.p.Model = ModelMesh
	}
	for _, step := range []func(){e.ranges, e.segments, e.nodes, e.links, e.asNumbers, e.neighbors, e.workloads, e.kubernetes, e.resources, e.reflectorNeighbors, e.faults, e.checks} {
		step()
		if len(e.c.errs) > 0 {
			return nil, e.c.result()
		}
	}
	return e.p, nil
}

type expander struct {
	t *Topology
	o ExpandOptions
	c *checker
	p *Plan
	// groupOf maps node names to their group index.
	groupOf map[string]int
	// nextLink counts automatically numbered links.
	nextLink int
}

func (e *expander) ranges() {
	e.p.ManagementV4 = DefaultManagementV4(e.o.Slot)
	if s := e.t.Addressing.IPv4; s != "" {
		e.p.ManagementV4 = netip.MustParsePrefix(s)
	}
	switch s := e.t.Addressing.IPv6; s {
	case "":
	case "auto":
		e.p.ManagementV6 = DefaultManagementV6(e.o.Slot)
	default:
		e.p.ManagementV6 = netip.MustParsePrefix(s)
	}
}

func (e *expander) dualStack() bool { return e.p.ManagementV6.IsValid() }

func (e *expander) segments() {
	segs := e.t.Segments
	if len(segs) == 0 {
		segs = []Segment{{Name: defaultSegment}}
	}
	for i, s := range segs {
		sp := &SegmentPlan{Name: s.Name, Netns: SegmentNetns(e.o.RunID, s.Name), Bridge: "br0"}
		if s.IPv4 != "" {
			sp.IPv4 = netip.MustParsePrefix(s.IPv4)
		} else if pfx, ok := subnet(e.p.ManagementV4, 24, i); ok {
			sp.IPv4 = pfx
		} else {
			e.c.add(path{"segments", i}, "the management range %s has no room for segment %d", e.p.ManagementV4, i+1)
		}
		if e.dualStack() {
			if s.IPv6 != "" {
				sp.IPv6 = netip.MustParsePrefix(s.IPv6)
			} else if pfx, ok := subnet(e.p.ManagementV6, 64, i); ok {
				sp.IPv6 = pfx
			}
		}
		for _, o := range e.p.Segments {
			if o.IPv4.Overlaps(sp.IPv4) {
				e.c.add(path{"segments", i, "ipv4"}, "%s overlaps segment %s's %s", sp.IPv4, o.Name, o.IPv4)
			}
		}
		e.p.Segments = append(e.p.Segments, sp)
	}
}

// segmentDerived reports whether a segment's IPv4 subnet depends on the
// run's slot.
func (e *expander) segmentDerived(name string) bool {
	if e.t.Addressing.IPv4 != "" {
		return false
	}
	for _, s := range e.t.Segments {
		if s.Name == name {
			return s.IPv4 == ""
		}
	}
	return true
}

// linked reports which node names appear in links.
func (e *expander) linked() map[string]bool {
	m := map[string]bool{}
	for _, l := range e.t.Links {
		for _, n := range l.Between {
			m[n] = true
		}
	}
	return m
}

func (e *expander) nodes() {
	linked := e.linked()
	taken := map[netip.Addr]string{}
	type pending struct {
		n   *NodePlan
		seg *SegmentPlan
		gi  int
	}
	var auto []pending
	for gi, g := range e.t.Nodes {
		gp := path{"nodes", gi}
		role := roleOr(g.Role)
		count := 1
		if g.Count != nil {
			count = *g.Count
		}
		for j := range count {
			name := g.Name
			if g.Count != nil {
				name = fmt.Sprintf("%s-%d", g.Name, j+1)
			}
			if prev, dup := e.groupOf[name]; dup {
				e.c.add(gp.key("name"), "node %s clashes with a node of group %q", name, e.t.Nodes[prev].Name)
				continue
			}
			e.groupOf[name] = gi
			n := &NodePlan{Name: name, Group: g.Name, Role: role, Netns: NodeNetns(e.o.RunID, name)}
			switch role {
			case RoleCompute:
				n.Agent = AgentNode
			case RoleReflector:
				n.Agent = AgentReflector
				if g.Router != "" {
					n.Agent, n.Router = AgentRouter, g.Router
				}
			default:
				n.Agent, n.Router = AgentRouter, g.Router
				if n.Router == "" {
					n.Router = RouterFRR
				}
			}
			if n.Agent == AgentRouter {
				n.RouterConfig = g.RouterConfig
			}
			seg := g.Segment
			if seg == "" && !(role == RoleExternal && linked[name]) {
				seg = e.p.Segments[0].Name
			}
			e.p.Nodes = append(e.p.Nodes, n)
			if seg == "" {
				if g.Impair != nil {
					e.c.add(gp.key("impair"), "node %s has no segment port to impair (impair its links instead)", name)
				}
				continue
			}
			sp := e.p.Segment(seg)
			n.Segment = seg
			ifc := &Interface{Name: ifaceName(0), Segment: seg, BridgePort: bridgePortName(len(sp.Members)), Impair: e.segmentImpair(seg)}
			if g.Impair != nil {
				ifc.Impair = parseImpair(g.Impair)
			}
			sp.Members = append(sp.Members, name)
			n.Interfaces = append(n.Interfaces, ifc)
			if g.Addresses != nil {
				a := netip.MustParsePrefix(g.Addresses[j])
				ap := gp.key("addresses").idx(j)
				fam := sp.IPv4
				if a.Addr().Is6() {
					fam = sp.IPv6
				}
				switch {
				case !fam.IsValid() || !fam.Contains(a.Addr()) || a.Bits() != fam.Bits():
					hint := ""
					if e.segmentDerived(seg) {
						hint = "; its subnet is derived from the run: give segments[].ipv4 or addressing.ipv4 to fix addresses"
					}
					e.c.add(ap, "%s is not an address of segment %s (%s)%s", a, seg, fam, hint)
				case taken[a.Addr()] != "":
					e.c.add(ap, "%s is already node %s's", a.Addr(), taken[a.Addr()])
				default:
					taken[a.Addr()] = name
					if a.Addr().Is4() {
						ifc.IPv4 = a
					} else {
						ifc.IPv6 = a
					}
				}
			}
			auto = append(auto, pending{n, sp, gi})
		}
	}
	// Number the rest after the fixed ones are known.
	next := map[string]int{}
	for _, pd := range auto {
		ifc := pd.n.Interfaces[0]
		if !ifc.IPv4.IsValid() {
			for {
				next[pd.seg.Name+"/4"]++
				a, ok := host(pd.seg.IPv4, next[pd.seg.Name+"/4"])
				if !ok {
					e.c.add(path{"nodes", pd.gi}, "segment %s (%s) has no address left for node %s", pd.seg.Name, pd.seg.IPv4, pd.n.Name)
					return
				}
				if taken[a.Addr()] == "" {
					taken[a.Addr()] = pd.n.Name
					ifc.IPv4 = a
					break
				}
			}
		}
		if pd.seg.IPv6.IsValid() && !ifc.IPv6.IsValid() {
			for {
				next[pd.seg.Name+"/6"]++
				a, ok := host(pd.seg.IPv6, next[pd.seg.Name+"/6"])
				if !ok {
					e.c.add(path{"nodes", pd.gi}, "segment %s has no IPv6 address left", pd.seg.Name)
					return
				}
				if taken[a.Addr()] == "" {
					taken[a.Addr()] = pd.n.Name
					ifc.IPv6 = a
					break
				}
			}
		}
		pd.n.IPv4, pd.n.IPv6 = ifc.IPv4, ifc.IPv6
	}
}

func (e *expander) links() {
	seen := map[[2]string]bool{}
	for i, l := range e.t.Links {
		p := path{"links", i, "between"}
		a, b := e.p.Node(l.Between[0]), e.p.Node(l.Between[1])
		switch {
		case a == nil:
			e.c.add(p.idx(0), "no node %q", l.Between[0])
			continue
		case b == nil:
			e.c.add(p.idx(1), "no node %q", l.Between[1])
			continue
		case a == b:
			e.c.add(p, "a link needs two different nodes")
			continue
		case a.InFabric() || b.InFabric():
			e.c.add(p, "point-to-point links join tor and external routers; compute and reflector nodes peer over their segment")
			continue
		}
		key := [2]string{min(a.Name, b.Name), max(a.Name, b.Name)}
		if seen[key] {
			e.c.add(p, "%s and %s are already linked", a.Name, b.Name)
			continue
		}
		seen[key] = true
		var v4, v6 netip.Prefix
		if l.IPv4 != "" {
			v4 = netip.MustParsePrefix(l.IPv4)
		} else {
			v4 = e.autoLink(path{"links", i})
		}
		if l.IPv6 != "" {
			v6 = netip.MustParsePrefix(l.IPv6)
		} else if e.dualStack() {
			v6, _ = subnet(netip.PrefixFrom(lastSubnet(e.p.ManagementV6, 64), 64), 127, i)
		}
		lp := &LinkPlan{A: e.linkEnd(a, b, v4, v6, 1), B: e.linkEnd(b, a, v4, v6, 2)}
		if l.Impair != nil {
			a.Interfaces[len(a.Interfaces)-1].Impair = parseImpair(l.Impair)
			b.Interfaces[len(b.Interfaces)-1].Impair = parseImpair(l.Impair)
		}
		if !v4.IsValid() {
			return
		}
		e.p.Links = append(e.p.Links, lp)
	}
}

// autoLink numbers link subnets (/31) down from the top of the management
// range, and checks that they stay clear of the segments.
func (e *expander) autoLink(p path) netip.Prefix {
	m := e.p.ManagementV4
	n := 1<<(31-m.Bits()) - 1 - e.nextLink
	e.nextLink++
	v4, ok := subnet(m, 31, n)
	if !ok {
		e.c.add(p, "the management range %s has no room for more links", m)
		return netip.Prefix{}
	}
	for _, s := range e.p.Segments {
		if s.IPv4.Overlaps(v4) {
			e.c.add(p, "the management range %s has no room for link %s: segment %s uses it", m, v4, s.Name)
			return netip.Prefix{}
		}
	}
	return v4
}

func (e *expander) linkEnd(n, peer *NodePlan, v4, v6 netip.Prefix, hostIdx int) LinkEnd {
	end := LinkEnd{Node: n.Name, Interface: ifaceName(len(n.Interfaces))}
	if v4.IsValid() {
		end.IPv4, _ = pointToPoint(v4, hostIdx)
	}
	if v6.IsValid() {
		end.IPv6, _ = pointToPoint(v6, hostIdx)
	}
	n.Interfaces = append(n.Interfaces, &Interface{Name: end.Interface, PeerNode: peer.Name, IPv4: end.IPv4, IPv6: end.IPv6})
	if !n.IPv4.IsValid() {
		n.IPv4, n.IPv6 = end.IPv4, end.IPv6
	}
	return end
}

func (e *expander) baseAS() uint32 {
	if a := e.t.BGP.ASNumber; a != 0 {
		return a
	}
	switch e.p.Model {
	case ModelASPerRack:
		return DefaultASPerRack
	case ModelASPerNode:
		return DefaultASPerNode
	}
	return DefaultASMesh
}

func (e *expander) asNumbers() {
	base := uint64(e.baseAS())
	segIndex := map[string]int{}
	for i, s := range e.p.Segments {
		segIndex[s.Name] = i + 1
	}
	tors := map[string][]*NodePlan{}
	hasReflector := false
	k := 0
	var agentSegs []string
	for _, n := range e.p.Nodes {
		gi := e.groupOf[n.Name]
		g := e.t.Nodes[gi]
		gp := path{"nodes", gi}
		as := base
		switch {
		case n.Role == RoleToR:
			if e.p.Model == ModelMesh || e.p.Model == ModelReflectors {
				e.c.add(gp.key("role"), "tor routers belong to the as-per-rack and as-per-node models; with %s use role external", e.p.Model)
			}
			tors[n.Segment] = append(tors[n.Segment], n)
			as = base + uint64(segIndex[n.Segment])
		case n.Role == RoleExternal:
		case e.p.Model == ModelASPerRack:
			as = base + uint64(segIndex[n.Segment])
		case e.p.Model == ModelASPerNode:
			k++
			as = base + perNodeASOffset + uint64(k)
		}
		if n.Role == RoleReflector {
			hasReflector = true
			if e.p.Model != ModelReflectors {
				e.c.add(gp.key("role"), "reflector nodes belong to the reflectors model (this is %s)", e.p.Model)
			}
		}
		if n.InFabric() && !slices.Contains(agentSegs, n.Segment) {
			agentSegs = append(agentSegs, n.Segment)
		}
		if g.ASNumber != 0 {
			as = uint64(g.ASNumber)
		}
		if as > 1<<32-1 {
			e.c.add(gp, "the model's AS number for node %s overflows 32 bits; lower bgp.asNumber", n.Name)
			return
		}
		n.ASNumber = uint32(as)
	}
	switch e.p.Model {
	case ModelReflectors:
		if !hasReflector {
			e.c.add(path{"bgp", "model"}, "the reflectors model needs a node group with role: reflector")
		}
		fallthrough
	case ModelMesh:
		if len(agentSegs) > 1 {
			e.c.add(path{"nodes"}, "with the %s model every compute and reflector node must be on one segment (found %v); use as-per-rack with tor routers to join segments", e.p.Model, agentSegs)
		}
	case ModelASPerRack:
		for _, s := range agentSegs {
			if len(tors[s]) != 1 {
				e.c.add(path{"nodes"}, "as-per-rack: segment %s needs exactly one tor router (has %d)", s, len(tors[s]))
			}
		}
	case ModelASPerNode:
		for s, ts := range tors {
			if len(ts) > 1 {
				e.c.add(path{"nodes"}, "as-per-node: segment %s has %d tor routers; at most one", s, len(ts))
			}
		}
	}
	if e.p.Model == ModelReflectors {
		cid := e.t.BGP.ClusterID
		if cid == "" {
			cid = DefaultClusterID
		}
		for _, n := range e.p.Nodes {
			if n.Role == RoleReflector {
				n.ClusterID = netip.MustParseAddr(cid)
			}
		}
	}
}

// neighbors gives each tor and external router its sessions: with the
// compute and reflector nodes of its segment, and with the routers at the
// other end of its links. (Reflectors run by routers get theirs from
// reflectorNeighbors, once the resources exist.)
func (e *expander) neighbors() {
	for _, r := range e.p.Nodes {
		if r.InFabric() {
			continue
		}
		if r.Segment != "" {
			for _, name := range e.p.Segment(r.Segment).Members {
				n := e.p.Node(name)
				if !n.InFabric() {
					continue
				}
				ibgp := n.ASNumber == r.ASNumber
				nb := Neighbor{Node: n.Name, ASNumber: n.ASNumber, Type: api.PeerTypeNode, RRClient: ibgp && r.Role == RoleToR, NextHopSelf: ibgp}
				if nb.RRClient {
					nb.Type = api.PeerTypeReflectorClient
				}
				r.Neighbors = append(r.Neighbors, withAddr(nb, n.IPv4))
				if n.IPv6.IsValid() && r.IPv6.IsValid() {
					r.Neighbors = append(r.Neighbors, withAddr(nb, n.IPv6))
				}
			}
		}
		for _, l := range e.p.Links {
			var peer LinkEnd
			switch r.Name {
			case l.A.Node:
				peer = l.B
			case l.B.Node:
				peer = l.A
			default:
				continue
			}
			pn := e.p.Node(peer.Node)
			nb := Neighbor{Node: pn.Name, ASNumber: pn.ASNumber, Type: api.PeerTypeNode, NextHopSelf: pn.ASNumber == r.ASNumber}
			r.Neighbors = append(r.Neighbors, withAddr(nb, peer.IPv4))
			if peer.IPv6.IsValid() {
				r.Neighbors = append(r.Neighbors, withAddr(nb, peer.IPv6))
			}
		}
	}
}

func withAddr(n Neighbor, a netip.Prefix) Neighbor { n.Address = a.Addr(); return n }

// reflectorNeighbors gives each reflector that a router runs the sessions
// that bgpfabric's reflector would have in its place, computed by package
// peering from the plan's resources as every agent computes its own: the
// compute nodes as route-reflector clients, the other reflectors as
// non-client iBGP peers (through the generated BGPPeers, or whatever the
// topology's own resources say). Next hops stay as they are (iBGP
// reflection), and the cluster ID is the node's routeReflectorClusterID.
func (e *expander) reflectorNeighbors() {
	var in peering.Input
	for _, r := range e.p.Resources {
		in.Add(r)
	}
	var m *peering.Model
	for _, n := range e.p.Nodes {
		if n.Role != RoleReflector || n.Agent != AgentRouter {
			continue
		}
		gp := path{"nodes", e.groupOf[n.Name], "router"}
		if m == nil {
			var err error
			if m, err = peering.New(in); err != nil {
				e.c.add(gp, "computing %s's sessions: %v", n.Name, err)
				return
			}
		}
		res, err := m.Compute(n.Name)
		switch {
		case err != nil:
			e.c.add(gp, "computing %s's sessions: %v", n.Name, err)
			continue
		case !res.Local.IsReflector():
			e.c.add(gp, "node %s runs %s as a reflector, but its Node has no spec.bgp.routeReflectorClusterID", n.Name, n.Router)
			continue
		case len(res.Sessions) == 0:
			var ws []string
			for _, w := range res.Warnings {
				ws = append(ws, w.String())
			}
			e.c.add(gp, "reflector %s has no sessions: %s", n.Name, strings.Join(ws, "; "))
			continue
		}
		n.ClusterID = res.Local.ClusterID
		for _, s := range res.Sessions {
			nb := Neighbor{Address: s.PeerAddress, ASNumber: s.PeerAS, Node: s.PeerNode, Type: s.Type,
				RRClient: s.RouteReflectorClient, Passive: s.Passive}
			if nb.Node == "" {
				nb.Node = s.PeerAddress.String()
			}
			n.Neighbors = append(n.Neighbors, nb)
		}
	}
}

func (e *expander) workloads() {
	tcpPorts := map[int]bool{}
	for _, f := range append(slices.Clone(e.t.Checks.Connectivity), e.t.Checks.Blocked...) {
		if f.Protocol == "tcp" {
			tcpPorts[f.Port] = true
		}
	}
	for _, n := range e.p.Nodes {
		gi := e.groupOf[n.Name]
		for wi, w := range e.t.Nodes[gi].Workloads {
			count := 1
			if w.Count != nil {
				count = *w.Count
			}
			ns := w.Namespace
			if ns == "" {
				ns = "default"
			}
			ports := map[int]bool{}
			for _, p := range w.Ports {
				ports[p] = true
			}
			maps.Copy(ports, tcpPorts)
			for i := range count {
				name := n.Name + "-" + w.Name
				if w.Count != nil {
					name = fmt.Sprintf("%s-%d", name, i+1)
				}
				if len(e.p.Workloads) >= MaxWorkloads {
					e.c.add(path{"nodes"}, "has more than %d workloads", MaxWorkloads)
					return
				}
				if len(name) > 63 {
					e.c.add(path{"nodes", gi, "workloads", wi, "name"}, "workload name %s is longer than 63 characters", name)
					return
				}
				labels := maps.Clone(w.Labels)
				if labels == nil {
					labels = map[string]string{}
				}
				labels[LabelNode], labels[LabelNamespace], labels[LabelWorkload] = n.Name, ns, name
				labels[LabelGroup], labels[LabelSegment] = n.Group, n.Segment
				e.p.Workloads = append(e.p.Workloads, &WorkloadPlan{
					Name: name, Node: n.Name, Namespace: ns, Netns: WorkloadNetns(e.o.RunID, name),
					Labels: labels, Ports: slices.Sorted(maps.Keys(ports)),
				})
			}
		}
	}
	seen := map[string]bool{}
	for _, w := range e.p.Workloads {
		if seen[w.Name] {
			e.c.add(path{"nodes"}, "two workloads are named %s; rename a workload or node group", w.Name)
		}
		seen[w.Name] = true
	}
}

// segmentImpair is a segment's own impairment, parsed.
func (e *expander) segmentImpair(name string) *ImpairPlan {
	for _, s := range e.t.Segments {
		if s.Name == name {
			return parseImpair(s.Impair)
		}
	}
	return nil
}

// parseImpair parses an impairment that validate has checked.
func parseImpair(im *Impairment) *ImpairPlan {
	return (&checker{t: &Topology{}}).impairment(nil, im)
}

// nodeSet resolves a partition side: node names and group names.
func (e *expander) nodeSet(p path, names []string) []string {
	var out []string
	seen := map[string]bool{}
	for j, name := range names {
		var found []string
		if n := e.p.Node(name); n != nil {
			found = []string{name}
		} else {
			for _, n := range e.p.Nodes {
				if n.Group == name {
					found = append(found, n.Name)
				}
			}
		}
		if len(found) == 0 {
			e.c.add(p.idx(j), "no node or group %q", name)
		}
		for _, n := range found {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

func (e *expander) faults() {
	for i, f := range e.t.Faults {
		p := path{"faults", i}
		fp := FaultPlan{Name: f.Name, Action: f.Action, Node: f.Node, Impair: parseImpair(f.Impair), Count: f.Count,
			OneWay: f.Direction == DirectionOneWay}
		if fp.Name == "" {
			fp.Name = fmt.Sprintf("%s-%d", f.Action, i+1)
		}
		if f.Duration != "" {
			fp.Duration, _ = time.ParseDuration(f.Duration)
		}
		if f.Interval != "" {
			fp.Interval, _ = time.ParseDuration(f.Interval)
		}
		if f.Action == FaultPartition {
			fp.Nodes = e.nodeSet(p.key("nodes"), f.Nodes)
			fp.From = e.nodeSet(p.key("from"), f.From)
			fp.Datastore = f.Datastore
			for _, n := range fp.Nodes {
				if slices.Contains(fp.From, n) {
					e.c.add(p.key("from"), "node %s is on both sides of the partition", n)
				}
			}
		}
		if f.Action == FaultSessionReset {
			e.sessionReset(p, f, &fp)
			e.p.Faults = append(e.p.Faults, fp)
			continue
		}
		if f.Node != "" {
			n := e.p.Node(f.Node)
			if n == nil {
				e.c.add(p.key("node"), "no node %q", f.Node)
				continue
			}
			for _, ifc := range n.Interfaces {
				if (f.Segment != "" && ifc.Segment == f.Segment) || (f.Peer != "" && ifc.PeerNode == f.Peer) {
					fp.Interface = ifc.Name
				}
			}
			if (f.Segment != "" || f.Peer != "") && fp.Interface == "" {
				e.c.add(p, "node %s has no link to segment %q or peer %q", f.Node, f.Segment, f.Peer)
				continue
			}
		}
		e.p.Faults = append(e.p.Faults, fp)
	}
}

// sessionReset checks a session-reset's ends: two nodes, one of them a
// bgpfabric node or reflector or a gobgpd router, which the sim can tell
// to reset the session (BIRD and FRR have no such control in the sim). A
// router's sessions are in its configuration (Neighbors); those between
// two fabric nodes come from peering at run time, so a pair of fabric
// nodes without a session fails when the fault runs.
func (e *expander) sessionReset(p path, f Fault, fp *FaultPlan) {
	n, peer := e.p.Node(f.Node), e.p.Node(f.Peer)
	switch {
	case n == nil:
		e.c.add(p.key("node"), "no node %q", f.Node)
	case peer == nil:
		e.c.add(p.key("peer"), "no node %q", f.Peer)
	case !ResetsSessions(n) && !ResetsSessions(peer):
		e.c.add(p, "session-reset needs one end of the session to be a bgpfabric node or reflector, or a gobgpd router (the sim has no reset control for BIRD or FRR)")
	default:
		r, o := n, peer
		if !ResetsSessions(r) {
			r, o = peer, n
		}
		if r.Agent != AgentRouter && o.InFabric() {
			fp.Peer = f.Peer
			return
		}
		// A router's sessions are its Neighbors, whichever end resets.
		rt, other := r, o
		if rt.Agent != AgentRouter {
			rt, other = o, r
		}
		for _, nb := range rt.Neighbors {
			if nb.Node == other.Name {
				fp.Peer = f.Peer
				return
			}
		}
		e.c.add(p.key("peer"), "%s and %s have no BGP session", f.Node, f.Peer)
	}
}

// ResetsSessions reports whether the sim can reset the node's sessions: a
// bgpfabric node or reflector (its control socket) or a gobgpd router (its
// gRPC API).
func ResetsSessions(n *NodePlan) bool {
	return n.Agent == AgentNode || n.Agent == AgentReflector || (n.Agent == AgentRouter && n.Router == RouterGoBGPd)
}

func (e *expander) checks() {
	ch := e.t.Checks
	e.p.Checks.Convergence = DefaultConvergence
	if ch.Convergence != "" {
		e.p.Checks.Convergence, _ = time.ParseDuration(ch.Convergence)
	}
	flows := func(key string, in []Flow) []FlowPlan {
		var out []FlowPlan
		for i, f := range in {
			fp := FlowPlan{Name: f.Name, Protocol: f.Protocol, Port: f.Port, Sample: f.Sample,
				From: mustSelector(f.From), To: mustSelector(f.To)}
			if fp.Protocol == "" {
				fp.Protocol = "icmp"
			}
			if fp.Name == "" {
				fp.Name = fmt.Sprintf("%s-%d", key, i+1)
			}
			fam := 4
			if f.Family != nil {
				fam = *f.Family
			}
			switch fam {
			case 0:
				fp.Families = []int{4, 6}
			default:
				fp.Families = []int{fam}
			}
			if slices.Contains(fp.Families, 6) && !e.dualStack() && !e.hasV6Pool() {
				e.c.add(path{"checks", key, i, "family"}, "IPv6 flows need an IPv6 pool")
			}
			if !e.p.anyPair(fp) {
				e.c.add(path{"checks", key, i}, "selects no pair of workloads (from %s to %s)", fp.From, fp.To)
			}
			out = append(out, fp)
		}
		return out
	}
	e.p.Checks.Connectivity = flows("connectivity", ch.Connectivity)
	e.p.Checks.Blocked = flows("blocked", ch.Blocked)
	for i, r := range ch.Routes {
		if e.p.Node(r.Node) == nil {
			e.c.add(path{"checks", "routes", i, "node"}, "no node %q", r.Node)
		}
	}
	e.p.Checks.Routes = ch.Routes
}

func (e *expander) hasV6Pool() bool {
	for _, p := range e.t.Pools {
		if pfx, err := netip.ParsePrefix(p.CIDR); err == nil && pfx.Addr().Is6() {
			return true
		}
	}
	return false
}

func mustSelector(s string) *selector.Selector {
	if s == "" {
		s = "all()"
	}
	return selector.MustParse(s) // validated already
}
