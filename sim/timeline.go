package sim

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/sim/probe"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// stallPort is where the fault timeline's TCP stream is echoed, inside a
// workload (unless the topology lists it among the workload's ports).
const stallPort = 47999

// stallInterval is how often the stream sends.
const stallInterval = 20 * time.Millisecond

// watchReadyTimeout bounds the wait for the session snapshot a fault is
// measured against.
const watchReadyTimeout = 10 * time.Second

// sessionKey is one BGP session of a node, by peer address.
type sessionKey struct {
	node string
	peer string
}

// faultWatch measures what a fault changes, from before it is injected
// until result is called: sessions of bgpfabric agents that leave
// Established (from their BGPStatus records), routes their routers delete
// from the kernel (route deletions with the router's protocol), and the
// longest gap of a TCP stream between two workloads on different nodes.
// Its goroutines end in close.
type faultWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	snapshot  bool
	before    map[sessionKey]bool
	lost      map[sessionKey]bool
	withdrawn int
	ready     chan struct{}
	// lostCh is poked (size 1) when a session is added to lost.
	lostCh chan struct{}

	stream     *probe.Stream
	streamDesc string
}

// watchFault starts watching; what cannot be watched (no datastore, no
// two workloads) is left out of the result, and never fails the fault.
func (f *Fabric) watchFault(ctx context.Context, fp topology.FaultPlan) *faultWatch {
	wctx, cancel := context.WithCancel(ctx)
	w := &faultWatch{cancel: cancel, before: map[sessionKey]bool{}, lost: map[sessionKey]bool{}, ready: make(chan struct{}),
		lostCh: make(chan struct{}, 1)}
	if f.client != nil {
		if s, err := datastore.NewSyncer(f.client, datastore.SyncerConfig{Kinds: []string{api.KindBGPStatus}, Handler: w}); err == nil {
			w.wg.Go(func() { _ = s.Run(wctx) })
			t := time.NewTimer(watchReadyTimeout)
			select {
			case <-w.ready:
			case <-t.C:
				f.log.Warn("fault timeline: no session snapshot before the fault", "fault", fp.Name)
			case <-ctx.Done():
			}
			t.Stop()
		}
	}
	for _, n := range f.Plan.Nodes {
		if n.Agent != topology.AgentNode {
			continue
		}
		h, ok := f.net.Handle(n.Netns)
		if !ok {
			continue
		}
		ch := make(chan netlink.RouteUpdate, 256)
		if err := netlink.RouteSubscribeWithOptions(ch, wctx.Done(), netlink.RouteSubscribeOptions{Namespace: &h}); err != nil {
			continue
		}
		w.wg.Go(func() {
			for u := range ch {
				if u.Type == unix.RTM_DELROUTE && u.Protocol == router.ProtoRouter {
					w.mu.Lock()
					w.withdrawn++
					w.mu.Unlock()
				}
			}
		})
	}
	w.startStream(wctx, f, fp)
	return w
}

// startStream runs a TCP stream between two workloads on different
// nodes, preferring one that starts or ends on a node the fault hits.
func (w *faultWatch) startStream(ctx context.Context, f *Fabric, fp topology.FaultPlan) {
	hit := map[string]bool{fp.Node: true}
	for _, n := range append(append([]string(nil), fp.Nodes...), fp.From...) {
		hit[n] = true
	}
	var src, dst *workloadState
	score := -1
	f.mu.Lock()
	for _, a := range f.Plan.Workloads {
		for _, b := range f.Plan.Workloads {
			wa, wb := f.workloads[a.Name], f.workloads[b.Name]
			if a.Node == b.Node || wa == nil || wb == nil || usesPort(b, stallPort) {
				continue
			}
			if _, ok := wb.addr(4); !ok {
				continue
			}
			s := 0
			if hit[a.Node] {
				s++
			}
			if hit[b.Node] {
				s++
			}
			if s > score {
				src, dst, score = wa, wb, s
			}
		}
	}
	f.mu.Unlock()
	if src == nil {
		return
	}
	to, _ := dst.addr(4)
	if err := f.stallEcho(dst); err != nil {
		f.log.Warn("fault timeline: no echo listener for the stream", "workload", dst.plan.Name, "err", err)
		return
	}
	s, err := probe.StartStream(ctx, src.ns, to, stallPort, stallInterval)
	if err != nil {
		f.log.Warn("fault timeline: no stream to measure the stall", "from", src.plan.Name, "to", dst.plan.Name, "err", err)
		return
	}
	w.stream, w.streamDesc = s, src.plan.Name+" -> "+dst.plan.Name
}

