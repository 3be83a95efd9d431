package bfd

import (
	"math/rand/v2"
	"time"
)

// session is one BFD session's state (the variables of RFC 5880 §6.8.1)
// and its timers. It does no I/O: the engine feeds it packets and time,
// and collects what it wants to send and the state changes it made.
// It is owned by its engine, whose caller serialises access.
type session struct {
	key     Key
	cfg     Config
	ifindex int

	state       State // bfd.SessionState
	remoteState State // bfd.RemoteSessionState
	localDiscr  uint32
	remoteDiscr uint32
	localDiag   Diag

	// What the peer told us last.
	remoteDiag  Diag
	remoteCPI   bool
	remoteMult  uint8
	remoteMinRx time.Duration // bfd.RemoteMinRxInterval
	remoteMinTx time.Duration // its Desired Min TX Interval

	// Advertised intervals (bfd.DesiredMinTxInterval and
	// bfd.RequiredMinRxInterval) and the ones in force: they differ while
	// a poll sequence for a change is pending (RFC 5880 §6.8.3).
	desiredMinTx, requiredMinRx time.Duration
	activeTx, activeRx          time.Duration
	poll                        bool // a poll sequence is pending
	sendFinal                   bool // answer a poll now

	nextTx   time.Time // zero: no periodic transmission
	detectAt time.Time // zero: detection timer not running
	// lingerUntil is set on a removed session that still tells its peer
	// AdminDown; at that time it goes away.
	lingerUntil time.Time
	lastRx      time.Time // when the last valid packet came
	index       int       // in the engine's timer heap; -1 when out
	due         int64     // deadline() when last placed in the heap (engine.dueOf)
	// tx is the sending path's cache of this session's destination.
	tx *txCache

	counters Counters
}

// Counters of one session.
type Counters struct {
	TxPackets uint64
	RxPackets uint64
	// RxDropped counts packets matched to this session but discarded:
	// wrong TTL, or sent from another address than the peer's.
	RxDropped uint64
	// Ups counts transitions into Up, Downs transitions out of Up.
	Ups, Downs uint64
	// Polls counts our poll sequences completed by the peer's Final;
	// Finals counts the peer's polls we answered.
	Polls, Finals uint64
}

func newSession(cfg Config, ifindex int, discr uint32, now time.Time) *session {
	s := &session{
		key:         cfg.Key(),
		cfg:         cfg,
		ifindex:     ifindex,
		state:       StateDown,
		remoteState: StateDown,
		localDiscr:  discr,
		remoteMinRx: time.Microsecond, // RFC 5880 §6.8.1: initialised to 1
		index:       -1,
		tx:          &txCache{},
	}
	s.desiredMinTx, s.requiredMinRx = s.wantIntervals()
	s.activeTx, s.activeRx = s.desiredMinTx, s.requiredMinRx
	s.nextTx = now // announce ourselves at once
	return s
}

// wantIntervals are the intervals to advertise in the current state: the
// configured ones, with transmission slowed to at least 1 s while not Up.
func (s *session) wantIntervals() (tx, rx time.Duration) {
	tx, rx = s.cfg.MinTx, s.cfg.MinRx
	if s.state != StateUp && tx < slowTx {
		tx = slowTx
	}
	return tx, rx
}

// setIntervals changes the advertised intervals. A change while Init or Up
// starts a poll sequence; while Up, a larger transmit interval and a
// smaller receive interval take effect only when the Final comes (RFC
// 5880 §6.8.3), the others at once.
func (s *session) setIntervals(tx, rx time.Duration) {
	if tx == s.desiredMinTx && rx == s.requiredMinRx {
		return
	}
	s.desiredMinTx, s.requiredMinRx = tx, rx
	switch s.state {
	case StateUp:
		s.poll = true
		s.activeTx = min(s.activeTx, tx)
		s.activeRx = max(s.activeRx, rx)
	case StateInit:
		s.poll = true
		fallthrough
	default:
		s.activeTx, s.activeRx = tx, rx
	}
}

