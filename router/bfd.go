package router

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/bfd"
	"github.com/bgpfabric/bgpfabric/peering"
)

// BFD on the node's sessions (issue 17, docs/bfd.md). The router keeps a
// BFD session beside every desired BGP session whose settings enable it,
// in a bfd.Server of the node's process (not the speaker's: BFD goes on
// while the speaker restarts). What a BFD session that goes from Up to
// Down does to its BGP session (RFC 5882):
//   - the peer said AdminDown (§3.2): nothing; that is no path failure;
//   - the BGP session is not Established: nothing. It ended before BFD
//     noticed, as when the peer's agent restarts (its TCP connections
//     close at once, BFD expires a detection time later), and graceful
//     restart, if negotiated, keeps its routes as stale. We send the C
//     bit clear (our BFD shares fate with our control plane), so the
//     rule of §4.3.1 (abort a graceful restart on BFD Down) never
//     applies; §4.3.2 asks not to abort it;
//   - the BGP session is Established: it is ended at once
//     (Speaker.DeletePeer: the peer's routes are withdrawn now and leave
//     the kernel) and configured again, to come back when it can. The
//     peer holds its TCP session, so no restart is under way: the path or
//     the peer's process failed, whatever the peer's C bit.
//
// With requireUp the BGP session is not configured in the speaker while
// its BFD session is not Up (except after the peer's AdminDown).

// BFDServer is the part of *bfd.Server the router uses.
type BFDServer interface {
	AddSession(bfd.Config) (bfd.Key, error)
	UpdateSession(bfd.Config) error
	RemoveSession(bfd.Key) error
	Subscribe(func(bfd.StateChange)) (cancel func())
	Close() error
}

var _ BFDServer = (*bfd.Server)(nil)

// bfdHoldMsg is the status error of a session held for requireUp.
const bfdHoldMsg = "waiting for BFD to come Up (bfd.requireUp)"

// Actions taken on a BFD Down, the label values of bfdDowns.
const (
	bfdActionReset     = "reset"
	bfdActionKept      = "keptGracefulRestart"
	bfdActionAdminDown = "peerAdminDown"
)

var bfdActions = []string{bfdActionReset, bfdActionKept, bfdActionAdminDown}

// bfdState is the loop's BFD state.
type bfdState struct {
	srv    BFDServer
	cancel func()
	ch     chan bfd.StateChange // nil until the server exists
	// sessions are by BGP peer address.
	sessions map[netip.Addr]*bfdSession
	// srvErr is why the server could not be created, logged once.
	srvErr string
}

// bfdSession is one BFD session and what the router knows of it.
type bfdSession struct {
	cfg   peering.BFD
	bcfg  bfd.Config
	key   bfd.Key
	added bool
	err   string // why AddSession failed
	state bfd.State
	// remoteAdmin: the last Down was the peer's AdminDown.
	remoteAdmin bool
	// lastDown says what the last BFD Down did, for the status.
	lastDown string
}

// bfdOnly reports whether an update changes nothing but BFD, which is
// not the speaker's business.
func bfdOnly(u peering.Update) bool { return slices.Equal(u.Changed, []string{"BFD"}) }

// bfdConfig is the BFD session of a BGP session.
func bfdConfig(s peering.Session) bfd.Config {
	return bfd.Config{
		Peer: s.PeerAddress, Local: s.LocalAddress,
		MinTx: s.BFD.MinTx, MinRx: s.BFD.MinRx, Multiplier: s.BFD.Multiplier,
		Multihop: s.BFD.Multihop,
	}
}

