package router

import "sync"

// bestQueue carries best-path changes from the speaker's watch goroutine
// to the loop. GoBGP reports one destination per event, so 100,000
// received prefixes are 100,000 calls: push only appends under the mutex
// and wakes the loop through a size-1 channel, so that a burst collapses
// into one wake-up, one onBest and one kernel Apply for everything queued
// meanwhile (Cilium's signaler). The producer never waits for the loop;
// the queue is as deep as the loop is behind, which GoBGP's own watcher
// queue (unbounded) would be otherwise.
// The received-path stream (PathWatcher, rib.go) goes through a
// pathQueue of its own, the same way.
type pathQueue[T any] struct {
	signal chan struct{}

	mu      sync.Mutex
	pending []T
}

type bestQueue = pathQueue[Destination]

func newBestQueue() *bestQueue { return newPathQueue[Destination]() }

func newPathQueue[T any]() *pathQueue[T] {
	return &pathQueue[T]{signal: make(chan struct{}, 1)}
}

// push queues ds and wakes the loop.
func (q *pathQueue[T]) push(ds []T) {
	q.mu.Lock()
	q.pending = append(q.pending, ds...)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// take returns what is queued, in order, and leaves spare (emptied) to
// queue the next changes in, so that two buffers serve the whole run.
func (q *pathQueue[T]) take(spare []T) []T {
	spare = spareQueue(spare)
	q.mu.Lock()
	ds := q.pending
	q.pending = spare
	q.mu.Unlock()
	return ds
}

// spareQueueMax is the largest buffer kept for the next changes. A
// node's first sync or a peer's resend is one burst of every path
// (600 at 300 nodes, 100,000 on a large table) and the queue grows to
// it; kept, the two buffers would hold 2 x 240 bytes per path for the
// rest of the run (docs/scale.md, "Routes in the node agent"), so a
// buffer beyond this is left to the collector.
const spareQueueMax = 256

// spareQueue returns buf emptied for reuse, or nil when it is larger
// than spareQueueMax.
func spareQueue[T any](buf []T) []T {
	if cap(buf) > spareQueueMax {
		return nil
	}
	clear(buf)
	return buf[:0]
}
