package reflector

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// Kernel FIB (Config.ProgramFIB). A reflector that also forwards (a
// border node, a reflector on a router) can install its best paths into
// the kernel. The RIB loop turns each changed prefix's paths into the
// kernel route it wants (fibRoute) and records it in a fibFeed; the FIB
// writer (fibwriter.go), a goroutine of its own, takes everything recorded
// since its last pass and converges the kernel with felix's
// routetable.RouteTable, the reconciler the node agent's router uses too:
// our routes carry one protocol number, routes of any other protocol are
// never written over or deleted (their prefixes are reported as
// conflicts), and routes of our protocol that are not wanted are deleted,
// which is how the routes an earlier run left behind are reconciled on
// start. The RIB loop never waits for the kernel.

// FIBConfig configures the kernel routes of a reflector with ProgramFIB.
type FIBConfig struct {
	// Protocol marks the routes the reflector owns; 0 means
	// routetable.ProtoRouter (81), the number the node agent's router
	// uses. On a host that runs `bgpfabric node` too, give the reflector
	// another one: each owner deletes the routes of its number that it
	// does not want.
	Protocol uint8
	// Table is the routing table; 0 means the main table.
	Table uint32
	// SinglePath installs the best path's next hop only. By default the
	// paths that are as good as the best one up to the tie-breakers
	// (LOCAL_PREF, AS_PATH length, ORIGIN, MED, eBGP over iBGP: BGP
	// multipath) give one ECMP route over all their next hops.
	SinglePath bool
	// ResyncInterval is how often the kernel's routes are listed and
	// repaired against the wanted ones; 0 means 10 minutes.
	ResyncInterval time.Duration
	// Netns is the network namespace whose routes are written; 0 means
	// the reflector's own. (Tests.)
	Netns netns.NsHandle
	// Dataplane replaces netlink; nil means netlink in Netns. (Tests.)
	Dataplane routetable.Dataplane
}

// DefaultFIBProtocol is FIBConfig.Protocol's default.
const DefaultFIBProtocol = routetable.ProtoRouter

func (c FIBConfig) withDefaults() (FIBConfig, error) {
	if c.Protocol == 0 {
		c.Protocol = DefaultFIBProtocol
	}
	if c.Protocol <= 4 {
		return c, fmt.Errorf("FIB.Protocol: %d is the kernel's or an operator's (want 5-255)", c.Protocol)
	}
	if c.Table == 0 {
		c.Table = routetable.TableMain
	}
	if c.Table == 255 {
		return c, fmt.Errorf("FIB.Table: 255 is the kernel's local table")
	}
	if c.ResyncInterval <= 0 {
		c.ResyncInterval = 10 * time.Minute
	}
	return c, nil
}

// fibRoute returns the kernel route for a prefix's paths (best first), or
// false when none of them has a usable next hop. A next hop is usable if
// it is of the prefix's family and not unspecified; an IPv6 link-local one
// is not (a kernel route through it needs an interface we do not know).
// With multipath, every path equal to the best (multipathEqual) adds its
// next hop; several next hops make one ECMP route.
func fibRoute(dst netip.Prefix, paths []path, multipath bool) (routetable.Route, bool) {
	var first netip.Addr
	var hops []routetable.NextHop
	for i := range paths {
		p := &paths[i]
		if i > 0 && (!multipath || !multipathEqual(&paths[0], p)) {
			continue
		}
		nh := p.a.nextHop
		if !nh.IsValid() || nh.IsUnspecified() || nh.Is4() != dst.Addr().Is4() || nh.IsLinkLocalUnicast() && !nh.Is4() {
			continue
		}
		switch {
		case !first.IsValid():
			first = nh
		case nh == first:
		case hops == nil:
			hops = []routetable.NextHop{{Gateway: first}, {Gateway: nh}}
		default:
			dup := false
			for _, h := range hops {
				dup = dup || h.Gateway == nh
			}
			if !dup {
				hops = append(hops, routetable.NextHop{Gateway: nh})
			}
		}
	}
	switch {
	case !first.IsValid():
		return routetable.Route{}, false
	case hops == nil:
		return routetable.Route{Dst: dst, Gateway: first}, true
	}
	return routetable.Route{Dst: dst, NextHops: hops}, true
}

// multipathEqual reports whether p is as good as best up to the
// tie-breakers of comparePaths (originator, CLUSTER_LIST length, peer
// address), so that both may carry traffic.
func multipathEqual(best, p *path) bool {
	a, b := best.a, p.a
	return a.localPref == b.localPref && a.asPathLen == b.asPathLen && a.origin == b.origin &&
		(a.firstAS != b.firstAS || a.med == b.med) && best.src.ebgp == p.src.ebgp
}

// fibChange is a prefix's wanted kernel route, or its absence.
type fibChange struct {
	route   routetable.Route
	deleted bool
}

// fibFeed carries the wanted kernel routes from the RIB loop to the FIB
// writer. The loop records each changed prefix and signals; the writer
// takes everything recorded so far at once, so that a burst of changes
// (a client's full table) becomes one pass over the kernel.
type fibFeed struct {
	multipath bool
	signal    chan struct{} // size 1

	mu      sync.Mutex // guards the fields below
	pending map[netip.Prefix]fibChange
	held    bool // restarting: keep the kernel as it is (see restart.go)
}

func newFIBFeed(multipath bool) *fibFeed {
	return &fibFeed{multipath: multipath, signal: make(chan struct{}, 1), pending: map[netip.Prefix]fibChange{}}
}

// note records the routes of t's prefixes changed in this round, whose
// paths are now cur (RIB loop).
func (f *fibFeed) note(t *table, cur [][]path) {
	f.mu.Lock()
	for i, c := range t.changed {
		dst := c.k.prefix(t.fam)
		if r, ok := fibRoute(dst, cur[i], f.multipath); ok {
			f.pending[dst] = fibChange{route: r}
		} else {
			f.pending[dst] = fibChange{deleted: true}
		}
	}
	f.mu.Unlock()
	f.wake()
}

func (f *fibFeed) wake() {
	select {
	case f.signal <- struct{}{}:
	default:
	}
}

// hold keeps the writer from touching the kernel until release: a
// restarting reflector keeps forwarding on the routes it left until it
// has relearnt the fabric.
func (f *fibFeed) hold() {
	f.mu.Lock()
	f.held = true
	f.mu.Unlock()
}

func (f *fibFeed) release() {
	f.mu.Lock()
	f.held = false
	f.mu.Unlock()
	f.wake()
}

// take returns the changes recorded since the last take and whether the
// kernel is held.
func (f *fibFeed) take() (map[netip.Prefix]fibChange, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 {
		return nil, f.held
	}
	out := f.pending
	f.pending = make(map[netip.Prefix]fibChange, min(len(out), 1024))
	return out, f.held
}