// txInterval is the agreed transmit interval: the larger of ours and the
// peer's required receive interval (RFC 5880 §6.8.2). Zero: the peer asked
// for no packets.
func (s *session) txInterval() time.Duration {
	if s.remoteMinRx == 0 {
		return 0
	}
	return max(s.activeTx, s.remoteMinRx)
}

// detectTime is the detection time in asynchronous mode (RFC 5880 §6.8.4):
// the peer's multiplier times the larger of our required receive interval
// and its desired transmit interval.
func (s *session) detectTime() time.Duration {
	return time.Duration(s.remoteMult) * max(s.activeRx, s.remoteMinTx)
}

// jitter returns the interval to wait before the next periodic packet:
// 75–100% of interval, or 75–90% when our multiplier is 1 (§6.8.7).
func jitter(rng *rand.Rand, interval time.Duration, mult uint8) time.Duration {
	hi := 0.25
	if mult == 1 {
		hi = 0.15
	}
	return time.Duration(float64(interval) * (0.75 + rng.Float64()*hi))
}

// deadline is the earliest time the session needs the engine.
func (s *session) deadline() time.Time {
	d := s.nextTx
	if t := s.detectAt; !t.IsZero() && (d.IsZero() || t.Before(d)) {
		d = t
	}
	if t := s.lingerUntil; !t.IsZero() && (d.IsZero() || t.Before(d)) {
		d = t
	}
	return d
}

// packet builds the control packet to send now.
func (s *session) packet() ControlPacket {
	p := ControlPacket{
		Diag:                  s.localDiag,
		State:                 s.state,
		DetectMult:            s.cfg.Multiplier,
		MyDiscriminator:       s.localDiscr,
		YourDiscriminator:     s.remoteDiscr,
		DesiredMinTxInterval:  toMicros(s.desiredMinTx),
		RequiredMinRxInterval: toMicros(s.requiredMinRx),
		// RequiredMinEchoRxIntvl 0: no echo function.
	}
	if s.sendFinal {
		p.Final = true // and P clear (§6.8.7)
	} else {
		p.Poll = s.poll
	}
	return p
}

// setState moves the session to st with diag, and adapts the intervals.
// It reports whether the state changed.
func (s *session) setState(st State, diag Diag) bool {
	if st == s.state {
		return false
	}
	old := s.state
	s.state = st
	s.localDiag = diag
	switch {
	case st == StateUp:
		s.counters.Ups++
	case old == StateUp:
		s.counters.Downs++
	}
	if st == StateDown || st == StateAdminDown {
		s.poll = false
	}
	s.setIntervals(s.wantIntervals())
	return true
}

