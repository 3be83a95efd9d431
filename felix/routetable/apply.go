package routetable

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/memtrim"
)

// maxErrors caps how many single route errors an Apply returns; the rest are
// counted.
const maxErrors = 16

// Apply converges the kernel to the desired routes: a full diff after
// Resync (and the first time), otherwise only for the prefixes changed
// since the last Apply. It adds and replaces before it deletes. Routes that
// fail stay marked and are tried again by the next Apply; the error lists
// them (errors.Join), and the RouteTable's view of the kernel holds what
// was really reached. A foreign route on a wanted prefix is reported as a
// *ConflictError and left in place.
func (rt *RouteTable) Apply(ctx context.Context) error {
	start := time.Now()
	if rt.resyncNeeded {
		if err := rt.resync(ctx); err != nil {
			return err
		}
	}
	if !rt.allDirty && len(rt.dirty) == 0 && len(rt.stale) == 0 {
		return nil
	}
	var a applyRun
	if occupied := a.write(ctx, rt, rt.plan()); len(occupied) > 0 {
		a.resolveOccupied(ctx, rt, occupied)
	}
	if a.added+a.replaced+a.deleted > 0 {
		memtrim.Changed() // the process's quiet trim waits for the routes to settle
	}
	rt.log.Debug("applied routes",
		logKeyAdded, a.added, logKeyReplaced, a.replaced, logKeyDeleted, a.deleted,
		logKeyFailed, a.failed, logKeyConflicts, len(rt.conflicts), logKeyDuration, time.Since(start))
	return a.err()
}

// applyRun collects the results of one Apply.
type applyRun struct {
	added, replaced, deleted, failed int
	errs                             []error
}

func (a *applyRun) fail(err error) {
	a.failed++
	if len(a.errs) < maxErrors {
		a.errs = append(a.errs, err)
	}
}

func (a *applyRun) err() error {
	if a.failed > len(a.errs) {
		return errors.Join(append(a.errs, fmt.Errorf("and %d more route errors", a.failed-len(a.errs)))...)
	}
	return errors.Join(a.errs...)
}

// want returns the kernel route that r should be now, and false when there
// should be none of ours: r waits for its interface or a foreign route
// holds its prefix.
func (rt *RouteTable) want(r Route) (KernelRoute, bool) {
	if len(rt.conflicts) > 0 {
		if _, conflict := rt.conflicts[r.Dst]; conflict {
			return KernelRoute{}, false
		}
	}
	k := KernelRoute{
		Table:    rt.table,
		Protocol: rt.proto,
		Type:     r.Type,
		Scope:    ScopeUniverse,
		Dst:      r.Dst,
		Gateway:  r.Gateway,
		Src:      r.Src,
	}
	if r.Iface != "" {
		l, ok := rt.links[r.Iface]
		if !ok || !l.Up {
			return KernelRoute{}, false
		}
		k.LinkIndex = l.Index
	}
	gateway := r.Gateway.IsValid()
	if len(r.NextHops) > 0 {
		k.Multipath = true
		k.NextHops = make([]KernelNextHop, len(r.NextHops))
		for i, nh := range r.NextHops {
			k.NextHops[i].Gateway = nh.Gateway
			gateway = gateway || nh.Gateway.IsValid()
			if nh.Iface != "" {
				l, ok := rt.links[nh.Iface]
				if !ok || !l.Up {
					return KernelRoute{}, false
				}
				k.NextHops[i].LinkIndex = l.Index
			}
		}
		slices.SortFunc(k.NextHops, compareKernelNextHop)
	}
	if r.Type == TypeUnicast && !gateway && r.Dst.Addr().Is4() {
		k.Scope = ScopeLink
	}
	return k, true
}

// wantDst is want for the desired route of dst, if any.
func (rt *RouteTable) wantDst(dst netip.Prefix) (KernelRoute, bool) {
	r, ok := rt.desired[dst]
	if !ok {
		return KernelRoute{}, false
	}
	return rt.want(r)
}

