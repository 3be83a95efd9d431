package peering

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
)

// Input is everything peering depends on. Resources need not have been
// defaulted; they are never modified.
type Input struct {
	Nodes             []*api.Node
	BGPConfigurations []*api.BGPConfiguration
	BGPPeers          []*api.BGPPeer
}

// Add puts r in the input if it is a Node, a BGPConfiguration or a
// BGPPeer, and ignores it otherwise.
func (in *Input) Add(r api.Resource) {
	switch r := r.(type) {
	case *api.Node:
		in.Nodes = append(in.Nodes, r)
	case *api.BGPConfiguration:
		in.BGPConfigurations = append(in.BGPConfigurations, r)
	case *api.BGPPeer:
		in.BGPPeers = append(in.BGPPeers, r)
	}
}

// family indexes a node's addresses.
type family int

const (
	v4 family = iota
	v6
)

func (f family) String() string {
	if f == v4 {
		return "IPv4"
	}
	return "IPv6"
}

func familyOf(a netip.Addr) family {
	if a.Is4() {
		return v4
	}
	return v6
}

// node is a BGP-speaking Node, parsed.
type node struct {
	i         int // index in Model.nodes
	name      string
	labels    map[string]string
	as        uint32
	prefix    [2]netip.Prefix // by family; zero when absent
	routerID  netip.Addr
	clusterID netip.Addr
	port      uint16
}

func (n *node) addr(f family) netip.Addr { return n.prefix[f].Addr() }

func (n *node) isReflector() bool { return n.clusterID.IsValid() }

// Model is the fabric's peering inputs, parsed, checked and indexed once,
// so that many nodes' sessions can be computed from it cheaply: every
// selector of every BGPPeer has been evaluated exactly once per node. A
// Model is immutable and safe for concurrent use.
type Model struct {
	cfg    config
	nodes  []*node // BGP nodes with usable addresses, sorted by name
	byName map[string]*node
	byAddr map[netip.Addr]*node
	// broken are Nodes whose sessions cannot be computed, with the reason.
	broken map[string]error
	peers  []*peer // sorted by name
	// selections caches selector results by canonical selector, while
	// the BGPPeers are parsed.
	selections map[string]selection
	// warnings concern the resources themselves and go into every Result.
	warnings []Warning
}

// New parses and checks the input. It fails, naming the resources, if a
// BGPConfiguration or BGPPeer is invalid, if two Nodes have the same name,
// or if two Nodes have the same address: those leave the fabric's intent
// ambiguous, and keeping the sessions already running is safer than
// guessing. A Node that cannot speak BGP (an unusable address, a missing
// router ID) is only left out, with a warning; computing that node's own
// sessions fails.
func New(in Input) (*Model, error) {
	m := &Model{
		byName:     make(map[string]*node, len(in.Nodes)),
		byAddr:     make(map[netip.Addr]*node, len(in.Nodes)),
		broken:     map[string]error{},
		selections: map[string]selection{},
	}
	var errs []error
	cfg, perNode, err := m.parseConfigs(in.BGPConfigurations)
	if err != nil {
		errs = append(errs, err)
	}
	m.cfg = cfg
	if err := m.parseNodes(in.Nodes, perNode); err != nil {
		errs = append(errs, err)
	}
	if err := m.parsePeers(in.BGPPeers); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	m.selections = nil
	slices.SortFunc(m.warnings, compareWarnings)
	m.warnings = slices.Compact(m.warnings)
	return m, nil
}

func (m *Model) warn(kind, name, format string, args ...any) {
	m.warnings = append(m.warnings, Warning{Kind: kind, Name: name, Msg: fmt.Sprintf(format, args...)})
}

