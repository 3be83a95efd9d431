package ui

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Log keys.
const (
	keyNode   = "node"
	keyErr    = "err"
	keyRemote = "remote"
)

// Live follows a fabric and keeps the view's snapshot current in its hub:
// it is the run's sim.Observer, and for `sim up` it is handed the fabric
// directly. It learns states from events — the datastore's status records
// and IPAM blocks through a syncer, route and link changes through
// netlink subscriptions in every node's namespace — plus a once-a-second
// look at the agents' processes, and republishes at most every
// refreshSpacing.
type Live struct {
	hub   *Hub
	log   *slog.Logger
	start time.Time

	mu      sync.Mutex
	snap    Snapshot
	f       *sim.Fabric
	cancel  context.CancelFunc
	done    chan struct{}
	refresh func() // re-evaluates now; set while watching
}

// refreshSpacing is the shortest time between two evaluations.
const refreshSpacing = 200 * time.Millisecond

// NewLive returns a view that follows nothing yet (Phase "boot").
func NewLive(log *slog.Logger) *Live {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Live{hub: NewHub(0), log: log, start: time.Now()}
	l.snap.Phase = "boot"
	l.hub.Update(l.snap.clone())
	return l
}

// Hub is the view's event hub.
func (l *Live) Hub() *Hub { return l.hub }

// Snapshot returns the current view.
func (l *Live) Snapshot() Snapshot { return l.hub.Snapshot() }

// Close stops following the fabric.
func (l *Live) Close() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel = nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// update changes the snapshot under the lock and publishes it.
func (l *Live) update(fn func(s *Snapshot)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	next := l.snap.clone()
	fn(&next)
	l.snap = next
	l.hub.Update(next.clone())
}

func (l *Live) entryLocked(s *Snapshot, kind, status, text string) {
	s.Timeline = append(s.Timeline, TimelineEntry{At: time.Since(l.start).Seconds(), Kind: kind, Status: status, Text: text})
}

// Booted starts following f: its plan is laid out and watched until
// Close.
func (l *Live) Booted(f *sim.Fabric) {
	l.Close()
	base := Layout(f.Plan)
	l.update(func(s *Snapshot) {
		base.Phase, base.Checks, base.Faults, base.Timeline = s.Phase, s.Checks, s.Faults, s.Timeline
		*s = base
		l.entryLocked(s, "phase", "", fmt.Sprintf("booted run %s: %d nodes", f.RunID(), len(f.Plan.Nodes)))
	})
	ctx, cancel := context.WithCancel(context.Background())
	w := newWatcher(f, l.log)
	refresh := func() {
		o := w.observe()
		l.update(func(s *Snapshot) {
			phase, checks, faults, tl := s.Phase, s.Checks, s.Faults, s.Timeline
			*s = apply(base, f.Plan, o)
			s.Phase, s.Checks, s.Faults, s.Timeline = phase, checks, faults, tl
		})
	}
	done := make(chan struct{})
	l.mu.Lock()
	l.f, l.cancel, l.done, l.refresh = f, cancel, done, refresh
	l.mu.Unlock()
	go func() {
		defer close(done)
		w.run(ctx, refresh)
	}()
}

// Phase records what the run does now.
func (l *Live) Phase(name string) {
	l.update(func(s *Snapshot) {
		s.Phase = name
		l.entryLocked(s, "phase", "", name)
	})
}

// Checks adds check results.
func (l *Live) Checks(rs []sim.CheckResult) {
	if len(rs) == 0 {
		return
	}
	l.update(func(s *Snapshot) {
		s.Checks = append(s.Checks, rs...)
		passed := 0
		for _, c := range rs {
			if c.Status == sim.Passed {
				passed++
			}
		}
		status := sim.Passed
		if passed < len(rs) {
			status = sim.Failed
		}
		l.entryLocked(s, "check", status, fmt.Sprintf("checks: %d of %d passed", passed, len(rs)))
	})
}

