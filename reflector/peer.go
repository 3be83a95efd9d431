package reflector

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// peer manages one neighbour: it dials (unless passive), takes the
// connections the listener hands it, resolves collisions and runs the
// graceful-restart timers. Its run goroutine is the only one that touches
// the fields below mu's group.
type peer struct {
	cfg      NeighborConfig
	dynamic  bool
	env      *peerEnv
	log      *slog.Logger
	stats    peerStats
	incoming chan net.Conn
	events   chan func() bool
	done     chan struct{}
	pr       *peerRun         // the manager goroutine's private state
	lim      *ratelog.Limiter // lines caused by peer input, per message

	mu          sync.Mutex // guards the status fields below
	sessions    []*session
	dialing     bool
	lastErr     string
	establishAt time.Time
	since       time.Time // when the neighbour last went up or down
}

// peerEnv is what every peer shares with the reflector.
type peerEnv struct {
	local        localIdentity
	rib          *ribLoop
	connectRetry time.Duration
	log          *slog.Logger
	met          *engineMetrics
	// idleHold is the first hold-down after a session ended by the
	// peer's fault (see peerFault); it doubles up to idleHoldMax.
	idleHold time.Duration
	// outQueueLimit bounds each session's queued live UPDATEs (writer.go).
	outQueueLimit int
	// changed tells the reflector's owner that a neighbour's state
	// changed (see Reflector.Changes); it never blocks.
	changed func()
	// bfdDowns counts BFD Downs by action; bfdUp says whether a
	// neighbour's BFD session is Up (bfd.go).
	bfdDowns *prometheus.CounterVec
	bfdUp    func(netip.Addr) bool
}

func newPeer(cfg NeighborConfig, dynamic bool, env *peerEnv) *peer {
	log := env.log.With(logKeyPeer, cfg.Address.String())
	return &peer{
		cfg: cfg, dynamic: dynamic, env: env,
		log:      log,
		lim:      ratelog.New(ratelog.Config{Logger: log, Interval: ratelog.PeerInterval}),
		incoming: make(chan net.Conn),
		events:   make(chan func() bool, 16),
		done:     make(chan struct{}),
		since:    time.Now(),
	}
}

// jitter returns d reduced by a random amount of up to 25% (RFC 4271 10),
// so that neighbours that lost their sessions together do not reconnect
// in lockstep.
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// peerRun is the manager goroutine's private state.
type peerRun struct {
	wg         sync.WaitGroup
	retry      *time.Timer
	grTimer    *time.Timer
	stale      bool // the RIB may hold stale routes of this peer
	llgr       llgrRun
	dialResult chan net.Conn
	// Hold-down after the peer's faults: no connections until holdUntil;
	// the next hold-down lasts holdNext.
	holdUntil time.Time
	holdNext  time.Duration
	// cause, when set, is why the manager stops (errReconfigured);
	// otherwise errDeconfigured.
	cause error
}

// errDeconfigured ends a peer removed from the configuration.
var errDeconfigured = errors.New("neighbour de-configured")

func (p *peer) run(parent context.Context) {
	defer close(p.done)
	ctx, cancel := context.WithCancelCause(parent)
	pr := &peerRun{retry: stoppedTimer(), grTimer: stoppedTimer(), dialResult: make(chan net.Conn, 1), holdNext: p.env.idleHold}
	pr.llgr.timer = stoppedTimer()
	p.pr = pr
	defer func() {
		if pr.cause == nil {
			pr.cause = errDeconfigured
		}
		cancel(pr.cause) // no effect when parent already ended
		pr.retry.Stop()
		pr.grTimer.Stop()
		pr.llgr.timer.Stop()
		pr.wg.Wait()
		p.lim.Close()
		if pr.stale && parent.Err() == nil {
			// De-configured while its routes were kept for a restart
			// that will not come here any more.
			p.env.rib.do(parent, func(rl *ribLoop) { rl.flushStale(p.cfg.Address) })
		}
	}()
	if !p.cfg.Passive {
		pr.retry.Reset(0)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case conn := <-p.incoming:
			if !p.start(ctx, pr, conn, false) && p.dynamic && p.idle() && !time.Now().Before(pr.holdUntil) {
				return
			}
		case conn := <-pr.dialResult:
			p.setDialing(false)
			if conn != nil {
				p.start(ctx, pr, conn, true)
			} else if p.idle() {
				pr.retry.Reset(jitter(p.env.connectRetry))
			}
		case ev := <-p.events:
			if ev() {
				return
			}
		case <-pr.retry.C:
			switch {
			case !p.idle():
			case p.dynamic: // its hold-down ended
				return
			case time.Now().Before(pr.holdUntil):
				pr.retry.Reset(time.Until(pr.holdUntil))
			case p.heldForBFD(): // BFD Up restarts the timer (bfd.go)
			default:
				p.dial(ctx, pr)
			}
		case <-pr.grTimer.C:
			if p.restartTimeUp(ctx, pr) { // long-lived graceful restart (llgr.go)
				continue
			}
			pr.stale = false
			p.env.rib.do(ctx, func(rl *ribLoop) { rl.flushStale(p.cfg.Address) })
			if p.dynamic && p.idle() {
				return
			}
		case <-pr.llgr.timer.C:
			if p.llgrTimeUp(ctx, pr) {
				return
			}
		}
	}
}

