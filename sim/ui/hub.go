package ui

import (
	"context"
	"reflect"
	"slices"
	"sync"

	"github.com/bgpfabric/bgpfabric/sim"
)

// Event is one change of the view, or a whole snapshot. Every event
// carries a sequence number; a snapshot carries the number of the last
// change it includes, so a page that gets a snapshot ignores events it
// already has. Events set state (a node's, an edge's), they never add
// to it, so one applied twice does no harm.
type Event struct {
	Seq      uint64           `json:"seq"`
	Type     string           `json:"type"` // snapshot, node, edge, check, fault, timeline, phase
	Snapshot *Snapshot        `json:"snapshot,omitempty"`
	Node     *Node            `json:"node,omitempty"`
	Edge     *Edge            `json:"edge,omitempty"`
	Check    *sim.CheckResult `json:"check,omitempty"`
	Fault    *sim.FaultResult `json:"fault,omitempty"`
	Entry    *TimelineEntry   `json:"entry,omitempty"`
	Phase    string           `json:"phase,omitempty"`
	Progress string           `json:"progress,omitempty"`
	Index    int              `json:"index"` // of a check, fault or timeline entry
}

// DefaultClientBuffer is how many events a client may have pending.
const DefaultClientBuffer = 256

// Hub holds the current snapshot and fans its changes out to clients.
// Publishing never blocks on a client: each has a bounded buffer, and a
// client whose buffer is full is marked as behind, gets no more events,
// and is sent a fresh snapshot the next time it reads (drop and resync).
type Hub struct {
	buffer int

	mu      sync.Mutex
	cur     Snapshot
	seq     uint64
	clients map[*Client]struct{}
	resyncs uint64
}

// NewHub returns a hub whose clients buffer up to buffer events (0:
// DefaultClientBuffer).
func NewHub(buffer int) *Hub {
	if buffer <= 0 {
		buffer = DefaultClientBuffer
	}
	return &Hub{buffer: buffer, clients: map[*Client]struct{}{}}
}

// Client is one subscriber (a page's event stream).
type Client struct {
	h  *Hub
	ch chan Event
	// wake is poked when the client falls behind.
	wake chan struct{}
	// behind (guarded by h.mu): the next Next returns a snapshot.
	behind bool
}

// Subscribe adds a client; its first Next returns the current snapshot.
// Close it when done.
func (h *Hub) Subscribe() *Client {
	c := &Client{h: h, ch: make(chan Event, h.buffer), wake: make(chan struct{}, 1), behind: true}
	c.wake <- struct{}{}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	return c
}

// Close removes the client.
func (c *Client) Close() {
	c.h.mu.Lock()
	delete(c.h.clients, c)
	c.h.mu.Unlock()
}

// Next returns the client's next event: a snapshot first and after
// falling behind, else the changes in order. It blocks until there is one
// or ctx ends.
func (c *Client) Next(ctx context.Context) (Event, error) {
	for {
		if e, ok := c.resync(); ok {
			return e, nil
		}
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-c.wake:
		case e := <-c.ch:
			// Read after the client fell behind, the event is stale:
			// the snapshot that follows holds it.
			if e, ok := c.resync(); ok {
				return e, nil
			}
			return e, nil
		}
	}
}

// resync returns the current snapshot if the client fell behind,
// dropping the events it still had queued (all older than the snapshot).
func (c *Client) resync() (Event, bool) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if !c.behind {
		return Event{}, false
	}
	c.behind = false
	for len(c.ch) > 0 {
		<-c.ch
	}
	snap := c.h.cur.clone()
	snap.Seq = c.h.seq
	return Event{Seq: snap.Seq, Type: "snapshot", Snapshot: &snap}, true
}

// Resyncs counts the snapshots sent to clients that fell behind.
func (h *Hub) Resyncs() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resyncs
}

// Snapshot returns the current snapshot.
func (h *Hub) Snapshot() Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.cur.clone()
	s.Seq = h.seq
	return s
}

// Update makes next the current snapshot and sends each client the
// changes from the previous one (a snapshot if the drawing changed).
// next must not be modified afterwards.
func (h *Hub) Update(next Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	evs := h.diffLocked(&h.cur, &next)
	h.cur = next
	if len(evs) == 0 {
		return
	}
	for c := range h.clients {
		if c.behind {
			continue
		}
		for _, e := range evs {
			select {
			case c.ch <- e:
				continue
			default:
			}
			c.behind = true
			h.resyncs++
			select {
			case c.wake <- struct{}{}:
			default:
			}
			break
		}
	}
}

// diffLocked lists the events that turn prev into next, numbering them.
func (h *Hub) diffLocked(prev, next *Snapshot) []Event {
	var evs []Event
	add := func(e Event) {
		h.seq++
		e.Seq = h.seq
		evs = append(evs, e)
	}
	if prev.Graph != next.Graph {
		h.seq++
		snap := next.clone()
		snap.Seq = h.seq
		return []Event{{Seq: h.seq, Type: "snapshot", Snapshot: &snap}}
	}
	for i := range next.Nodes {
		if i >= len(prev.Nodes) || prev.Nodes[i] != next.Nodes[i] {
			n := next.Nodes[i]
			add(Event{Type: "node", Node: &n, Index: i})
		}
	}
	for i := range next.Edges {
		if i >= len(prev.Edges) || prev.Edges[i] != next.Edges[i] {
			e := next.Edges[i]
			add(Event{Type: "edge", Edge: &e, Index: i})
		}
	}
	for i := range next.Checks {
		if i >= len(prev.Checks) || !checkEqual(prev.Checks[i], next.Checks[i]) {
			c := next.Checks[i]
			add(Event{Type: "check", Check: &c, Index: i})
		}
	}
	for i := range next.Faults {
		if i >= len(prev.Faults) || !reflect.DeepEqual(prev.Faults[i], next.Faults[i]) {
			f := next.Faults[i]
			add(Event{Type: "fault", Fault: &f, Index: i})
		}
	}
	for i := range next.Timeline {
		if i >= len(prev.Timeline) || prev.Timeline[i] != next.Timeline[i] {
			t := next.Timeline[i]
			add(Event{Type: "timeline", Entry: &t, Index: i})
		}
	}
	if prev.Phase != next.Phase || prev.Progress != next.Progress {
		add(Event{Type: "phase", Phase: next.Phase, Progress: next.Progress})
	}
	return evs
}

func checkEqual(a, b sim.CheckResult) bool {
	return a.Name == b.Name && a.Kind == b.Kind && a.Status == b.Status && a.Seconds == b.Seconds &&
		a.Probes == b.Probes && a.Message == b.Message && slices.Equal(a.Failures, b.Failures)
}