// deleteOp deletes have, matching it by prefix, protocol and metric only, so
// that it can never remove a foreign route.
func (rt *RouteTable) deleteOp(have KernelRoute) RouteOp {
	return RouteOp{Kind: OpDelete, Route: KernelRoute{
		Table:    rt.table,
		Protocol: rt.proto,
		Scope:    scopeNowhere,
		Dst:      have.Dst,
		Priority: have.Priority,
	}}
}

// opsPlan is the ops of one write: adds and replaces of direct routes,
// then of routes via a gateway (which the kernel checks against the direct
// routes), then deletes, then the deletes of stale routes from
// ops[staleFrom:].
type opsPlan struct {
	ops       []RouteOp
	staleFrom int
}

// opsBuilder sorts ops into the order of an opsPlan.
type opsBuilder struct {
	direct, via, deletes []RouteOp
}

// diff adds what turns have (if has) into want (if ok), and reports
// whether something is to be done.
func (b *opsBuilder) diff(rt *RouteTable, want KernelRoute, ok bool, have KernelRoute, has bool) bool {
	kind := OpAdd
	switch {
	case ok && !has:
	case ok && !want.sameAs(have):
		kind = OpReplace
	case !ok && has:
		b.deletes = append(b.deletes, rt.deleteOp(have))
		return true
	default:
		return false
	}
	if want.Gateway.IsValid() || len(want.NextHops) > 0 {
		b.via = append(b.via, RouteOp{Kind: kind, Route: want})
	} else {
		b.direct = append(b.direct, RouteOp{Kind: kind, Route: want})
	}
	return true
}

// plan returns the ops, with stale deletes for stale.
func (b *opsBuilder) plan(rt *RouteTable, stale []KernelRoute) opsPlan {
	ops := append(append(b.direct, b.via...), b.deletes...)
	staleFrom := len(ops)
	for _, s := range stale {
		ops = append(ops, rt.deleteOp(s))
	}
	return opsPlan{ops: ops, staleFrom: staleFrom}
}

// plan returns the ops that converge the dirty prefixes (all of them after
// a resync or a large Set) and delete the stale routes, and clears the
// marks of the prefixes that need nothing.
func (rt *RouteTable) plan() opsPlan {
	var b opsBuilder
	if rt.allDirty {
		b.direct = make([]RouteOp, 0, len(rt.desired))
		for _, r := range rt.desired {
			want, ok := rt.want(r)
			have, has := rt.actual[r.Dst]
			b.diff(rt, want, ok, have, has)
		}
		for dst, have := range rt.actual {
			if _, ok := rt.desired[dst]; !ok {
				b.deletes = append(b.deletes, rt.deleteOp(have))
			}
		}
		clear(rt.dirty)
		rt.allDirty = false
	} else {
		b.direct = make([]RouteOp, 0, len(rt.dirty))
		for dst := range rt.dirty {
			want, ok := rt.wantDst(dst)
			have, has := rt.actual[dst]
			if !b.diff(rt, want, ok, have, has) {
				delete(rt.dirty, dst)
			}
		}
	}
	return b.plan(rt, rt.stale)
}

// write performs p, records what was reached, and returns the prefixes
// whose add failed because a route we did not know of holds them. The
// prefixes of failed ops stay (or become) dirty.
func (a *applyRun) write(ctx context.Context, rt *RouteTable, p opsPlan) map[netip.Prefix]struct{} {
	if len(p.ops) == 0 {
		return nil
	}
	if len(rt.actual) == 0 {
		rt.actual = make(map[netip.Prefix]KernelRoute, len(p.ops))
	}
	failed := rt.dp.WriteRoutes(ctx, p.ops)
	var occupied map[netip.Prefix]struct{}
	var stale []KernelRoute
	for i, op := range p.ops {
		var err error
		if len(failed) > 0 && failed[0].Index == i {
			err, failed = failed[0].Err, failed[1:]
		}
		dst := op.Route.Dst
		if op.Kind == OpDelete && errors.Is(err, syscall.ESRCH) {
			err = nil // already gone
		}
		switch {
		case i >= p.staleFrom:
			if err != nil {
				stale = append(stale, rt.stale[i-p.staleFrom])
				a.fail(fmt.Errorf("deleting stale route %s metric %d: %w", dst, op.Route.Priority, err))
			} else {
				a.deleted++
			}
		case err == nil:
			if op.Kind == OpDelete {
				delete(rt.actual, dst)
				a.deleted++
			} else {
				rt.actual[dst] = op.Route
				if op.Kind == OpAdd {
					a.added++
				} else {
					a.replaced++
				}
			}
			delete(rt.dirty, dst)
		case op.Kind == OpAdd && errors.Is(err, syscall.EEXIST):
			if occupied == nil {
				occupied = map[netip.Prefix]struct{}{}
			}
			occupied[dst] = struct{}{}
			rt.dirty[dst] = struct{}{}
		default:
			rt.dirty[dst] = struct{}{}
			a.fail(fmt.Errorf("%s route %s: %w", op.Kind, dst, err))
		}
	}
	if p.staleFrom < len(p.ops) {
		rt.stale = stale
	}
	return occupied
}

