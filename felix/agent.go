package felix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/calc"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// Agent is felix for one node. See the package documentation.
type Agent struct {
	cfg Config
	log *slog.Logger

	// running is set while Run runs; last is the latest status report.
	// Both are read by the health checks from other goroutines.
	running atomic.Bool
	last    atomic.Pointer[api.FelixStatusReport]
}

// Live is a liveness check: nil while Run is running.
func (a *Agent) Live() error {
	if !a.running.Load() {
		return errors.New("felix is not running")
	}
	return nil
}

// Ready is a readiness check: nil once felix has programmed the dataplane
// and is in sync with the datastore; else what it is waiting for.
func (a *Agent) Ready() error {
	if err := a.Live(); err != nil {
		return err
	}
	r := a.last.Load()
	switch {
	case r == nil || !r.Ready:
		return errors.New("dataplane not programmed yet")
	case r.Dataplane.Error != "":
		return fmt.Errorf("dataplane %s: %s", r.Dataplane.State, r.Dataplane.Error)
	case !r.InSync:
		return errors.New("not in sync with the datastore")
	}
	return nil
}

// New checks cfg and returns an Agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, log: cfg.Logger.With(logKeyNode, cfg.NodeName)}, nil
}

// Run programs the node until ctx ends, then returns nil, leaving the
// programmed state in place. It returns an error if it cannot start (the
// kernel handles cannot be opened) or the datastore client is closed
// under it; dataplane errors are retried, not returned.
func (a *Agent) Run(ctx context.Context) error {
	a.running.Store(true)
	defer a.running.Store(false)
	cfg := a.cfg
	cfg.Logger = a.log
	dp, err := openDataplane(cfg)
	if err != nil {
		return err
	}
	defer dp.close()

	kinds := routeKinds
	if dp.acl != nil {
		kinds = append(append([]string(nil), routeKinds...), ACLKinds...)
	}
	in := newInbox()
	syncer, err := datastore.NewSyncer(cfg.Client, datastore.SyncerConfig{Kinds: kinds, Handler: in, Logger: a.log, Strip: stripFor(cfg.NodeName)})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel: the deferred calls run last-in first-out
	defer cancel()

	syncErr := make(chan error, 1)
	wg.Go(func() { syncErr <- syncer.Run(ctx) })
	reporter := newStatusReporter(cfg)
	wg.Go(func() { reporter.run(ctx) })

	l := &loop{
		cfg:      cfg,
		log:      a.log,
		in:       in,
		calc:     calc.New(calc.Config{NodeName: cfg.NodeName, Logger: a.log}),
		dp:       dp,
		reporter: reporter,
		agent:    a,
		state:    api.DataplaneStarting,
		retry:    cfg.RetryMin,
	}
	return l.run(ctx, syncErr)
}

// loop is the state that Run's goroutine owns.
type loop struct {
	cfg      Config
	log      *slog.Logger
	in       *inbox
	calc     *calc.Calc
	dp       *dataplane
	reporter *statusReporter
	agent    *Agent

	// synced is set by the first snapshot: before it nothing is
	// programmed. syncStatus is the syncer's latest status.
	synced     bool
	syncStatus datastore.SyncStatus
	// dirty says the dataplane has changes to apply.
	dirty bool
	// state and lastErr are the outcome of the last apply; ready is set
	// by the first successful one.
	state   api.DataplaneState
	lastErr error
	ready   bool
	// retry is the next backoff after a failed apply.
	retry time.Duration
}

// timer is a time.Timer that can be disarmed, whose channel is nil then.
type timer struct{ t *time.Timer }

func (t *timer) arm(d time.Duration) {
	t.stop()
	t.t = time.NewTimer(d)
}

func (t *timer) stop() {
	if t.t != nil {
		t.t.Stop()
		t.t = nil
	}
}

func (t *timer) c() <-chan time.Time {
	if t.t == nil {
		return nil
	}
	return t.t.C
}

func (l *loop) run(ctx context.Context, syncErr <-chan error) error {
	var retryT, rewatchT timer
	defer retryT.stop()
	defer rewatchT.stop()
	resync := time.NewTicker(l.cfg.ResyncInterval)
	defer resync.Stop()

	links, err := l.watchLinks(ctx)
	if err != nil {
		l.log.Warn("watching links; will retry", logKeyError, err)
		rewatchT.arm(l.cfg.RetryMin)
	}
	l.report()
	for {
		select {
		case <-ctx.Done():
			l.log.Info("felix stopping; leaving the dataplane in place")
			return nil
		case err := <-syncErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("felix: datastore syncer stopped: %w", err)
		case <-l.in.kick:
			l.onBatch(l.in.take())
		case u, ok := <-links:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				// Changes may have been missed: re-read the links and
				// routes, and subscribe again.
				l.log.Warn("link subscription ended; resyncing and subscribing again")
				links = nil
				l.dp.resync()
				l.dirty = true
				rewatchT.arm(l.cfg.RetryMin)
				break
			}
			l.dp.onLink(u)
			l.drainLinks(links)
			l.dirty = true
		case <-rewatchT.c():
			rewatchT.stop()
			if links, err = l.watchLinks(ctx); err != nil {
				l.log.Warn("watching links; will retry", logKeyError, err)
				rewatchT.arm(l.cfg.RetryMax)
			}
		case <-resync.C:
			l.dp.resync()
			l.dirty = true
		case <-retryT.c():
			retryT.stop()
		}
		if err := l.applyIfDirty(ctx); err == nil {
			retryT.stop()
		} else if retryT.t == nil {
			retryT.arm(l.retry)
			l.log.Warn("dataplane apply failed; will retry", logKeyError, err, logKeyRetryIn, l.retry)
			l.retry = min(2*l.retry, l.cfg.RetryMax)
		}
		l.report()
	}
}

