package reflector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// openHoldTime is the hold timer while waiting for the peer's OPEN. RFC
// 4271 suggests 4 minutes; every BGP speaker sends its OPEN as soon as
// the connection is up, and a connection that sends nothing holds a
// descriptor and a session for its neighbour, so it is short.
const openHoldTime = 30 * time.Second

// localIdentity is what a session needs to know about the reflector.
type localIdentity struct {
	asn       uint32
	routerID  uint32
	clusterID uint32
}

// sessionOwner is the peer manager as a session sees it.
type sessionOwner interface {
	// openReceived runs collision detection; false closes this session.
	openReceived(ctx context.Context, s *session) bool
	// up reports that the session reached Established.
	up(ctx context.Context, s *session)
}

// session is one TCP connection and its FSM from OpenSent on. Its reader
// runs in run's goroutine; its writer in a goroutine that run owns.
type session struct {
	cfg      NeighborConfig
	local    localIdentity
	conn     net.Conn
	outgoing bool
	owner    sessionOwner
	rib      *ribLoop
	stats    *peerStats
	log      *slog.Logger

	state     atomic.Int32
	q         *outQueue
	keepalive chan time.Duration
	closeErr  atomic.Pointer[notifyError] // what we sent, if we closed it
	grDrop    atomic.Bool                 // closed for a restarting peer's new session
	gotOpen   atomic.Bool                 // the peer's OPEN has arrived
	panicked  atomic.Bool                 // the reader ended in a panic
	// faulted: the session is ending by the peer's fault (peerFault),
	// set before its routes are withdrawn.
	faulted atomic.Bool
	lim     *ratelog.Limiter // the neighbour's, for lines caused by peer input

	neg        negotiated // set before OpenConfirm, then read-only
	ebgp       bool
	started    time.Time
	deadlineAt time.Time
	// dynamic: a dynamic neighbour's session (its range's route policy).
	dynamic bool
	// For BMP and MRT (monitor.go): the OPENs, and why the session ended.
	openSent, openRecv []byte
	downWhy            atomic.Pointer[sessionEnd]
}

func newSession(cfg NeighborConfig, local localIdentity, conn net.Conn, outgoing bool,
	owner sessionOwner, rib *ribLoop, stats *peerStats, log *slog.Logger, outLimit int) *session {
	s := &session{
		cfg: cfg, local: local, conn: conn, outgoing: outgoing, owner: owner, rib: rib,
		stats: stats, log: log, q: newOutQueue(outLimit), keepalive: make(chan time.Duration, 1),
		ebgp: cfg.ASN != local.asn,
	}
	s.state.Store(int32(StateOpenSent))
	return s
}

func (s *session) State() State { return State(s.state.Load()) }

// warn logs a line caused by peer input, rate-limited per neighbour.
func (s *session) warn(msg string, args ...any) {
	if s.lim == nil {
		s.log.Warn(msg, args...)
		return
	}
	if s.lim.Allow(msg) {
		s.log.Warn(msg, args...)
	}
}

func (s *session) setState(st State) {
	s.state.Store(int32(st))
	s.log.Debug("session state", logKeyState, st.String())
}

// send queues UPDATE bytes (memberConn).
func (s *session) send(chunks ...[]byte) {
	if s.q.push(chunks...) {
		s.overflow()
	}
}

// sendDump queues a table dump of family f (memberConn).
func (s *session) sendDump(f family, b []byte) {
	if s.q.pushDump(f, b) {
		s.overflow()
	}
}

// overflow closes a session whose peer reads too slowly (see writer.go).
func (s *session) overflow() {
	if s.abort(newNotify(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_OUT_OF_RESOURCES, "output queue overflow: the peer reads too slowly")) {
		s.rib.met.slowReaderCloses.Inc()
	}
}

// closeWith sends a NOTIFICATION and closes the session (memberConn). Safe
// from any goroutine; only the first call counts.
func (s *session) closeWith(code, subcode uint8, reason string) {
	s.abort(newNotify(code, subcode, reason))
}

// abort closes the session with NOTIFICATION e; it reports whether this
// call was the first to close it.
func (s *session) abort(e *notifyError) bool {
	// Recorded before the queue closes: once it is closed the writer may
	// send the NOTIFICATION and close the connection, and the session may
	// end at once; its end must find why we closed it, not the reader's
	// "use of closed network connection".
	if !s.closeErr.CompareAndSwap(nil, e) {
		return false // closed already, with a NOTIFICATION of its own
	}
	if s.q.close(encodeNotification(e)) {
		// Unblock a writer stuck on a peer that does not read.
		s.conn.SetWriteDeadline(time.Now().Add(notifyGrace))
		return true
	}
	s.closeErr.CompareAndSwap(e, nil) // the queue was closed without one
	return false
}

