package bfd

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"
)

// engine holds every session of a Server and runs RFC 5880 on them: it
// takes received packets and the passage of time, and produces packets to
// send and state changes. It does no I/O and reads no clock, so that tests
// drive it with a fake clock and a fake transport; the Server serialises
// calls into it.
type engine struct {
	rng     *rand.Rand
	byDiscr map[uint32]*session
	// byPeer finds the session of a packet whose your-discriminator is
	// zero. Its keys come from configuration only, never from packets.
	byPeer map[peerKey][]*session
	byKey  map[Key]*session
	// lingering holds removed sessions still sending AdminDown.
	lingering map[Key]*session
	timers    timerHeap
	// epoch is the time the heap's integer deadlines count from.
	epoch time.Time
	stack []int // expiryDue's scratch
	// quantum, when set, puts periodic transmissions on a grid of that
	// step from epoch (session.transmitted).
	quantum time.Duration

	// Filled by receive, fire and remove; drained by the Server.
	out     []outPacket
	changes []StateChange

	counters ServerCounters
}

type peerKey struct {
	peer     netip.Addr
	multihop bool
}

// outPacket is a packet to send for a session.
type outPacket struct {
	peer, local netip.Addr
	ifindex     int
	multihop    bool
	payload     [packetLen]byte
	// tx is the session's, filled and used by the sending path only.
	tx *txCache
}

// rxMeta is what the socket tells about a received packet.
type rxMeta struct {
	src      netip.Addr
	dst      netip.Addr // unspecified when unknown
	ifindex  int
	ttl      int  // -1 when unknown
	multihop bool // received on the multihop port
}

// ServerCounters count packets the Server discarded before or without a
// session, and send failures.
type ServerCounters struct {
	// RxMalformed: failed the checks of RFC 5880 §6.8.6 (including
	// packets with the authentication bit set).
	RxMalformed uint64
	// RxUnknown: no session for the discriminator or the peer address.
	RxUnknown uint64
	// RxBadTTL: TTL (hop limit) below what the session accepts, or
	// missing.
	RxBadTTL uint64
	// TxErrors: packets the kernel refused to send.
	TxErrors uint64
}

// StateChange reports a session's move from one state to another.
type StateChange struct {
	Key                Key
	LocalDiscriminator uint32
	Old, New           State
	// Diag is our diagnostic: why the session changed (e.g. Control
	// Detection Time Expired, Neighbor Signaled Session Down).
	Diag Diag
	// RemoteState and RemoteDiag are what the peer said last: a remote
	// AdminDown (RFC 5882 §3.2) must not be taken as a path failure.
	RemoteState State
	RemoteDiag  Diag
	// RemoteControlPlaneIndependent is the peer's C bit, which RFC 5882
	// §4.3 needs to decide whether BFD Down may end a graceful restart.
	RemoteControlPlaneIndependent bool
	At                            time.Time
}

// newEngine returns an engine; quantum > 0 puts periodic transmissions
// on a grid of that step.
func newEngine(seed uint64, quantum time.Duration) *engine {
	return &engine{
		quantum: quantum,
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		byDiscr: map[uint32]*session{},
		byPeer:  map[peerKey][]*session{},
		byKey:   map[Key]*session{},

		lingering: map[Key]*session{},
	}
}

var errExists = errors.New("session exists")

// add creates a session for a normalised config.
func (e *engine) add(cfg Config, ifindex int, now time.Time) (*session, error) {
	k := cfg.Key()
	if _, ok := e.byKey[k]; ok {
		return nil, fmt.Errorf("adding bfd session %s: %w", k, errExists)
	}
	if old := e.lingering[k]; old != nil {
		// The new session speaks for this peer now: the old one's
		// AdminDown would tear down what the new one brings up.
		e.drop(old)
	}
	var discr uint32
	for discr == 0 || e.byDiscr[discr] != nil {
		discr = e.rng.Uint32()
	}
	s := newSession(cfg, ifindex, discr, now)
	e.byKey[k] = s
	e.byDiscr[discr] = s
	pk := peerKey{k.Peer, k.Multihop}
	e.byPeer[pk] = append(e.byPeer[pk], s)
	s.due = e.dueOf(s.deadline())
	heap.Push(&e.timers, s)
	return s, nil
}

