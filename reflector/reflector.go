package reflector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// Reflector is a route-reflector BGP engine.
type Reflector struct {
	log   *slog.Logger
	local localIdentity
	env   *peerEnv
	met   *engineMetrics
	fib   *fibWriter // nil unless Config.ProgramFIB

	mu        sync.Mutex // guards the fields below
	cfg       Config
	ctx       context.Context // set by Run
	peers     map[netip.Addr]*peer
	listeners []*net.TCPListener
	wg        sync.WaitGroup // peer managers
	ready     chan struct{}
	// ribStarted is set when Run starts the RIB loop: SetPolicy then
	// goes through it.
	ribStarted bool

	changes chan struct{} // size 1: see Changes

	unknownLim *ratelog.Limiter // connections from unknown addresses

	bfd *bfdLink // BFD of the configured neighbours (bfd.go)

	mrt    mrtState    // MRT snapshots (mrt.go)
	bmpMet *bmpMetrics // BMP collectors' metrics (bmp.go)
}

// New validates cfg and returns a reflector; Run starts it.
func New(cfg Config) (*Reflector, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("reflector config: %w", err)
	}
	local := localIdentity{
		asn:       cfg.ASN,
		routerID:  ip4ToUint(cfg.RouterID.AsSlice()),
		clusterID: ip4ToUint(cfg.ClusterID.AsSlice()),
	}
	met := newEngineMetrics()
	r := &Reflector{
		log: cfg.Logger, local: local, cfg: cfg, peers: map[netip.Addr]*peer{}, ready: make(chan struct{}), met: met,
		changes:    make(chan struct{}, 1),
		unknownLim: ratelog.New(ratelog.Config{Logger: cfg.Logger, Interval: ratelog.PeerInterval}),
	}
	r.env = &peerEnv{
		local: local, rib: newRIBLoop(cfg.Logger, cfg.ASN, local.clusterID, met),
		connectRetry: cfg.ConnectRetry, log: cfg.Logger, met: met, changed: r.changed,
		idleHold: cfg.idleHold, outQueueLimit: cfg.outQueueLimit,
	}
	if err := r.env.rib.setPolicy(cfg.Policy); err != nil {
		return nil, fmt.Errorf("reflector config: %w", err)
	}
	r.bmpMet = newBMPMetrics()
	if r.env.rib.mon, err = newMonitor(cfg, r.bmpMet); err != nil {
		return nil, fmt.Errorf("reflector config: %w", err)
	}
	r.bfd = newBFDLink(cfg.BFD, cfg.Logger)
	r.env.bfdDowns, r.env.bfdUp = r.bfd.downs, r.bfd.up
	if cfg.ProgramFIB {
		r.fib = newFIBWriter(cfg.FIB, cfg.Logger)
		r.env.rib.fib = r.fib.feed
	}
	return r, nil
}

// Changes signals that a neighbour's session came up or went down, or
// that neighbours were added or removed (configured ones, and dynamic
// ones as they connect and go). Signals coalesce: one pending signal
// stands for any number of changes, so a reader that then calls Neighbors
// sees them all. State moves that are not up or down (Active, Connect,
// OpenSent: a retrying neighbour makes them every few seconds) do not
// signal.
func (r *Reflector) Changes() <-chan struct{} { return r.changes }

func (r *Reflector) changed() {
	select {
	case r.changes <- struct{}{}:
	default:
	}
}

// Ready is closed once Run has bound its listeners and started its peers.
func (r *Reflector) Ready() <-chan struct{} { return r.ready }

// ListenAddrs returns the bound listen addresses (after Ready).
func (r *Reflector) ListenAddrs() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []netip.AddrPort
	for _, l := range r.listeners {
		out = append(out, l.Addr().(*net.TCPAddr).AddrPort())
	}
	return out
}

// ErrGracefulRestart, as the cause of Run's context (context.WithCancelCause),
// stops the reflector for a graceful restart: sessions that negotiated
// graceful restart are closed without a NOTIFICATION, so that their peers
// keep the reflector's routes (RFC 4724) until it is back; the others get
// a Cease.
var ErrGracefulRestart = errors.New("graceful restart")

