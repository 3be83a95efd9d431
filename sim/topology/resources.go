package topology

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/manifest"
)

// resources generates the datastore resources of the plan's model and adds
// the topology's own, which replace generated ones of the same identity.
func (e *expander) resources() {
	var out []api.Resource
	add := func(p path, r api.Resource) {
		r.Default()
		if err := r.Validate(); err != nil {
			var ve *api.ValidationError
			if len(p) == 2 && p[0] == "pools" && errors.As(err, &ve) {
				// A pool's spec fields have the names of the topology's.
				for _, f := range ve.Fields {
					e.c.add(append(p, parsePath(strings.TrimPrefix(f.Field, "spec."))...), "%s", strings.TrimPrefix(f.Error(), f.Field+": "))
				}
				return
			}
			e.c.add(p, "generated %s: %v", r.GetTypeMeta().Kind, err)
			return
		}
		out = append(out, r)
	}
	add(path{"bgp"}, e.bgpConfiguration())
	for _, n := range e.p.Nodes {
		if !n.InFabric() {
			continue
		}
		add(path{"nodes", e.groupOf[n.Name], "labels"}, e.nodeResource(n))
	}
	for _, bp := range e.bgpPeers() {
		add(path{"nodes"}, bp)
	}
	for i, pl := range e.pools() {
		p := path{"pools", i}
		if i >= len(e.t.Pools) {
			p = path{"pools"}
		}
		add(p, pl)
	}
	if len(e.c.errs) > 0 {
		return
	}
	index := map[string]int{}
	for i, r := range out {
		index[identity(r)] = i
	}
	inline := map[string]bool{}
	for i := range e.t.Resources {
		r, ok := e.inline(i)
		if !ok {
			continue
		}
		id := identity(r)
		if inline[id] {
			e.c.add(path{"resources", i}, "%s is given twice", id)
			continue
		}
		inline[id] = true
		if j, ok := index[id]; ok {
			out[j] = r
			continue
		}
		out = append(out, r)
	}
	e.p.Resources = out
}

func identity(r api.Resource) string {
	m := r.GetObjectMeta()
	if m.Namespace != "" {
		return r.GetTypeMeta().Kind + " " + m.Namespace + "/" + m.Name
	}
	return r.GetTypeMeta().Kind + " " + m.Name
}

// inline reads resources[i] through the manifest reader that `bgpfabric
// apply` uses, and locates its errors in the topology file.
func (e *expander) inline(i int) (api.Resource, bool) {
	n := &e.t.Resources[i]
	p := path{"resources", i}
	if n.Kind != yaml.MappingNode {
		e.c.add(p, "a resource must be a mapping with apiVersion, kind, metadata and spec")
		return nil, false
	}
	data, err := yaml.Marshal(n)
	if err != nil {
		e.c.add(p, "%v", err)
		return nil, false
	}
	docs, err := manifest.Parse(e.t.file, data)
	if err != nil {
		var ve *api.ValidationError
		if errors.As(err, &ve) {
			for _, f := range ve.Fields {
				e.c.add(append(p, parsePath(f.Field)...), "%s %s: %s", ve.Kind, ve.Name, strings.TrimPrefix(f.Error(), f.Field+": "))
			}
			return nil, false
		}
		var me *manifest.Error
		if errors.As(err, &me) {
			err = me.Err
		}
		e.c.add(p, "%v", err)
		return nil, false
	}
	return docs[0].Resource, true
}

func (e *expander) bgpConfiguration() *api.BGPConfiguration {
	b := e.t.BGP
	as := e.baseAS()
	mesh := true
	switch e.p.Model {
	case ModelReflectors, ModelASPerRack:
		mesh = false
	case ModelASPerNode:
		for _, n := range e.p.Nodes {
			if n.Role == RoleToR {
				mesh = false
			}
		}
	}
	c := &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: api.DefaultBGPConfigurationName}}
	c.Spec.ASNumber = &as
	c.Spec.NodeToNodeMeshEnabled = &mesh
	if b.ListenPort != 0 {
		port := b.ListenPort
		c.Spec.ListenPort = &port
	}
	c.Spec.KeepaliveTime = api.Duration(b.KeepaliveTime)
	c.Spec.HoldTime = api.Duration(b.HoldTime)
	if f := b.BFD; f != nil {
		c.Spec.BFD = &api.BFD{Enabled: &f.Enabled, MinTx: api.Duration(f.MinTx), MinRx: api.Duration(f.MinRx), RequireUp: &f.RequireUp}
		if f.Multiplier != 0 {
			c.Spec.BFD.Multiplier = &f.Multiplier
		}
	}
	return c
}

