package gobgp

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// minOpeningBound is the least time a session may spend opening (in
// OpenSent or OpenConfirm) before the speaker ends it; see openingBound.
const minOpeningBound = 10 * time.Second

// openingBound is how long a session whose hold time is hold may stay in
// OpenSent or OpenConfirm, together, before the speaker ends it and
// connects again: max(2 × hold, 10 s).
//
// GoBGP keeps OpenSent for up to 4 minutes (the "large value" RFC 4271
// suggests) on a connection that stays open but never brings the peer's
// OPEN. That happens after a peer's process was stopped (SIGSTOP) for
// longer than the hold time: our connect went into its listen backlog,
// and when it continued, its GoBGP accepted the connection and never
// read it (most likely it handed it to the session its expired hold timer
// was ending, whose deletion leaves such a connection open). Meanwhile our OpenSent refuses the peer's
// own connections, so the session stays down for those 4 minutes
// (docs/robustness.md).
func openingBound(hold time.Duration) time.Duration {
	return max(2*hold, minOpeningBound)
}

// openingCheck is how often the watch looks for sessions opening for too
// long: a session is ended at most this much after its bound.
const openingCheck = time.Second

// openingWatch ends sessions that stay opening beyond their bound.
type openingWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	since map[netip.Addr]time.Time // when each opening session began to open
}

// startOpeningWatch starts the watch; stopOpeningWatch ends it. Called
// with s.mu held, by Start.
func (s *Speaker) startOpeningWatch() error {
	ctx, cancel := context.WithCancel(context.Background())
	w := &openingWatch{cancel: cancel, done: make(chan struct{}), since: map[netip.Addr]time.Time{}}
	err := s.srv.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		pe := r.GetPeer()
		st := pe.GetPeer().GetState()
		if st == nil {
			return
		}
		a, err := netip.ParseAddr(st.GetNeighborAddress())
		if err != nil {
			return
		}
		w.observe(a, st.GetSessionState(), time.Now())
	})
	if err != nil {
		cancel()
		return fmt.Errorf("watching the sessions that open: %w", err)
	}
	s.opening = w
	go func() {
		defer close(w.done)
		t := time.NewTicker(openingCheck)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				for _, a := range w.overdue(now, s.holdTime) {
					if ctx.Err() != nil {
						return
					}
					s.endOpening(ctx, a)
				}
			}
		}
	}()
	return nil
}

// stopOpeningWatch ends the watch and waits for its goroutine. Called with
// s.mu held and peerMu not held, by Stop.
func (s *Speaker) stopOpeningWatch() {
	if s.opening == nil {
		return
	}
	s.opening.cancel()
	<-s.opening.done
	s.opening = nil
}

// observe records a state change of the session with a.
func (w *openingWatch) observe(a netip.Addr, st api.PeerState_SessionState, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch st {
	case api.PeerState_OPENSENT, api.PeerState_OPENCONFIRM:
		if _, ok := w.since[a]; !ok {
			w.since[a] = now
		}
	default:
		delete(w.since, a)
	}
}

// overdue returns the sessions that have been opening for longer than
// their bound at now, and forgets them (ending one brings it to Idle).
func (w *openingWatch) overdue(now time.Time, hold func(netip.Addr) time.Duration) []netip.Addr {
	w.mu.Lock()
	var open []netip.Addr
	for a := range w.since {
		open = append(open, a)
	}
	w.mu.Unlock()
	var out []netip.Addr
	for _, a := range open {
		h := hold(a) // takes peerMu: not with w.mu held
		w.mu.Lock()
		if since, ok := w.since[a]; ok && now.Sub(since) > openingBound(h) {
			delete(w.since, a)
			out = append(out, a)
		}
		w.mu.Unlock()
	}
	return out
}

// holdTime is the hold time we propose to the peer at a: its own, its
// range's for a dynamic neighbour, else GoBGP's default (90 s).
func (s *Speaker) holdTime(a netip.Addr) time.Duration {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	return s.holdTimeLocked(a)
}

func (s *Speaker) holdTimeLocked(a netip.Addr) time.Duration {
	if p, ok := s.peers[a]; ok {
		return p.HoldTime
	}
	best := -1
	hold := 90 * time.Second
	for pfx, r := range s.ranges {
		if pfx.Contains(a) && pfx.Bits() > best {
			best, hold = pfx.Bits(), r.HoldTime
		}
	}
	return hold
}

// endOpening ends the session with a, stuck opening: a configured peer is
// deleted and added again with the same configuration (GoBGP's Disable and
// Enable can drop the second of two quick requests), which closes the
// connection and starts connecting anew; a dynamic neighbour is deleted,
// and GoBGP creates it again when the router connects.
func (s *Speaker) endOpening(ctx context.Context, a netip.Addr) {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	p, configured := s.peers[a]
	var state api.PeerState_SessionState
	dynamic := false
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{Address: a.String()}, func(gp *api.Peer) {
		state = gp.GetState().GetSessionState()
		dynamic = gp.GetConf().GetNeighborAddress() == "" && gp.GetConf().GetPeerGroup() != ""
	})
	if err != nil || (state != api.PeerState_OPENSENT && state != api.PeerState_OPENCONFIRM) {
		return // gone, or it moved on meanwhile
	}
	if !configured && !dynamic {
		return
	}
	s.lg.Warn("session stuck opening: ending it to connect anew", "peer", a, "state", sessionState(state), "bound", openingBound(s.holdTimeLocked(a)))
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: a.String()}); err != nil {
		s.lg.Warn("ending a session stuck opening", "peer", a, "err", err)
		return
	}
	if !configured {
		return
	}
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerAPI(p)}); err != nil {
		s.lg.Error("adding back a peer whose session was stuck opening", "peer", a, "err", err)
		delete(s.peers, a)
	}
}
