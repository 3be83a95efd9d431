package fabric

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/latest"
	"github.com/bgpfabric/bgpfabric/internal/statusdiff"
	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/reflector"
)

// Config configures a Controller.
type Config struct {
	Client *datastore.Client
	// Node is this node's name: a Node with a routeReflectorClusterID.
	Node string
	// ListenAddrs override the listen addresses (default: the node's
	// addresses on its listen port).
	ListenAddrs []string
	// Secrets reads BGPPeer passwords; nil fails sessions that need one.
	Secrets SecretReader
	// StatusInterval is how often BGPStatus is rebuilt, for its prefix
	// counters; zero means 10 s. It is also rebuilt after every change of
	// the neighbours and every session going up or down, StatusDebounce
	// after the first of a burst of them. A rebuilt status is written only
	// if sessions or states changed (at most once a second), or, when only
	// prefix counts did, on a slow jittered period (about a minute).
	StatusInterval time.Duration
	// StatusDebounce is how long a session change waits for more before
	// BGPStatus is written, so that a fleet of clients coming up at once
	// makes a few writes, not one each; zero means 200 ms.
	StatusDebounce time.Duration
	// StatusTTL is the status lease's TTL; zero means the datastore's
	// default.
	StatusTTL time.Duration
	// Engine is applied to the reflector's Config before New (timers,
	// restart mode, dynamic neighbours...).
	Engine func(*reflector.Config)
	Logger *slog.Logger
}

// ErrIdentityChanged ends Run when the node's AS, router ID, cluster ID or
// addresses change: the reflector must be restarted to take them.
var ErrIdentityChanged = errors.New("the reflector's identity changed")

// Controller runs a reflector configured from the datastore.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	dirty chan struct{} // size 1: a recomputation is due

	mu        sync.Mutex // guards the fields below
	resources map[datastore.ResourceID]api.Resource
	synced    bool
	refl      *reflector.Reflector
	ready     chan struct{}
}

// New returns a controller; Run starts it.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Node == "" {
		return nil, errors.New("reflector controller: Client and Node are required")
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = 10 * time.Second
	}
	if cfg.StatusDebounce <= 0 {
		cfg.StatusDebounce = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Controller{
		cfg: cfg, log: cfg.Logger, dirty: make(chan struct{}, 1),
		resources: map[datastore.ResourceID]api.Resource{}, ready: make(chan struct{}),
	}, nil
}

// Ready is closed once the reflector runs.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Reflector returns the running reflector, nil before Ready.
func (c *Controller) Reflector() *reflector.Reflector {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refl
}

// OnStatus implements datastore.SyncHandler.
func (c *Controller) OnStatus(s datastore.SyncStatus) {
	c.log.Info("datastore sync", "status", s.String())
}

// OnSnapshot implements datastore.SyncHandler.
func (c *Controller) OnSnapshot(s datastore.Snapshot) {
	c.mu.Lock()
	clear(c.resources)
	for _, r := range s.Resources {
		c.resources[datastore.IDOf(r)] = r
	}
	c.synced = true
	c.mu.Unlock()
	c.markDirty()
}

// OnUpdates implements datastore.SyncHandler.
func (c *Controller) OnUpdates(evs []datastore.Event) {
	c.mu.Lock()
	for _, e := range evs {
		switch e.Type {
		case datastore.Added, datastore.Modified:
			c.resources[e.ID] = e.Resource
		case datastore.Deleted:
			delete(c.resources, e.ID)
		}
	}
	c.mu.Unlock()
	c.markDirty()
}

