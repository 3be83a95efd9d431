package sim

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Progress is how far the fabric has converged.
type Progress struct {
	AgentsRunning, Agents int
	// NodesReady counts bgpfabric nodes whose status says ready (felix
	// ready for compute nodes, a BGP status for reflectors).
	NodesReady, Nodes int
	// SessionsUp counts expected sessions (seen from the bgpfabric side)
	// that are Established.
	SessionsUp, Sessions int
	// RoutesPresent counts (node, other node's IPAM block) routes in the
	// nodes' kernels, and (router, block) routes in the kernels of the
	// external routers that forward (BIRD, FRR; not gobgpd).
	RoutesPresent, Routes int
	// StaleSessions counts sessions to a stopped agent (a kill-agent fault
	// without a duration) that its peers still report Established.
	StaleSessions int
}

// Converged reports whether everything expected is there.
func (p Progress) Converged() bool {
	return p.AgentsRunning == p.Agents && p.NodesReady == p.Nodes && p.SessionsUp == p.Sessions && p.RoutesPresent == p.Routes && p.StaleSessions == 0
}

func (p Progress) String() string {
	s := fmt.Sprintf("agents %d/%d, nodes ready %d/%d, sessions established %d/%d, routes %d/%d",
		p.AgentsRunning, p.Agents, p.NodesReady, p.Nodes, p.SessionsUp, p.Sessions, p.RoutesPresent, p.Routes)
	if p.StaleSessions > 0 {
		s += fmt.Sprintf(", sessions to stopped agents still established %d", p.StaleSessions)
	}
	return s
}

// statusCache holds what the syncer delivered: status records and blocks.
type statusCache struct {
	mu     sync.Mutex
	bgp    map[string]*api.BGPStatus
	felix  map[string]*api.FelixStatus
	blocks map[string]*api.IPAMBlock
	poke   chan struct{}
}

func newStatusCache() *statusCache {
	return &statusCache{bgp: map[string]*api.BGPStatus{}, felix: map[string]*api.FelixStatus{}, blocks: map[string]*api.IPAMBlock{}, poke: make(chan struct{}, 1)}
}

func (c *statusCache) OnStatus(datastore.SyncStatus) {}

func (c *statusCache) OnSnapshot(s datastore.Snapshot) {
	c.mu.Lock()
	clear(c.bgp)
	clear(c.felix)
	clear(c.blocks)
	for _, r := range s.Resources {
		c.putLocked(r, false)
	}
	c.mu.Unlock()
	c.wake()
}

func (c *statusCache) OnUpdates(evs []datastore.Event) {
	c.mu.Lock()
	for _, e := range evs {
		c.putLocked(e.Resource, e.Type == datastore.Deleted)
	}
	c.mu.Unlock()
	c.wake()
}

func (c *statusCache) putLocked(r api.Resource, deleted bool) {
	name := r.GetObjectMeta().Name
	switch r := r.(type) {
	case *api.BGPStatus:
		if deleted {
			delete(c.bgp, name)
		} else {
			c.bgp[name] = r
		}
	case *api.FelixStatus:
		if deleted {
			delete(c.felix, name)
		} else {
			c.felix[name] = r
		}
	case *api.IPAMBlock:
		if deleted {
			delete(c.blocks, name)
		} else {
			c.blocks[name] = r
		}
	}
}

func (c *statusCache) wake() {
	select {
	case c.poke <- struct{}{}:
	default:
	}
}

// expectedSessions computes, as the agents will, each bgpfabric node's
// sessions: their peer addresses.
func expectedSessions(p *topology.Plan) map[string][]netip.Addr {
	var in peering.Input
	for _, r := range p.Resources {
		in.Add(r)
	}
	out := map[string][]netip.Addr{}
	for _, n := range p.Nodes {
		var res peering.Result
		var err error
		switch n.Agent {
		case topology.AgentNode:
			res, err = peering.Compute(in, n.Name)
		case topology.AgentReflector:
			res, err = peering.ReflectorSessions(in, n.Name)
		default:
			continue
		}
		if err != nil {
			continue
		}
		for _, s := range res.Sessions {
			out[n.Name] = append(out[n.Name], s.PeerAddress)
		}
	}
	return out
}

// WaitConverged waits until the fabric has converged, or the topology's
// convergence deadline (or ctx) ends first. It is driven by events: the
// datastore's status records and IPAM blocks through a syncer, and route
// changes in every node's kernel through netlink subscriptions; each event
// re-evaluates, nothing sleeps. It prints progress when it changes.
func (f *Fabric) WaitConverged(ctx context.Context) (time.Duration, error) {
	return f.waitConverged(ctx, nil)
}