// FaultStarted records a fault's injection.
func (l *Live) FaultStarted(fp topology.FaultPlan) {
	l.update(func(s *Snapshot) {
		text := fmt.Sprintf("fault %s: %s", fp.Name, fp.Action)
		if fp.Node != "" {
			text += " " + fp.Node
		}
		if fp.Interface != "" {
			text += " " + fp.Interface
		}
		if fp.Duration > 0 {
			text += " for " + fp.Duration.String()
		}
		l.entryLocked(s, "fault", "", text)
	})
}

// FaultDone records a fault's outcome.
func (l *Live) FaultDone(fr sim.FaultResult) {
	l.update(func(s *Snapshot) {
		s.Faults = append(s.Faults, fr)
		text := fmt.Sprintf("fault %s done: reconverged in %.2fs", fr.Name, fr.ReconvergeSeconds)
		if fr.Message != "" {
			text += ": " + fr.Message
		}
		l.entryLocked(s, "fault", fr.Status, text)
	})
}

// Done stops following the fabric and takes a last look at it, so that
// the view (and the HTML report made from it) shows the state the run
// ended in, not its teardown, which comes next.
func (l *Live) Done(*sim.Report) {
	l.Close()
	l.mu.Lock()
	refresh := l.refresh
	l.refresh = nil
	l.mu.Unlock()
	if refresh != nil {
		refresh()
	}
}

// NodeDetail is what a click on a node shows.
type NodeDetail struct {
	Node     Node            `json:"node"`
	Sessions []sim.PeerState `json:"sessions"`
	Routes   []sim.Route     `json:"routes"`
	// LogTail is the end of the agent's log.
	LogTail string   `json:"log_tail"`
	Errors  []string `json:"errors,omitempty"`
}

// logTailBytes bounds the log tail a node's detail carries.
const logTailBytes = 8 << 10

// maxDetailRoutes bounds the routes a node's detail lists.
const maxDetailRoutes = 500

