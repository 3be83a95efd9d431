package router

import (
	"context"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
)

// Supervision is what the router does when its speaker dies (a Speaker
// that is a LossWatcher). Zero fields take the defaults.
type Supervision struct {
	// RestartBackoff is the wait before the first restart; every loss
	// within StableAfter of the last start doubles it, up to
	// MaxRestartBackoff, with up to 20% jitter. Defaults 500 ms, 30 s,
	// and 60 s.
	RestartBackoff, MaxRestartBackoff, StableAfter time.Duration
	// Quarantine is the policy for the peer blamed for the losses.
	Quarantine QuarantinePolicy
}

// QuarantinePolicy decides which peer a loss is blamed on and how long
// a peer that keeps crashing the speaker is held down.
//
// The peer blamed for a loss is the configured peer whose session came
// up last in the dead speaker, if it came up at most BlameWindow before
// the loss (else nobody is blamed). A peer blamed Strikes times within
// StrikeWindow is quarantined: not configured in the speaker (no session,
// shown Idle with the reason and the end in BGPStatus) for HoldDown,
// doubled for every quarantine of the same peer before, up to
// MaxHoldDown. When the time is over, it is configured again; its next
// loss within StrikeWindow quarantines it again, for twice as long. A
// peer that has not been blamed for MaxHoldDown starts over. Dynamic
// neighbours are never quarantined (a range accepts any router in it).
type QuarantinePolicy struct {
	// BlameWindow defaults to 30 s, Strikes to 2, StrikeWindow to 15
	// min, HoldDown to 5 min and MaxHoldDown to 1 h.
	BlameWindow  time.Duration
	Strikes      int
	StrikeWindow time.Duration
	HoldDown     time.Duration
	MaxHoldDown  time.Duration
}

func (s Supervision) withDefaults() Supervision {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&s.RestartBackoff, 500*time.Millisecond)
	def(&s.MaxRestartBackoff, 30*time.Second)
	def(&s.StableAfter, time.Minute)
	q := &s.Quarantine
	def(&q.BlameWindow, 30*time.Second)
	def(&q.StrikeWindow, 15*time.Minute)
	def(&q.HoldDown, 5*time.Minute)
	def(&q.MaxHoldDown, time.Hour)
	if q.Strikes <= 0 {
		q.Strikes = 2
	}
	return s
}

// supervisor is the loop's state about the speaker's deaths.
type supervisor struct {
	lossCh    chan SpeakerLoss
	downUntil time.Time // no restart before
	backoff   time.Duration
	startedAt time.Time
	restarts  int
	// strikes are when each configured peer was blamed (within the
	// strike window); held are the quarantined peers.
	strikes map[netip.Addr][]time.Time
	held    map[netip.Addr]*quarantine
	// lost are the sessions the dead speaker had, shown in the status
	// until a new speaker runs.
	lost map[netip.Addr]peering.Session
}

type quarantine struct {
	until time.Time
	count int // quarantines so far
	last  time.Time
}

func newSupervisor() supervisor {
	return supervisor{lossCh: make(chan SpeakerLoss, 1), strikes: map[netip.Addr][]time.Time{}, held: map[netip.Addr]*quarantine{}}
}

// watchLoss subscribes to the speaker's losses, if it can die.
func (l *loop) watchLoss(ctx context.Context) {
	lw, ok := l.r.cfg.Speaker.(LossWatcher)
	if !ok {
		return
	}
	if err := lw.WatchLoss(ctx, func(s SpeakerLoss) { send(ctx, l.sup.lossCh, s) }); err != nil {
		l.lg.Error("watching the speaker's losses", logKeyError, err)
	}
}

// onStarted notes a successful start of the speaker.
func (l *loop) onStarted(now time.Time) {
	l.sup.startedAt = now
	l.sup.lost = nil
}

