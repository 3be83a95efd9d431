package ui

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// observation is what the view knows of a fabric at one moment. Missing
// entries mean "not known" (a route set not listed, a link not seen).
type observation struct {
	bgp     map[string]*api.BGPStatus
	felix   map[string]*api.FelixStatus
	blocks  map[string][]netip.Prefix // IPAM blocks by host
	agentUp map[string]bool
	routes  map[string]map[netip.Prefix]bool
	links   map[string]map[string]bool // node → interface → up
}

// apply fills the states of a laid-out snapshot's nodes and edges from
// an observation. It is pure: the live view and the tests share it.
func apply(base Snapshot, p *topology.Plan, o observation) Snapshot {
	s := base.clone()
	owner := addrOwners(p)
	// Each end's report of its session to the other, by edge ID.
	type report struct{ from, state string }
	reports := map[string][]report{}
	for node, st := range o.bgp {
		if st == nil {
			continue
		}
		for _, peer := range st.Status.Peers {
			a, _, err := api.ParsePeerIP(peer.PeerIP)
			if err != nil {
				continue
			}
			other := owner[a.String()]
			if other == "" || other == node {
				continue
			}
			x, y := node, other
			if x > y {
				x, y = y, x
			}
			id := edgeID("session", x, y)
			reports[id] = append(reports[id], report{node, string(peer.State)})
		}
	}
	ifaceUp := func(node, iface string) (up, known bool) {
		m, ok := o.links[node]
		if !ok {
			return false, false
		}
		up, known = m[iface]
		return up, known
	}
	for i := range s.Edges {
		e := &s.Edges[i]
		switch e.Kind {
		case "session":
			rs := reports[e.ID]
			var parts []string
			est := 0
			for _, r := range rs {
				parts = append(parts, r.from+": "+r.state)
				if r.state == string(api.BGPEstablished) {
					est++
				}
			}
			sort.Strings(parts)
			e.Detail = strings.Join(parts, ", ")
			switch {
			case !o.agentUp[e.A] || !o.agentUp[e.B]:
				e.State = SessionDown
			case len(rs) == 0:
				e.State = SessionUnknown
			case est == len(rs):
				e.State = SessionEstablished
			default:
				e.State = SessionConnecting
			}
		case "link":
			ends := linkEnds(p, *e)
			e.State = LinkUp
			known := 0
			for _, end := range ends {
				up, ok := ifaceUp(end[0], end[1])
				if !ok {
					continue
				}
				known++
				if !up {
					e.State = LinkDown
				}
			}
			if known == 0 {
				e.State = LinkUnknown
			}
		}
	}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		np := p.Node(n.Name)
		n.AgentRunning = o.agentUp[n.Name]
		// Sessions to a node whose agent is down, and that node's
		// blocks, are not held against this one: as for the sim's own
		// convergence, the fabric has converged without it.
		n.Sessions, n.SessionsUp = 0, 0
		missing := 0
		for _, e := range s.Edges {
			if e.Kind == "session" && (e.A == n.Name || e.B == n.Name) {
				n.Sessions++
				if e.State == SessionEstablished {
					n.SessionsUp++
				} else if o.agentUp[e.A] && o.agentUp[e.B] {
					missing++
				}
			}
		}
		routes, listed := o.routes[n.Name]
		n.Routes = len(routes)
		n.Expected, n.Installed = 0, 0
		if np != nil && (np.Agent == topology.AgentNode || (np.Agent == topology.AgentRouter && np.Router != topology.RouterGoBGPd)) {
			for host, pfxs := range o.blocks {
				if host == n.Name || !o.agentUp[host] {
					continue
				}
				n.Expected += len(pfxs)
				for _, pfx := range pfxs {
					if routes[pfx] {
						n.Installed++
					}
				}
			}
		}
		ready := n.AgentRunning
		switch n.Agent {
		case topology.AgentNode:
			fs := o.felix[n.Name]
			ready = ready && fs != nil && fs.Status.Ready
		case topology.AgentReflector:
			ready = ready && o.bgp[n.Name] != nil
		}
		switch {
		case !n.AgentRunning:
			n.State = StateDown
		case !ready:
			n.State = StateStarting
		case missing > 0 || (listed && n.Installed < n.Expected):
			n.State = StateConverging
		default:
			n.State = StateReady
		}
	}
	s.look()
	s.Progress = progress(&s)
	return s
}

// linkEnds returns the (node, interface) ends of a link edge.
func linkEnds(p *topology.Plan, e Edge) [][2]string {
	if seg, ok := strings.CutPrefix(e.B, "segment:"); ok {
		if n := p.Node(e.A); n != nil {
			for _, i := range n.Interfaces {
				if i.Segment == seg {
					return [][2]string{{e.A, i.Name}}
				}
			}
		}
		return nil
	}
	for _, l := range p.Links {
		a, b := l.A, l.B
		if a.Node > b.Node {
			a, b = b, a
		}
		if edgeID("link", a.Node, b.Node)+"-"+a.Interface == e.ID {
			return [][2]string{{a.Node, a.Interface}, {b.Node, b.Interface}}
		}
	}
	return nil
}

func progress(s *Snapshot) string {
	var ready, up, sessions, inst, exp int
	for _, n := range s.Nodes {
		if n.State == StateReady {
			ready++
		}
		inst += n.Installed
		exp += n.Expected
	}
	for _, e := range s.Edges {
		if e.Kind == "session" {
			sessions++
			if e.State == SessionEstablished {
				up++
			}
		}
	}
	return fmt.Sprintf("nodes ready %d/%d, sessions established %d/%d, routes installed %d/%d", ready, len(s.Nodes), up, sessions, inst, exp)
}