// applyBFD makes the BFD sessions those of the desired BGP sessions and
// returns the desired sessions without those held for requireUp.
func (l *loop) applyBFD(ctx context.Context, desired []peering.Session) []peering.Session {
	b := &l.bfd
	want := map[netip.Addr]peering.Session{}
	for _, s := range desired {
		if s.BFD.Enabled {
			want[s.PeerAddress] = s
		}
	}
	for a, bs := range b.sessions {
		if s, ok := want[a]; ok && bfdConfig(s).Key() == bs.key {
			continue
		}
		l.removeBFD(a, bs)
	}
	if len(want) > 0 && b.srv == nil && !l.startBFD(ctx) {
		return desired
	}
	if b.sessions == nil {
		b.sessions = map[netip.Addr]*bfdSession{}
	}
	for a, s := range want {
		bc := bfdConfig(s)
		bs := b.sessions[a]
		switch {
		case bs == nil:
			bs = &bfdSession{cfg: s.BFD, bcfg: bc, key: bc.Key(), state: bfd.StateDown}
			b.sessions[a] = bs
			l.addBFD(bs)
		case !bs.added:
			bs.cfg, bs.bcfg = s.BFD, bc
			l.addBFD(bs)
		case bs.bcfg != bc:
			if err := b.srv.UpdateSession(bc); err != nil {
				l.lg.Warn("updating BFD session", logKeyPeer, a, logKeyError, err)
				l.retryLater()
				continue
			}
			bs.bcfg = bc
		}
		bs.cfg = s.BFD
	}
	l.bfdMetrics()
	out := desired[:0:0]
	for _, s := range desired {
		bs := b.sessions[s.PeerAddress]
		_, running := l.running[s.PeerAddress]
		hold := s.BFD.RequireUp && bs != nil && bs.state != bfd.StateUp && !(bs.remoteAdmin && running)
		if f, ok := l.failed[s.PeerAddress]; ok && f.err == bfdHoldMsg && !hold {
			delete(l.failed, s.PeerAddress)
		}
		if hold {
			l.failed[s.PeerAddress] = sessionFailure{session: s, err: bfdHoldMsg}
			continue
		}
		out = append(out, s)
	}
	return out
}

// startBFD creates the BFD server on first use.
func (l *loop) startBFD(ctx context.Context) bool {
	b := &l.bfd
	if l.r.cfg.BFD == nil {
		if b.srvErr == "" {
			b.srvErr = "this router has no BFD server (router.Config.BFD)"
			l.lg.Error("BFD is enabled on sessions but unavailable; BGP runs without it", logKeyError, b.srvErr)
		}
		return false
	}
	srv, err := l.r.cfg.BFD()
	if err != nil {
		if b.srvErr != err.Error() {
			b.srvErr = err.Error()
			l.lg.Error("starting the BFD server; retrying", logKeyError, err)
		}
		l.retryLater()
		return false
	}
	b.srv, b.srvErr = srv, ""
	b.ch = make(chan bfd.StateChange, 64)
	ch := b.ch
	b.cancel = srv.Subscribe(func(c bfd.StateChange) { send(ctx, ch, c) })
	return true
}

func (l *loop) addBFD(bs *bfdSession) {
	key, err := l.bfd.srv.AddSession(bs.bcfg)
	if err != nil {
		if bs.err != err.Error() {
			l.lg.Error("cannot add BFD session", logKeyPeer, bs.bcfg.Peer, logKeyError, err)
		}
		bs.err = err.Error()
		l.statusDirty = true
		return
	}
	bs.key, bs.added, bs.err = key, true, ""
}

func (l *loop) removeBFD(a netip.Addr, bs *bfdSession) {
	if bs.added {
		if err := l.bfd.srv.RemoveSession(bs.key); err != nil {
			l.lg.Warn("removing BFD session", logKeyPeer, a, logKeyError, err)
		}
	}
	delete(l.bfd.sessions, a)
	l.statusDirty = true
}

