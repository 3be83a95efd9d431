package bfd

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Log keys, defined once.
const (
	logKeySession = "session"
	logKeyFrom    = "from"
	logKeyTo      = "to"
	logKeyDiag    = "diag"
	logKeyErr     = "err"
	logKeyCounts  = "counts"
	// Keys inside logKeyCounts.
	logKeyMalformed = "malformed"
	logKeyUnknown   = "unknown"
	logKeyBadTTL    = "badTTL"
	logKeyTxErrors  = "txErrors"
)

// summaryInterval is how often drops and send errors are logged, as one
// line with the counts since the last, whatever their number.
const summaryInterval = 30 * time.Second

// logBudget is how many state changes are logged per summaryInterval;
// the rest are counted in the summary.
const logBudget = 100

// maxQueued bounds a subscriber's queue of state changes; beyond it the
// queue is collapsed to the latest change of each session.
const maxQueued = 4096

// ServerConfig configures a Server.
type ServerConfig struct {
	// Logger receives state changes and summaries; nil discards.
	Logger *slog.Logger
	// SingleHopPort and MultihopPort are the UDP ports to listen on, and
	// PeerSingleHopPort and PeerMultihopPort the ports to send to; zero
	// means the ports of RFC 5881 and RFC 5883 (3784 and 4784). Only tests
	// that run two Servers in one network namespace change them.
	SingleHopPort, MultihopPort         int
	PeerSingleHopPort, PeerMultihopPort int
}

// Server runs BFD sessions over UDP: one receiving socket per address
// family and port, one sending socket per family, one goroutine per
// receiving socket and one timer goroutine for all sessions.
type Server struct {
	log *slog.Logger
	tr  *udpTransport

	mu       sync.Mutex
	eng      *engine
	armedFor time.Time // when the timer goroutine wakes next
	subs     map[*subscriber]struct{}
	closed   bool
	// Counters at the last summary.
	logged ServerCounters
	// State changes logged and not logged since the last summary.
	changesLogged, changesUnlogged uint64

	// sendMu orders sending: see unlockAndFlush. It guards txb and
	// outFree, the sending path's scratch.
	sendMu  sync.Mutex
	txb     txBatch
	outFree []outPacket

	wake chan struct{} // size 1: the earliest deadline moved
	stop chan struct{}
	wg   sync.WaitGroup
}

// NewServer opens the sockets and starts the Server. Sockets are opened in
// the network namespace of the calling thread. When one address family
// cannot be opened (IPv6 disabled, say), sessions of that family are
// refused by AddSession with the reason; when neither can, NewServer
// fails.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	def := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	def(&cfg.SingleHopPort, PortSingleHop)
	def(&cfg.MultihopPort, PortMultihop)
	def(&cfg.PeerSingleHopPort, PortSingleHop)
	def(&cfg.PeerMultihopPort, PortMultihop)
	tr := openUDP(cfg.SingleHopPort, cfg.MultihopPort, cfg.PeerSingleHopPort, cfg.PeerMultihopPort)
	if tr.err4 != nil && tr.err6 != nil {
		return nil, errors.Join(tr.err4, tr.err6)
	}
	s := &Server{
		log:  cfg.Logger,
		tr:   tr,
		eng:  newEngine(rand.Uint64(), tick),
		subs: map[*subscriber]struct{}{},
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
	for _, r := range tr.rx {
		s.wg.Add(1)
		go s.read(r)
	}
	s.wg.Add(1)
	go s.timerLoop()
	return s, nil
}

// Close stops the Server and closes its sockets. Peers are not told: they
// see the sessions time out (call RemoveSession first to signal
// AdminDown). Subscribers get no further changes.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	close(s.stop)
	err := s.tr.close()
	s.wg.Wait()
	for sub := range subs {
		sub.close()
	}
	return err
}

var errClosed = errors.New("bfd server closed")

// AddSession starts a session and returns its key. The session starts
// Down and sends at once, then once a second until Up.
func (s *Server) AddSession(cfg Config) (Key, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return Key{}, err
	}
	if err := s.tr.familyErr(cfg.Peer); err != nil {
		return Key{}, fmt.Errorf("adding bfd session %s: %w", cfg.Key(), err)
	}
	ifindex := 0
	if cfg.Interface != "" {
		ifc, err := net.InterfaceByName(cfg.Interface)
		if err != nil {
			return Key{}, fmt.Errorf("bfd config: interface: %w", err)
		}
		ifindex = ifc.Index
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Key{}, errClosed
	}
	sess, err := s.eng.add(cfg, ifindex, time.Now())
	if err != nil {
		return Key{}, err
	}
	s.kickLocked()
	return sess.key, nil
}