// run drives the session until it ends and returns why it ended.
func (s *session) run(ctx context.Context) (err error) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		writeLoop(s.conn, s.q, s.keepalive, sendHoldTime(s.cfg.HoldTime))
	}()
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), ErrGracefulRestart) && s.neg.gr && s.State() == StateEstablished {
			// No NOTIFICATION: the peer keeps our routes as stale.
			if s.q.close(nil) {
				s.conn.SetWriteDeadline(time.Now().Add(notifyGrace))
			}
			return
		}
		if errors.Is(context.Cause(ctx), errReconfigured) {
			s.closeWith(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_OTHER_CONFIGURATION_CHANGE, "re-configured")
			return
		}
		if errors.Is(context.Cause(ctx), errDeconfigured) {
			s.closeWith(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_PEER_DECONFIGURED, "de-configured")
			return
		}
		s.closeWith(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN, "shutdown")
	})
	defer func() {
		stop()
		s.q.close(nil)
		wg.Wait()
		s.setState(StateIdle)
		if ce := s.closeErr.Load(); ce != nil && !errors.As(err, new(*notifyError)) {
			err = ce
		}
	}()
	defer func() {
		if r := recover(); r != nil { // last resort: a codec bug must not kill the process
			s.panicked.Store(true)
			s.log.Error("session reader panic", logKeyErr, r)
			s.abort(newNotify(bgp.BGP_ERROR_CEASE, 0, "internal error"))
			err = errors.New("internal error while reading")
		}
	}()
	br := bufio.NewReaderSize(s.conn, sessionBufSize)
	s.openSent = s.buildOpen()
	s.q.push(s.openSent)
	if err := s.openExchange(ctx, br); err != nil {
		return s.fail(err)
	}
	return s.fail(s.established(ctx, br))
}

// fail sends the NOTIFICATION an error calls for.
func (s *session) fail(err error) error {
	var ne *notifyError
	if errors.As(err, &ne) {
		s.abort(ne)
	}
	return err
}

// openExchange runs OpenSent and OpenConfirm.
func (s *session) openExchange(ctx context.Context, br *bufio.Reader) error {
	s.setState(StateOpenSent)
	s.conn.SetReadDeadline(time.Now().Add(openHoldTime))
	hdr, body, err := readMessage(br)
	if err != nil {
		return s.readErr(err)
	}
	if hdr.Type != bgp.BGP_MSG_OPEN {
		return s.unexpected(hdr, body)
	}
	s.gotOpen.Store(true)
	s.openRecv = body
	m, err := parseBody(hdr, body)
	if err != nil {
		return notifyFromMessageError(err, bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, 0)
	}
	open, ok := m.Body.(*bgp.BGPOpen)
	if !ok {
		return newNotify(bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, 0, "bad OPEN")
	}
	if s.neg, err = s.negotiate(open); err != nil {
		return err
	}
	if !s.owner.openReceived(ctx, s) {
		return newNotify(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION, "collision")
	}
	s.setState(StateOpenConfirm)
	s.q.push(keepaliveMsg)
	if s.neg.keepalive > 0 {
		s.keepalive <- s.neg.keepalive
	}
	s.resetHold(true)
	hdr, body, err = readMessage(br)
	if err != nil {
		return s.readErr(err)
	}
	if hdr.Type != bgp.BGP_MSG_KEEPALIVE {
		return s.unexpected(hdr, body)
	}
	return nil
}

// unexpected handles a message the FSM does not expect in its state.
func (s *session) unexpected(hdr *bgp.BGPHeader, body []byte) error {
	if hdr.Type == bgp.BGP_MSG_NOTIFICATION {
		return parseNotification(body)
	}
	return newNotify(bgp.BGP_ERROR_FSM_ERROR, 0, fmt.Sprintf("unexpected message type %d", hdr.Type))
}

func parseNotification(body []byte) error {
	rn := &receivedNotification{}
	if len(body) >= 2 {
		rn.code, rn.subcode, rn.data = body[0], body[1], append([]byte(nil), body[2:]...)
	}
	return rn
}

// resetHold restarts the hold timer, which is the connection's read
// deadline; it skips the call when it was done less than a second ago.
func (s *session) resetHold(force bool) {
	if s.neg.hold == 0 {
		if force {
			s.conn.SetReadDeadline(time.Time{})
		}
		return
	}
	now := time.Now()
	if !force && now.Sub(s.deadlineAt) < time.Second/4 {
		return
	}
	s.deadlineAt = now
	s.conn.SetReadDeadline(now.Add(s.neg.hold))
}

// readErr maps a read failure: a deadline is the hold timer expiring.
func (s *session) readErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && s.closeErr.Load() == nil {
		return newNotify(bgp.BGP_ERROR_HOLD_TIMER_EXPIRED, 0, "hold timer expired")
	}
	return err
}

// remoteAddr is the peer's address on this connection.
func (s *session) localAddr() netip.Addr {
	if a, ok := s.conn.LocalAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
