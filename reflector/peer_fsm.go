package reflector

import (
	"context"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// openReceived runs RFC 4271 6.8 collision detection for s, which has just
// received the peer's OPEN (sessionOwner).
func (p *peer) openReceived(ctx context.Context, s *session) bool {
	reply := make(chan bool, 1)
	select {
	case p.events <- func() bool { reply <- p.resolve(s); return false }:
	case <-ctx.Done():
		return false
	}
	select {
	case ok := <-reply:
		return ok
	case <-ctx.Done():
		return false
	}
}

// resolve decides, in the manager, which of s and another connection to
// the same peer survives. The peer's identifier is known from s's OPEN, so
// connections still in OpenSent are compared too (RFC 4271 6.8 allows it).
func (p *peer) resolve(s *session) bool {
	p.mu.Lock()
	others := append([]*session(nil), p.sessions...)
	p.mu.Unlock()
	for _, o := range others {
		if o == s || o.State() == StateIdle {
			continue
		}
		if o.State() == StateEstablished {
			if o.neg.gr {
				// RFC 4724: a new connection from a restarting peer replaces
				// the old session, whose routes are kept as stale.
				p.log.Info("peer restarted: replacing its established session")
				o.grDrop.Store(true)
				o.conn.Close()
				continue
			}
			return false
		}
		keepS := s.outgoing == (p.env.local.routerID > s.neg.remoteID)
		if s.outgoing == o.outgoing {
			keepS = true // the newer connection of the same direction wins
		}
		if !keepS {
			return false
		}
		o.closeWith(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION, "collision")
	}
	return true
}

// up records that s reached Established (sessionOwner).
func (p *peer) up(ctx context.Context, s *session) {
	p.mu.Lock()
	p.establishAt = s.started
	p.since = s.started
	p.lastErr = ""
	p.mu.Unlock()
	p.env.changed()
	p.env.met.transitions.WithLabelValues("established").Inc()
	p.lim.Info("session established", logKeyState, StateOpenConfirm.String()+"->"+StateEstablished.String(),
		logKeyRouterID, uintToAddr(s.neg.remoteID).String(), logKeyASN, s.neg.remoteASN,
		logKeyHold, s.neg.hold, logKeyGraceful, s.neg.gr, logKeyAddPath, s.neg.addPath != 0)
	select {
	case p.events <- func() bool { p.upInManager(ctx, s); return false }:
	case <-ctx.Done():
	}
}

// upInManager hands graceful-restart bookkeeping to the manager: stale
// routes from before the restart live at most staleRoutesTime more.
func (p *peer) upInManager(ctx context.Context, s *session) {
	// The restart timer is replaced by the stale timer; the RIB clears
	// stale routes earlier on the peer's End-of-RIB. In a long-lived
	// stale period its deadlines bound them instead (llgr.go).
	if p.pr.stale {
		p.pr.grTimer.Stop()
		if !p.llgrUp(ctx, p.pr, s) {
			p.pr.grTimer.Reset(staleRoutesTime)
		}
	}
}

// NeighborStatus is a neighbour's state as Neighbors reports it.
type NeighborStatus struct {
	Address string
	// Description is the configured neighbour's (NeighborConfig).
	Description string
	ASN         uint32
	Client      bool
	Dynamic     bool
	State       State
	Uptime      time.Duration // zero unless Established
	// PrefixesIn are the neighbour's paths in the RIB (accepted by its
	// import policy); PrefixesReceived all it sent, before the policy
	// (equal to PrefixesIn without an import policy).
	PrefixesIn       int64
	PrefixesReceived int64
	PrefixesOut      int64
	UpdatesIn        int64
	UpdatesOut       int64
	// OutQueueBytes is what the session's output queue holds now, and
	// OutQueuePeak the most it held since the session began (writer.go).
	OutQueueBytes int64
	OutQueuePeak  int64
	// Since is when the neighbour's state last changed between up and
	// down (or when it was configured).
	Since     time.Time
	LastError string
	// BFD is the neighbour's BFD state (AdminDown, Down, Init, Up;
	// "Error: ..." when it could not be set up), empty without BFD.
	BFD string
	// Families are the address families of the established session;
	// FamilyPrefixes the neighbour's paths in the RIB by family (the
	// session's families and any that still hold paths).
	Families       []string
	FamilyPrefixes map[string]int64
	// Policy is set when the neighbour's route policy is not what its
	// configuration asks for or exchanges nothing: a missing BGPFilter,
	// or RFC 8212 on an eBGP neighbour without filters.
	Policy string
}

func (p *peer) status(now time.Time) NeighborStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := StateActive
	if !p.cfg.Passive && p.dialing {
		st = StateConnect
	}
	var queued, peak int
	for _, s := range p.sessions {
		st = max(st, s.State())
		q, pk := s.q.sizes()
		queued, peak = max(queued, q), max(peak, pk)
	}
	ns := NeighborStatus{
		Address: p.cfg.Address.String(), ASN: p.cfg.ASN, Client: p.cfg.Client, Dynamic: p.dynamic,
		State: st, PrefixesIn: p.stats.prefixesIn.Load(), PrefixesOut: p.stats.prefixesOut.Load(),
		UpdatesIn: p.stats.updatesIn.Load(), UpdatesOut: p.stats.updatesOut.Load(),
		Since: p.since, LastError: p.lastErr, OutQueueBytes: int64(queued), OutQueuePeak: int64(peak),
	}
	ns.Families, ns.FamilyPrefixes = p.stats.familyStatus()
	ns.PrefixesReceived = ns.PrefixesIn
	if p.stats.filtered.Load() {
		ns.PrefixesReceived = p.stats.received.Load()
	}
	if n := p.stats.policyNote.Load(); n != nil {
		ns.Policy = *n
	}
	if st == StateEstablished && !p.establishAt.IsZero() {
		ns.Uptime = now.Sub(p.establishAt)
	}
	return ns
}