// UpdateSession changes the intervals and multiplier of the session with
// cfg's key. A change of interval on a session that is Init or Up runs a
// poll sequence (RFC 5880 §6.5, §6.8.3).
func (s *Server) UpdateSession(cfg Config) error {
	cfg, err := cfg.normalize()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.eng.byKey[cfg.Key()]
	if !ok {
		return fmt.Errorf("updating bfd session %s: no such session", cfg.Key())
	}
	s.eng.update(sess, cfg, time.Now())
	s.kickLocked()
	return nil
}

// RemoveSession ends a session after one packet that tells the peer
// AdminDown (diagnostic Administratively Down).
func (s *Server) RemoveSession(k Key) error {
	s.mu.Lock()
	if !s.eng.remove(k, time.Now()) {
		s.mu.Unlock()
		return fmt.Errorf("removing bfd session %s: no such session", k)
	}
	s.unlockAndFlush()
	return nil
}

// Status is a snapshot of one session.
type Status struct {
	Key                                     Key
	State, RemoteState                      State
	LocalDiscriminator, RemoteDiscriminator uint32
	LocalDiag, RemoteDiag                   Diag
	RemoteControlPlaneIndependent           bool
	// TxInterval is the agreed transmit interval (before jitter);
	// DetectTime the time without packets after which the session goes
	// Down (zero while Down).
	TxInterval, DetectTime time.Duration
	// LastReceived is when the last valid packet of the session came.
	LastReceived time.Time
	Counters     Counters
}

// Sessions returns a snapshot of every session, ordered by key. Removed
// sessions that still tell their peer AdminDown are not listed.
func (s *Server) Sessions() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.eng.byKey))
	for _, x := range s.eng.byKey {
		out = append(out, x.status())
	}
	slices.SortFunc(out, func(a, b Status) int { return compareKeys(a.Key, b.Key) })
	return out
}

// Session returns the status of one session.
func (s *Server) Session(k Key) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.eng.byKey[k]
	if !ok {
		return Status{}, false
	}
	return x.status(), true
}

// Counters returns the server-wide counters of discarded packets.
func (s *Server) Counters() ServerCounters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eng.counters
}

// Subscribe calls fn with every later state change of every session, in
// order, from a goroutine of the subscription's own, so that a slow fn
// delays neither the sessions nor other subscribers. If fn falls more than
// 4096 changes behind, the backlog is collapsed to the latest change of
// each session. The returned cancel stops the calls; it waits for a
// running fn to return, so fn must not call it.
func (s *Server) Subscribe(fn func(StateChange)) (cancel func()) {
	sub := newSubscriber(fn)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sub.close()
		return func() {}
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
		sub.close()
	}
}