func (c *Controller) markDirty() {
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// input snapshots the synced resources as peering's input, with the
// BGPFilters.
func (c *Controller) input() (policyInput, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var pi policyInput
	for _, r := range c.resources {
		pi.in.Add(r)
		if f, ok := r.(*api.BGPFilter); ok {
			pi.filters = append(pi.filters, f)
		}
	}
	return pi, c.synced
}

// desired is one computation's outcome.
type desired struct {
	id        Identity
	sessions  []peering.Session
	neighbors []reflector.NeighborConfig
	ranges    []peering.PeerRange
	dynamic   []reflector.DynamicNeighbor
	// policy is the route policy (policy.go).
	policy reflector.PolicyConfig
	// refused are the sessions left out for filters the reflector cannot
	// honour (policy.go).
	refused []refusal
}

func (c *Controller) compute() (desired, error) {
	pi, _ := c.input()
	res, err := peering.ReflectorSessions(pi.in, c.cfg.Node)
	if err != nil {
		return desired{}, err
	}
	for _, w := range res.Warnings {
		c.log.Warn("peering", "warning", w.String())
	}
	pol := policyFor(pi, c.cfg.Node, res.Sessions, res.PeerRanges)
	res.Sessions, res.PeerRanges = pol.sessions, pol.ranges
	for _, r := range append(slices.Clone(pol.refused), pol.refusedRanges...) {
		c.log.Error("left out for its filters", "reason", r.reason)
	}
	d := desired{id: IdentityOf(res.Local), sessions: res.Sessions, refused: pol.refused, policy: pol.policy}
	if len(c.cfg.ListenAddrs) > 0 {
		d.id.ListenAddrs = slices.Clone(c.cfg.ListenAddrs)
	}
	ns, warnings, err := Neighbors(res.Sessions, c.cfg.Secrets)
	for _, w := range warnings {
		c.log.Warn("neighbour", "warning", w)
	}
	if err != nil {
		c.log.Error("neighbours left out", "err", err)
	}
	d.neighbors = ns
	d.ranges = res.PeerRanges
	if d.dynamic, err = DynamicNeighbors(res.PeerRanges, c.cfg.Secrets); err != nil {
		c.log.Error("dynamic neighbours left out", "err", err)
	}
	return d, nil
}

// Run syncs from the datastore and runs the reflector until ctx ends (the
// reflector then stops as Reflector.Run does for ctx's cause), or until
// the node's identity changes (ErrIdentityChanged).
func (c *Controller) Run(ctx context.Context) error {
	syncer, err := datastore.NewSyncer(c.cfg.Client, datastore.SyncerConfig{
		Kinds:   []string{api.KindNode, api.KindBGPPeer, api.KindBGPConfiguration, api.KindBGPFilter},
		Handler: c, Logger: c.log,
	})
	if err != nil {
		return err
	}
	syncCtx, stopSync := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSync()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopSync()
	wg.Go(func() {
		if err := syncer.Run(syncCtx); err != nil && syncCtx.Err() == nil {
			c.log.Error("datastore syncer", "err", err)
		}
	})

	// Wait for the first snapshot and a computable configuration.
	var cur desired
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.dirty:
		}
		if _, synced := c.input(); !synced {
			continue
		}
		if cur, err = c.compute(); err != nil {
			c.log.Error("cannot configure the reflector yet", "node", c.cfg.Node, "err", err)
			continue
		}
		break
	}
	rcfg := reflector.Config{
		RouterID: cur.id.RouterID, ASN: cur.id.AS, ClusterID: cur.id.ClusterID,
		ListenAddrs: cur.id.ListenAddrs, Neighbors: cur.neighbors, Logger: c.log, Policy: cur.policy,
	}
	if c.cfg.Engine != nil {
		c.cfg.Engine(&rcfg)
	}
	// Dynamic neighbours the Engine set stay, before the datastore's.
	engineDynamic := slices.Clone(rcfg.DynamicNeighbors)
	dynamic := func(d desired) []reflector.DynamicNeighbor {
		return append(slices.Clone(engineDynamic), d.dynamic...)
	}
	rcfg.DynamicNeighbors = dynamic(cur)
	r, err := reflector.New(rcfg)
	if err != nil {
		return fmt.Errorf("Node %s: %w", c.cfg.Node, err)
	}
	runCtx, stopRefl := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopRefl(nil)
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(runCtx) }()
	select {
	case <-r.Ready():
	case err := <-runErr:
		return err
	}
	c.mu.Lock()
	c.refl = r
	c.mu.Unlock()
	close(c.ready)
	c.log.Info("reflector running", "node", c.cfg.Node, "routerID", cur.id.RouterID, "as", cur.id.AS,
		"clusterID", cur.id.ClusterID, "listen", cur.id.ListenAddrs, "neighbors", len(cur.neighbors),
		"peerRanges", len(cur.ranges))

	status, err := c.cfg.Client.NewStatusWriter(ctx, datastore.StatusWriterConfig{TTL: c.cfg.StatusTTL, Logger: c.log})
	var out *latest.Writer[*api.BGPStatus]
	if err != nil {
		c.log.Error("status writer; no BGPStatus will be written", "err", err)
	} else {
		defer status.Close()
		// Written from a goroutine of its own, so that a slow datastore
		// does not hold up the reaction to its changes.
		out = latest.New(func(ctx context.Context, st *api.BGPStatus) error {
			_, err := status.Put(ctx, st)
			return err
		}, c.log, "BGPStatus")
		// Written when a session or its state changes; prefix counts on
		// latest's slow period; an unchanged status never (see
		// internal/statusdiff).
		out.Compare = statusdiff.BGP
		octx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { out.Run(octx); close(done) }()
		defer func() { cancel(); <-done }() // before status.Close
	}
	// BGPStatus is written on the ticker (prefix counters move without
	// events), after neighbour changes, and StatusDebounce after the first
	// of a burst of session changes (Reflector.Changes).
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	debouncing := false
	writeStatus := func() {
		if debouncing {
			debounce.Stop()
			debouncing = false
		}
		select { // what is pending now is in this write
		case <-r.Changes():
		default:
		}
		if out != nil {
			out.Put(withRefused(Status(c.cfg.Node, cur.id, cur.sessions, cur.ranges, r.Neighbors(), time.Now()), cur.refused))
		}
	}
	writeStatus()
	tick := time.NewTicker(c.cfg.StatusInterval)
	defer tick.Stop()
	stop := func(cause error) error {
		stopRefl(cause)
		return <-runErr
	}
	for {
		select {
		case <-ctx.Done():
			return stop(context.Cause(ctx))
		case err := <-runErr:
			return err
		case <-tick.C:
			writeStatus()
		case <-r.Changes():
			if !debouncing {
				debounce.Reset(c.cfg.StatusDebounce)
				debouncing = true
			}
		case <-debounce.C:
			debouncing = false
			writeStatus()
		case <-c.dirty:
			next, err := c.compute()
			if err != nil {
				c.log.Error("recomputing the reflector's sessions; keeping the current ones", "err", err)
				continue
			}
			if !next.id.Equal(cur.id) {
				c.log.Error("identity changed: restart needed", "was", fmt.Sprint(cur.id), "now", fmt.Sprint(next.id))
				return errors.Join(ErrIdentityChanged, stop(nil))
			}
			d := peering.Diff(cur.sessions, next.sessions)
			rangesChanged := !slices.Equal(cur.ranges, next.ranges) || !slices.Equal(cur.dynamic, next.dynamic)
			// The policy first: a session that starts below starts with it.
			if !reflect.DeepEqual(cur.policy, next.policy) {
				if err := r.SetPolicy(next.policy); err != nil {
					c.log.Error("applying the route policy; keeping the current one", "err", err)
					next.policy = cur.policy
				} else {
					c.log.Info("route policy changed", "filters", len(next.policy.Filters))
					cur.policy = next.policy
				}
			}
			if d.Empty() && !rangesChanged {
				if !slices.Equal(cur.refused, next.refused) { // only why a session is left out
					cur.refused = next.refused
					writeStatus()
				}
				continue
			}
			if !d.Empty() {
				c.log.Info("neighbours changed", "add", len(d.Add), "remove", len(d.Remove), "update", len(d.Update))
				if err := r.SetNeighbors(next.neighbors); err != nil {
					c.log.Error("applying neighbours", "err", err)
				}
			}
			if rangesChanged {
				c.log.Info("peer ranges changed", "peerRanges", len(next.ranges))
				if err := r.SetDynamicNeighbors(dynamic(next)); err != nil {
					c.log.Error("applying peer ranges", "err", err)
				}
			}
			cur = next
			writeStatus()
		}
	}
}
