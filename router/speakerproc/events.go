package speakerproc

import (
	"sync"

	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// Log keys, defined once.
const (
	logKeyPID       = "pid"
	logKeyError     = "error"
	logKeyPanic     = "panic"
	logKeyLine      = "line"
	logKeyCount     = "count"
	logKeyDropped   = "dropped"
	logKeyLastUp    = "last_peer_up"
	logKeyComponent = "component"
)

// eventQueue hands one child's events to the Client's watchers from a
// goroutine of its own, so that the reader never waits for a watcher
// (a reply behind an event would wait for the router's loop, which waits
// for the reply). The loss, if any, comes last. Peer errors beyond
// maxErrs queued are dropped and counted: a peer that sends malformed
// UPDATEs at line rate cannot grow the queue; state changes and best
// paths are never dropped.
type eventQueue struct {
	c       *Client
	maxErrs int

	mu      sync.Mutex
	q       []message
	errs    int // peer errors in q
	dropped int
	closed  bool
	loss    *speaker.SpeakerLoss
	signal  chan struct{}
	done    chan struct{}
}

func newEventQueue(c *Client, maxErrs int) *eventQueue {
	return &eventQueue{c: c, maxErrs: maxErrs, signal: make(chan struct{}, 1), done: make(chan struct{})}
}

func (e *eventQueue) push(m message) {
	e.mu.Lock()
	if m.Peer != nil && m.Peer.Err != "" {
		if e.errs >= e.maxErrs {
			e.dropped++
			e.mu.Unlock()
			return
		}
		e.errs++
	}
	e.q = append(e.q, m)
	e.mu.Unlock()
	e.wake()
}

func (e *eventQueue) wake() {
	select {
	case e.signal <- struct{}{}:
	default:
	}
}

// close queues the loss (nil when Stop ended the child) after every
// event; run returns after delivering it.
func (e *eventQueue) close(loss *speaker.SpeakerLoss) {
	e.mu.Lock()
	e.closed, e.loss = true, loss
	e.mu.Unlock()
	e.wake()
}

func (e *eventQueue) run() {
	defer close(e.done)
	for range e.signal {
		e.mu.Lock()
		q, closed, loss, dropped := e.q, e.closed, e.loss, e.dropped
		e.q, e.errs, e.dropped = nil, 0, 0
		e.mu.Unlock()
		if dropped > 0 {
			e.c.lg.Warn("speaker process: peer errors dropped, the router was behind", logKeyDropped, dropped)
		}
		for _, m := range q {
			e.deliver(m)
		}
		if closed {
			if loss != nil {
				e.c.mu.Lock()
				fns := e.c.lossFns
				e.c.mu.Unlock()
				for _, w := range fns {
					if w.ctx.Err() == nil {
						w.fn(*loss)
					}
				}
			}
			return
		}
	}
}

func (e *eventQueue) deliver(m message) {
	e.c.mu.Lock()
	peerFns, bestFns, recvFns := e.c.peerFns, e.c.bestFns, e.c.recvFns
	e.c.mu.Unlock()
	switch {
	case m.Peer != nil:
		for _, w := range peerFns {
			if w.ctx.Err() == nil {
				w.fn(*m.Peer)
			}
		}
	case m.Best != nil:
		for _, w := range bestFns {
			if w.ctx.Err() == nil {
				w.fn(m.Best)
			}
		}
	case m.Recv != nil:
		for _, w := range recvFns {
			if w.ctx.Err() == nil {
				w.fn(m.Recv)
			}
		}
	}
}