// kickLocked wakes the timer goroutine when the earliest deadline is
// before the time it sleeps until.
func (s *Server) kickLocked() {
	if len(s.eng.timers) == 0 {
		return
	}
	d := s.roundUp(s.eng.timers[0].deadline())
	if !d.IsZero() && (s.armedFor.IsZero() || d.Before(s.armedFor)) {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// unlockAndFlush takes what the engine queued, releases s.mu and sends
// the packets and hands the state changes to the log and subscribers. It
// takes s.sendMu before releasing s.mu, so that packets and changes leave
// in the order the engine made them, whichever goroutine made them: a
// periodic Down built before a state change must not reach the peer after
// the Up built by the change.
func (s *Server) unlockAndFlush() {
	out, changes := s.eng.out, s.eng.changes
	s.eng.changes = nil
	var subs []*subscriber
	var toLog []StateChange
	if len(changes) > 0 {
		subs = make([]*subscriber, 0, len(s.subs))
		for sub := range s.subs {
			subs = append(subs, sub)
		}
		toLog = changes[:min(len(changes), int(logBudget-min(s.changesLogged, logBudget)))]
		s.changesLogged += uint64(len(toLog))
		s.changesUnlogged += uint64(len(changes) - len(toLog))
	}
	s.sendMu.Lock()
	// The engine fills the spare slice while this one is sent: no
	// allocation per packet in the steady state.
	s.eng.out, s.outFree = s.outFree[:0], nil
	s.mu.Unlock()
	var failed uint64
	if len(out) > 0 {
		failed = s.tr.sendBatch(out, &s.txb)
	}
	clear(out) // drop the references to txCaches of removed sessions
	s.outFree = out[:0]
	for _, sub := range subs {
		sub.push(changes)
	}
	s.sendMu.Unlock()
	for _, c := range toLog {
		s.log.Info("bfd session state", logKeySession, c.Key.String(), logKeyFrom, c.Old.String(),
			logKeyTo, c.New.String(), logKeyDiag, c.Diag.String())
	}
	if failed > 0 {
		s.mu.Lock()
		s.eng.counters.TxErrors += failed
		s.mu.Unlock()
	}
}

// read receives packets from one socket until it is closed, a batch
// (one recvmmsg) at a time. It never sends and never waits for the sending
// path: what a packet makes due now (a Final, a state change) is sent by
// the timer goroutine, which it wakes.
func (s *Server) read(r *rxSocket) {
	defer s.wg.Done()
	b := newRxBatch(maxBatch)
	for {
		n, err := r.read(b)
		if err != nil {
			select {
			case <-s.stop:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. a transient error; nothing to do but read on
		}
		now := time.Now()
		s.mu.Lock()
		for i := range n {
			payload, oob, src := b.message(i)
			meta := rxMeta{src: src, multihop: r.multihop}
			parseControl(oob, &meta)
			s.eng.receive(payload, meta, now)
		}
		s.kickLocked()
		s.mu.Unlock()
	}
}

// tick is the timer goroutine's granularity: periodic transmissions are
// scheduled on a grid of this step (within the jitter's bounds), and
// deadlines in the same tick are served by one wakeup, their packets sent
// by one sendmmsg; a detection timer fires at most one tick late.
const tick = 5 * time.Millisecond

// roundUp is d rounded up to the engine's grid of ticks (the one
// periodic transmissions are scheduled on), so that one wakeup serves
// every deadline of a tick. Caller holds s.mu.
func (s *Server) roundUp(d time.Time) time.Time {
	origin := s.eng.epoch
	if d.IsZero() || origin.IsZero() {
		return d
	}
	off := d.Sub(origin)
	if r := off % tick; r > 0 {
		off += tick - r
	}
	return origin.Add(off)
}

// timerLoop runs every session's timers and sends what they make due.
func (s *Server) timerLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	lastSummary := time.Now()
	drainBuf, drainOOB := make([]byte, rxBufLen), make([]byte, 128)
	for {
		now := time.Now()
		s.mu.Lock()
		if s.eng.expiryDue(now) {
			// A detection time ran out. Before believing it, take what
			// the sockets hold: under load the readers may be late, and
			// a packet that arrived in time must not be taken for
			// silence.
			for _, r := range s.tr.rx {
				r.drain(drainBuf, drainOOB, func(b, oob []byte, src netip.Addr) {
					m := rxMeta{src: src, multihop: r.multihop}
					parseControl(oob, &m)
					s.eng.receive(b, m, now)
				})
			}
		}
		next := s.eng.fire(now)
		if now.Sub(lastSummary) >= summaryInterval {
			s.summaryLocked()
			lastSummary = now
		}
		next = s.roundUp(next)
		if wakeSummary := lastSummary.Add(summaryInterval); next.IsZero() || wakeSummary.Before(next) {
			next = wakeSummary
		}
		s.armedFor = next
		s.unlockAndFlush()

		timer.Reset(time.Until(next))
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// summaryLocked logs the packets dropped and send errors since the last
// summary, in one line, if there were any.
func (s *Server) summaryLocked() {
	c, l := s.eng.counters, s.logged
	unlogged := s.changesUnlogged
	s.changesLogged, s.changesUnlogged = 0, 0
	if unlogged > 0 {
		s.log.Warn("bfd state changes not logged in the last interval (log budget spent)", logKeyCounts, unlogged)
	}
	if c == l {
		return
	}
	s.logged = c
	s.log.Warn("bfd packets discarded or not sent in the last interval",
		slog.Group(logKeyCounts,
			slog.Uint64(logKeyMalformed, c.RxMalformed-l.RxMalformed),
			slog.Uint64(logKeyUnknown, c.RxUnknown-l.RxUnknown),
			slog.Uint64(logKeyBadTTL, c.RxBadTTL-l.RxBadTTL),
			slog.Uint64(logKeyTxErrors, c.TxErrors-l.TxErrors),
		))
}

func compareKeys(a, b Key) int {
	if c := a.Peer.Compare(b.Peer); c != 0 {
		return c
	}
	if c := a.Local.Compare(b.Local); c != 0 {
		return c
	}
	if a.Interface != b.Interface {
		if a.Interface < b.Interface {
			return -1
		}
		return 1
	}
	switch {
	case a.Multihop == b.Multihop:
		return 0
	case b.Multihop:
		return -1
	}
	return 1
}