func (e *expander) nodeResource(n *NodePlan) *api.Node {
	labels := maps.Clone(e.t.Nodes[e.groupOf[n.Name]].Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelRole], labels[LabelGroup] = n.Role, n.Group
	if n.Segment != "" {
		labels[LabelSegment] = n.Segment
	}
	if n.Role == RoleReflector {
		labels[LabelRouteReflector] = "true"
	}
	n.Labels = labels
	r := &api.Node{ObjectMeta: api.ObjectMeta{Name: n.Name, Labels: maps.Clone(labels)}}
	bgp := &api.NodeBGPSpec{IPv4Address: n.IPv4.String()}
	if n.IPv6.IsValid() {
		bgp.IPv6Address = n.IPv6.String()
	}
	if n.ASNumber != e.baseAS() {
		as := n.ASNumber
		bgp.ASNumber = &as
	}
	if n.ClusterID.IsValid() {
		bgp.RouteReflectorClusterID = n.ClusterID.String()
	}
	r.Spec.BGP = bgp
	return r
}

// bgpPeers are the model's sessions beyond the mesh: nodes with
// reflectors (whatever runs them: a reflector's Node carries the label the
// selectors pick), and nodes with the tor and external routers on their
// segment.
func (e *expander) bgpPeers() []api.Resource {
	var out []api.Resource
	if e.p.Model == ModelReflectors {
		out = append(out,
			&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "sim-nodes-to-reflectors"}, Spec: api.BGPPeerSpec{
				NodeSelector: "!has(" + LabelRouteReflector + ")", PeerSelector: "has(" + LabelRouteReflector + ")"}},
			&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "sim-reflector-mesh"}, Spec: api.BGPPeerSpec{
				NodeSelector: "has(" + LabelRouteReflector + ")", PeerSelector: "has(" + LabelRouteReflector + ")"}})
	}
	for _, r := range e.p.Nodes {
		if r.InFabric() || r.Segment == "" {
			continue
		}
		for _, a := range []netip.Prefix{r.IPv4, r.IPv6} {
			if !a.IsValid() {
				continue
			}
			name := "sim-" + r.Name
			if a.Addr().Is6() {
				name += "-v6"
			}
			as := r.ASNumber
			out = append(out, &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.BGPPeerSpec{
				NodeSelector: fmt.Sprintf("%s == '%s'", LabelSegment, r.Segment),
				PeerIP:       a.Addr().String(),
				ASNumber:     &as,
			}})
		}
	}
	return out
}

func (e *expander) pools() []api.Resource {
	var out []api.Resource
	for i, p := range e.t.Pools {
		name := p.Name
		if name == "" {
			name = fmt.Sprintf("pool-%d", i+1)
		}
		out = append(out, &api.IPPool{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.IPPoolSpec{
			CIDR: p.CIDR, BlockSize: p.BlockSize, VXLANMode: api.VXLANMode(p.VXLANMode),
			NATOutgoing: p.NATOutgoing, NodeSelector: p.NodeSelector,
		}})
	}
	if len(out) == 0 {
		out = append(out, &api.IPPool{ObjectMeta: api.ObjectMeta{Name: "sim-ipv4"}, Spec: api.IPPoolSpec{CIDR: DefaultPoolV4(e.o.Slot).String()}})
		if e.dualStack() {
			out = append(out, &api.IPPool{ObjectMeta: api.ObjectMeta{Name: "sim-ipv6"}, Spec: api.IPPoolSpec{CIDR: DefaultPoolV6(e.o.Slot).String()}})
		}
	}
	return out
}