// resolveOccupied finds out who holds the prefixes whose add found a route
// in place. Ours (left by an earlier run, or changed behind our back) are
// taken over and fixed; foreign ones become conflicts.
func (a *applyRun) resolveOccupied(ctx context.Context, rt *RouteTable, occupied map[netip.Prefix]struct{}) {
	holders := map[netip.Prefix]KernelRoute{}
	err := rt.dp.ListRoutes(ctx, rt.table, 0, func(r KernelRoute) {
		if _, ok := occupied[r.Dst]; ok && r.defaultPriority() {
			holders[r.Dst] = r
		}
	})
	if err != nil {
		a.fail(fmt.Errorf("listing table %d to see who holds %d wanted prefixes: %w", rt.table, len(occupied), err))
		return
	}
	var b opsBuilder
	for dst := range occupied {
		h, ok := holders[dst]
		switch {
		case !ok:
			// Gone again since the add: add it again.
		case h.Protocol == rt.proto:
			rt.actual[dst] = h
		case slices.Contains(rt.overrides, h.Protocol):
			// Replaced by the diff below, which sees a route that
			// differs from the wanted one (in its protocol at least).
			rt.log.Debug("overriding route", logKeyDst, dst, logKeyProtocol, h.Protocol)
			rt.actual[dst] = h
		default:
			c := ConflictError{Dst: dst, Table: rt.table, Protocol: h.Protocol}
			rt.conflicts[dst] = c
			delete(rt.dirty, dst)
			a.fail(&c)
			continue
		}
		want, ok := rt.wantDst(dst)
		have, has := rt.actual[dst]
		if !b.diff(rt, want, ok, have, has) {
			delete(rt.dirty, dst)
		}
	}
	for dst := range a.write(ctx, rt, b.plan(rt, nil)) {
		a.fail(fmt.Errorf("adding route %s: %w (held again by an unknown route)", dst, syscall.EEXIST))
	}
}

// resync lists the links and our routes, so that the next write compares
// every prefix.
func (rt *RouteTable) resync(ctx context.Context) error {
	links, err := rt.dp.LinkList(ctx)
	if err != nil {
		return fmt.Errorf("resync: listing links: %w", err)
	}
	// Reuse the map's memory: a resync of many routes then allocates
	// next to nothing.
	actual := rt.actual
	clear(actual)
	var stale []KernelRoute
	err = rt.dp.ListRoutes(ctx, rt.table, rt.proto, func(r KernelRoute) {
		if r.Protocol != rt.proto || r.Table != rt.table {
			return // a Dataplane that does not filter
		}
		if _, dup := actual[r.Dst]; dup || !r.defaultPriority() {
			// We write one route per prefix, at the default metric.
			stale = append(stale, r)
			return
		}
		actual[r.Dst] = r
	})
	if err != nil {
		// actual is incomplete now; the retry lists again.
		return fmt.Errorf("resync: listing routes of protocol %d in table %d: %w", rt.proto, rt.table, err)
	}
	clear(rt.links)
	clear(rt.linkNames)
	for _, l := range links {
		rt.links[l.Name] = l
		rt.linkNames[l.Index] = l.Name
	}
	rt.stale = stale
	clear(rt.conflicts)
	rt.allDirty = true
	rt.resyncNeeded = false
	return nil
}
