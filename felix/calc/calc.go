package calc

import (
	"cmp"
	"log/slog"
	"net/netip"

	"github.com/bgpfabric/bgpfabric/api"
)

// Config configures a Calc.
type Config struct {
	// NodeName is the node whose endpoints and blocks are local.
	NodeName string
	// Logger receives warnings about resources that cannot be used; nil
	// discards them.
	Logger *slog.Logger
}

// Key names a resource the calculation knows: Namespace is empty for the
// kinds that are not namespaced.
type Key struct {
	Kind, Namespace, Name string
}

func (k Key) String() string {
	if k.Namespace != "" {
		return k.Kind + " " + k.Namespace + "/" + k.Name
	}
	return k.Kind + " " + k.Name
}

func compareKeys(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// KeyOf returns the key of r.
func KeyOf(r api.Resource) Key {
	m := r.GetObjectMeta()
	return Key{Kind: r.GetTypeMeta().Kind, Namespace: m.Namespace, Name: m.Name}
}

// Counts are what the calculation holds for this node.
type Counts struct {
	// WorkloadEndpoints and HostEndpoints are the local endpoints.
	WorkloadEndpoints, HostEndpoints int
	// Blocks are the IPAM blocks affine to this node; Pools all IP pools.
	Blocks, Pools int
	// Routes and Interfaces are the sizes of the desired state.
	Routes, Interfaces int
}

// Calc computes one node's desired routes and interface settings. It is
// not safe for concurrent use.
type Calc struct {
	node string
	log  *slog.Logger

	// Inputs, local ones only (a resource of another node is as good as
	// absent), except pools.
	weps   map[Key]*workload
	heps   map[Key]struct{}
	blocks map[Key]netip.Prefix
	pools  map[Key]struct{}

	// Claims on the outputs, by the input keys that make them.
	routeClaims map[netip.Prefix]*routeClaim
	ifaceClaims map[string]map[Key]*workload

	// Outputs last handed out by TakeDelta, and what changed since.
	emittedRoutes map[netip.Prefix]Route
	emittedIfaces map[string]Interface
	dirtyRoutes   map[netip.Prefix]struct{}
	dirtyIfaces   map[string]struct{}
}

// workload is what the calculation keeps of a local WorkloadEndpoint.
type workload struct {
	iface    string
	dsts     []netip.Prefix
	ipv4     bool
	ipv6     bool
	gateway6 netip.Addr
}

// routeClaim is who wants a route on one prefix: workloads (by key, with
// their interface) and blocks.
type routeClaim struct {
	workloads map[Key]string
	blocks    map[Key]struct{}
}

// New returns an empty Calc for cfg.NodeName.
func New(cfg Config) *Calc {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Calc{
		node:          cfg.NodeName,
		log:           log,
		weps:          map[Key]*workload{},
		heps:          map[Key]struct{}{},
		blocks:        map[Key]netip.Prefix{},
		pools:         map[Key]struct{}{},
		routeClaims:   map[netip.Prefix]*routeClaim{},
		ifaceClaims:   map[string]map[Key]*workload{},
		emittedRoutes: map[netip.Prefix]Route{},
		emittedIfaces: map[string]Interface{},
		dirtyRoutes:   map[netip.Prefix]struct{}{},
		dirtyIfaces:   map[string]struct{}{},
	}
}

// OnSnapshot makes rs the complete input: whatever the Calc holds that is
// not in rs is removed. Kinds the calculation does not use are ignored.
func (c *Calc) OnSnapshot(rs []api.Resource) {
	seen := make(map[Key]struct{}, len(rs))
	for _, r := range rs {
		if r == nil {
			continue
		}
		seen[KeyOf(r)] = struct{}{}
		c.OnUpdate(r)
	}
	for _, m := range []map[Key]struct{}{keysOf(c.weps), c.heps, keysOf(c.blocks), c.pools} {
		for k := range m {
			if _, ok := seen[k]; !ok {
				c.OnRemove(k)
			}
		}
	}
}

func keysOf[V any](m map[Key]V) map[Key]struct{} {
	out := make(map[Key]struct{}, len(m))
	for k := range m {
		out[k] = struct{}{}
	}
	return out
}

// OnUpdate adds or changes a resource. A workload or host endpoint of
// another node, or a block affine to another node, removes the one of the
// same key (it moved away).
func (c *Calc) OnUpdate(r api.Resource) {
	switch r := r.(type) {
	case *api.WorkloadEndpoint:
		c.onWorkload(KeyOf(r), r)
	case *api.HostEndpoint:
		k := KeyOf(r)
		if r.Spec.Node == c.node {
			c.heps[k] = struct{}{}
		} else {
			delete(c.heps, k)
		}
	case *api.IPAMBlock:
		c.onBlock(KeyOf(r), r)
	case *api.IPPool:
		c.pools[KeyOf(r)] = struct{}{}
	}
}

// OnRemove removes the resource with key k, if the Calc holds it.
func (c *Calc) OnRemove(k Key) {
	switch k.Kind {
	case api.KindWorkloadEndpoint:
		c.onWorkload(k, nil)
	case api.KindHostEndpoint:
		delete(c.heps, k)
	case api.KindIPAMBlock:
		c.onBlock(k, nil)
	case api.KindIPPool:
		delete(c.pools, k)
	}
}

// Counts returns the sizes of the inputs and outputs.
func (c *Calc) Counts() Counts {
	return Counts{
		WorkloadEndpoints: len(c.weps),
		HostEndpoints:     len(c.heps),
		Blocks:            len(c.blocks),
		Pools:             len(c.pools),
		Routes:            len(c.routeClaims),
		Interfaces:        len(c.ifaceClaims),
	}
}

// onWorkload sets (w != nil and local) or removes the workload k.
func (c *Calc) onWorkload(k Key, w *api.WorkloadEndpoint) {
	var next *workload
	if w != nil && w.Spec.Node == c.node {
		next = c.workloadOf(k, w)
	}
	old := c.weps[k]
	if old == nil && next == nil {
		return
	}
	if old != nil {
		for _, dst := range old.dsts {
			c.unclaimRoute(dst, func(rc *routeClaim) { delete(rc.workloads, k) })
		}
		c.unclaimIface(old.iface, k)
		delete(c.weps, k)
	}
	if next != nil {
		c.weps[k] = next
		for _, dst := range next.dsts {
			c.claimRoute(dst, func(rc *routeClaim) {
				if rc.workloads == nil {
					rc.workloads = map[Key]string{}
				}
				rc.workloads[k] = next.iface
			})
		}
		c.claimIface(next.iface, k, next)
	}
}

// workloadOf extracts what the calculation needs of an endpoint; addresses
// that do not parse (the datastore validates, so this is defensive) are
// skipped with a warning.
func (c *Calc) workloadOf(k Key, w *api.WorkloadEndpoint) *workload {
	out := &workload{iface: w.Spec.InterfaceName}
	for _, n := range w.Spec.IPNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil || !p.IsSingleIP() || p.Addr().Zone() != "" {
			c.log.Warn("workload endpoint address is not a host route; skipping it", logKeyResource, k.String(), logKeyPrefix, n)
			continue
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Addr().Unmap().BitLen())
		out.dsts = append(out.dsts, p)
		if p.Addr().Is4() {
			out.ipv4 = true
		} else {
			out.ipv6 = true
		}
	}
	if gw, err := netip.ParseAddr(w.Spec.IPv6Gateway); err == nil && gw.Is6() && !gw.Is4In6() {
		out.gateway6 = gw
		out.ipv6 = true
	}
	if out.iface == "" {
		c.log.Warn("workload endpoint has no interface name; no routes for it", logKeyResource, k.String())
		out.dsts = nil
	}
	return out
}