// stallEcho starts the echo listener of the timeline's streams in a
// workload, once: it lives as long as the fabric, so that one fault's
// listener, still closing, cannot hold the port against the next's.
func (f *Fabric) stallEcho(w *workloadState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.echoes == nil {
		f.echoes = map[string]bool{}
	}
	if f.echoes[w.plan.Name] {
		return nil
	}
	if err := probe.ListenEcho(f.ctx, w.ns, stallPort); err != nil {
		return err
	}
	f.echoes[w.plan.Name] = true
	return nil
}

func usesPort(w *topology.WorkloadPlan, port int) bool {
	for _, p := range w.Ports {
		if p == port {
			return true
		}
	}
	return false
}

// result fills in what the watch saw; the first call ends the stream.
func (w *faultWatch) result(r *FaultResult) {
	if w.stream != nil {
		st := w.stream.Stop(time.Second)
		secs := st.MaxGap.Seconds()
		r.LongestStallSeconds, r.StallFlow = &secs, w.streamDesc
		if st.Err != nil {
			r.StallFlow += " (broken: " + st.Err.Error() + ")"
		}
		w.stream = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	r.SessionsLost, r.RoutesWithdrawn = len(w.lost), w.withdrawn
	r.LostSessions = nil
	for k := range w.lost {
		r.LostSessions = append(r.LostSessions, k.node+" "+k.peer)
	}
	slices.Sort(r.LostSessions)
	if len(r.LostSessions) > maxLostSessions {
		r.LostSessions = r.LostSessions[:maxLostSessions]
	}
}

// maxLostSessions bounds FaultResult.LostSessions: a fault that takes a
// whole large fabric down is told by SessionsLost.
const maxLostSessions = 64

func (w *faultWatch) close() {
	if w.stream != nil {
		w.stream.Stop(0)
	}
	w.cancel()
	w.wg.Wait()
}

// OnStatus implements datastore.SyncHandler.
func (w *faultWatch) OnStatus(datastore.SyncStatus) {}

// OnSnapshot implements datastore.SyncHandler: the first snapshot is the
// sessions before the fault; a later one (after a disconnect) is
// compared as updates are.
func (w *faultWatch) OnSnapshot(s datastore.Snapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	for _, r := range s.Resources {
		if st, ok := r.(*api.BGPStatus); ok {
			seen[st.Name] = true
			w.statusLocked(st, false)
		}
	}
	if !w.snapshot {
		w.snapshot = true
		close(w.ready)
		return
	}
	for k := range w.before {
		if !seen[k.node] {
			w.lost[k] = true
		}
	}
}

// OnUpdates implements datastore.SyncHandler.
func (w *faultWatch) OnUpdates(evs []datastore.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range evs {
		if st, ok := e.Resource.(*api.BGPStatus); ok {
			w.statusLocked(st, e.Type == datastore.Deleted)
		}
	}
}

// statusLocked records a node's sessions: before the first snapshot is
// complete, those Established; after, those of them no longer so.
func (w *faultWatch) statusLocked(st *api.BGPStatus, deleted bool) {
	up := map[string]bool{}
	if !deleted {
		for _, p := range st.Status.Peers {
			if p.State == api.BGPEstablished {
				up[p.PeerIP] = true
			}
		}
	}
	if !w.snapshot {
		for peer := range up {
			w.before[sessionKey{st.Name, peer}] = true
		}
		return
	}
	for k := range w.before {
		if k.node == st.Name && !up[k.peer] && !w.lost[k] {
			w.lost[k] = true
			select {
			case w.lostCh <- struct{}{}:
			default:
			}
		}
	}
}

// waitLost waits until a session that match selects is among the lost,
// for at most limit; it reports whether one is. A fault that ends a
// session by itself (session-reset) is over at once: the fabric has
// reconverged only once its end was seen and the session is back, which
// the agents' status tells with a delay.
func (w *faultWatch) waitLost(ctx context.Context, match func(node, peer string) bool, limit time.Duration) bool {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		w.mu.Lock()
		for k := range w.lost {
			if match(k.node, k.peer) {
				w.mu.Unlock()
				return true
			}
		}
		w.mu.Unlock()
		select {
		case <-w.lostCh:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