// remove deletes a session. A session whose peer listens (Init or Up)
// first lingers for a detection time (at least a second), out of the maps
// that find sessions by key and address (so that a new session for the
// same peer can start at once) but still sending AdminDown (diagnostic 7)
// at the interval in force, so that the peer does not take the removal for
// a path failure (RFC 5882 §3.2, RFC 5880 §6.8.16). Others send one
// AdminDown packet and go at once.
func (e *engine) remove(k Key, now time.Time) bool {
	s, ok := e.byKey[k]
	if !ok {
		return false
	}
	old, activeTx, detect := s.state, s.activeTx, s.detectTime()
	if s.setState(StateAdminDown, DiagAdministrativelyDown) {
		e.emit(s, old, now)
	}
	delete(e.byKey, k)
	pk := peerKey{k.Peer, k.Multihop}
	list := e.byPeer[pk]
	for i, x := range list {
		if x == s {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(e.byPeer, pk)
	} else {
		e.byPeer[pk] = list
	}
	if (old == StateUp || old == StateInit) && s.remoteMinRx > 0 {
		s.activeTx = activeTx
		s.detectAt = time.Time{}
		s.lingerUntil = now.Add(max(detect, slowTx))
		e.lingering[k] = s
		e.send(s, now)
		e.reschedule(s)
		return true
	}
	e.send(s, now)
	e.drop(s)
	return true
}

// drop forgets a removed session.
func (e *engine) drop(s *session) {
	delete(e.byDiscr, s.localDiscr)
	if e.lingering[s.key] == s {
		delete(e.lingering, s.key)
	}
	if s.index >= 0 {
		heap.Remove(&e.timers, s.index)
	}
}

// emit records a state change of s from old.
func (e *engine) emit(s *session, old State, now time.Time) {
	e.changes = append(e.changes, StateChange{
		Key:                           s.key,
		LocalDiscriminator:            s.localDiscr,
		Old:                           old,
		New:                           s.state,
		Diag:                          s.localDiag,
		RemoteState:                   s.remoteState,
		RemoteDiag:                    s.remoteDiag,
		RemoteControlPlaneIndependent: s.remoteCPI,
		At:                            now,
	})
}

// lookup finds the session of a valid packet (RFC 5880 §6.8.6: by your
// discriminator, or when it is zero by the source address, and for
// sessions so configured by destination address and interface).
func (e *engine) lookup(p *ControlPacket, m *rxMeta) *session {
	if p.YourDiscriminator != 0 {
		s := e.byDiscr[p.YourDiscriminator]
		if s == nil || s.key.Peer != m.src || s.key.Multihop != m.multihop {
			return nil
		}
		return s
	}
	for _, s := range e.byPeer[peerKey{m.src, m.multihop}] {
		if s.key.Local.IsValid() && m.dst.IsValid() && s.key.Local != m.dst {
			continue
		}
		if s.ifindex != 0 && m.ifindex != 0 && s.ifindex != m.ifindex {
			continue
		}
		return s
	}
	return nil
}

// receive handles one received UDP payload.
func (e *engine) receive(b []byte, m rxMeta, now time.Time) {
	p, err := Parse(b)
	if err != nil {
		e.counters.RxMalformed++
		return
	}
	// Zones go: the interface is checked by index.
	m.src, m.dst = m.src.Unmap().WithZone(""), m.dst.Unmap().WithZone("")
	s := e.lookup(&p, &m)
	if s == nil {
		e.counters.RxUnknown++
		return
	}
	// GTSM (RFC 5881 §5, RFC 5082): single hop takes TTL 255 only;
	// multihop (RFC 5883 §2) at least the configured minimum.
	minTTL := 255
	if s.cfg.Multihop {
		minTTL = int(s.cfg.MinTTL)
	}
	if m.ttl < minTTL {
		e.counters.RxBadTTL++
		s.counters.RxDropped++
		return
	}
	if s.ifindex != 0 && m.ifindex != 0 && s.ifindex != m.ifindex {
		s.counters.RxDropped++
		return
	}
	old := s.state
	if s.receive(&p, now) {
		e.emit(s, old, now)
	}
	e.reschedule(s)
}

// expiryDue reports whether a detection timer of a session is due at
// now. It visits only the heap's entries due at now.
func (e *engine) expiryDue(now time.Time) bool {
	if len(e.timers) == 0 {
		return false
	}
	lim := e.dueOf(now)
	stack := append(e.stack[:0], 0)
	defer func() { e.stack = stack[:0] }()
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i >= len(e.timers) || e.timers[i].due > lim {
			continue
		}
		if d := e.timers[i].detectAt; !d.IsZero() && !d.After(now) {
			return true
		}
		stack = append(stack, 2*i+1, 2*i+2)
	}
	return false
}

