package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
	"github.com/bgpfabric/bgpfabric/internal/backoff"
	"github.com/bgpfabric/bgpfabric/internal/latest"
	"github.com/bgpfabric/bgpfabric/internal/ratelog"
	"github.com/bgpfabric/bgpfabric/peering"
)

// Log keys, defined once.
const (
	logKeyNode     = "node"
	logKeyPeer     = "peer"
	logKeyRange    = "range"
	logKeyPrefix   = "prefix"
	logKeyCount    = "count"
	logKeyError    = "error"
	logKeyState    = "state"
	logKeySession  = "session"
	logKeyChanged  = "changed"
	logKeyWarning  = "warning"
	logKeyDuration = "duration"
	logKeyPanic    = "panic"
	logKeyBlamed   = "blamed"
	logKeyBFDDiag  = "bfdDiag"
)

// DefaultRetryDelay is how long the router waits before trying a failed
// speaker or kernel operation again (Config.RetryDelay).
const DefaultRetryDelay = 2 * time.Second

// Router is the node's BGP client. See the package documentation.
type Router struct {
	cfg Config
	lg  *slog.Logger

	// health is what Ready reports, updated by the loop.
	healthMu sync.Mutex
	health   health
}

// health is the router's readiness state.
type health struct {
	inSync, started, fibSynced bool
	sessions                   int
}

// Ready reports whether the router does its job: the resources are read,
// the speaker runs with the sessions configured, and the route feed has
// delivered felix's routes. It is the node's /readyz check.
func (r *Router) Ready() error {
	r.healthMu.Lock()
	h := r.health
	r.healthMu.Unlock()
	switch {
	case !h.inSync:
		return errors.New("router: waiting for the datastore's BGP resources")
	case !h.started:
		return errors.New("router: BGP speaker not started")
	case !h.fibSynced:
		return errors.New("router: waiting for the kernel's route feed")
	}
	return nil
}

func (r *Router) setHealth(h health) {
	r.healthMu.Lock()
	r.health = h
	r.healthMu.Unlock()
}

// New checks cfg; Run starts the router.
func New(cfg Config) (*Router, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Router{cfg: cfg, lg: cfg.Logger.With(logKeyNode, cfg.NodeName)}, nil
}