// WaitConvergedWithout waits, as WaitConverged does, until the fabric has
// converged without the agents of the nodes in down, which are stopped on
// purpose: their sessions, blocks and readiness are not expected, and
// every session that other nodes had with them must have left
// Established (the peers noticed).
func (f *Fabric) WaitConvergedWithout(ctx context.Context, down ...string) (time.Duration, error) {
	m := map[string]bool{}
	for _, n := range down {
		if f.Plan.Node(n) == nil {
			return 0, fmt.Errorf("no node %q", n)
		}
		m[n] = true
	}
	return f.waitConverged(ctx, m)
}

func (f *Fabric) waitConverged(ctx context.Context, down map[string]bool) (time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, f.Plan.Checks.Convergence)
	defer cancel()
	if err := f.WaitKubePolicies(ctx); err != nil {
		return 0, err
	}
	if f.opts.Ready == ReadyProcess {
		p := f.processProgress(down)
		f.progress("%s", p)
		if !p.Converged() {
			return 0, fmt.Errorf("not converged: %s", p)
		}
		return f.converged(start), nil
	}
	cache := newStatusCache()
	syncer, err := datastore.NewSyncer(f.client, datastore.SyncerConfig{
		Kinds:   []string{api.KindBGPStatus, api.KindFelixStatus, api.KindIPAMBlock},
		Handler: cache,
	})
	if err != nil {
		return 0, err
	}
	go syncer.Run(ctx)
	routes := &routeCache{sets: map[string]map[netip.Prefix]bool{}, watched: map[string]bool{}, gen: map[string]int{}}
	f.subscribeRoutes(ctx, func(node string) {
		routes.invalidate(node)
		cache.wake()
	}, routes.watch)
	expected := expectedSessions(f.Plan)
	var downAddrs []netip.Addr
	for n := range down {
		np := f.Plan.Node(n)
		for _, pfx := range []netip.Prefix{np.IPv4, np.IPv6} {
			if pfx.IsValid() {
				downAddrs = append(downAddrs, pfx.Addr())
			}
		}
	}
	var last Progress
	tick := time.NewTicker(time.Second) // agent exits and the progress clock
	defer tick.Stop()
	for {
		evaluated := time.Now()
		p := f.evaluate(cache, routes, expected, down, downAddrs)
		if p != last {
			f.progress("%s", p)
			last = p
			if down == nil {
				f.milestones(p)
			}
		}
		if p.Converged() {
			return f.converged(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("not converged after %s: %s", time.Since(start).Round(time.Millisecond), p)
		case <-cache.poke:
		case <-tick.C:
		}
		// Coalesce: hundreds of agents converging poke this loop
		// thousands of times a second, and the sim shares the CPUs (and,
		// embedded, its process) with etcd.
		if wait := evaluateSpacing - time.Since(evaluated); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C:
			}
		}
	}
}

// evaluateSpacing is the shortest time between two evaluations of the
// fabric's progress.
const evaluateSpacing = 100 * time.Millisecond

// routeCache holds the route sets of the nodes whose routes are watched,
// listed again only after a change (at 300 nodes, listing every node's
// routes on every change cost the sim a CPU).
type routeCache struct {
	mu      sync.Mutex
	sets    map[string]map[netip.Prefix]bool // by node; absent: list again
	watched map[string]bool                  // nodes whose changes invalidate
	gen     map[string]int                   // changes seen, by node
}

func (c *routeCache) watch(node string) {
	c.mu.Lock()
	c.watched[node] = true
	c.mu.Unlock()
}

func (c *routeCache) invalidate(node string) {
	c.mu.Lock()
	delete(c.sets, node)
	c.gen[node]++
	c.mu.Unlock()
}

// get returns the node's route set, listing it with list if it is not
// cached (or not watched: then always).
func (c *routeCache) get(node string, list func() map[netip.Prefix]bool) map[netip.Prefix]bool {
	if c == nil {
		return list()
	}
	c.mu.Lock()
	set, ok := c.sets[node]
	watched, gen := c.watched[node], c.gen[node]
	c.mu.Unlock()
	if ok {
		return set
	}
	set = list()
	c.mu.Lock()
	// A change during the listing may be missing from it: keep the set
	// only if there was none.
	if watched && set != nil && c.gen[node] == gen {
		c.sets[node] = set
	}
	c.mu.Unlock()
	return set
}

func (f *Fabric) converged(start time.Time) time.Duration {
	d := time.Since(start)
	f.setTiming(func(t *Timings) { t.Converge = d })
	return d
}

func (f *Fabric) processProgress(down map[string]bool) Progress {
	var p Progress
	p.AgentsRunning, p.Agents = f.agentsRunning(down)
	return p
}