// fire runs every timer due at now and returns when the next one is due
// (zero when none is).
func (e *engine) fire(now time.Time) time.Time {
	for len(e.timers) > 0 {
		s := e.timers[0]
		d := s.deadline()
		if d.IsZero() || d.After(now) {
			return d
		}
		if !s.lingerUntil.IsZero() && !s.lingerUntil.After(now) {
			e.drop(s)
			continue
		}
		if !s.detectAt.IsZero() && !s.detectAt.After(now) {
			old := s.state
			if s.expire() {
				e.emit(s, old, now)
				s.nextTx = now
			}
		}
		if !s.nextTx.IsZero() && !s.nextTx.After(now) {
			e.send(s, now)
		}
		e.reschedule(s)
	}
	return time.Time{}
}

// send queues s's control packet and schedules the next.
func (e *engine) send(s *session, now time.Time) {
	p := s.packet()
	e.out = append(e.out, outPacket{
		peer:     s.key.Peer,
		local:    s.key.Local,
		ifindex:  s.ifindex,
		multihop: s.key.Multihop,
		tx:       s.tx,
	})
	o := &e.out[len(e.out)-1]
	p.Append(o.payload[:0]) // fits: no allocation
	if e.epoch.IsZero() {
		e.epoch = now
	}
	s.transmitted(now, e.rng, e.epoch, e.quantum)
}

// reschedule puts s in its place in the heap after any change of its
// timers; every change of nextTx, detectAt or lingerUntil is followed by
// it (or by push or drop). A session whose deadline did not change is
// left in place.
func (e *engine) reschedule(s *session) {
	due := e.dueOf(s.deadline())
	if due == s.due && s.index >= 0 {
		return
	}
	s.due = due
	if s.index >= 0 {
		heap.Fix(&e.timers, s.index)
	}
}

// dueOf is a deadline as the heap orders it: nanoseconds since the
// engine's epoch (monotonic when the times are, as time.Now's are), so
// that a comparison is one of integers; no deadline is the largest.
func (e *engine) dueOf(d time.Time) int64 {
	if d.IsZero() {
		return math.MaxInt64
	}
	if e.epoch.IsZero() {
		e.epoch = d
	}
	return int64(d.Sub(e.epoch))
}

// timerHeap orders sessions by deadline (cached in due, so that the heap
// does not recompute it at each comparison); sessions without one sort
// last.
type timerHeap []*session

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	s := x.(*session)
	s.index = len(*h)
	*h = append(*h, s)
}
func (h *timerHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	s.index = -1
	*h = old[:len(old)-1]
	return s
}

// update applies a new configuration (same key) to s: new intervals go
// through setIntervals, hence a poll sequence when Init or Up.
func (e *engine) update(s *session, cfg Config, now time.Time) {
	s.cfg = cfg
	s.setIntervals(s.wantIntervals())
	if s.poll && (s.nextTx.IsZero() || s.nextTx.After(now)) {
		s.nextTx = now // start the poll at once
	}
	e.reschedule(s)
}