// parseNodes indexes the BGP nodes, in name order.
func (m *Model) parseNodes(nodes []*api.Node, ports map[string]uint16) error {
	sorted := slices.Clone(nodes)
	slices.SortStableFunc(sorted, func(a, b *api.Node) int { return strings.Compare(a.Name, b.Name) })
	var errs []error
	seen := make(map[string]bool, len(sorted))
	for _, an := range sorted {
		if seen[an.Name] {
			errs = append(errs, fmt.Errorf("two Nodes are named %q", an.Name))
			continue
		}
		seen[an.Name] = true
		if an.Spec.BGP == nil {
			continue // does not speak BGP
		}
		n, err := m.parseNode(an)
		if err != nil {
			m.broken[an.Name] = err
			m.warn(api.KindNode, an.Name, "left out of every peering: %v", err)
			continue
		}
		n.port = m.cfg.port
		if p, ok := ports[n.name]; ok {
			n.port = p
		}
		dup := false
		for f := range n.prefix {
			a := n.addr(family(f))
			if !a.IsValid() {
				continue
			}
			if o := m.byAddr[a]; o != nil {
				errs = append(errs, fmt.Errorf("Nodes %s and %s both have the address %s", o.name, n.name, a))
				dup = true
			}
		}
		if dup {
			continue
		}
		for f := range n.prefix {
			if a := n.addr(family(f)); a.IsValid() {
				m.byAddr[a] = n
			}
		}
		n.i = len(m.nodes)
		m.nodes = append(m.nodes, n)
		m.byName[n.name] = n
	}
	return errors.Join(errs...)
}

// parseNode reads one Node's BGP settings; the error names the field.
func (m *Model) parseNode(an *api.Node) (*node, error) {
	b := an.Spec.BGP
	n := &node{name: an.Name, labels: an.Labels, as: m.cfg.as}
	if b.ASNumber != nil {
		if *b.ASNumber == 0 {
			return nil, fmt.Errorf("spec.bgp.asNumber: must be an AS number from 1 to 4294967295")
		}
		n.as = *b.ASNumber
	}
	for _, f := range []struct {
		field, value string
		get          func() (netip.Prefix, bool)
		fam          family
	}{
		{"ipv4Address", b.IPv4Address, b.IPv4, v4},
		{"ipv6Address", b.IPv6Address, b.IPv6, v6},
	} {
		if f.value == "" {
			continue
		}
		p, ok := f.get()
		if !ok || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("spec.bgp.%s: must be an %s address with its prefix length (got %q)", f.field, f.fam, f.value)
		}
		n.prefix[f.fam] = p
	}
	if !n.prefix[v4].IsValid() && !n.prefix[v6].IsValid() {
		return nil, fmt.Errorf("spec.bgp: has neither ipv4Address nor ipv6Address")
	}
	var err error
	if n.routerID, err = dottedQuad(b.RouterID); err != nil {
		return nil, fmt.Errorf("spec.bgp.routerID: %v", err)
	}
	if !n.routerID.IsValid() {
		if !n.prefix[v4].IsValid() {
			return nil, fmt.Errorf("spec.bgp.routerID: is required when the node has no ipv4Address")
		}
		n.routerID = n.addr(v4)
	}
	if n.clusterID, err = dottedQuad(b.RouteReflectorClusterID); err != nil {
		return nil, fmt.Errorf("spec.bgp.routeReflectorClusterID: %v", err)
	}
	return n, nil
}

// dottedQuad parses an optional 32-bit ID written as an IPv4 address.
func dottedQuad(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() || a.IsUnspecified() {
		return netip.Addr{}, fmt.Errorf("must be a dotted quad such as 10.0.0.1 (got %q)", s)
	}
	return a, nil
}

// Nodes returns the names of the BGP-speaking Nodes (including those that
// are left out with a warning), sorted.
func (m *Model) Nodes() []string {
	names := make([]string, 0, len(m.nodes)+len(m.broken))
	for _, n := range m.nodes {
		names = append(names, n.name)
	}
	for name := range m.broken {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Warnings returns the warnings about the resources themselves (not about
// one node's sessions), sorted.
func (m *Model) Warnings() []Warning { return slices.Clone(m.warnings) }