// subscribeRoutes calls changed with the node's name on every route
// change in a compute node or a forwarding router, and watching for each
// node whose subscription is in place.
func (f *Fabric) subscribeRoutes(ctx context.Context, changed func(node string), watching func(node string)) {
	for _, n := range f.Plan.Nodes {
		if n.Agent != topology.AgentNode && !forwards(n) {
			continue
		}
		h, ok := f.net.Handle(n.Netns)
		if !ok {
			continue
		}
		ch := make(chan netlink.RouteUpdate, 64)
		err := netlink.RouteSubscribeWithOptions(ch, ctx.Done(), netlink.RouteSubscribeOptions{Namespace: &h})
		if err != nil {
			f.log.Warn("route subscription", "node", n.Name, "err", err)
			continue
		}
		watching(n.Name)
		go func() {
			for range ch {
				changed(n.Name)
			}
		}()
	}
}

func (f *Fabric) evaluate(c *statusCache, routes *routeCache, expected map[string][]netip.Addr, down map[string]bool, downAddrs []netip.Addr) Progress {
	p := f.processProgress(down)
	c.mu.Lock()
	defer c.mu.Unlock()
	blocksByNode := map[string][]netip.Prefix{}
	for _, b := range c.blocks {
		if host, ok := b.Host(); ok && !down[host] {
			if pfx, err := netip.ParsePrefix(b.Spec.CIDR); err == nil {
				blocksByNode[host] = append(blocksByNode[host], pfx)
			}
		}
	}
	for _, n := range f.Plan.Nodes {
		if down[n.Name] {
			continue
		}
		if forwards(n) {
			// BGP-learned routes reach a router's kernel a moment after
			// its BGP speaker has passed them on (FRR's zebra, BIRD's
			// kernel protocol): the router forwards only once they are in.
			var need []netip.Prefix
			for _, pfxs := range blocksByNode {
				need = append(need, pfxs...)
			}
			p.Routes += len(need)
			if len(need) > 0 {
				have := routes.get(n.Name, func() map[netip.Prefix]bool { return f.routeSet(n) })
				for _, pfx := range need {
					if have[pfx] {
						p.RoutesPresent++
					}
				}
			}
			continue
		}
		switch n.Agent {
		case topology.AgentNode:
			p.Nodes++
			if fs := c.felix[n.Name]; fs != nil && fs.Status.Ready {
				p.NodesReady++
			}
		case topology.AgentReflector:
			p.Nodes++
			if c.bgp[n.Name] != nil {
				p.NodesReady++
			}
		default:
			continue
		}
		var want []netip.Addr
		for _, a := range expected[n.Name] {
			if !slices.Contains(downAddrs, a) {
				want = append(want, a)
			}
		}
		p.Sessions += len(want)
		if st := c.bgp[n.Name]; st != nil {
			for _, peer := range st.Status.Peers {
				a, _, err := api.ParsePeerIP(peer.PeerIP)
				if err != nil || peer.State != api.BGPEstablished {
					continue
				}
				switch {
				case slices.Contains(want, a):
					p.SessionsUp++
				case slices.Contains(downAddrs, a):
					p.StaleSessions++
				}
			}
		}
		if n.Agent != topology.AgentNode {
			continue
		}
		var need []netip.Prefix
		for host, pfxs := range blocksByNode {
			if host != n.Name {
				need = append(need, pfxs...)
			}
		}
		p.Routes += len(need)
		if len(need) > 0 {
			have := routes.get(n.Name, func() map[netip.Prefix]bool { return f.routeSet(n) })
			for _, pfx := range need {
				if have[pfx] {
					p.RoutesPresent++
				}
			}
		}
	}
	return p
}

// routeSet lists the destinations of a node's kernel routes (main table).
func (f *Fabric) routeSet(n *topology.NodePlan) map[netip.Prefix]bool {
	routes, err := f.Routes(n.Name)
	if err != nil {
		return nil
	}
	m := make(map[netip.Prefix]bool, len(routes))
	for _, r := range routes {
		m[r.Dst] = true
	}
	return m
}

// forwards reports whether a node is an external router that programs its
// kernel (BIRD, FRR) and so must have a route to every block.
func forwards(n *topology.NodePlan) bool {
	return n.Agent == topology.AgentRouter && n.Router != topology.RouterGoBGPd
}

// milestones records when the first convergence reached each of its parts.
func (f *Fabric) milestones(p Progress) {
	if f.bootStart.IsZero() {
		return
	}
	at := time.Since(f.bootStart)
	f.setTiming(func(t *Timings) {
		if t.AllReady == 0 && p.Nodes > 0 && p.NodesReady == p.Nodes {
			t.AllReady = at
		}
		if t.AllEstablished == 0 && p.SessionsUp == p.Sessions {
			t.AllEstablished = at
		}
		if t.AllRoutes == 0 && p.Routes > 0 && p.RoutesPresent == p.Routes {
			t.AllRoutes = at
		}
	})
}