// onBFD acts on a BFD session's change of state.
func (l *loop) onBFD(ctx context.Context, c bfd.StateChange) {
	a := c.Key.Peer
	bs := l.bfd.sessions[a]
	if bs == nil || !bs.added || bs.key != c.Key {
		return // removed meanwhile
	}
	bs.state = c.New
	l.statusDirty = true
	defer l.bfdMetrics()
	switch {
	case c.New == bfd.StateUp:
		bs.remoteAdmin = false
		if bs.cfg.RequireUp {
			l.resDirty = true // configure the held session
		}
		return
	case c.Old != bfd.StateUp || c.New != bfd.StateDown:
		return
	}
	_, running := l.running[a]
	established := l.peers[a] != nil && l.peers[a].state == api.BGPEstablished
	switch {
	case c.RemoteState == bfd.StateAdminDown:
		bs.remoteAdmin = true
		bs.lastDown = "BFD peer AdminDown at " + c.At.UTC().Format(time.RFC3339) + ": BGP session left up"
		if l.errLog.Allow(a.String()) { // a flapping peer: a few lines, then a summary
			l.lg.Info("BFD peer administratively down: BGP session left up", logKeyPeer, a)
		}
		l.countBFDDown(bfdActionAdminDown)
	case !running:
		if bs.cfg.RequireUp {
			l.resDirty = true
		}
	case !established:
		bs.lastDown = "BFD down (" + c.Diag.String() + ") at " + c.At.UTC().Format(time.RFC3339) +
			": BGP session already down, graceful restart (if any) left to run (RFC 5882 4.3.2)"
		if l.errLog.Allow(a.String()) {
			l.lg.Info("BFD down after the BGP session ended: graceful restart, if any, goes on",
				logKeyPeer, a, logKeyBFDDiag, c.Diag.String())
		}
		l.countBFDDown(bfdActionKept)
		if bs.cfg.RequireUp {
			l.resDirty = true // held again until BFD is Up
		}
	default:
		bs.lastDown = "BFD down (" + c.Diag.String() + ") at " + c.At.UTC().Format(time.RFC3339) + ": BGP session reset"
		if l.errLog.Allow(a.String()) {
			l.lg.Warn("BFD down: resetting the BGP session", logKeyPeer, a, logKeyBFDDiag, c.Diag.String())
		}
		l.countBFDDown(bfdActionReset)
		if err := l.r.cfg.Speaker.DeletePeer(ctx, a); err != nil {
			l.lg.Warn("resetting the BGP session after BFD down", logKeyPeer, a, logKeyError, err)
		}
		// Whether it failed or not, configure it again from scratch.
		delete(l.running, a)
		delete(l.configs, a)
		delete(l.peers, a)
		delete(l.counts, a)
		l.resDirty = true
	}
}

// bfdStatus adds the BFD state, and what the last BFD Down did, to the
// peers of the status.
func (l *loop) bfdStatus(ps []api.BGPPeerStatus) {
	if len(l.bfd.sessions) == 0 {
		return
	}
	for i := range ps {
		a, err := netip.ParseAddr(ps[i].PeerIP)
		if err != nil {
			continue
		}
		bs := l.bfd.sessions[a]
		if bs == nil {
			continue
		}
		switch {
		case bs.err != "":
			ps[i].BFD = "Error: " + bs.err
		case !bs.added:
			ps[i].BFD = "Unavailable"
		default:
			ps[i].BFD = bs.state.String()
		}
		if ps[i].LastError == "" {
			ps[i].LastError = bs.lastDown
		}
	}
}

// closeBFD removes every session, so that peers see AdminDown (which
// must not end their BGP sessions: graceful restart goes on), and stops
// the server.
func (l *loop) closeBFD() {
	b := &l.bfd
	if b.srv == nil {
		return
	}
	if b.cancel != nil {
		b.cancel()
	}
	for a, bs := range b.sessions {
		l.removeBFD(a, bs)
	}
	if err := b.srv.Close(); err != nil {
		l.lg.Warn("closing the BFD server", logKeyError, err)
	}
	b.srv = nil
}

// bfdMetrics is the BFD metrics of the router.
type bfdMetrics struct {
	sessions *prometheus.GaugeVec
	downs    *prometheus.CounterVec
}

func newBFDMetrics() bfdMetrics {
	m := bfdMetrics{
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bgpfabric_router_bfd_sessions",
			Help: "BFD sessions of the node's BGP sessions, by state (AdminDown, Down, Init, Up)."}, []string{"state"}),
		downs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bgpfabric_router_bfd_down_total",
			Help: "BFD sessions that went from Up to Down, by what was done to the BGP session (reset, keptGracefulRestart, peerAdminDown)."},
			[]string{"action"}),
	}
	for _, st := range []bfd.State{bfd.StateAdminDown, bfd.StateDown, bfd.StateInit, bfd.StateUp} {
		m.sessions.WithLabelValues(st.String())
	}
	for _, a := range bfdActions {
		m.downs.WithLabelValues(a)
	}
	return m
}

func (l *loop) bfdMetrics() {
	if l.metrics == nil {
		return
	}
	n := map[bfd.State]int{}
	for _, bs := range l.bfd.sessions {
		if bs.added {
			n[bs.state]++
		}
	}
	for _, st := range []bfd.State{bfd.StateAdminDown, bfd.StateDown, bfd.StateInit, bfd.StateUp} {
		l.metrics.bfd.sessions.WithLabelValues(st.String()).Set(float64(n[st]))
	}
}

func (l *loop) countBFDDown(action string) {
	if l.metrics != nil && slices.Contains(bfdActions, action) {
		l.metrics.bfd.downs.WithLabelValues(action).Inc()
	}
}
