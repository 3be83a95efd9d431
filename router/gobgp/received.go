package gobgp

import (
	"context"
	"sync"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// Received paths (speaker.PathWatcher) from GoBGP's post-policy watch:
// every path a peer sent as it enters the RIB (after GoBGP's AS loop
// check and the import policy the session has in GoBGP, which is only the
// GRACEFUL_SHUTDOWN statement when the router evaluates the session's
// filters itself), and a withdrawal for each path that leaves it
// (withdrawn, the session's end, stale paths dropped, rejected on a soft
// reset in). End-of-RIB comes through the same GoBGP watcher, in wire
// order (see WatchBestPaths).
//
// The GoBGP watch lives from Start to Stop: Stop ends it before it
// deletes the sessions, so that a stopping speaker does not report a
// withdrawal for every path it held (100,000 paths took a loaded
// machine's speaker process more than the router's 10 s shutdown); the
// watcher knows the speaker stopped and forgets its paths itself. Start
// subscribes again, starting with what the new speaker holds (nothing).

// receivedWatches are the WatchReceived callers and the running GoBGP
// watch.
type receivedWatches struct {
	mu      sync.Mutex
	watches []receivedWatch
	cancel  context.CancelFunc // the running GoBGP watch's; nil when stopped
	srv     *Speaker           // set while started
}

type receivedWatch struct {
	ctx context.Context
	fn  func([]speaker.Received)
}

// WatchReceived implements speaker.PathWatcher. A watch added while the
// speaker is stopped starts with the next Start.
func (s *Speaker) WatchReceived(ctx context.Context, fn func([]speaker.Received)) error {
	return s.recv.add(ctx, receivedWatch{ctx: ctx, fn: fn})
}

func (r *receivedWatches) add(ctx context.Context, w receivedWatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watches = append(r.watches, w)
	if r.srv == nil {
		return nil
	}
	// Started: a watch of its own for this caller, so that it gets the
	// current paths first; ended with the others at Stop.
	return r.subscribeLocked(ctx, []receivedWatch{w})
}

// start subscribes every watch to the started speaker s.
func (r *receivedWatches) start(ctx context.Context, s *Speaker) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.srv = s
	live := r.watches[:0]
	for _, w := range r.watches {
		if w.ctx.Err() == nil {
			live = append(live, w)
		}
	}
	clear(r.watches[len(live):])
	r.watches = live
	if len(live) == 0 {
		return nil
	}
	return r.subscribeLocked(ctx, live)
}

// subscribeLocked starts a GoBGP watch that feeds ws until Stop.
func (r *receivedWatches) subscribeLocked(_ context.Context, ws []receivedWatch) error {
	wctx, cancel := context.WithCancel(context.Background())
	prev := r.cancel
	r.cancel = func() {
		if prev != nil {
			prev()
		}
		cancel()
	}
	s := r.srv
	req := &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
		{Type: api.WatchEventRequest_Table_Filter_POST_POLICY, Init: true},
		{Type: api.WatchEventRequest_Table_Filter_EOR},
	}}}
	err := s.srv.WatchEvent(wctx, req, func(resp *api.WatchEventResponse) {
		t := resp.GetTable()
		if t == nil || len(t.Paths) == 0 || wctx.Err() != nil {
			return
		}
		rs := receivedPaths(t.Paths, s.lg)
		if len(rs) == 0 {
			return
		}
		for _, w := range ws {
			if w.ctx.Err() == nil {
				w.fn(rs)
			}
		}
	})
	if err != nil {
		cancel()
		r.cancel = prev
	}
	return err
}

// stop ends the GoBGP watch (Stop, before the sessions go).
func (r *receivedWatches) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
	r.srv = nil
}