// receive applies a valid control packet for this session (RFC 5880
// §6.8.6 from "Set bfd.RemoteDiscr" on). It reports whether the state
// changed.
func (s *session) receive(p *ControlPacket, now time.Time) (changed bool) {
	s.counters.RxPackets++
	s.lastRx = now
	s.remoteDiscr = p.MyDiscriminator
	s.remoteState = p.State
	s.remoteDiag = p.Diag
	s.remoteCPI = p.ControlPlaneIndependent
	s.remoteMult = p.DetectMult
	s.remoteMinTx = micros(p.DesiredMinTxInterval)
	oldRemoteMinRx := s.remoteMinRx
	s.remoteMinRx = micros(p.RequiredMinRxInterval)

	if p.Final && s.poll {
		s.poll = false
		s.activeTx, s.activeRx = s.desiredMinTx, s.requiredMinRx
		s.counters.Polls++
	}

	if s.state == StateAdminDown {
		return false
	}
	if p.State == StateAdminDown {
		if s.state != StateDown {
			changed = s.setState(StateDown, DiagNeighborSignaledDown)
		}
	} else {
		switch s.state {
		case StateDown:
			switch p.State {
			case StateDown:
				changed = s.setState(StateInit, DiagNone)
			case StateInit:
				changed = s.setState(StateUp, DiagNone)
			}
		case StateInit:
			if p.State == StateInit || p.State == StateUp {
				changed = s.setState(StateUp, DiagNone)
			}
		case StateUp:
			if p.State == StateDown {
				changed = s.setState(StateDown, DiagNeighborSignaledDown)
			}
		}
	}
	if p.Poll {
		s.sendFinal = true
		s.nextTx = now
	}
	if changed {
		s.nextTx = now // tell the peer at once
	} else if s.remoteMinRx != oldRemoteMinRx && s.remoteMinRx > 0 {
		// The peer changed what it accepts: reschedule from now, without
		// waiting out an interval agreed before (§6.8.3 allows either).
		if next := now.Add(s.txInterval()); s.nextTx.IsZero() || next.Before(s.nextTx) {
			s.nextTx = next
		}
	}
	if s.state == StateInit || s.state == StateUp {
		s.detectAt = now.Add(s.detectTime())
	} else {
		s.detectAt = time.Time{}
	}
	return changed
}

// expire handles the detection timer (RFC 5880 §6.8.4): the session goes
// Down with diagnostic 1 and forgets the peer's discriminator (§6.8.1).
func (s *session) expire() bool {
	s.detectAt = time.Time{}
	if s.state != StateInit && s.state != StateUp {
		return false
	}
	s.remoteDiscr = 0
	s.remoteMinRx = time.Microsecond
	s.remoteMinTx = 0
	return s.setState(StateDown, DiagControlDetectExpired)
}

// transmitted records a packet sent at now and schedules the next one.
// With a grid (a quantum q > 0 and its origin), the next packet is
// scheduled on a multiple of q from the origin, so that the packets of
// many sessions fall due together and leave in one batch: the jitter is
// then drawn q above its floor and the time rounded down to the grid, so
// that the interval stays within the jitter's bounds (§6.8.7). Intervals
// shorter than 4q are not put on the grid.
func (s *session) transmitted(now time.Time, rng *rand.Rand, origin time.Time, q time.Duration) {
	s.counters.TxPackets++
	if s.sendFinal {
		s.counters.Finals++
	}
	s.sendFinal = false
	iv := s.txInterval()
	if iv <= 0 {
		s.nextTx = time.Time{}
		return
	}
	lo, hi := jitterBounds(iv, s.cfg.Multiplier)
	if q <= 0 || hi-lo <= 2*q {
		s.nextTx = now.Add(jitter(rng, iv, s.cfg.Multiplier))
		return
	}
	// lo+q..hi, then down to the grid by less than q: within lo..hi.
	j := lo + q + time.Duration(rng.Float64()*float64(hi-lo-q))
	next := now.Add(j).Sub(origin)
	s.nextTx = origin.Add(next - next%q)
}

// jitterBounds are the bounds of jitter's result.
func jitterBounds(interval time.Duration, mult uint8) (lo, hi time.Duration) {
	hi = interval
	if mult == 1 {
		hi = time.Duration(float64(interval) * 0.9)
	}
	return time.Duration(float64(interval) * 0.75), hi
}

func (s *session) status() Status {
	st := Status{
		Key:                           s.key,
		State:                         s.state,
		RemoteState:                   s.remoteState,
		LocalDiscriminator:            s.localDiscr,
		RemoteDiscriminator:           s.remoteDiscr,
		LocalDiag:                     s.localDiag,
		RemoteDiag:                    s.remoteDiag,
		RemoteControlPlaneIndependent: s.remoteCPI,
		TxInterval:                    s.txInterval(),
		LastReceived:                  s.lastRx,
		Counters:                      s.counters,
	}
	if !s.detectAt.IsZero() {
		st.DetectTime = s.detectTime()
	}
	return st
}