func (l *loop) watchLinks(ctx context.Context) (<-chan routetable.LinkUpdate, error) {
	if l.cfg.WatchLinks != nil {
		return l.cfg.WatchLinks(ctx)
	}
	return routetable.WatchLinks(ctx, l.cfg.Netns, l.log)
}

// drainLinks takes the link updates that are already queued, so that a
// burst is applied once.
func (l *loop) drainLinks(links <-chan routetable.LinkUpdate) {
	for {
		select {
		case u, ok := <-links:
			if !ok {
				return // the next select sees the close
			}
			l.dp.onLink(u)
		default:
			return
		}
	}
}

// onBatch feeds a batch of datastore changes to the calculations and
// their delta to the dataplane.
func (l *loop) onBatch(b batch) {
	if b.status != 0 {
		l.syncStatus = b.status
	}
	if b.snapshot != nil {
		l.calc.OnSnapshot(b.snapshot.Resources)
		if l.dp.nat != nil {
			l.dp.nat.onSnapshot(b.snapshot.Resources)
		}
		if l.dp.acl != nil {
			l.dp.acl.OnSnapshot(b.snapshot.Resources)
		}
		if !l.synced {
			l.log.Info("first datastore snapshot; programming the dataplane", logKeyEvents, len(b.snapshot.Resources))
		}
		l.synced = true
	}
	for _, ev := range b.events {
		k := calc.Key{Kind: ev.ID.Kind, Namespace: ev.ID.Namespace, Name: ev.ID.Name}
		if ev.Type == datastore.Deleted || ev.Resource == nil {
			l.calc.OnRemove(k)
			if l.dp.nat != nil {
				l.dp.nat.onRemove(k)
			}
			if l.dp.acl != nil {
				l.dp.acl.OnRemove(k)
			}
			continue
		}
		l.calc.OnUpdate(ev.Resource)
		if l.dp.nat != nil {
			l.dp.nat.onUpdate(ev.Resource)
		}
		if l.dp.acl != nil {
			if err := l.dp.acl.OnUpdate(ev.Resource); err != nil {
				l.log.Warn("resource cannot be enforced", logKeyResource, k.String(), logKeyError, err)
			}
		}
	}
	if d := l.calc.TakeDelta(); !d.Empty() {
		l.dp.onDelta(d, l.log)
	}
	// The ACL tracks its own changes; applying it when nothing changed
	// is cheap.
	l.dirty = l.dirty || b.snapshot != nil || len(b.events) > 0
}

// applyIfDirty applies the dataplane when it has changes and the first
// snapshot is in. It returns the apply's error, nil when there was nothing
// to do (or nothing yet: before the first snapshot).
func (l *loop) applyIfDirty(ctx context.Context) error {
	if !l.dirty || !l.synced {
		return nil
	}
	start := time.Now()
	l.state = api.DataplaneProgramming
	err := l.dp.apply(ctx)
	if ctx.Err() != nil {
		return nil // stopping: not a dataplane failure
	}
	if err != nil {
		l.state, l.lastErr = api.DataplaneFailed, err
		return err
	}
	if !l.ready {
		l.log.Info("dataplane programmed", logKeyDuration, time.Since(start), logKeyRoutes, l.calc.Counts().Routes)
	}
	l.state, l.lastErr, l.ready, l.dirty = api.DataplaneInSync, nil, true, false
	l.retry = l.cfg.RetryMin
	return nil
}

// report hands the current status to the reporter.
func (l *loop) report() {
	c := l.calc.Counts()
	r := api.FelixStatusReport{
		Ready:     l.ready,
		InSync:    l.synced && l.syncStatus == datastore.InSync && l.state == api.DataplaneInSync,
		Dataplane: api.DataplaneStatus{State: l.state},
		Endpoints: c.WorkloadEndpoints + c.HostEndpoints,
	}
	if l.ready {
		r.Routes = c.Routes - len(l.dp.routes.Pending())
	}
	var problems []error
	if l.lastErr != nil {
		problems = append(problems, l.lastErr)
	}
	for _, cf := range l.dp.routes.Conflicts() {
		problems = append(problems, &cf)
		r.Routes--
	}
	if len(problems) > 0 {
		r.Dataplane.State = api.DataplaneFailed
		r.Dataplane.Error = truncate(errors.Join(problems...).Error(), maxStatusError)
		r.InSync = false
	}
	if l.dp.acl != nil && l.ready {
		r.Rules = l.dp.acl.Rules()
	}
	l.reporter.set(r)
	l.agent.last.Store(&r)
	l.cfg.Metrics.observeStatus(r)
}

// maxStatusError bounds the error text in a status record.
const maxStatusError = 2048

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
