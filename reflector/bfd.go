package reflector

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bgpfabric/bgpfabric/bfd"
)

// BFD on the reflector's configured neighbours (docs/bfd.md). The
// reflector keeps a BFD session beside each configured neighbour whose
// NeighborConfig.BFD enables it. When one goes from Up to Down:
//   - the neighbour said AdminDown (RFC 5882 §3.2): nothing;
//   - an Established session is closed with a Cease, subcode 10 "BFD
//     Down" (RFC 9384), and its routes are withdrawn at once (we sent the
//     NOTIFICATION, so graceful restart does not keep them), whatever
//     the neighbour's C bit: it still holds its TCP session, so no
//     restart is under way;
//   - without an Established session, nothing: the session ended before
//     BFD noticed, as when the neighbour's agent restarts (TCP closes at
//     once, BFD expires a detection time later), and graceful restart
//     keeps its routes. We send the C bit clear, so RFC 5882 §4.3.1
//     (abort a graceful restart on BFD Down) never applies, and §4.3.2
//     asks not to abort it. Sessions still opening are left alone too.
//
// Dynamic neighbours have no BFD.

// BFDConfig is a neighbour's BFD. The zero value is off.
type BFDConfig struct {
	Enabled      bool
	MinTx, MinRx time.Duration // zero: 300 ms
	Multiplier   uint8         // zero: 3
	Multihop     bool
	// RequireUp: no BGP session (no dial, incoming connections refused
	// with Cease, Connection Rejected) while the BFD session is not Up.
	RequireUp bool
}

// BFDServer is the part of *bfd.Server the reflector uses.
type BFDServer interface {
	AddSession(bfd.Config) (bfd.Key, error)
	UpdateSession(bfd.Config) error
	RemoveSession(bfd.Key) error
	Subscribe(func(bfd.StateChange)) (cancel func())
	Close() error
}

var _ BFDServer = (*bfd.Server)(nil)

// ceaseBFDDown is the Cease subcode "BFD Down" (RFC 9384).
const ceaseBFDDown = 10

// Actions on a BFD Down, the label values of the bfd down counter.
const (
	bfdActionCease     = "cease"
	bfdActionKept      = "keptGracefulRestart"
	bfdActionAdminDown = "peerAdminDown"
)

// bfdLink is the reflector's BFD server and sessions.
type bfdLink struct {
	newServer func() (BFDServer, error)
	log       *slog.Logger
	sessions  *prometheus.GaugeVec
	downs     *prometheus.CounterVec

	mu       sync.Mutex // guards the fields below
	srv      BFDServer
	cancel   func()
	byAddr   map[netip.Addr]*bfdNeighbor
	srvError string
}

type bfdNeighbor struct {
	cfg   bfd.Config
	key   bfd.Key
	err   string
	state bfd.State
}

func newBFDLink(newServer func() (BFDServer, error), log *slog.Logger) *bfdLink {
	b := &bfdLink{
		newServer: newServer, log: log, byAddr: map[netip.Addr]*bfdNeighbor{},
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bgpfabric_reflector_bfd_sessions",
			Help: "BFD sessions of the reflector's neighbours, by state (AdminDown, Down, Init, Up)."}, []string{"state"}),
		downs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bgpfabric_reflector_bfd_down_total",
			Help: "BFD sessions that went from Up to Down, by what was done to the BGP session (cease, keptGracefulRestart, peerAdminDown)."},
			[]string{"action"}),
	}
	for _, st := range allBFDStates {
		b.sessions.WithLabelValues(st.String())
	}
	for _, a := range []string{bfdActionCease, bfdActionKept, bfdActionAdminDown} {
		b.downs.WithLabelValues(a)
	}
	return b
}

var allBFDStates = []bfd.State{bfd.StateAdminDown, bfd.StateDown, bfd.StateInit, bfd.StateUp}

// rejectBFDDown is the metric reason of a connection refused for
// RequireUp.
const rejectBFDDown = "bfd-down"

// up reports whether the neighbour's BFD session is Up.
func (b *bfdLink) up(a netip.Addr) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	bn := b.byAddr[a]
	return bn != nil && bn.err == "" && bn.state == bfd.StateUp
}

// heldForBFD reports whether the neighbour waits for BFD (RequireUp).
func (p *peer) heldForBFD() bool {
	return p.cfg.BFD.Enabled && p.cfg.BFD.RequireUp && p.env.bfdUp != nil && !p.env.bfdUp(p.cfg.Address)
}