func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (p *peer) idle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions) == 0 && !p.dialing
}

func (p *peer) setDialing(v bool) {
	p.mu.Lock()
	p.dialing = v
	p.mu.Unlock()
}

// dial connects in a goroutine the manager owns; ctx cancels it.
func (p *peer) dial(ctx context.Context, pr *peerRun) {
	p.setDialing(true)
	d := net.Dialer{Timeout: p.env.connectRetry}
	if p.cfg.LocalAddress.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: p.cfg.LocalAddress.AsSlice()}
	}
	d.Control = dialControl(p.cfg, ttlFor(p.cfg, p.env.local.asn))
	addr := net.JoinHostPort(p.cfg.Address.String(), strconv.Itoa(int(p.cfg.Port)))
	pr.wg.Add(1)
	go func() {
		defer pr.wg.Done()
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			p.setErr(err)
			c = nil
		}
		select {
		case pr.dialResult <- c:
		case <-ctx.Done():
			if c != nil {
				c.Close()
			}
		}
	}()
}

// start runs a session on conn in a goroutine the manager owns. It
// returns false when it refused the connection instead.
func (p *peer) start(ctx context.Context, pr *peerRun, conn net.Conn, outgoing bool) bool {
	dir := "in"
	if !outgoing && (time.Now().Before(pr.holdUntil) || p.faultPending()) {
		p.reject(conn, rejectIdleHold)
		return false
	}
	if !outgoing && p.heldForBFD() {
		p.reject(conn, rejectBFDDown)
		return false
	}
	if !outgoing {
		// At most one incoming connection per neighbour waits for its
		// OPEN: a newer one replaces it (the peer gave up on it, or it is
		// not the peer). Connections past their OPEN meet RFC 4271 6.8
		// collision detection instead.
		p.mu.Lock()
		for _, o := range p.sessions {
			if !o.outgoing && !o.gotOpen.Load() &&
				o.abort(newNotify(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_REJECTED, "replaced by a newer connection")) {
				p.env.met.rejected.WithLabelValues(rejectReplaced).Inc()
			}
		}
		p.mu.Unlock()
	}
	if outgoing {
		dir = "out"
	} else if err := ttlFor(p.cfg, p.env.local.asn).applyConn(conn, p.cfg.Address.Is4()); err != nil {
		// Dialled connections got theirs before connecting.
		p.log.Warn("incoming connection refused: TTL options", logKeyErr, err)
		p.setErr(err)
		conn.Close()
		return false
	}
	s := newSession(p.cfg, p.env.local, conn, outgoing, p, p.env.rib, &p.stats, p.log.With(logKeyDir, dir), p.env.outQueueLimit)
	s.dynamic = p.dynamic
	s.lim = p.lim
	p.mu.Lock()
	p.sessions = append(p.sessions, s)
	p.mu.Unlock()
	pr.wg.Add(1)
	go func() {
		defer pr.wg.Done()
		err := s.run(ctx)
		graceful := s.neg.gr && s.started != (time.Time{}) && gracefulEnd(s, err)
		p.logEnd(s, err, graceful)
		select {
		case p.events <- func() bool { return p.ended(pr, s, err, graceful) }:
		case <-ctx.Done():
		}
	}()
	return true
}

// gracefulEnd reports whether a session that had negotiated graceful
// restart ended in a way that makes us keep its routes.
func gracefulEnd(s *session, err error) bool {
	return s.closeErr.Load() == nil && errors.Is(err, errConnLost) || s.grDrop.Load()
}

// ended is run by the manager when a session's goroutine finished. It
// reports whether a dynamic peer is done.
func (p *peer) ended(pr *peerRun, s *session, err error, graceful bool) bool {
	p.mu.Lock()
	for i, x := range p.sessions {
		if x == s {
			p.sessions = append(p.sessions[:i], p.sessions[i+1:]...)
			break
		}
	}
	if err != nil {
		p.lastErr = err.Error()
	}
	if s.started != (time.Time{}) {
		p.establishAt = time.Time{}
		p.since = time.Now()
	}
	p.mu.Unlock()
	held := false
	if s.started != (time.Time{}) {
		held = p.holdDown(pr, s, err)
		p.env.changed()
		pr.grTimer.Stop()
		pr.stale = graceful
		pr.llgr.restarting = graceful
		if graceful {
			pr.llgr.neg = s.neg.llgr
		} else {
			pr.llgr.timer.Stop() // the RIB dropped every path
		}
		if graceful {
			pr.grTimer.Reset(time.Duration(s.neg.grTime) * time.Second)
		}
	}
	if !p.idle() {
		return false
	}
	switch {
	case !p.cfg.Passive:
		pr.retry.Reset(max(jitter(p.env.connectRetry), time.Until(pr.holdUntil)))
	case p.dynamic && held:
		pr.retry.Reset(time.Until(pr.holdUntil)) // the manager keeps the hold-down, then ends
		return false
	}
	return p.dynamic && !graceful && time.Now().After(pr.holdUntil)
}