// appendLost adds to addrs the sessions of a dead speaker that nothing
// else in the status shows.
func (l *loop) appendLost(addrs []netip.Addr) []netip.Addr {
	for a := range l.sup.lost {
		_, running := l.running[a]
		_, failed := l.failed[a]
		_, dynamic := l.dynamic[a]
		if !running && !failed && !dynamic {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// lostStatus renders a session of the dead speaker: Idle, waiting for
// the restart.
func (l *loop) lostStatus(a netip.Addr) (api.BGPPeerStatus, bool) {
	s, ok := l.sup.lost[a]
	if !ok {
		return api.BGPPeerStatus{}, false
	}
	return api.BGPPeerStatus{PeerIP: a.String(), ASNumber: s.PeerAS, Type: s.Type, State: api.BGPIdle,
		LastError: "the BGP speaker died; restarting it"}, true
}

// speakerDown reports whether the speaker waits for its restart.
func (l *loop) speakerDown(now time.Time) bool { return now.Before(l.sup.downUntil) }

// onLoss handles the speaker's death: what the dead speaker had is gone,
// the kernel keeps what is installed (held with graceful restart until
// the peers have sent their routes to the new speaker), and the next
// reconcile after the backoff starts a new speaker and replays the
// sessions and routes.
func (l *loop) onLoss(loss SpeakerLoss) {
	// The dead speaker's last events are queued before the loss.
	for drained := false; !drained; {
		select {
		case e := <-l.peerCh:
			l.onPeer(e)
		default:
			drained = true
		}
	}
	l.bestSpare = spareQueue(l.bestQ.take(l.bestSpare)) // its best paths are void
	now := time.Now()
	if loss.At.IsZero() {
		loss.At = now
	}
	cfg := l.r.cfg.Supervision
	sup := &l.sup
	sup.restarts++
	if sup.backoff == 0 || now.Sub(sup.startedAt) >= cfg.StableAfter {
		sup.backoff = cfg.RestartBackoff
	} else {
		sup.backoff = min(2*sup.backoff, cfg.MaxRestartBackoff)
	}
	wait := sup.backoff + time.Duration(rand.Int64N(int64(sup.backoff)/5+1))
	sup.downUntil = now.Add(wait)
	blamed := l.blame(loss)
	l.lg.Error("BGP speaker died; restarting it", logKeyError, loss.Err, logKeyPanic, loss.Panic,
		logKeyBlamed, blamed, logKeyDuration, wait, logKeyCount, sup.restarts)
	if l.metrics != nil {
		l.metrics.speakerRestarts.Inc()
	}
	installed := l.bestCount()
	l.sup.lost = maps.Clone(l.running)
	l.forgetSpeaker()
	clear(l.best)
	l.forgetRIB() // ribloop.go
	l.clearImportDirty()
	l.importAll = true
	if l.gr && (installed > 0 || l.holdImport && l.stale > 0) {
		// Keep forwarding on the installed routes until the peers have
		// sent theirs to the new speaker (End-of-RIB) or the restart
		// time is over; the new speaker's sessions carry the R bit.
		_, def := l.input()
		rt := api.DefaultRestartTime
		if def != nil && def.Spec.GracefulRestart != nil && def.Spec.GracefulRestart.RestartTime != "" {
			rt = def.Spec.GracefulRestart.RestartTime.Get()
		}
		l.holdImport, l.stale = true, max(installed, l.stale)
		l.holdUntil = now.Add(wait + rt)
	}
	l.resDirty, l.exportDirty, l.statusDirty = true, true, true
}

// blame picks the peer a loss is blamed on (see QuarantinePolicy) and
// quarantines it when it is blamed often enough. It returns the peer,
// zero for none.
func (l *loop) blame(loss SpeakerLoss) netip.Addr {
	q := l.r.cfg.Supervision.Quarantine
	sup := &l.sup
	now := loss.At
	// Forget what is out of the windows, and peers no longer configured.
	desired := l.desiredPeers()
	for a, ts := range sup.strikes {
		ts = slices.DeleteFunc(ts, func(t time.Time) bool { return now.Sub(t) > q.StrikeWindow })
		if len(ts) == 0 || !desired[a] {
			delete(sup.strikes, a)
		} else {
			sup.strikes[a] = ts
		}
	}
	a := loss.LastUp
	if !a.IsValid() || !desired[a] || loss.LastUpAt.IsZero() || now.Sub(loss.LastUpAt) > q.BlameWindow {
		return netip.Addr{}
	}
	sup.strikes[a] = append(sup.strikes[a], now)
	if len(sup.strikes[a]) < q.Strikes {
		return a
	}
	delete(sup.strikes, a)
	h := sup.held[a]
	if h == nil || now.Sub(h.last) > q.MaxHoldDown+h.until.Sub(h.last) {
		h = &quarantine{}
		sup.held[a] = h
	}
	d := q.HoldDown
	for i := 0; i < h.count && d < q.MaxHoldDown; i++ {
		d *= 2
	}
	d = min(d, q.MaxHoldDown)
	h.count++
	h.last, h.until = now, now.Add(d)
	l.lg.Error("peer quarantined: its sessions keep crashing the BGP speaker", logKeyPeer, a,
		logKeyDuration, d, logKeyCount, h.count)
	return a
}

// desiredPeers are the addresses of the configured sessions that this
// node should have, running or not.
func (l *loop) desiredPeers() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for a := range l.running {
		out[a] = true
	}
	for a := range l.failed {
		out[a] = true
	}
	return out
}

// quarantined returns the quarantine of a, if it holds now.
func (l *loop) quarantined(a netip.Addr, now time.Time) (*quarantine, bool) {
	h, ok := l.sup.held[a]
	return h, ok && now.Before(h.until)
}

// holdQuarantined takes the quarantined sessions out of desired, and
// records them as failed with the reason (BGPStatus shows them Idle).
func (l *loop) holdQuarantined(desired []peering.Session) []peering.Session {
	if len(l.sup.held) == 0 {
		return desired
	}
	now := time.Now()
	out := desired[:0:0]
	for _, s := range desired {
		h, held := l.quarantined(s.PeerAddress, now)
		if !held {
			if f, ok := l.failed[s.PeerAddress]; ok && f.quarantine {
				delete(l.failed, s.PeerAddress)
			}
			out = append(out, s)
			continue
		}
		l.failed[s.PeerAddress] = sessionFailure{session: s, quarantine: true, until: h.until,
			err: "quarantined until " + h.until.UTC().Format(time.RFC3339) + ": sessions with this peer crashed the BGP speaker"}
	}
	if l.metrics != nil {
		l.metrics.quarantined.Set(float64(l.heldCount(now)))
	}
	return out
}

func (l *loop) heldCount(now time.Time) int {
	n := 0
	for _, h := range l.sup.held {
		if now.Before(h.until) {
			n++
		}
	}
	return n
}

// nextSupervisionWake is when the loop must look again: the restart, or
// the end of a quarantine.
func (l *loop) nextSupervisionWake(now time.Time) time.Time {
	var t time.Time
	if now.Before(l.sup.downUntil) {
		t = l.sup.downUntil
	}
	for _, h := range l.sup.held {
		if now.Before(h.until) && (t.IsZero() || h.until.Before(t)) {
			t = h.until
		}
	}
	return t
}

// supervisionTick makes the peers reconcile when a quarantine ended or
// the restart is due.
func (l *loop) supervisionTick(now time.Time) {
	if !l.started && !l.sup.downUntil.IsZero() && !now.Before(l.sup.downUntil) {
		l.sup.downUntil = time.Time{}
		l.resDirty = true
	}
	for a, h := range l.sup.held {
		if !now.Before(h.until) {
			if f, ok := l.failed[a]; ok && f.quarantine {
				l.lg.Info("peer released from quarantine", logKeyPeer, a)
				delete(l.failed, a)
				l.resDirty, l.statusDirty = true, true
			}
		}
		if now.Sub(h.until) > l.r.cfg.Supervision.Quarantine.MaxHoldDown {
			delete(l.sup.held, a)
		}
	}
}
