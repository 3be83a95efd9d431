package topology

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
)

// Render writes the plan as text, one line per object, in plan order:
// what `bgpfabric sim plan` prints and what golden tests compare.
func (p *Plan) Render(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "fabric %s model %s run %s slot %d management %s", p.Name, p.Model, p.RunID, p.Slot, p.ManagementV4)
	if p.ManagementV6.IsValid() {
		fmt.Fprintf(&b, " %s", p.ManagementV6)
	}
	b.WriteByte('\n')
	for _, s := range p.Segments {
		fmt.Fprintf(&b, "segment %s netns %s bridge %s %s%s members %s\n", s.Name, s.Netns, s.Bridge, s.IPv4, opt(s.IPv6), strings.Join(s.Members, ","))
	}
	for _, n := range p.Nodes {
		agent := n.Agent
		if n.Router != "" {
			agent += "/" + n.Router
		}
		fmt.Fprintf(&b, "node %s role %s agent %s as %d netns %s addr %s%s", n.Name, n.Role, agent, n.ASNumber, n.Netns, n.IPv4, opt(n.IPv6))
		if n.ClusterID.IsValid() {
			fmt.Fprintf(&b, " cluster %s", n.ClusterID)
		}
		b.WriteByte('\n')
		for _, i := range n.Interfaces {
			to := "segment " + i.Segment + " port " + i.BridgePort
			if i.PeerNode != "" {
				to = "link " + i.PeerNode
			}
			imp := ""
			if i.Impair != nil {
				imp = " impair " + i.Impair.String()
			}
			fmt.Fprintf(&b, "  if %s %s %s%s%s\n", i.Name, to, i.IPv4, opt(i.IPv6), imp)
		}
		for _, nb := range n.Neighbors {
			fmt.Fprintf(&b, "  neighbor %s as %d (%s)", nb.Address, nb.ASNumber, nb.Node)
			if nb.RRClient {
				b.WriteString(" rr-client")
			}
			if nb.NextHopSelf {
				b.WriteString(" next-hop-self")
			}
			if nb.Passive {
				b.WriteString(" passive")
			}
			b.WriteByte('\n')
		}
		if n.RouterConfig != "" {
			fmt.Fprintf(&b, "  router-config %d bytes\n", len(n.RouterConfig))
		}
	}
	for _, l := range p.Links {
		fmt.Fprintf(&b, "link %s/%s %s%s -- %s/%s %s%s\n", l.A.Node, l.A.Interface, l.A.IPv4, opt(l.A.IPv6), l.B.Node, l.B.Interface, l.B.IPv4, opt(l.B.IPv6))
	}
	for _, w := range p.Workloads {
		fmt.Fprintf(&b, "workload %s node %s namespace %s netns %s labels %s ports %v\n", w.Name, w.Node, w.Namespace, w.Netns, labelString(w.Labels), w.Ports)
	}
	for _, r := range p.Resources {
		data, err := api.Encode(r)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "resource %s\n", data)
	}
	if k := p.Kubernetes; k != nil {
		fmt.Fprintf(&b, "kubernetes kube-apiserver kube-controllers %d namespaces %s\n", k.Controllers, strings.Join(k.Namespaces, ","))
		for _, n := range p.Nodes {
			if n.Agent == AgentNode {
				fmt.Fprintf(&b, "kubernetes Node %s\n", n.Name)
			}
		}
		for _, w := range p.Workloads {
			fmt.Fprintf(&b, "kubernetes Pod %s/%s node %s\n", w.Namespace, w.Name, w.Node)
		}
		for _, r := range k.Resources {
			fmt.Fprintf(&b, "kubernetes resource %s\n", r)
		}
	}
	for _, f := range p.Faults {
		fmt.Fprintf(&b, "fault %s %s node %s if %s duration %s%s\n", f.Name, f.Action, f.Node, f.Interface, f.Duration, faultExtra(f))
	}
	fmt.Fprintf(&b, "check convergence %s\n", p.Checks.Convergence)
	for _, set := range []struct {
		kind  string
		flows []FlowPlan
	}{{"connectivity", p.Checks.Connectivity}, {"blocked", p.Checks.Blocked}} {
		for _, f := range set.flows {
			fmt.Fprintf(&b, "check %s %s %s from %s to %s port %d sample %d families %v\n", set.kind, f.Name, f.Protocol, f.From, f.To, f.Port, f.Sample, f.Families)
		}
	}
	for _, r := range p.Checks.Routes {
		fmt.Fprintf(&b, "check routes node %s present %v absent %v blocks %v\n", r.Node, r.Present, r.Absent, r.Blocks)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func opt(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return " " + p.String()
}

func labelString(m map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

// faultExtra renders the fields of the newer fault actions, when set.
func faultExtra(f FaultPlan) string {
	var b strings.Builder
	if f.Impair != nil {
		b.WriteString(" impair " + f.Impair.String())
	}
	if len(f.Nodes) > 0 {
		b.WriteString(" nodes " + strings.Join(f.Nodes, ","))
	}
	if len(f.From) > 0 {
		b.WriteString(" from " + strings.Join(f.From, ","))
	}
	if f.Datastore {
		b.WriteString(" from datastore")
	}
	if f.OneWay {
		b.WriteString(" one-way")
	}
	if f.Peer != "" {
		b.WriteString(" peer " + f.Peer)
	}
	if f.Count > 0 {
		fmt.Fprintf(&b, " count %d interval %s", f.Count, f.Interval)
	}
	return b.String()
}