// Run serves until ctx ends, then closes every session with a Cease (see
// ErrGracefulRestart for the exception) and returns once every goroutine
// it started has stopped.
//
// With Config.ProgramFIB, Run installs the best paths into the kernel
// while it runs and removes them when it returns, unless it stops for a
// graceful restart: then they stay for the next run to take over.
func (r *Reflector) Run(ctx context.Context) (err error) {
	defer r.unknownLim.Close()
	if r.fib != nil {
		if err := r.fib.open(); err != nil {
			return err
		}
	}
	ls, err := r.listen()
	if err != nil {
		if r.fib != nil {
			r.fib.close()
		}
		return err
	}
	ribCtx, stopRIB := context.WithCancel(context.WithoutCancel(ctx))
	rib := r.env.rib
	var fibWG sync.WaitGroup
	if r.fib != nil {
		fibCtx, stopFIB := context.WithCancel(context.WithoutCancel(ctx))
		fibWG.Go(func() { r.fib.run(fibCtx) })
		defer func() {
			// After the RIB loop: nothing feeds the writer any more.
			stopFIB()
			fibWG.Wait()
			err = errors.Join(err, r.fib.finish(errors.Is(context.Cause(ctx), ErrGracefulRestart)))
		}()
	}
	if r.cfg.Restarting {
		var expect []netip.Addr
		for _, n := range r.cfg.Neighbors {
			if n.GracefulRestart {
				expect = append(expect, n.Address)
			}
		}
		rib.startDeferral(expect) // before the loop runs: no session sees it otherwise
		t := time.AfterFunc(r.cfg.SelectionDeferral, func() {
			rib.do(ribCtx, func(rl *ribLoop) { rl.endDeferral("selection deferral time passed") })
		})
		defer t.Stop()
	}
	var wg sync.WaitGroup
	r.mu.Lock()
	r.ribStarted = true
	r.mu.Unlock()
	wg.Go(func() { rib.run(ribCtx) })
	r.runMonitor(ribCtx, &wg)
	r.runMRTDumps(ribCtx, &wg)
	r.mu.Lock()
	// Peers run on their own context, cancelled (with ctx's cause) only
	// once the RIB has stopped sending: see ribLoop.stopping.
	peersCtx, stopPeers := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopPeers(nil)
	r.ctx, r.listeners = peersCtx, ls
	for _, n := range r.cfg.Neighbors {
		r.startPeerLocked(n, false)
	}
	r.bfd.sync(r.cfg.Neighbors, r.onBFD)
	r.mu.Unlock()
	for _, l := range ls {
		wg.Go(func() { r.accept(peersCtx, l) })
	}
	close(r.ready)
	<-ctx.Done()
	rib.call(ribCtx, func(rl *ribLoop) { rl.stopping = true })
	r.bfd.close() // before the Ceases: neighbours see AdminDown
	stopPeers(context.Cause(ctx))
	for _, l := range ls {
		l.Close()
	}
	r.wg.Wait() // peers stop on ctx; their sessions send Cease
	stopRIB()
	wg.Wait()
	return nil
}

func (r *Reflector) listen() ([]*net.TCPListener, error) {
	var ls []*net.TCPListener
	// Go listens with multipath TCP by default since 1.24; MPTCP sockets
	// refuse TCP_MD5SIG (ENOPROTOOPT), and BGP has no use for MPTCP.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	for _, a := range r.cfg.ListenAddrs {
		l, err := lc.Listen(context.Background(), "tcp", a)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("listening on %s: %w", a, err)
		}
		ls = append(ls, l.(*net.TCPListener))
	}
	var errs []error
	for _, l := range ls {
		errs = append(errs, listenerTTL(l))
	}
	for _, n := range r.cfg.Neighbors {
		if n.Password != "" {
			for _, l := range ls {
				errs = append(errs, setListenerMD5(l, n.Address, n.Password))
			}
		}
	}
	for _, d := range r.cfg.DynamicNeighbors {
		if d.Password != "" {
			for _, l := range ls {
				errs = append(errs, setListenerMD5Prefix(l, d.Prefix, d.Password))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		for _, l := range ls {
			l.Close()
		}
		return nil, err
	}
	return ls, nil
}

// startPeerLocked starts a peer manager; r.mu must be held and Run started.
func (r *Reflector) startPeerLocked(n NeighborConfig, dynamic bool) *peer {
	p := newPeer(n, dynamic, r.env)
	r.peers[n.Address] = p
	if dynamic {
		r.changed()
	}
	r.wg.Go(func() {
		p.run(r.ctx)
		if dynamic {
			r.removeDynamic(p)
		}
	})
	return p
}

// removeDynamic forgets a dynamic peer whose manager is ending.
func (r *Reflector) removeDynamic(p *peer) {
	r.mu.Lock()
	if r.peers[p.cfg.Address] == p {
		delete(r.peers, p.cfg.Address)
	}
	r.mu.Unlock()
	r.changed()
}

// Neighbors reports every neighbour's status, ordered by address.
func (r *Reflector) Neighbors() []NeighborStatus {
	r.mu.Lock()
	ps := make([]*peer, 0, len(r.peers))
	for _, p := range r.peers {
		ps = append(ps, p)
	}
	descr := r.descriptionsLocked()
	r.mu.Unlock()
	now := time.Now()
	out := make([]NeighborStatus, 0, len(ps))
	for _, p := range ps {
		st := p.status(now)
		st.BFD = r.bfd.state(p.cfg.Address)
		if !p.dynamic {
			st.Description = descr[p.cfg.Address]
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b NeighborStatus) int {
		return netip.MustParseAddr(a.Address).Compare(netip.MustParseAddr(b.Address))
	})
	return out
}

// GracefulShutdown re-advertises every path to every session with the
// RFC 8326 GRACEFUL_SHUTDOWN community (and LOCAL_PREF 0 towards iBGP
// peers), and keeps doing so for new sessions. It returns how many
// sessions were told. Cancel Run's context afterwards, after a wait that
// lets peers move their traffic.
func (r *Reflector) GracefulShutdown(ctx context.Context) (int, error) {
	var n int
	if !r.env.rib.call(ctx, func(rl *ribLoop) { n = rl.gracefulShutdown() }) {
		if err := context.Cause(ctx); err != nil {
			return 0, fmt.Errorf("graceful shutdown: %w", err)
		}
		return 0, errors.New("graceful shutdown: the reflector is not running")
	}
	return n, nil
}

// RIBStats reports the RIB's size; it returns false when not running.
func (r *Reflector) RIBStats(ctx context.Context) (RIBStats, bool) {
	var s RIBStats
	ok := r.env.rib.call(ctx, func(rl *ribLoop) { s = rl.stats() })
	return s, ok
}
