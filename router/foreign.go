package router

import (
	"context"
	"net/netip"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// The default import policy: a learned route never shadows another
// owner's kernel route (docs/policy.md).
//
// A route of another owner for the same prefix at the same metric as
// ours (0) makes the route table report a conflict and leave it alone.
// One at another metric would not collide: our route at metric 0 would be
// added beside it and win (a learned 0.0.0.0/0 over a DHCP default at
// metric 100). So before a prefix is installed for the first time the
// guard lists the table and skips every prefix that a route of another
// protocol holds at any metric; a skipped prefix is logged once (with the
// number skipped) for as long as it stays skipped. The
// table is listed only when a prefix we have not installed yet is to be
// installed, and at every full resync, not on changes of prefixes we
// hold. A foreign route that appears after ours is installed is seen at
// the next full resync (a link change or a retry); ours is then removed.

// foreignGuard knows which prefixes other owners' routes hold.
type foreignGuard struct {
	dp    routetable.Dataplane
	table uint32
	proto uint8 // ours
	// held is every prefix held by a foreign route at a non-zero metric
	// (the route table handles metric 0 itself), from the last listing.
	held map[netip.Prefix]uint8
	// known are the prefixes the last listing covers (installed or
	// skipped since): a prefix outside it makes the next check list.
	known map[netip.Prefix]bool
	// skipped are the prefixes skipped now, for the count and the one
	// log line each.
	skipped map[netip.Prefix]bool
}

func newForeignGuard(dp routetable.Dataplane, proto uint8) *foreignGuard {
	return &foreignGuard{dp: dp, table: routetable.TableMain, proto: proto,
		held: map[netip.Prefix]uint8{}, known: map[netip.Prefix]bool{}, skipped: map[netip.Prefix]bool{}}
}

// refresh lists the table again if full is set or a candidate prefix is
// not known yet.
func (g *foreignGuard) refresh(ctx context.Context, full bool, candidates func(yield func(netip.Prefix) bool)) error {
	need := full
	if !need {
		for p := range candidates {
			if !g.known[p] {
				need = true
				break
			}
		}
	}
	if !need {
		return nil
	}
	clear(g.held)
	err := g.dp.ListRoutes(ctx, g.table, 0, func(r routetable.KernelRoute) {
		if r.Protocol != g.proto && r.Priority != 0 {
			g.held[r.Dst] = r.Protocol
		}
	})
	if err != nil {
		return err
	}
	// A listing answers for every prefix in the table, so what an earlier
	// listing covered stays known (it would not be seen any newer before
	// the next full resync either); only a full resync starts afresh.
	if full {
		clear(g.known)
	}
	for p := range candidates {
		g.known[p] = true
	}
	if full { // forget what is no longer learned
		for p := range g.skipped {
			if !g.known[p] {
				delete(g.skipped, p)
			}
		}
	}
	return nil
}

// allow reports whether a learned route for p may be installed, and
// whether this is the first time p is refused (to log it once).
func (g *foreignGuard) allow(p netip.Prefix) (ok, firstRefusal bool) {
	g.known[p] = true
	if _, held := g.held[p]; !held {
		delete(g.skipped, p)
		return true, false
	}
	first := !g.skipped[p]
	g.skipped[p] = true
	return false, first
}

// forget drops p from the skipped set when no route is wanted for it.
func (g *foreignGuard) forget(p netip.Prefix) { delete(g.skipped, p) }

// guardRefresh lists the table when the batch has prefixes the guard has
// not seen (all of them on a full resync).
func (l *loop) guardRefresh(ctx context.Context) {
	candidates := func(yield func(netip.Prefix) bool) {
		if l.importAll {
			for p := range l.bestPrefixes {
				if !yield(p) {
					return
				}
			}
			return
		}
		for p := range l.importDirty {
			if !yield(p) {
				return
			}
		}
	}
	if err := l.guard.refresh(ctx, l.importAll, candidates); err != nil {
		l.lg.Warn("listing the kernel's routes of other owners", logKeyError, err)
	}
}

// shadowsForeign reports whether a learned route for p must not be
// installed because another owner's route holds p.
func (l *loop) shadowsForeign(p netip.Prefix) bool {
	ok, first := l.guard.allow(p)
	if first {
		l.lg.Warn("learned route not installed: another owner's kernel route holds the prefix",
			logKeyPrefix, p, logKeyCount, len(l.guard.skipped))
	}
	return !ok
}
