package felix

import (
	"sync"

	"github.com/bgpfabric/bgpfabric/datastore"
)

// inbox is the agent's datastore.SyncHandler: it queues what the syncer
// delivers and wakes the agent's loop through a size-1 channel, so that a
// burst of updates becomes one batch. The syncer's goroutine never waits
// for the loop.
type inbox struct {
	kick chan struct{}

	mu sync.Mutex
	b  batch
}

// batch is what the loop takes from the inbox at once.
type batch struct {
	// status is the syncer's latest status, if it changed.
	status datastore.SyncStatus
	// snapshot, if set, replaces everything before it; events follow it.
	snapshot *datastore.Snapshot
	events   []datastore.Event
}

func (b *batch) empty() bool { return b.status == 0 && b.snapshot == nil && len(b.events) == 0 }

func newInbox() *inbox { return &inbox{kick: make(chan struct{}, 1)} }

func (in *inbox) wake() {
	select {
	case in.kick <- struct{}{}:
	default:
	}
}

// OnStatus implements datastore.SyncHandler.
func (in *inbox) OnStatus(s datastore.SyncStatus) {
	in.mu.Lock()
	in.b.status = s
	in.mu.Unlock()
	in.wake()
}

// OnSnapshot implements datastore.SyncHandler. Updates queued before the
// snapshot are older than it: dropped.
func (in *inbox) OnSnapshot(s datastore.Snapshot) {
	in.mu.Lock()
	in.b.snapshot = &s
	in.b.events = nil
	in.mu.Unlock()
	in.wake()
}

// OnUpdates implements datastore.SyncHandler.
func (in *inbox) OnUpdates(evs []datastore.Event) {
	in.mu.Lock()
	in.b.events = append(in.b.events, evs...)
	in.mu.Unlock()
	in.wake()
}

// take returns what is queued and empties the inbox.
func (in *inbox) take() batch {
	in.mu.Lock()
	defer in.mu.Unlock()
	b := in.b
	in.b = batch{}
	return b
}
