package router

import (
	"slices"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
)

// Draining a node: graceful shutdown, RFC 8326 (docs/policy.md).
//
// The source of truth is the node's Node resource, spec.bgp.drain (set
// and cleared by `bgpfabric node drain|undrain`). When it is set the
// router announces every route it exports again with the
// GRACEFUL_SHUTDOWN community (65535:0), and towards iBGP peers with
// LOCAL_PREF 0, so that peers prefer any other path and move their
// traffic while this node still forwards; after BGPConfiguration's
// drainTime it closes every session (a Cease) and keeps them closed. When
// drain is cleared the sessions come back and the routes are announced
// without the community. Only the routes the node originates carry the
// community: routes a reflecting node passes on keep theirs.

// Log keys of this file.
const logKeyDrainTime = "drainTime"

type drainPhase uint8

const (
	drainNone drainPhase = iota
	// drainAnnouncing: routes go out with GRACEFUL_SHUTDOWN until until.
	drainAnnouncing
	// drainClosed: no sessions.
	drainClosed
)

type drainState struct {
	phase drainPhase
	until time.Time
}

// selfDrained reports whether this node's Node asks for a drain.
func (l *loop) selfDrained() bool {
	for _, r := range l.resources {
		if n, ok := r.(*api.Node); ok && n.Name == l.r.cfg.NodeName {
			return n.Spec.BGP != nil && n.Spec.BGP.Drain
		}
	}
	return false
}

// updateDrain follows the Node's drain setting.
func (l *loop) updateDrain(now time.Time, def *api.BGPConfiguration) {
	want := l.selfDrained()
	switch {
	case want && l.drain.phase == drainNone:
		wait := api.DefaultDrainTime
		if def != nil && def.Spec.DrainTime != "" {
			wait = def.Spec.DrainTime.Get()
		}
		l.drain = drainState{phase: drainAnnouncing, until: now.Add(wait)}
		l.exportDirty = true
		l.lg.Info("draining: announcing routes with GRACEFUL_SHUTDOWN before closing the sessions", logKeyDrainTime, wait)
	case !want && l.drain.phase != drainNone:
		l.drain = drainState{}
		l.exportDirty = true
		l.lg.Info("drain ended: sessions open again")
	}
}

// drainTick closes the sessions when the announcing time is over.
func (l *loop) drainTick(now time.Time) {
	if l.drain.phase == drainAnnouncing && !now.Before(l.drain.until) {
		l.drain.phase = drainClosed
		l.resDirty = true
		l.lg.Info("draining: closing every session")
	}
}

// drainWake is when drainTick has something to do, or zero.
func (l *loop) drainWake() time.Time {
	if l.drain.phase == drainAnnouncing {
		return l.drain.until
	}
	return time.Time{}
}

// drainSessions is the sessions and ranges to run: none once closed.
func (l *loop) drainSessions(ss []peering.Session, rs []peering.PeerRange) ([]peering.Session, []peering.PeerRange) {
	if l.drain.phase == drainClosed {
		return nil, nil
	}
	return ss, rs
}

// drainRoutes marks the exports of a draining node.
func (l *loop) drainRoutes(rs []LocalRoute) []LocalRoute {
	if l.drain.phase == drainNone {
		return rs
	}
	for i := range rs {
		if !slices.Contains(rs[i].Communities, api.GracefulShutdownCommunity) {
			rs[i].Communities = append(rs[i].Communities, api.GracefulShutdownCommunity)
		}
		rs[i].GracefulShutdown = true
	}
	return rs
}