// Run runs the router until ctx ends. On the way out it stops the
// speaker (peers get a Cease) and, unless graceful restart is on, removes
// the routes it installed; with graceful restart the kernel routes stay,
// and the next Run takes them over.
func (r *Router) Run(ctx context.Context) error {
	dp := r.cfg.Dataplane
	if dp == nil {
		ndp, err := routetable.NewNetlinkDataplane(r.cfg.Netns)
		if err != nil {
			return fmt.Errorf("router: %w", err)
		}
		defer ndp.Close()
		dp = ndp
	}
	rt, err := routetable.New(routetable.Config{Protocol: r.cfg.Protocol, Logger: r.lg}, dp)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	stale := 0
	if err := dp.ListRoutes(ctx, routetable.TableMain, r.cfg.Protocol, func(routetable.KernelRoute) { stale++ }); err != nil {
		return fmt.Errorf("router: listing routes left by an earlier run: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	l := newLoop(r, rt, stale)
	l.guard = newForeignGuard(dp, r.cfg.Protocol) // foreign.go
	var metrics *metrics
	if r.cfg.Metrics != nil {
		metrics, err = newMetrics(r.cfg.Metrics)
		if err != nil {
			return fmt.Errorf("router: %w", err)
		}
		defer metrics.unregister(r.cfg.Metrics)
		l.metrics = metrics
	}
	done := make(chan struct{})
	var bg []func()
	spawn := func(fn func()) {
		bg = append(bg, fn)
	}
	if r.cfg.Status != nil {
		// From a goroutine of its own: at 100 nodes on two CPUs, etcd
		// took over 5 s per write, and the loop, which wrote inline,
		// installed nothing meanwhile.
		l.statusOut = newStatusOut(r.cfg.Status, r.cfg.StatusWriteInterval, r.lg)
		spawn(func() { l.statusOut.Run(runCtx) })
	}
	spawn(func() { l.runResources(runCtx) })
	spawn(func() { l.runFIB(runCtx) })
	watchLinks := r.cfg.WatchLinks
	if watchLinks == nil && r.cfg.Dataplane == nil {
		watchLinks = func(ctx context.Context) (<-chan routetable.LinkUpdate, error) {
			return routetable.WatchLinks(ctx, r.cfg.Netns, r.lg)
		}
	}
	if watchLinks != nil {
		spawn(func() { l.runLinks(runCtx, watchLinks) })
	}
	addrs := r.cfg.Addresses
	if addrs == nil && r.cfg.Dataplane == nil {
		addrs = NetlinkAddresses{Netns: r.cfg.Netns}
	}
	if addrs != nil {
		spawn(func() { l.runAddresses(runCtx, addrs) })
	}
	if r.cfg.ControlSocket != "" {
		srv, err := l.listenControl(r.cfg.ControlSocket)
		if err != nil {
			return fmt.Errorf("router: %w", err)
		}
		spawn(func() { srv.serve(runCtx) })
	}
	finished := make(chan struct{}, len(bg))
	for _, fn := range bg {
		go func() {
			defer func() { finished <- struct{}{} }()
			fn()
		}()
	}
	go func() {
		defer close(done)
		l.run(runCtx)
	}()
	<-done
	cancel()
	for range bg {
		<-finished
	}
	l.errLog.Close()
	r.setHealth(health{})
	return l.shutdown()
}

// loop is the router's state, owned by one goroutine (run), which the
// other goroutines feed through channels.
type loop struct {
	warned    map[string]bool                // peering warnings logged and still current
	statusOut *latest.Writer[*api.BGPStatus] // nil without Config.Status
	r         *Router
	lg        *slog.Logger
	rt        *routetable.RouteTable
	metrics   *metrics

	resCh chan func()
	fibCh chan FIBBatch
	// linkCh says a link changed (size 1: bursts coalesce); relist then
	// makes the next reconcile compare our routes with the kernel.
	linkCh  chan struct{}
	relist  bool
	peerCh  chan PeerEvent
	queryCh chan func()

	// Resources and peering.
	resources map[datastore.ResourceID]api.Resource
	inSync    bool
	resDirty  bool
	local     peering.Local
	started   bool
	watching  bool
	gr        bool // graceful restart on (BGPConfiguration)
	// adv is BGPConfiguration's advertisement settings (communities,
	// prefixAdvertisements, service ranges).
	adv api.Advertisements
	// localAddrs are the node's interface addresses (services.go).
	localAddrs []netip.Addr
	// kubeServices are the host routes of Kubernetes Services that this
	// node announces (services.go).
	kubeServices []netip.Prefix
	// drain is the node's graceful shutdown (drain.go).
	drain drainState
	// running are the sessions configured in the speaker, with what
	// they were configured with; failed are desired sessions that could
	// not be configured, with the reason.
	running map[netip.Addr]peering.Session
	configs map[netip.Addr]PeerConfig
	failed  map[netip.Addr]sessionFailure
	peers   map[netip.Addr]*peerInfo
	counts  map[netip.Addr]PeerStatus
	// ranges are the dynamic-neighbour ranges configured in the speaker
	// (rangeConfigs: with what), rangeFailed the desired ones that could
	// not be configured, and dynamic the routers the ranges accepted
	// whose sessions have not ended (see ranges.go).
	ranges       map[netip.Prefix]peering.PeerRange
	rangeConfigs map[netip.Prefix]PeerRangeConfig
	rangeFailed  map[netip.Prefix]rangeFailure
	dynamic      map[netip.Addr]*peerInfo

	// Export.
	fib         map[netip.Prefix]routetable.KernelRoute
	fibSynced   bool
	exportDirty bool
	announced   map[netip.Prefix]LocalRoute

	// Import.
	bestQ     *bestQueue
	bestSpare []Destination // take's other buffer
	// With a PathWatcher speaker (pathMode), the received paths come
	// through recvQ into rib, where the router applies the import policy
	// and selects the best paths (rib.go, imports.go).
	pathMode  bool
	recvQ     *pathQueue[Received]
	recvSpare []Received
	rib       *adjRIB
	ribImport ribImports
	// best are the best paths the speaker reported (WatchBestPaths);
	// empty in pathMode, where they are selected from rib when needed
	// (bestOf).
	best        map[netip.Prefix]Destination
	importDirty map[netip.Prefix]struct{}
	importAll   bool
	// stale is how many routes of ours an earlier run left; holdImport
	// keeps them (no Apply) while peers resend after a graceful restart.
	stale      int
	holdImport bool
	holdUntil  time.Time
	applyErr   bool

	statusDirty bool
	retryAt     time.Time

	// pol is the route policy input (policy.go); guard keeps learned
	// routes off other owners' prefixes (foreign.go).
	pol   policyState
	guard *foreignGuard

	// sup is what the loop knows about the speaker's deaths
	// (supervise.go).
	sup supervisor
	// errLog bounds the peer error lines (errlog.go).
	errLog *ratelog.Limiter
	// bfd is the BFD sessions of the BGP sessions (bfd.go).
	bfd bfdState
	// loggedConflicts are the learned routes last logged as left to
	// other owners' kernel routes.
	loggedConflicts []routetable.ConflictError
}

type sessionFailure struct {
	session peering.Session
	err     string
	// quarantine is set on a session held down (supervise.go) until.
	quarantine bool
	until      time.Time
}

type peerInfo struct {
	state     api.BGPState
	since     time.Time
	lastError string
	eor       bool
}

func newLoop(r *Router, rt *routetable.RouteTable, stale int) *loop {
	_, pathMode := r.cfg.Speaker.(PathWatcher)
	return &loop{
		r: r, lg: r.lg, rt: rt, pathMode: pathMode,
		resCh:        make(chan func(), 16),
		linkCh:       make(chan struct{}, 1),
		fibCh:        make(chan FIBBatch, 16),
		bestQ:        newBestQueue(),
		recvQ:        newPathQueue[Received](),
		rib:          newAdjRIB(),
		peerCh:       make(chan PeerEvent, 256),
		queryCh:      make(chan func()),
		resources:    map[datastore.ResourceID]api.Resource{},
		running:      map[netip.Addr]peering.Session{},
		configs:      map[netip.Addr]PeerConfig{},
		failed:       map[netip.Addr]sessionFailure{},
		peers:        map[netip.Addr]*peerInfo{},
		counts:       map[netip.Addr]PeerStatus{},
		ranges:       map[netip.Prefix]peering.PeerRange{},
		rangeConfigs: map[netip.Prefix]PeerRangeConfig{},
		rangeFailed:  map[netip.Prefix]rangeFailure{},
		dynamic:      map[netip.Addr]*peerInfo{},
		fib:          map[netip.Prefix]routetable.KernelRoute{},
		announced:    map[netip.Prefix]LocalRoute{},
		best:         map[netip.Prefix]Destination{},
		importDirty:  map[netip.Prefix]struct{}{},
		stale:        stale,
		sup:          newSupervisor(),
		errLog:       newErrLog(r.lg),
		// Until the datastore says whether graceful restart is on, keep
		// what an earlier run installed.
		holdImport: true,
	}
}

// send delivers v on ch unless ctx ends first.
func send[T any](ctx context.Context, ch chan<- T, v T) {
	select {
	case ch <- v:
	case <-ctx.Done():
	}
}

// runResources runs the resource source, retrying with jittered backoff
// when it fails (logged once a minute).
func (l *loop) runResources(ctx context.Context) {
	h := &syncHandler{ctx: ctx, ch: l.resCh, l: l}
	bo := backoff.New(l.r.cfg.RetryDelay/2, 30*time.Second)
	lim := ratelog.New(ratelog.Config{Logger: l.lg})
	defer lim.Close() // the summary of what it held back
	for ctx.Err() == nil {
		if err := l.r.cfg.Resources.Run(ctx, h); err != nil && ctx.Err() == nil {
			lim.Warn("resource sync failed; retrying", logKeyError, err)
			bo.Wait(ctx)
		}
	}
}

// runLinks turns link changes into relists of our routes, subscribing
// again when the subscription breaks.
func (l *loop) runLinks(ctx context.Context, watch func(context.Context) (<-chan routetable.LinkUpdate, error)) {
	for ctx.Err() == nil {
		ch, err := watch(ctx)
		if err != nil {
			l.lg.Warn("link subscription failed; retrying", logKeyError, err)
			sleep(ctx, l.r.cfg.RetryDelay)
			continue
		}
		l.forwardLinks(ctx, ch)
	}
}

// forwardLinks signals linkCh for every update on ch until ch closes or
// ctx ends.
func (l *loop) forwardLinks(ctx context.Context, ch <-chan routetable.LinkUpdate) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			select {
			case l.linkCh <- struct{}{}:
			default: // a relist is already pending
			}
		}
	}
}