func (c BFDConfig) session(n NeighborConfig) bfd.Config {
	return bfd.Config{Peer: n.Address, Local: n.LocalAddress, MinTx: c.MinTx, MinRx: c.MinRx, Multiplier: c.Multiplier, Multihop: c.Multihop}
}

// sync makes the BFD sessions those of the configured neighbours;
// onChange is called (from the server's subscriber goroutine) with every
// change of state. The caller holds the Reflector's mu, which onChange
// takes: b.mu is never held while calling it.
func (b *bfdLink) sync(ns []NeighborConfig, onChange func(bfd.StateChange)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	want := map[netip.Addr]bfd.Config{}
	for _, n := range ns {
		if n.BFD.Enabled {
			want[n.Address] = n.BFD.session(n)
		}
	}
	for a, bn := range b.byAddr {
		if c, ok := want[a]; ok && c.Key() == bn.cfg.Key() && bn.err == "" {
			if c != bn.cfg {
				if err := b.srv.UpdateSession(c); err != nil {
					b.log.Warn("updating BFD session", logKeyPeer, a.String(), logKeyErr, err)
				} else {
					bn.cfg = c
				}
			}
			continue
		}
		if bn.err == "" {
			if err := b.srv.RemoveSession(bn.key); err != nil {
				b.log.Warn("removing BFD session", logKeyPeer, a.String(), logKeyErr, err)
			}
		}
		delete(b.byAddr, a)
	}
	if len(want) > 0 && b.srv == nil {
		if b.newServer == nil {
			b.log.Error("BFD is enabled on neighbours but this reflector has no BFD server (Config.BFD)")
			return
		}
		srv, err := b.newServer()
		if err != nil {
			if b.srvError != err.Error() {
				b.log.Error("starting the BFD server: neighbours run without BFD", logKeyErr, err)
				b.srvError = err.Error()
			}
			return
		}
		b.srv = srv
		b.cancel = srv.Subscribe(func(c bfd.StateChange) {
			b.setState(c)
			onChange(c)
		})
	}
	for a, c := range want {
		if _, ok := b.byAddr[a]; ok {
			continue
		}
		bn := &bfdNeighbor{cfg: c, state: bfd.StateDown}
		if key, err := b.srv.AddSession(c); err != nil {
			bn.err = err.Error()
			b.log.Error("cannot add BFD session", logKeyPeer, a.String(), logKeyErr, err)
		} else {
			bn.key = key
		}
		b.byAddr[a] = bn
	}
	b.metricsLocked()
}

func (b *bfdLink) setState(c bfd.StateChange) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bn := b.byAddr[c.Key.Peer]; bn != nil && bn.key == c.Key {
		bn.state = c.New
	}
	b.metricsLocked()
}

func (b *bfdLink) metricsLocked() {
	n := map[bfd.State]int{}
	for _, bn := range b.byAddr {
		if bn.err == "" {
			n[bn.state]++
		}
	}
	for _, st := range allBFDStates {
		b.sessions.WithLabelValues(st.String()).Set(float64(n[st]))
	}
}

// state is the neighbour's BFD state for its status: "" without BFD.
func (b *bfdLink) state(a netip.Addr) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	bn := b.byAddr[a]
	switch {
	case bn == nil:
		return ""
	case bn.err != "":
		return "Error: " + bn.err
	}
	return bn.state.String()
}

// close removes the sessions (the neighbours see AdminDown, which does
// not end their BGP sessions) and stops the server.
func (b *bfdLink) close() {
	// Cancel first, without b.mu: it waits for a running callback, which
	// takes b.mu.
	b.mu.Lock()
	cancel := b.cancel
	b.cancel = nil
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv == nil {
		return
	}
	for a, bn := range b.byAddr {
		if bn.err == "" {
			_ = b.srv.RemoveSession(bn.key)
		}
		delete(b.byAddr, a)
	}
	if err := b.srv.Close(); err != nil {
		b.log.Warn("closing the BFD server", logKeyErr, err)
	}
	b.srv = nil
}

// onBFD acts on a BFD session's change (subscriber goroutine).
func (r *Reflector) onBFD(c bfd.StateChange) {
	if c.New == bfd.StateUp {
		r.mu.Lock()
		p := r.peers[c.Key.Peer]
		r.mu.Unlock()
		if p != nil && !p.dynamic && p.cfg.BFD.RequireUp && !p.cfg.Passive {
			// Dial now instead of at the next retry.
			select {
			case p.events <- func() bool { p.pr.retry.Reset(0); return false }:
			case <-p.done:
			}
		}
		return
	}
	if c.Old != bfd.StateUp || c.New != bfd.StateDown {
		return
	}
	a := c.Key.Peer
	if c.RemoteState == bfd.StateAdminDown {
		r.bfd.downs.WithLabelValues(bfdActionAdminDown).Inc()
		r.mu.Lock()
		p := r.peers[a]
		r.mu.Unlock()
		if p != nil {
			p.lim.Info("BFD neighbour administratively down: session left up")
		}
		return
	}
	r.mu.Lock()
	p := r.peers[a]
	r.mu.Unlock()
	if p == nil || p.dynamic {
		return
	}
	select {
	case p.events <- func() bool { p.bfdDown(c); return false }:
	case <-p.done:
	}
}

