package datastore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/backoff"
	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// EventType says what happened to a resource.
type EventType int

// Event types.
const (
	Added EventType = iota + 1
	Modified
	Deleted
	// EventError carries an error instead of a change: a value that does
	// not decode, or the compaction that ends a watch.
	EventError
)

func (t EventType) String() string {
	switch t {
	case Added:
		return "Added"
	case Modified:
		return "Modified"
	case Deleted:
		return "Deleted"
	case EventError:
		return "Error"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change of one resource.
type Event struct {
	Type EventType
	ID   ResourceID
	// Resource is the new value; for Deleted the last value before the
	// deletion (or, if that is unknown, an empty resource carrying only
	// kind, namespace and name).
	Resource api.Resource
	// Revision is the etcd revision of the change.
	Revision int64
}

// WatchEvent is what Watch delivers: a change, or an error (Type
// EventError). Err wraps ErrCompacted when the watch had to end because its
// revision was compacted, or is a *DecodeError naming a bad value.
type WatchEvent struct {
	Event
	Err error
}

// watchBatch is one watch response: the changes of one or more whole
// revisions, in order, each a change or a value that did not decode (Err a
// *DecodeError); or a progress notification; or the end of the watch.
type watchBatch struct {
	items []WatchEvent
	// progress is set for a progress notification: every change up to this
	// revision has been delivered.
	progress int64
	// err ends the watch (a *CompactedError).
	err error
}

// Watch streams the changes of a kind ("" for every kind) in one namespace
// ("" for all) from revision fromRevision on (0: from now; a List's
// revision + 1 to continue after it). Events arrive in revision order,
// each once: after a disconnect the watch resumes after the last revision
// it delivered. It ends, after an EventError wrapping ErrCompacted, if the
// revisions it needs were compacted; the caller must then list again.
// The channel is closed when ctx ends, which the caller owns and must
// cancel, or the Client is closed.
func (c *Client) Watch(ctx context.Context, kind, namespace string, fromRevision int64) <-chan WatchEvent {
	out := make(chan WatchEvent, 128)
	prefix, err := prefixFor(kind, namespace)
	if err != nil {
		go func() {
			defer close(out)
			select {
			case out <- WatchEvent{Event: Event{Type: EventError}, Err: fmt.Errorf("watching: %w", err)}:
			case <-ctx.Done():
			}
		}()
		return out
	}
	go func() {
		defer close(out)
		send := func(ev WatchEvent) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		c.watchPrefix(ctx, prefix, fromRevision, func(b watchBatch) bool {
			for _, ev := range b.items {
				if !send(ev) {
					return false
				}
			}
			if b.err != nil {
				send(WatchEvent{Event: Event{Type: EventError}, Err: b.err})
			}
			return true
		})
	}()
	return out
}

// prefixFor returns the key prefix of a kind ("" for all) and namespace.
func prefixFor(kind, namespace string) (string, error) {
	if kind == "" {
		if namespace != "" {
			return "", fmt.Errorf("namespace %q given without a kind", namespace)
		}
		return api.KeyRoot, nil
	}
	ki, err := api.LookupKind(kind)
	if err != nil {
		return "", err
	}
	if !ki.Namespaced && namespace != "" {
		return "", fmt.Errorf("%s is not namespaced, but namespace %q was given", ki.Kind, namespace)
	}
	return api.ListPrefix(ki, namespace), nil
}

// Backoff between attempts to re-open a watch that etcd cancelled.
const (
	rewatchMinBackoff = 100 * time.Millisecond
	rewatchMaxBackoff = 5 * time.Second
)

// watchPrefix watches prefix from revision from (0: now) and hands every
// response to emit, in order, until ctx ends, the client closes, emit
// returns false or the revision is compacted (the last batch then has
// err set). clientv3 already resumes a watch across reconnects; when etcd
// cancels one (lost leader, for example), it is opened again after the
// last revision delivered, so nothing is lost or repeated.
func (c *Client) watchPrefix(ctx context.Context, prefix string, from int64, emit func(watchBatch) bool) {
	c.watchRange(ctx, prefix, clientv3.GetPrefixRangeEnd(prefix), from, nil, emit)
}

// watchRange is watchPrefix for the keys in [prefix, end), of which only
// those keep accepts (nil: all) are decoded and delivered; the others
// only advance the revision (a batch of nothing but skipped changes is
// delivered as progress).
func (c *Client) watchRange(ctx context.Context, prefix, end string, from int64, keep func(key []byte) bool, emit func(watchBatch) bool) {
	next := from // the first revision not yet delivered; 0 until known
	bo := backoff.New(rewatchMinBackoff, rewatchMaxBackoff)
	lim := ratelog.New(ratelog.Config{Logger: c.lg})
	defer lim.Close() // the summary of what it held back
	for ctx.Err() == nil && !c.closed() {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithPrevKV(), clientv3.WithProgressNotify(), clientv3.WithCreatedNotify()}
		if next > 0 {
			opts = append(opts, clientv3.WithRev(next))
		}
		for resp := range c.cli.Watch(wctx, prefix, opts...) {
			if resp.CompactRevision != 0 {
				cancel()
				emit(watchBatch{err: fmt.Errorf("watching %s: %w", prefix, &CompactedError{Requested: next, CompactRevision: resp.CompactRevision})})
				return
			}
			if err := resp.Err(); err != nil {
				if ctx.Err() == nil {
					lim.Warn("etcd cancelled watch; watching again", logKeyPrefix, prefix, logKeyRevision, next, logKeyError, err)
				}
				break
			}
			bo.Reset()
			if resp.Created {
				if next == 0 {
					next = resp.Header.Revision + 1
				}
				continue
			}
			if resp.IsProgressNotify() {
				if rev := resp.Header.Revision; rev >= next {
					next = rev + 1
				}
				if !emit(watchBatch{progress: resp.Header.Revision}) {
					cancel()
					return
				}
				continue
			}
			b := convertEvents(resp.Events, keep)
			if n := len(resp.Events); n > 0 {
				next = resp.Events[n-1].Kv.ModRevision + 1
				if len(b.items) == 0 {
					b.progress = next - 1
				}
			}
			if !emit(b) {
				cancel()
				return
			}
		}
		cancel()
		if ctx.Err() != nil || c.closed() {
			return
		}
		if !bo.Wait(ctx) {
			return
		}
	}
}

// convertEvents decodes the events of one watch response.
// Events whose key keep refuses (keep nil: none) are skipped undecoded.
func convertEvents(evs []*clientv3.Event, keep func(key []byte) bool) watchBatch {
	b := watchBatch{items: make([]WatchEvent, 0, len(evs))}
	for _, e := range evs {
		if keep != nil && !keep(e.Kv.Key) {
			continue
		}
		key := string(e.Kv.Key)
		rev := e.Kv.ModRevision
		id, err := idFromKey(key)
		if err != nil {
			b.items = append(b.items, WatchEvent{Event: Event{Type: EventError, Revision: rev}, Err: &DecodeError{Key: key, Revision: rev, Err: err}})
			continue
		}
		if e.Type == clientv3.EventTypeDelete {
			ev := Event{Type: Deleted, ID: id, Revision: rev}
			if e.PrevKv != nil {
				ev.Resource, _ = decodeKV(e.PrevKv)
			}
			if ev.Resource == nil {
				ev.Resource = bareResource(id)
			}
			b.items = append(b.items, WatchEvent{Event: ev})
			continue
		}
		r, err := decodeKV(e.Kv)
		if err != nil {
			b.items = append(b.items, WatchEvent{Event: Event{Type: EventError, ID: id, Revision: rev}, Err: err})
			continue
		}
		t := Modified
		if e.IsCreate() {
			t = Added
		}
		b.items = append(b.items, WatchEvent{Event: Event{Type: t, ID: id, Resource: r, Revision: rev}})
	}
	return b
}

// toCompacted turns etcd's compaction error for a read at rev into a
// *CompactedError.
func toCompacted(err error, rev int64) error {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return &CompactedError{Requested: rev}
	}
	return err
}