// Reasons for refusing a connection (metric label values, a fixed set).
const (
	rejectIdleHold = "idle-hold"
	rejectReplaced = "replaced"
	rejectUnknown  = "unknown-neighbour"
)

// idleHoldMax bounds the doubling hold-down after repeated faults.
const idleHoldMax = 5 * time.Minute

// faultPending reports whether a session of the peer ended by the peer's
// fault and the manager has not yet run its end (ended), which starts the
// hold-down: the session's routes may be withdrawn already.
func (p *peer) faultPending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sessions {
		if s.faulted.Load() {
			return true
		}
	}
	return false
}

// holdDown starts a hold-down when an established session ended by the
// peer's fault; a session that ended otherwise resets the next hold-down
// to its minimum. It reports whether the neighbour is now held down.
func (p *peer) holdDown(pr *peerRun, s *session, err error) bool {
	if !peerFault(s, err) {
		pr.holdNext = p.env.idleHold
		return false
	}
	d := pr.holdNext
	pr.holdUntil = time.Now().Add(d)
	pr.holdNext = min(2*d, max(idleHoldMax, p.env.idleHold))
	p.env.met.holdDowns.Inc()
	p.log.Warn("neighbour held down after an error: its connections are refused until it ends", logKeyHoldDown, d)
	return true
}

// peerFault reports whether a session ended because of what the peer
// sent: a message we could not accept (header, UPDATE, FSM or ROUTE-REFRESH
// error), too many prefixes, or input that made the reader panic.
func peerFault(s *session, err error) bool {
	if s.panicked.Load() {
		return true
	}
	var ne *notifyError
	if !errors.As(err, &ne) {
		return false
	}
	switch ne.code {
	case bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR, bgp.BGP_ERROR_FSM_ERROR,
		bgp.BGP_ERROR_ROUTE_REFRESH_MESSAGE_ERROR:
		return true
	case bgp.BGP_ERROR_CEASE:
		return ne.subcode == bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED
	}
	return false
}

// reject refuses an incoming connection with a Cease, Connection Rejected
// (RFC 4486), and closes it. The connection is new and its send buffer
// empty, so the write does not block; the deadline bounds it anyway.
func (p *peer) reject(conn net.Conn, reason string) {
	p.env.met.rejected.WithLabelValues(reason).Inc()
	p.lim.Info("connection refused", logKeyReason, reason)
	conn.SetWriteDeadline(time.Now().Add(notifyGrace))
	conn.Write(encodeNotification(newNotify(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_REJECTED, reason)))
	conn.Close()
}

// logEnd logs a session's end: at Info with the NOTIFICATION's code and
// reason when it had been established, at Debug otherwise.
func (p *peer) logEnd(s *session, err error, graceful bool) {
	r := reasonOf(err)
	if r.direction != "" {
		p.env.met.notifications.WithLabelValues(r.direction, codeLabel(r.code)).Inc()
	}
	lvl := slog.LevelDebug
	msg := "connection closed before Established"
	args := []any{logKeyReason, r.text}
	if r.direction != "" {
		args = append(args, logKeyNotification, r.direction, logKeyCode, r.code, logKeySubcode, r.subcode)
	}
	if s.started != (time.Time{}) {
		p.env.met.transitions.WithLabelValues("down").Inc()
		lvl, msg = slog.LevelInfo, "session down"
		args = append(args, logKeyState, StateEstablished.String()+"->"+StateIdle.String(),
			logKeyUptime, time.Since(s.started).Round(time.Millisecond), logKeyGraceful, graceful)
	}
	p.lim.Log(lvl, msg, args...)
}

// codeLabel is a NOTIFICATION code as a metric label: the codes RFC 4271,
// RFC 7313 and RFC 9687 define, and "other" for anything a peer invents,
// so that the label set stays fixed.
func codeLabel(code uint8) string {
	if code >= bgp.BGP_ERROR_MESSAGE_HEADER_ERROR && code <= 8 {
		return strconv.Itoa(int(code))
	}
	return "other"
}

func (p *peer) setErr(err error) {
	p.mu.Lock()
	p.lastErr = err.Error()
	p.mu.Unlock()
}
