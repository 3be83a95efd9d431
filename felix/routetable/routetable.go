package routetable

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
)

// RouteTable converges one kernel routing table's routes of one protocol to
// a desired set. See the package documentation.
type RouteTable struct {
	proto     uint8
	overrides []uint8
	table     uint32
	log       *slog.Logger
	dp        Dataplane

	// desired is what the caller asked for, byIface indexes it by
	// output interface.
	desired map[netip.Prefix]Route
	byIface map[string]map[netip.Prefix]struct{}

	// actual is what we believe the kernel holds with our protocol, one
	// route per prefix; stale are further routes of ours on a prefix
	// that is already in actual (another metric), found by a resync.
	actual map[netip.Prefix]KernelRoute
	stale  []KernelRoute

	// dirty are the prefixes that the next Apply must look at; allDirty
	// says it must look at all of them, which is cheaper than marking
	// each after a resync or a large Set.
	dirty    map[netip.Prefix]struct{}
	allDirty bool
	// conflicts are the wanted prefixes held by foreign routes; they are
	// tried again after a resync or a change to the wanted route.
	conflicts map[netip.Prefix]ConflictError

	links     map[string]Link
	linkNames map[int]string

	resyncNeeded bool
}

// New returns a RouteTable for cfg on dp. Its first Apply resyncs, so that
// it learns the links and what an earlier run left in the kernel.
func New(cfg Config, dp Dataplane) (*RouteTable, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &RouteTable{
		proto:        cfg.Protocol,
		overrides:    slices.Clone(cfg.Overrides),
		table:        cfg.Table,
		log:          cfg.Logger.With(logKeyTable, cfg.Table, logKeyProtocol, cfg.Protocol),
		dp:           dp,
		desired:      map[netip.Prefix]Route{},
		byIface:      map[string]map[netip.Prefix]struct{}{},
		actual:       map[netip.Prefix]KernelRoute{},
		dirty:        map[netip.Prefix]struct{}{},
		conflicts:    map[netip.Prefix]ConflictError{},
		links:        map[string]Link{},
		linkNames:    map[int]string{},
		resyncNeeded: true,
	}, nil
}

// Set makes routes the whole desired set. Invalid routes and second routes
// for one prefix are left out and reported; the others are set. Calling
// Set again with the same routes changes nothing.
func (rt *RouteTable) Set(routes []Route) error {
	var errs []error
	next := make(map[netip.Prefix]Route, len(routes))
	for _, r := range routes {
		r, err := r.validate()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := next[r.Dst]; dup {
			errs = append(errs, fmt.Errorf("route %s: given twice, keeping the first", r.Dst))
			continue
		}
		next[r.Dst] = r
	}
	for dst, old := range rt.desired {
		if _, ok := next[dst]; !ok {
			rt.unindex(old)
			rt.markDirty(dst)
		}
	}
	for dst, r := range next {
		if old, ok := rt.desired[dst]; !ok || !old.Equal(r) {
			if ok {
				rt.unindex(old)
			}
			rt.index(r)
			rt.markDirty(dst)
		}
	}
	rt.desired = next
	return errors.Join(errs...)
}

// SetRoute adds r to the desired set or replaces the route for its prefix.
func (rt *RouteTable) SetRoute(r Route) error {
	r, err := r.validate()
	if err != nil {
		return err
	}
	if old, ok := rt.desired[r.Dst]; ok {
		if old.Equal(r) {
			return nil
		}
		rt.unindex(old)
	}
	rt.desired[r.Dst] = r
	rt.index(r)
	rt.markDirty(r.Dst)
	return nil
}

// DeleteRoute removes the route for dst from the desired set.
func (rt *RouteTable) DeleteRoute(dst netip.Prefix) {
	if old, ok := rt.desired[dst]; ok {
		delete(rt.desired, dst)
		rt.unindex(old)
		rt.markDirty(dst)
	}
}

func (rt *RouteTable) index(r Route) {
	r.ifaces(func(name string) {
		set := rt.byIface[name]
		if set == nil {
			set = map[netip.Prefix]struct{}{}
			rt.byIface[name] = set
		}
		set[r.Dst] = struct{}{}
	})
}

func (rt *RouteTable) unindex(r Route) {
	r.ifaces(func(name string) {
		if set := rt.byIface[name]; set != nil {
			delete(set, r.Dst)
			if len(set) == 0 {
				delete(rt.byIface, name)
			}
		}
	})
}

func (rt *RouteTable) markDirty(dst netip.Prefix) {
	if len(rt.conflicts) > 0 {
		delete(rt.conflicts, dst)
	}
	if rt.allDirty {
		return
	}
	rt.dirty[dst] = struct{}{}
	if len(rt.dirty) > len(rt.desired)/2+64 {
		rt.allDirty = true
		clear(rt.dirty)
	}
}

func (rt *RouteTable) markIfaceDirty(name string) {
	for dst := range rt.byIface[name] {
		rt.markDirty(dst)
	}
}

// OnLinkUpdate tells the RouteTable that a link appeared, changed or went.
// Routes through a link that is missing or down are pending; they are
// programmed by the first Apply after the link is up.
func (rt *RouteTable) OnLinkUpdate(u LinkUpdate) {
	old, known := rt.links[u.Name]
	if u.Deleted {
		if known && (u.Index == 0 || u.Index == old.Index) {
			delete(rt.links, u.Name)
			delete(rt.linkNames, old.Index)
			rt.markIfaceDirty(u.Name)
		}
		return
	}
	if prev, ok := rt.linkNames[u.Index]; ok && prev != u.Name { // renamed
		delete(rt.links, prev)
		rt.markIfaceDirty(prev)
	}
	if known && old == u.Link {
		return
	}
	if known && old.Index != u.Index {
		delete(rt.linkNames, old.Index)
	}
	rt.links[u.Name] = u.Link
	rt.linkNames[u.Index] = u.Name
	rt.markIfaceDirty(u.Name)
}

// Resync makes the next Apply list the links and our routes in the kernel
// and repair every difference, not only the prefixes changed since the last
// Apply. Conflicts are tried again.
func (rt *RouteTable) Resync() {
	rt.resyncNeeded = true
}

// Conflicts returns the wanted prefixes that foreign routes hold, by prefix.
func (rt *RouteTable) Conflicts() []ConflictError {
	out := make([]ConflictError, 0, len(rt.conflicts))
	for _, c := range rt.conflicts {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b ConflictError) int { return comparePrefix(a.Dst, b.Dst) })
	return out
}

// Pending returns the desired routes that wait for their interface to
// exist or come up, by prefix.
func (rt *RouteTable) Pending() []Route {
	var out []Route
	seen := map[netip.Prefix]bool{}
	for name, set := range rt.byIface {
		if l, ok := rt.links[name]; ok && l.Up {
			continue
		}
		for dst := range set {
			if !seen[dst] {
				seen[dst] = true
				out = append(out, rt.desired[dst])
			}
		}
	}
	slices.SortFunc(out, func(a, b Route) int { return comparePrefix(a.Dst, b.Dst) })
	return out
}

// linkName returns the name of the link with index i, or "".
func (rt *RouteTable) linkName(i int) string { return rt.linkNames[i] }

// comparePrefix orders IPv4 before IPv6, then by address and length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