// runFIB runs the route feed, starting it again (with a new snapshot)
// when it breaks.
func (l *loop) runFIB(ctx context.Context) {
	for ctx.Err() == nil {
		err := l.r.cfg.FIB.Watch(ctx, l.r.cfg.FelixProtocol, func(b FIBBatch) { send(ctx, l.fibCh, b) })
		if err != nil && ctx.Err() == nil {
			l.lg.Warn("route feed broke; resyncing", logKeyError, err)
			sleep(ctx, 100*time.Millisecond)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// syncHandler passes the syncer's output into the loop.
type syncHandler struct {
	ctx context.Context
	ch  chan func()
	l   *loop
}

func (h *syncHandler) OnStatus(st datastore.SyncStatus) {
	h.l.lg.Debug("datastore sync", logKeyState, st.String())
}

func (h *syncHandler) OnSnapshot(s datastore.Snapshot) {
	send(h.ctx, h.ch, func() {
		clear(h.l.resources)
		for _, r := range s.Resources {
			h.l.resources[datastore.IDOf(r)] = r
		}
		h.l.inSync = true
		h.l.resDirty = true
	})
}

func (h *syncHandler) OnUpdates(evs []datastore.Event) {
	send(h.ctx, h.ch, func() {
		for _, e := range evs {
			if e.Type == datastore.Deleted {
				delete(h.l.resources, e.ID)
			} else {
				h.l.resources[e.ID] = e.Resource
			}
		}
		h.l.resDirty = true
	})
}

// run is the event loop: it waits for one event, takes what else is
// queued, then reconciles once.
func (l *loop) run(ctx context.Context) {
	tick := time.NewTicker(l.r.cfg.StatusInterval)
	defer tick.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			l.refreshCounters(ctx)
		case <-timer.C:
		case f := <-l.queryCh:
			f()
			continue
		case f := <-l.resCh:
			f()
		case b := <-l.fibCh:
			l.onFIB(b)
		case <-l.bestQ.signal:
			l.takeBest()
		case <-l.recvQ.signal:
			l.takeReceived()
		case e := <-l.peerCh:
			l.onPeer(e)
		case <-l.linkCh:
			l.onLinkChange()
		case s := <-l.sup.lossCh:
			l.onLoss(s)
		case c := <-l.bfd.ch:
			l.onBFD(ctx, c)
		}
		for i := 0; i < 1024 && l.handleOne(); i++ {
		}
		l.reconcile(ctx)
		// Wake up for the next retry or the end of the import hold.
		timer.Stop()
		if next := l.nextWake(); !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
	}
}

// handleOne handles one queued event, if there is one.
func (l *loop) handleOne() bool {
	select {
	case f := <-l.resCh:
		f()
	case b := <-l.fibCh:
		l.onFIB(b)
	case <-l.bestQ.signal:
		l.takeBest()
	case <-l.recvQ.signal:
		l.takeReceived()
	case e := <-l.peerCh:
		l.onPeer(e)
	case <-l.linkCh:
		l.onLinkChange()
	default:
		return false
	}
	return true
}

// onLinkChange makes the next reconcile relist our routes and put back
// what the kernel dropped.
func (l *loop) onLinkChange() {
	l.rt.Resync()
	l.relist = true
}

func (l *loop) nextWake() time.Time {
	var t time.Time
	if !l.retryAt.IsZero() {
		t = l.retryAt
	}
	if l.holdImport && !l.holdUntil.IsZero() && (t.IsZero() || l.holdUntil.Before(t)) {
		t = l.holdUntil
	}
	if s := l.nextSupervisionWake(time.Now()); !s.IsZero() && (t.IsZero() || s.Before(t)) {
		t = s
	}
	if s := l.drainWake(); !s.IsZero() && (t.IsZero() || s.Before(t)) {
		t = s
	}
	return t
}

func (l *loop) retryLater() {
	if l.retryAt.IsZero() {
		l.retryAt = time.Now().Add(l.r.cfg.RetryDelay)
	}
}

// reconcile brings the speaker and the kernel to what the state asks for.
func (l *loop) reconcile(ctx context.Context) {
	if !l.retryAt.IsZero() && !time.Now().Before(l.retryAt) {
		l.retryAt = time.Time{}
		l.resDirty, l.exportDirty, l.importAll = true, true, true
	}
	now := time.Now()
	l.supervisionTick(now)
	l.drainTick(now)
	if l.resDirty && l.inSync && !l.speakerDown(now) {
		l.resDirty = false
		l.reconcilePeers(ctx)
	}
	if l.exportDirty {
		l.reconcileExports(ctx)
	}
	l.reconcileImports(ctx)
	if l.statusDirty {
		l.writeStatus(ctx)
	}
	l.r.setHealth(health{inSync: l.inSync, started: l.started, fibSynced: l.fibSynced, sessions: len(l.running)})
}

// input collects the peering resources.
func (l *loop) input() (peering.Input, *api.BGPConfiguration) {
	var in peering.Input
	var def *api.BGPConfiguration
	for _, r := range l.resources {
		in.Add(r)
		if c, ok := r.(*api.BGPConfiguration); ok && c.Name == api.DefaultBGPConfigurationName {
			def = c
		}
	}
	return in, def
}

// reconcilePeers computes this node's sessions and applies the difference
// to the speaker: adding or removing one node touches only its session.
func (l *loop) reconcilePeers(ctx context.Context) {
	in, def := l.input()
	model, err := peering.New(in)
	if err != nil {
		l.lg.Error("invalid peering configuration: keeping the running sessions", logKeyError, err)
		return
	}
	res, err := model.Compute(l.r.cfg.NodeName)
	if err != nil {
		l.lg.Error("cannot compute this node's sessions: keeping the running ones", logKeyError, err)
		return
	}
	// Each warning once, while it lasts: reconciling runs on every
	// datastore change.
	warned := make(map[string]bool, len(res.Warnings))
	for _, w := range res.Warnings {
		ws := w.String()
		if !l.warned[ws] {
			l.lg.Warn("peering", logKeyWarning, ws)
		}
		warned[ws] = true
	}
	l.warned = warned
	l.applyConfig(def)
	l.updateKubeServices()         // services.go
	l.updateDrain(time.Now(), def) // drain.go
	if l.started && res.Local != l.local && globalDiffers(l.global(res.Local), l.global(l.local)) {
		l.lg.Info("node's BGP identity changed: restarting the speaker")
		l.stopSpeaker(ctx)
	}
	l.local = res.Local
	if !l.started {
		if err := l.r.cfg.Speaker.Start(ctx, l.global(res.Local)); err != nil {
			l.lg.Error("starting the speaker", logKeyError, err)
			l.retryLater()
			return
		}
		l.started = true
		l.onStarted(time.Now())
		l.exportDirty, l.importAll = true, true
		l.watch(ctx)
	}
	l.loadPolicy(def) // policy.go
	sessions, ranges := l.drainSessions(res.Sessions, res.PeerRanges)
	l.applySessions(ctx, sessions)
	l.applyRanges(ctx, ranges)
	l.applyPolicyChanges(ctx, sessions, ranges)
	l.refreshImports() // imports.go
	l.statusDirty = true
}

func (l *loop) global(lo peering.Local) Global {
	g := global(lo)
	g.ListenAddresses = l.r.cfg.ListenAddresses
	g.ReceivedPaths = l.pathMode
	return g
}

// globalDiffers says whether the speaker must restart to take o's place
// of g (its identity or export rule changed).
func globalDiffers(g, o Global) bool {
	return g.AS != o.AS || g.RouterID != o.RouterID || g.ListenPort != o.ListenPort || g.ExportPolicy != o.ExportPolicy
}

// applyConfig takes the BGPConfiguration's communities and graceful
// restart setting, and decides the import hold on the first call.
func (l *loop) applyConfig(def *api.BGPConfiguration) {
	gr := true
	if def != nil {
		if g := def.Spec.GracefulRestart; g != nil && g.Enabled != nil {
			gr = *g.Enabled
		}
	}
	if adv := api.ParseAdvertisements(def); !reflect.DeepEqual(adv, l.adv) {
		l.adv = adv
		l.exportDirty = true
	}
	first := l.holdImport && l.holdUntil.IsZero()
	l.gr = gr
	if first {
		if gr && l.stale > 0 {
			// Restarting: keep forwarding on the routes we left until
			// the peers have sent theirs again (End-of-RIB) or the
			// restart time is over.
			wait := api.DefaultRestartTime
			if def != nil && def.Spec.GracefulRestart != nil && def.Spec.GracefulRestart.RestartTime != "" {
				wait = def.Spec.GracefulRestart.RestartTime.Get()
			}
			l.holdUntil = time.Now().Add(wait)
			l.lg.Info("graceful restart: keeping the routes of the earlier run until peers send End-of-RIB",
				logKeyCount, l.stale, logKeyDuration, wait)
		} else {
			l.holdImport = false
			l.importAll = true
		}
	}
}

func (l *loop) stopSpeaker(ctx context.Context) {
	if err := l.r.cfg.Speaker.Stop(ctx); err != nil {
		l.lg.Warn("stopping the speaker", logKeyError, err)
	}
	l.forgetSpeaker()
	if l.pathMode {
		// A stopped speaker reports no withdrawals of its received
		// paths (router/gobgp/received.go): they are gone with it.
		clear(l.best)
		l.forgetRIB()
		l.clearImportDirty()
		l.importAll = true
	}
}

// forgetSpeaker drops what the loop knew of a speaker that is stopped or
// gone: its sessions, ranges and announcements (a new one starts empty).
func (l *loop) forgetSpeaker() {
	l.started = false
	clear(l.running)
	clear(l.configs)
	clear(l.peers)
	clear(l.counts)
	clear(l.ranges)
	clear(l.rangeConfigs)
	clear(l.dynamic)
	clear(l.announced)
}

// watch subscribes to the speaker's events once.
func (l *loop) watch(ctx context.Context) {
	if l.watching {
		return
	}
	l.watching = true
	l.watchLoss(ctx)
	sp := l.r.cfg.Speaker
	if err := sp.WatchPeers(ctx, func(e PeerEvent) { send(ctx, l.peerCh, e) }); err != nil {
		l.lg.Error("watching peers", logKeyError, err)
	}
	if pw, ok := sp.(PathWatcher); ok && l.pathMode {
		if err := pw.WatchReceived(ctx, l.recvQ.push); err != nil {
			l.lg.Error("watching received paths", logKeyError, err)
		}
		return
	}
	if err := sp.WatchBestPaths(ctx, l.bestQ.push); err != nil {
		l.lg.Error("watching best paths", logKeyError, err)
	}
}

// applySessions applies the difference between the running and the
// desired sessions.
func (l *loop) applySessions(ctx context.Context, desired []peering.Session) {
	want := map[netip.Addr]bool{}
	for _, s := range desired {
		want[s.PeerAddress] = true
	}
	for a := range l.failed {
		if !want[a] {
			delete(l.failed, a)
		}
	}
	desired = l.holdQuarantined(desired)
	desired = l.applyBFD(ctx, desired)
	running := make([]peering.Session, 0, len(l.running))
	for _, s := range l.running {
		running = append(running, s)
	}
	d := peering.Diff(running, desired)
	sp := l.r.cfg.Speaker
	for _, s := range d.Remove {
		if err := sp.DeletePeer(ctx, s.PeerAddress); err != nil {
			l.lg.Warn("removing session", logKeySession, s.String(), logKeyError, err)
			l.retryLater()
			continue
		}
		l.lg.Info("session removed", logKeySession, s.String())
		delete(l.running, s.PeerAddress)
		delete(l.configs, s.PeerAddress)
		delete(l.peers, s.PeerAddress)
		delete(l.counts, s.PeerAddress)
	}
	for _, s := range d.Add {
		pc, ok := l.peerConfig(s)
		if !ok {
			continue
		}
		if err := sp.AddPeer(ctx, pc); err != nil {
			l.fail(s, err)
			continue
		}
		l.lg.Info("session added", logKeySession, s.String())
		delete(l.failed, s.PeerAddress)
		l.running[s.PeerAddress], l.configs[s.PeerAddress] = s, pc
		l.peers[s.PeerAddress] = &peerInfo{state: api.BGPIdle, since: time.Now()}
		delete(l.dynamic, s.PeerAddress) // a configured peer is no dynamic one
	}
	for _, u := range d.Update {
		if bfdOnly(u) { // BFD runs beside the speaker (bfd.go)
			l.running[u.New.PeerAddress] = u.New
			continue
		}
		pc, ok := l.peerConfig(u.New)
		if !ok {
			continue
		}
		if err := sp.UpdatePeer(ctx, pc, u.Reset); err != nil {
			l.fail(u.New, err)
			continue
		}
		l.lg.Info("session updated", logKeySession, u.New.String(), logKeyChanged, u.Changed, "reset", u.Reset)
		l.running[u.New.PeerAddress], l.configs[u.New.PeerAddress] = u.New, pc
	}
	// A changed secret changes no resource: compare the passwords.
	for _, s := range desired {
		old, ok := l.configs[s.PeerAddress]
		if !ok || s.Password.IsZero() {
			continue
		}
		pc, ok := l.peerConfig(s)
		if !ok || pc.Password == old.Password {
			continue
		}
		if err := sp.UpdatePeer(ctx, pc, true); err != nil {
			l.fail(s, err)
			continue
		}
		l.lg.Info("session password changed", logKeySession, s.String())
		l.configs[s.PeerAddress] = pc
	}
}

// peerConfig resolves the session's password and builds its speaker
// configuration; a missing secret fails the session.
func (l *loop) peerConfig(s peering.Session) (PeerConfig, bool) {
	if err := unicastOnly(s.Source, s.Families); err != nil {
		l.fail(s, err)
		return PeerConfig{}, false
	}
	pw, err := l.r.cfg.Secrets.Password(s.Password)
	if err != nil {
		l.fail(s, err)
		return PeerConfig{}, false
	}
	pc := peerConfig(s, l.local, pw)
	pc.Policy = l.speakerPolicy(s.Source, s.EBGP)
	pc.GracefulRestart.LocalRestarting = pc.GracefulRestart.Enabled && l.holdImport && l.stale > 0
	return pc, true
}

func (l *loop) fail(s peering.Session, err error) {
	msg := err.Error()
	if f, ok := l.failed[s.PeerAddress]; !ok || f.err != msg {
		l.lg.Error("cannot configure session", logKeySession, s.String(), logKeyError, err)
	}
	l.failed[s.PeerAddress] = sessionFailure{session: s, err: msg}
	l.statusDirty = true
	l.retryLater()
}

// onPeer records a peer's state change or error, a configured peer's or
// a dynamic neighbour's.
func (l *loop) onPeer(e PeerEvent) {
	p, ok := l.peers[e.Address]
	if !ok {
		if p, ok = l.dynamicPeer(e); !ok {
			return
		}
	}
	switch {
	case e.State != "":
		if e.State != p.state {
			l.lg.Info("peer state", logKeyPeer, e.Address, logKeyState, e.State)
			// Only a session that goes down loses its End-of-RIB: the
			// End-of-RIB comes on the best-path stream and may overtake
			// the new session's OpenSent and OpenConfirm events.
			if p.state == api.BGPEstablished {
				p.eor = false
			}
			p.state, p.since = e.State, time.Now()
		}
	case e.Err != "":
		p.lastError = e.Err
		if l.metrics != nil {
			l.metrics.peerErrors.WithLabelValues(errorKind(e.Err)).Inc()
		}
		// A peer may send malformed UPDATEs at line rate: a few lines
		// and status writes per interval, then a summary (errlog.go);
		// the last error goes out with the next status.
		if !l.errLog.Allow(e.Address.String()) {
			return
		}
		l.lg.Warn("peer error", logKeyPeer, e.Address, logKeyError, e.Err)
	case e.EndOfRIB:
		p.eor = true
	}
	l.statusDirty = true
}

// onFIB applies a batch of the route feed.
func (l *loop) onFIB(b FIBBatch) {
	if b.Snapshot {
		clear(l.fib)
		l.fibSynced = true
	}
	for _, e := range b.Routes {
		if e.Deleted {
			if old, ok := l.fib[e.Route.Dst]; ok && old.Priority == e.Route.Priority {
				delete(l.fib, e.Route.Dst)
			}
			continue
		}
		l.fib[e.Route.Dst] = e.Route
	}
	l.exportDirty = true
}

// reconcileExports announces and withdraws the difference.
func (l *loop) reconcileExports(ctx context.Context) {
	if !l.started || !l.fibSynced {
		return
	}
	l.exportDirty = false
	var f *Filter
	if l.r.cfg.Policy != nil {
		f = l.r.cfg.Policy.Export
	}
	announce, withdraw := exportDiff(l.announced, l.drainRoutes(Exports(l.fib, f, &l.adv, l.services())))
	sp := l.r.cfg.Speaker
	if len(announce) > 0 {
		if err := sp.Announce(ctx, announce); err != nil {
			l.lg.Error("announcing routes", logKeyError, err)
			l.retryLater()
		} else {
			for _, r := range announce {
				if l.hasBest(r.Prefix) {
					l.markImport(r.Prefix) // originates
				}
				l.announced[r.Prefix] = r
			}
			l.lg.Debug("announced", logKeyCount, len(announce))
		}
	}
	if len(withdraw) > 0 {
		if err := sp.Withdraw(ctx, withdraw); err != nil {
			l.lg.Error("withdrawing routes", logKeyError, err)
			l.retryLater()
		} else {
			for _, p := range withdraw {
				delete(l.announced, p)
				if l.hasBest(p) {
					l.markImport(p) // originates
				}
			}
			l.lg.Debug("withdrew", logKeyCount, len(withdraw))
		}
	}
	if l.metrics != nil {
		l.metrics.exported.Set(float64(len(l.announced)))
	}
}

// takeBest records the queued best-path changes.
func (l *loop) takeBest() {
	ds := l.bestQ.take(l.bestSpare)
	l.onBest(ds)
	l.bestSpare = spareQueue(ds)
}

// onBest records best-path changes.
func (l *loop) onBest(ds []Destination) {
	for _, d := range ds {
		if d.EndOfRIB.IsValid() {
			l.onPeer(PeerEvent{Address: d.EndOfRIB, EndOfRIB: true})
			continue
		}
		l.setBest(d)
	}
}

// setBest records one destination's best paths, as the speaker
// reported them, and marks it for the kernel. In path mode the best
// paths are the router's own selection from rib (bestOf), not kept.
func (l *loop) setBest(d Destination) {
	if len(d.Paths) == 0 {
		delete(l.best, d.Prefix)
	} else {
		l.best[d.Prefix] = d
	}
	l.markImport(d.Prefix)
}

// bestOf returns p's best paths and whether it has any: the speaker's,
// or in path mode the router's selection from its Adj-RIB-In, made
// when asked, so that the paths are kept once (docs/scale.md, "Routes
// in the node agent").
func (l *loop) bestOf(p netip.Prefix) (Destination, bool) {
	if l.pathMode {
		d := l.rib.best(p)
		return d, len(d.Paths) > 0
	}
	d, ok := l.best[p]
	return d, ok
}

// hasBest reports whether p has best paths.
func (l *loop) hasBest(p netip.Prefix) bool {
	if l.pathMode {
		return l.rib.hasBest(p)
	}
	_, ok := l.best[p]
	return ok
}

// bestCount is the number of prefixes with best paths.
func (l *loop) bestCount() int {
	if l.pathMode {
		return l.rib.withBest
	}
	return len(l.best)
}

// bestPrefixes yields every prefix with best paths.
func (l *loop) bestPrefixes(yield func(netip.Prefix) bool) {
	if !l.pathMode {
		for p := range l.best {
			if !yield(p) {
				return
			}
		}
		return
	}
	for p, paths := range l.rib.dests {
		if anyAccepted(paths) && !yield(p) {
			return
		}
	}
}

// markImport makes the next reconcile install or remove p again.
func (l *loop) markImport(p netip.Prefix) {
	if l.importAll {
		return
	}
	l.importDirty[p] = struct{}{}
	// Against the received prefixes too: best paths removed in the same
	// batch shrink l.best, and a filter that rejects a third of 100,000
	// prefixes would otherwise turn into a full diff (and a full listing
	// of the kernel's table by the foreign-route guard).
	if len(l.importDirty) > max(l.bestCount(), len(l.rib.dests))/2+1024 {
		l.importAll = true
		l.clearImportDirty()
	}
}

// clearImportDirty empties importDirty. A map keeps the room of its
// largest size when cleared: after a burst (a node's first sync marks
// every prefix) it is made anew instead (docs/scale.md, "Routes in the
// node agent").
func (l *loop) clearImportDirty() {
	if len(l.importDirty) > spareQueueMax {
		l.importDirty = map[netip.Prefix]struct{}{}
		return
	}
	clear(l.importDirty)
}

// reconcileImports turns best paths into desired kernel routes and,
// unless held for a graceful restart, applies them.
func (l *loop) reconcileImports(ctx context.Context) {
	var f *Filter
	if l.r.cfg.Policy != nil {
		f = l.r.cfg.Policy.Import
	}
	own := func(a netip.Addr) bool { return ownAddress(l.local, a) }
	l.guardRefresh(ctx)
	set := func(p netip.Prefix) {
		d, _ := l.bestOf(p)
		if r, ok := importRoute(d, f, own); ok && !l.originates(p) && !l.shadowsForeign(p) {
			if err := l.rt.SetRoute(r); err != nil {
				l.lg.Warn("learned route not installable", logKeyPrefix, p, logKeyError, err)
			}
		} else {
			l.guard.forget(p)
			l.rt.DeleteRoute(p)
		}
	}
	changed := l.importAll || len(l.importDirty) > 0
	if l.importAll {
		var routes []routetable.Route
		for p := range l.bestPrefixes {
			d, _ := l.bestOf(p)
			if r, ok := importRoute(d, f, own); ok && !l.originates(d.Prefix) && !l.shadowsForeign(d.Prefix) {
				routes = append(routes, r)
			}
		}
		if err := l.rt.Set(routes); err != nil {
			l.lg.Warn("learned routes not installable", logKeyError, err)
		}
		l.importAll = false
		l.clearImportDirty()
	}
	for p := range l.importDirty {
		set(p)
	}
	l.clearImportDirty()
	if l.holdImport {
		if l.holdUntil.IsZero() || !l.allEndOfRIB() && time.Now().Before(l.holdUntil) {
			return
		}
		l.holdImport = false
		l.lg.Info("graceful restart: peers resent their routes; replacing the earlier run's")
		changed = true
	}
	if !changed && !l.applyErr && !l.relist {
		return
	}
	start := time.Now()
	err := l.rt.Apply(ctx)
	l.applyErr, l.relist = false, false
	if err != nil {
		var conflict *routetable.ConflictError
		if cs := l.rt.Conflicts(); errors.As(err, &conflict) && len(cs) > 0 {
			// Logged when the set changes, not on every apply: any
			// other route's change applies again, and the conflicts
			// stay until their owners remove their routes.
			if !slices.Equal(cs, l.loggedConflicts) {
				l.lg.Info("learned routes left to routes we do not own", logKeyCount, len(cs), logKeyError, err)
				l.loggedConflicts = cs
			}
		} else {
			l.lg.Warn("installing learned routes", logKeyError, err)
			l.applyErr = true
			l.retryLater()
		}
		if l.metrics != nil {
			l.metrics.routeErrors.Inc()
		}
	}
	if err == nil {
		l.loggedConflicts = nil
	}
	l.lg.Debug("applied learned routes", logKeyDuration, time.Since(start))
	if l.metrics != nil {
		l.metrics.installed.Set(float64(l.bestCount() - len(l.rt.Conflicts())))
		l.metrics.conflicts.Set(float64(len(l.rt.Conflicts())))
	}
}

// originates reports whether the node announces p itself (one of its
// blocks, routes or service addresses): a path for it that a peer sends
// back (a ToR or another node reflecting it, or an iBGP peer preferred
// while the node drains and sends its own with LOCAL_PREF 0) is never
// installed. The node's own route is felix's, or the service address on
// its interface; BIRD and Calico keep the same rule.
func (l *loop) originates(p netip.Prefix) bool {
	_, ok := l.announced[p]
	return ok
}

// allEndOfRIB reports whether every configured peer is up and has sent
// End-of-RIB. Dynamic neighbours do not count: nobody knows whether they
// come back.
func (l *loop) allEndOfRIB() bool {
	if len(l.peers) == 0 {
		return false
	}
	for _, p := range l.peers {
		if p.state != api.BGPEstablished || !p.eor {
			return false
		}
	}
	return true
}

// shutdown stops the speaker and, without graceful restart, removes our
// kernel routes.
func (l *loop) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	l.closeBFD()
	if l.started {
		if err := l.r.cfg.Speaker.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
		l.started = false
	}
	if l.gr {
		l.lg.Info("stopped; graceful restart is on: the installed routes stay for the next run")
	} else {
		_ = l.rt.Set(nil)
		if err := l.rt.Apply(ctx); err != nil {
			errs = append(errs, fmt.Errorf("removing installed routes: %w", err))
		}
		l.lg.Info("stopped; installed routes removed")
	}
	if s := l.r.cfg.Status; s != nil {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