// Detail reads a node's sessions, routes and log tail.
func (l *Live) Detail(ctx context.Context, name string) (NodeDetail, error) {
	l.mu.Lock()
	f := l.f
	var d NodeDetail
	n := l.snap.node(name)
	if n != nil {
		d.Node = *n
	}
	l.mu.Unlock()
	if f == nil || n == nil {
		return d, fmt.Errorf("no node %q", name)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var err error
	if d.Sessions, err = f.PeerStates(ctx, name); err != nil {
		d.Errors = append(d.Errors, "sessions: "+err.Error())
	}
	if d.Routes, err = f.Routes(name); err != nil {
		d.Errors = append(d.Errors, "routes: "+err.Error())
	}
	if len(d.Routes) > maxDetailRoutes {
		d.Errors = append(d.Errors, fmt.Sprintf("routes: %d, the first %d shown", len(d.Routes), maxDetailRoutes))
		d.Routes = d.Routes[:maxDetailRoutes]
	}
	if d.LogTail, err = tail(filepath.Join(f.Dir(), "logs", name+".log"), logTailBytes); err != nil {
		d.Errors = append(d.Errors, "log: "+err.Error())
	}
	return d, nil
}

// tail returns the last max bytes of a file, from a line start.
func tail(file string, limit int64) (string, error) {
	fh, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return "", err
	}
	off := max(0, st.Size()-limit)
	buf := make([]byte, st.Size()-off)
	n, err := fh.ReadAt(buf, off)
	buf = buf[:n]
	if off > 0 {
		if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	if err != nil && n == 0 {
		return "", err
	}
	return string(buf), nil
}

// watcher gathers a fabric's observations from events.
type watcher struct {
	f   *sim.Fabric
	log *slog.Logger

	poke chan struct{}

	mu     sync.Mutex
	bgp    map[string]*api.BGPStatus
	felix  map[string]*api.FelixStatus
	blocks map[string]*api.IPAMBlock
	routes map[string]map[netip.Prefix]bool // absent: list again
	// routers are the sessions of the routers from Debian (which write
	// no status records), asked for at most every routerPoll.
	routers   map[string]*api.BGPStatus
	routersAt time.Time
	gen       map[string]int // route changes seen, by node
	links     map[string]map[string]bool
}

func newWatcher(f *sim.Fabric, log *slog.Logger) *watcher {
	return &watcher{f: f, log: log, poke: make(chan struct{}, 1),
		bgp: map[string]*api.BGPStatus{}, felix: map[string]*api.FelixStatus{}, blocks: map[string]*api.IPAMBlock{},
		routes: map[string]map[netip.Prefix]bool{}, gen: map[string]int{}, routers: map[string]*api.BGPStatus{}, links: map[string]map[string]bool{}}
}

func (w *watcher) wake() {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// datastore.SyncHandler
func (w *watcher) OnStatus(datastore.SyncStatus) {}

func (w *watcher) OnSnapshot(s datastore.Snapshot) {
	w.mu.Lock()
	clear(w.bgp)
	clear(w.felix)
	clear(w.blocks)
	for _, r := range s.Resources {
		w.putLocked(r, false)
	}
	w.mu.Unlock()
	w.wake()
}

func (w *watcher) OnUpdates(evs []datastore.Event) {
	w.mu.Lock()
	for _, e := range evs {
		w.putLocked(e.Resource, e.Type == datastore.Deleted)
	}
	w.mu.Unlock()
	w.wake()
}

func (w *watcher) putLocked(r api.Resource, deleted bool) {
	name := r.GetObjectMeta().Name
	switch r := r.(type) {
	case *api.BGPStatus:
		setOrDelete(w.bgp, name, r, deleted)
	case *api.FelixStatus:
		setOrDelete(w.felix, name, r, deleted)
	case *api.IPAMBlock:
		setOrDelete(w.blocks, name, r, deleted)
	}
}

func setOrDelete[T any](m map[string]T, k string, v T, deleted bool) {
	if deleted {
		delete(m, k)
	} else {
		m[k] = v
	}
}

// run watches until ctx ends, calling refresh after changes.
func (w *watcher) run(ctx context.Context, refresh func()) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	syncer, err := datastore.NewSyncer(w.f.Client(), datastore.SyncerConfig{
		Kinds:   []string{api.KindBGPStatus, api.KindFelixStatus, api.KindIPAMBlock},
		Handler: w,
	})
	if err != nil {
		w.log.Warn("web view: datastore syncer", keyErr, err)
	} else {
		wg.Go(func() { syncer.Run(ctx) })
	}
	for _, n := range w.f.Plan.Nodes {
		w.subscribe(ctx, &wg, n.Name)
	}
	tick := time.NewTicker(time.Second) // agents' processes
	defer tick.Stop()
	for {
		evaluated := time.Now()
		refresh()
		select {
		case <-ctx.Done():
			return
		case <-w.poke:
		case <-tick.C:
		}
		if wait := refreshSpacing - time.Since(evaluated); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// subscribe follows a node's route and link changes.
func (w *watcher) subscribe(ctx context.Context, wg *sync.WaitGroup, node string) {
	h, err := w.f.NodeNetns(node)
	if err != nil {
		w.log.Warn("web view: node namespace", keyNode, node, keyErr, err)
		return
	}
	rch := make(chan netlink.RouteUpdate, 64)
	if err := netlink.RouteSubscribeWithOptions(rch, ctx.Done(), netlink.RouteSubscribeOptions{Namespace: &h}); err != nil {
		w.log.Warn("web view: route subscription", keyNode, node, keyErr, err)
	} else {
		wg.Go(func() {
			for range rch {
				w.mu.Lock()
				delete(w.routes, node)
				w.gen[node]++
				w.mu.Unlock()
				w.wake()
			}
		})
	}
	lch := make(chan netlink.LinkUpdate, 64)
	if err := netlink.LinkSubscribeWithOptions(lch, ctx.Done(), netlink.LinkSubscribeOptions{Namespace: &h, ListExisting: true}); err != nil {
		w.log.Warn("web view: link subscription", keyNode, node, keyErr, err)
		return
	}
	wg.Go(func() {
		for u := range lch {
			a := u.Link.Attrs()
			up := a.Flags&net.FlagUp != 0 && a.OperState != netlink.OperDown && a.OperState != netlink.OperLowerLayerDown
			w.mu.Lock()
			if w.links[node] == nil {
				w.links[node] = map[string]bool{}
			}
			if u.Header.Type == unix.RTM_DELLINK {
				delete(w.links[node], a.Name)
			} else {
				w.links[node][a.Name] = up
			}
			w.mu.Unlock()
			w.wake()
		}
	})
}

// routerPoll is how often the view asks the routers from Debian for
// their sessions: none of them pushes changes (see sim.PeerStates).
const routerPoll = 2 * time.Second

// pollRouters asks each router of the plan for its sessions, when the
// last answers are older than routerPoll, and records them as the status
// records that bgpfabric's agents write.
func (w *watcher) pollRouters() {
	w.mu.Lock()
	due := time.Since(w.routersAt) >= routerPoll
	if due {
		w.routersAt = time.Now()
	}
	w.mu.Unlock()
	if !due {
		return
	}
	for _, n := range w.f.Plan.Nodes {
		if n.Agent != topology.AgentRouter {
			continue
		}
		var st *api.BGPStatus
		if w.f.AgentPID(n.Name) != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ps, err := w.f.PeerStates(ctx, n.Name)
			cancel()
			if err == nil {
				st = &api.BGPStatus{}
				for _, p := range ps {
					st.Status.Peers = append(st.Status.Peers, api.BGPPeerStatus{PeerIP: p.PeerIP, State: api.BGPState(p.State)})
				}
			}
		}
		w.mu.Lock()
		setOrDelete(w.routers, n.Name, st, st == nil)
		w.mu.Unlock()
	}
}

// observe assembles what is known now, listing the route sets that
// changed since they were last listed.
func (w *watcher) observe() observation {
	w.pollRouters()
	o := observation{bgp: map[string]*api.BGPStatus{}, felix: map[string]*api.FelixStatus{}, blocks: map[string][]netip.Prefix{},
		agentUp: map[string]bool{}, routes: map[string]map[netip.Prefix]bool{}, links: map[string]map[string]bool{}}
	stale := map[string]int{} // node → its generation before listing
	w.mu.Lock()
	for k, v := range w.bgp {
		o.bgp[k] = v
	}
	for k, v := range w.felix {
		o.felix[k] = v
	}
	for k, v := range w.routers {
		o.bgp[k] = v
	}
	for _, b := range w.blocks {
		if host, ok := b.Host(); ok {
			if pfx, err := netip.ParsePrefix(b.Spec.CIDR); err == nil {
				o.blocks[host] = append(o.blocks[host], pfx)
			}
		}
	}
	for k, v := range w.links {
		o.links[k] = maps.Clone(v)
	}
	for _, n := range w.f.Plan.Nodes {
		if set, ok := w.routes[n.Name]; ok {
			o.routes[n.Name] = set
		} else {
			stale[n.Name] = w.gen[n.Name]
		}
	}
	w.mu.Unlock()
	var disk *runstate.State // the run's state file, read when needed
	for _, n := range w.f.Plan.Nodes {
		up := w.f.AgentPID(n.Name) != 0
		if !up {
			// Another command may have started it again (`sim fault`
			// against a run of `sim up`): it is recorded in the run's
			// state file, under the sim's name for agents.
			if disk == nil {
				disk = &runstate.State{}
				if r, err := runstate.Open(w.f.Dir()); err == nil {
					*disk = r.State()
				}
			}
			for _, p := range disk.Procs {
				if p.Name == "agent/"+n.Name && p.Alive() {
					up = true
				}
			}
		}
		o.agentUp[n.Name] = up
	}
	for node, gen := range stale {
		rs, err := w.f.Routes(node)
		if err != nil {
			continue
		}
		set := make(map[netip.Prefix]bool, len(rs))
		for _, r := range rs {
			set[r.Dst] = true
		}
		o.routes[node] = set
		// A change during the listing may be missing from it: keep the
		// set only if none came.
		w.mu.Lock()
		if w.gen[node] == gen {
			w.routes[node] = set
		}
		w.mu.Unlock()
	}
	return o
}

var _ sim.Observer = (*Live)(nil)