// bfdDown closes the neighbour's Established sessions with Cease "BFD
// Down"; without one, a graceful restart in progress goes on (RFC 5882
// §4.3.2).
func (p *peer) bfdDown(c bfd.StateChange) {
	p.mu.Lock()
	ss := append([]*session(nil), p.sessions...)
	p.mu.Unlock()
	reason := fmt.Sprintf("BFD down (%s)", c.Diag)
	closed := false
	for _, s := range ss {
		if s.State() != StateEstablished {
			continue
		}
		if s.abort(newNotify(bgp.BGP_ERROR_CEASE, ceaseBFDDown, reason)) {
			closed = true
			p.env.bfdDowns.WithLabelValues(bfdActionCease).Inc()
			p.lim.Warn("BFD down: session closed (Cease, BFD Down)", logKeyReason, reason)
		}
	}
	if !closed {
		p.env.bfdDowns.WithLabelValues(bfdActionKept).Inc()
		p.lim.Info("BFD down after the session ended: graceful restart, if any, goes on", logKeyReason, reason)
	}
}

// validate checks the settings as the BFD server will (bfd.Config).
func (c BFDConfig) validate(n NeighborConfig) error {
	if !c.Enabled {
		return nil
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"MinTx", c.MinTx}, {"MinRx", c.MinRx}} {
		if f.d != 0 && (f.d < 10*time.Millisecond || f.d > 60*time.Second) {
			return fmt.Errorf("%s: %v is outside [10ms, 60s]", f.name, f.d)
		}
	}
	if c.Multihop && !n.LocalAddress.IsValid() {
		return fmt.Errorf("Multihop: needs the neighbour's LocalAddress")
	}
	return nil
}

// FileBFD is a neighbour's bfd in the configuration file.
type FileBFD struct {
	Enabled bool `json:"enabled"`
	// MinTx and MinRx are durations from 10ms to 60s (default 300ms).
	MinTx string `json:"minTx,omitempty"`
	MinRx string `json:"minRx,omitempty"`
	// Multiplier is 1 to 255 (default 3).
	Multiplier int  `json:"multiplier,omitempty"`
	Multihop   bool `json:"multihop,omitempty"`
	// RequireUp: no BGP session while BFD is not Up.
	RequireUp bool `json:"requireUp,omitempty"`
}

// bfd checks and converts a neighbour's bfd.
func (fe *fieldErrs) bfd(f string, b *FileBFD, local netip.Addr) BFDConfig {
	if b == nil {
		return BFDConfig{}
	}
	c := BFDConfig{Enabled: b.Enabled, Multihop: b.Multihop, RequireUp: b.RequireUp}
	for _, x := range []struct {
		name string
		s    string
		d    *time.Duration
	}{{"minTx", b.MinTx, &c.MinTx}, {"minRx", b.MinRx, &c.MinRx}} {
		*x.d = fe.duration(f+"."+x.name, x.s)
		if x.s != "" && (*x.d < 10*time.Millisecond || *x.d > 60*time.Second) {
			fe.add(f+"."+x.name, "must be from 10ms to 60s")
		}
	}
	if b.Multiplier < 0 || b.Multiplier > 255 {
		fe.add(f+".multiplier", "must be from 1 to 255")
	}
	c.Multiplier = uint8(b.Multiplier)
	if b.Multihop && !local.IsValid() {
		fe.add(f+".multihop", "needs the neighbour's localAddress")
	}
	return c
}

// sameSession reports whether two configurations of a neighbour differ
// in BFD's session settings at most: BFD runs beside the session, which
// keeps going. Whether the session waits for BFD (RequireUp) is the
// peer manager's, so a change of it restarts the session.
func sameSession(a, b NeighborConfig) bool {
	held := func(c BFDConfig) BFDConfig { return BFDConfig{RequireUp: c.Enabled && c.RequireUp} }
	a.BFD, b.BFD = held(a.BFD), held(b.BFD)
	a.Description, b.Description = "", "" // live: see Reflector.Neighbors
	return a == b
}