// onBlock sets (b != nil, affine to this node, not being released) or
// removes the block k.
func (c *Calc) onBlock(k Key, b *api.IPAMBlock) {
	var next netip.Prefix
	if b != nil {
		if host, ok := b.Host(); ok && host == c.node && !b.Spec.Deleted {
			p, err := b.Prefix()
			if err != nil {
				c.log.Warn("IPAM block has a bad CIDR; no blackhole for it", logKeyResource, k.String(), logKeyPrefix, b.Spec.CIDR)
			} else {
				next = p.Masked()
			}
		}
	}
	old, had := c.blocks[k]
	if had && old == next {
		return
	}
	if had {
		c.unclaimRoute(old, func(rc *routeClaim) { delete(rc.blocks, k) })
		delete(c.blocks, k)
	}
	if next.IsValid() {
		c.blocks[k] = next
		c.claimRoute(next, func(rc *routeClaim) {
			if rc.blocks == nil {
				rc.blocks = map[Key]struct{}{}
			}
			rc.blocks[k] = struct{}{}
		})
	}
}

func (c *Calc) claimRoute(dst netip.Prefix, add func(*routeClaim)) {
	rc := c.routeClaims[dst]
	if rc == nil {
		rc = &routeClaim{}
		c.routeClaims[dst] = rc
	}
	add(rc)
	c.dirtyRoutes[dst] = struct{}{}
}

func (c *Calc) unclaimRoute(dst netip.Prefix, remove func(*routeClaim)) {
	rc := c.routeClaims[dst]
	if rc == nil {
		return
	}
	remove(rc)
	if len(rc.workloads) == 0 && len(rc.blocks) == 0 {
		delete(c.routeClaims, dst)
	}
	c.dirtyRoutes[dst] = struct{}{}
}

func (c *Calc) claimIface(name string, k Key, w *workload) {
	if name == "" {
		return
	}
	m := c.ifaceClaims[name]
	if m == nil {
		m = map[Key]*workload{}
		c.ifaceClaims[name] = m
	}
	m[k] = w
	c.dirtyIfaces[name] = struct{}{}
}

func (c *Calc) unclaimIface(name string, k Key) {
	m := c.ifaceClaims[name]
	if m == nil {
		return
	}
	delete(m, k)
	if len(m) == 0 {
		delete(c.ifaceClaims, name)
	}
	c.dirtyIfaces[name] = struct{}{}
}
