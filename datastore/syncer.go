package datastore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/backoff"
	"github.com/bgpfabric/bgpfabric/internal/memtrim"
	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// DefaultStallTimeout is how long a syncer's watch may stay silent before
// the syncer checks that etcd is still there.
const DefaultStallTimeout = 30 * time.Second

// maxProbeTimeout bounds that check; a shorter stall timeout shortens it.
const maxProbeTimeout = 5 * time.Second

// SyncStatus is where a Syncer stands.
type SyncStatus int

// Sync statuses, reported through SyncHandler.OnStatus when they change.
const (
	// WaitingForDatastore: the first snapshot is not read yet.
	WaitingForDatastore SyncStatus = iota + 1
	// Resyncing: the watch fell behind compaction; a new snapshot is
	// being read.
	Resyncing
	// InSync: the handler has a snapshot and receives updates as they
	// happen.
	InSync
	// Disconnected: the watch went silent and etcd did not answer; the
	// handler's state may be stale. Updates missed meanwhile arrive, in
	// order, when etcd is back (status returns to InSync).
	Disconnected
)

func (s SyncStatus) String() string {
	switch s {
	case WaitingForDatastore:
		return "WaitingForDatastore"
	case Resyncing:
		return "Resyncing"
	case InSync:
		return "InSync"
	case Disconnected:
		return "Disconnected"
	}
	return fmt.Sprintf("SyncStatus(%d)", int(s))
}

// Snapshot is the complete state of the synced kinds at one revision.
type Snapshot struct {
	// Resources are every resource of the synced kinds, sorted by key.
	Resources []api.Resource
	// Revision is the etcd revision of the snapshot; updates follow from
	// Revision+1.
	Revision int64
	// Resync is false for the first snapshot and true for one read again
	// because the watch fell behind compaction; it replaces everything the
	// handler received before.
	Resync bool
	// Deleted, on a resync, are the resources the handler had received
	// that no longer exist.
	Deleted []ResourceID
}

// SyncHandler receives a Syncer's output. Its methods are called from the
// Syncer's Run goroutine, one at a time; a slow handler slows the syncer
// (etcd buffers the watch meanwhile), it never loses events.
type SyncHandler interface {
	// OnStatus reports a change of status.
	OnStatus(SyncStatus)
	// OnSnapshot delivers a complete snapshot: first once, then again
	// after a compaction forced a resync.
	OnSnapshot(Snapshot)
	// OnUpdates delivers the changes of one watch response, ordered by
	// revision, each change once. A stored value that no longer decodes is
	// not delivered: the handler keeps the last version that did (fail
	// closed: a policy overwritten with garbage goes on enforcing what it
	// said; only a deletion removes it). It is reported to
	// SyncerConfig.OnBadValue.
	OnUpdates([]Event)
}

// SyncerConfig configures a Syncer.
type SyncerConfig struct {
	// Kinds to sync (names as api.LookupKind takes them); empty means
	// every kind.
	Kinds []string
	// Handler receives snapshots, updates and status. Required.
	Handler SyncHandler
	// Logger; nil discards.
	Logger *slog.Logger
	// StallTimeout is how long the watch may be silent before the syncer
	// checks that etcd answers (and reports Disconnected if not). Zero
	// means DefaultStallTimeout.
	StallTimeout time.Duration
	// OnBadValue, if set, is told about each stored value that does not
	// decode; the syncer logs it in any case and goes on.
	OnBadValue func(*DecodeError)
	// Strip, if set, is applied to every resource the syncer decodes,
	// before it is delivered or kept: it returns the part of it that the
	// handler reads, a resource of the same kind and identity (it may
	// return its argument, or a smaller copy; it must not modify it). The
	// syncer keeps the last version of every resource it delivered (for
	// resyncs, and to deliver it again when its stored value stops
	// decoding); with Strip it keeps the stripped one, so that a handler
	// that needs a few fields of many resources (felix: the addresses
	// and labels of every other node's endpoints, the CIDR and affinity
	// of every IPAM block) does not pay for the whole of each twice.
	Strip func(api.Resource) api.Resource
}

// Syncer gives a component one consistent snapshot of some kinds and then
// every change in revision order: it lists at a revision R and watches from
// R+1; after a disconnect it resumes after the last revision it delivered
// (no loss, no repeats); if that revision was compacted meanwhile it lists
// again and delivers a resync snapshot with the deletions it implies.
type Syncer struct {
	c            *Client
	handler      SyncHandler
	lg           *slog.Logger
	lim          *ratelog.Limiter // for the failures of retry loops
	stallTimeout time.Duration
	onBad        func(*DecodeError)
	strip        func(api.Resource) api.Resource // nil: keep all

	// listPrefixes are listed for a snapshot; ranges are watched,
	// filtered to kinds (see watchRanges).
	listPrefixes []string
	ranges       []keyRange
	kinds        map[string]bool // nil: all
	plurals      map[string]bool // of kinds; nil: all

	running atomic.Bool

	// State of the Run goroutine.
	status    SyncStatus
	delivered map[ResourceID]api.Resource // what the handler holds now: the last version of each that decoded
	rev       int64                       // the last revision delivered
	revs      []int64                     // the same, per range
}

// keyRange is a watched key range [start, end).
type keyRange struct{ start, end string }

// NewSyncer checks the configuration and returns a syncer; Run starts it.
func NewSyncer(c *Client, cfg SyncerConfig) (*Syncer, error) {
	if cfg.Handler == nil {
		return nil, errors.New("new syncer: Handler is required")
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Syncer{
		c: c, handler: cfg.Handler, lg: lg, lim: ratelog.New(ratelog.Config{Logger: lg}),
		stallTimeout: cfg.StallTimeout,
		onBad:        cfg.OnBadValue,
		strip:        cfg.Strip,
		delivered:    map[ResourceID]api.Resource{},
	}
	if s.stallTimeout <= 0 {
		s.stallTimeout = DefaultStallTimeout
	}
	switch len(cfg.Kinds) {
	case 0:
		s.listPrefixes = []string{api.KeyRoot}
		s.ranges = []keyRange{{api.KeyRoot, clientv3.GetPrefixRangeEnd(api.KeyRoot)}}
	default:
		s.kinds, s.plurals = map[string]bool{}, map[string]bool{}
		for _, k := range cfg.Kinds {
			ki, err := api.LookupKind(k)
			if err != nil {
				return nil, fmt.Errorf("new syncer: %w", err)
			}
			if s.kinds[ki.Kind] {
				continue
			}
			s.kinds[ki.Kind], s.plurals[ki.Plural] = true, true
			s.listPrefixes = append(s.listPrefixes, api.ListPrefix(ki, ""))
		}
		// Disjoint prefixes ending in "/": listed in this order, the
		// snapshot is sorted by key.
		slices.Sort(s.listPrefixes)
		s.ranges = watchRanges(s.kinds)
	}
	return s, nil
}

// watchRanges returns the key ranges a syncer of kinds watches: the
// fewest ranges that cover the kinds' keys without covering the keys of
// a status kind that is not synced. Status records (BGPStatus,
// FelixStatus) are written by every agent; were they in the range of
// every agent's watch, each write would go to every agent, which decodes
// it to throw it away: at 300 nodes that fan-out, not the writes, is
// what kept etcd behind. Other kinds that fall inside a range are
// skipped undecoded. Changes are delivered in revision order within a
// range; the ranges' changes interleave in the order they arrive (each
// consumer rebuilds its state from the whole set, so it only needs each
// resource's changes in order, which a range gives).
func watchRanges(kinds map[string]bool) []keyRange {
	all := api.Kinds()
	slices.SortFunc(all, func(a, b *api.KindInfo) int { return strings.Compare(api.ListPrefix(a, ""), api.ListPrefix(b, "")) })
	var out []keyRange
	var cur *keyRange
	for _, ki := range all {
		p := api.ListPrefix(ki, "")
		switch {
		case kinds[ki.Kind] && cur == nil:
			cur = &keyRange{p, clientv3.GetPrefixRangeEnd(p)}
		case kinds[ki.Kind]:
			cur.end = clientv3.GetPrefixRangeEnd(p)
		case ki.Status && cur != nil:
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	return out
}

// keep reports whether a watched key is of a synced kind, or not of any
// kind (delivered as a value that does not decode, as before).
func (s *Syncer) keep(key []byte) bool {
	if s.plurals == nil {
		return true
	}
	rest, ok := bytes.CutPrefix(key, []byte(api.KeyRoot))
	if !ok {
		return true
	}
	plural, _, _ := bytes.Cut(rest, []byte("/"))
	if s.plurals[string(plural)] {
		return true
	}
	_, err := api.LookupKind(string(plural))
	return err != nil
}

// Run syncs until ctx ends, then returns nil. It returns an error only if
// it cannot run at all (called twice, client closed).
func (s *Syncer) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("syncer: Run called twice")
	}
	defer s.lim.Close()
	s.setStatus(WaitingForDatastore)
	resync := false
	for {
		snap, err := s.list(ctx)
		if err != nil {
			return s.stopErr(ctx, err)
		}
		s.deliverSnapshot(snap, resync)
		s.setStatus(InSync)
		err = s.watch(ctx, snap.revision+1)
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, ErrCompacted) {
			return s.stopErr(ctx, err)
		}
		s.lg.Warn("syncer fell behind compaction; listing again", logKeyRevision, s.rev, logKeyError, err)
		resync = true
		s.setStatus(Resyncing)
	}
}

// stopErr is Run's result when it stops: nil when ctx ended.
func (s *Syncer) stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("syncer: %w", err)
}

// list reads a snapshot of every synced prefix at one revision, retrying
// until it succeeds or ctx ends.
func (s *Syncer) list(ctx context.Context) (listResult, error) {
	bo := backoff.New(rewatchMinBackoff, rewatchMaxBackoff)
	for {
		res, err := s.listOnce(ctx)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil || s.c.closed() {
			return listResult{}, err
		}
		wait := bo.Next()
		s.lim.Warn("syncer cannot list; retrying", logKeyError, err, logKeyRetryIn, wait)
		if s.status == InSync {
			s.setStatus(Disconnected)
		}
		if !backoff.Sleep(ctx, wait) {
			return listResult{}, ctx.Err()
		}
	}
}

func (s *Syncer) listOnce(ctx context.Context) (listResult, error) {
	var all listResult
	for _, p := range s.listPrefixes {
		res, err := s.c.listPrefix(ctx, p, all.revision)
		if err != nil {
			return listResult{}, err
		}
		all.revision = res.revision
		all.resources = append(all.resources, res.resources...)
		all.bad = append(all.bad, res.bad...)
	}
	return all, nil
}

// deliverSnapshot hands a snapshot to the handler, with the deletions it
// implies on a resync.
func (s *Syncer) deliverSnapshot(res listResult, resync bool) {
	now := make(map[ResourceID]api.Resource, len(res.resources)+len(res.bad))
	for i, r := range res.resources {
		r = s.stripped(r)
		res.resources[i] = r
		now[IDOf(r)] = r
	}
	for _, de := range res.bad {
		s.reportBad(de)
		// A value that stopped decoding keeps the last version that did.
		id, err := idFromKey(de.Key)
		if err != nil {
			continue
		}
		if last, ok := s.delivered[id]; ok {
			now[id] = last
			res.resources = append(res.resources, last)
		}
	}
	var deleted []ResourceID
	if resync {
		for id := range s.delivered {
			if _, ok := now[id]; !ok {
				deleted = append(deleted, id)
			}
		}
		sortIDs(deleted)
	}
	s.delivered = now
	s.rev = res.revision
	s.revs = make([]int64, len(s.ranges))
	for i := range s.revs {
		s.revs[i] = res.revision
	}
	s.lg.Debug("syncer snapshot", logKeyRevision, res.revision, logKeyCount, len(res.resources))
	memtrim.Changed()
	s.handler.OnSnapshot(Snapshot{Resources: res.resources, Revision: res.revision, Resync: resync, Deleted: deleted})
}

// watch delivers updates from revision from on until ctx ends or the watch
// ends (compaction, client closed).
func (s *Syncer) watch(ctx context.Context, from int64) error {
	wctx, cancel := context.WithCancel(ctx)
	batches := make(chan rangeBatch, 64)
	var wg sync.WaitGroup
	for i, r := range s.ranges {
		wg.Go(func() {
			s.c.watchRange(wctx, r.start, r.end, from, s.keep, func(b watchBatch) bool {
				select {
				case batches <- rangeBatch{i, b}:
					return true
				case <-wctx.Done():
					return false
				}
			})
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(batches)
		close(done)
	}()
	defer func() {
		cancel()
		<-done
	}()

	stall := time.NewTimer(s.stallTimeout)
	defer stall.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case rb, ok := <-batches:
			if !ok {
				return errors.New("watch ended: client closed")
			}
			if rb.err != nil {
				return rb.err
			}
			stall.Reset(s.stallTimeout)
			s.setStatus(InSync)
			s.deliverBatch(rb.idx, rb.watchBatch)
		case <-stall.C:
			s.checkStalled(ctx)
			stall.Reset(s.stallTimeout)
		}
	}
}

// rangeBatch is a watch response of range idx.
type rangeBatch struct {
	idx int
	watchBatch
}

// deliverBatch filters one watch response of range idx to the synced
// kinds and hands it to the handler.
func (s *Syncer) deliverBatch(idx int, b watchBatch) {
	rev := &s.revs[idx]
	if b.progress > *rev {
		*rev = b.progress
	}
	var events []Event
	last := *rev
	for _, it := range b.items {
		if it.Revision <= *rev {
			// Cannot happen while etcd keeps its promises; never repeat.
			s.lg.Warn("syncer dropped an event it had delivered", logKeyRevision, it.Revision, logKeyKey, it.ID.String())
			continue
		}
		last = max(last, it.Revision)
		if it.Err != nil {
			var de *DecodeError
			if errors.As(it.Err, &de) {
				s.reportBad(de)
			}
			// A value that no longer decodes: the handler keeps the last
			// version that did (fail closed), and a value that never did
			// stays unknown.
			continue
		}
		if s.kinds != nil && !s.kinds[it.ID.Kind] {
			continue
		}
		it.Resource = s.stripped(it.Resource)
		if it.Type == Deleted {
			delete(s.delivered, it.ID)
		} else {
			s.delivered[it.ID] = it.Resource
		}
		events = append(events, it.Event)
	}
	*rev = last
	s.rev = max(s.rev, last)
	if len(events) > 0 {
		memtrim.Changed()
		s.handler.OnUpdates(events)
	}
}

// checkStalled runs when the watch has been silent for the stall timeout:
// it asks etcd for an answer, reports Disconnected if there is none, and
// otherwise asks the watch for a progress notification so that a dead
// watch stream shows.
func (s *Syncer) checkStalled(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, min(max(s.stallTimeout, time.Second), maxProbeTimeout))
	defer cancel()
	if _, err := s.c.cli.Get(pctx, api.KeyRoot, clientv3.WithCountOnly()); err != nil {
		if ctx.Err() == nil {
			s.lim.Warn("syncer: etcd does not answer", logKeyEndpoints, s.c.endpoints, logKeyError, err)
			s.setStatus(Disconnected)
		}
		return
	}
	if err := s.c.cli.RequestProgress(clientv3.WithRequireLeader(pctx)); err != nil {
		s.lg.Debug("syncer: requesting watch progress", logKeyError, err)
	}
}

// stripped is r as the handler wants it (SyncerConfig.Strip).
func (s *Syncer) stripped(r api.Resource) api.Resource {
	if s.strip == nil || r == nil {
		return r
	}
	return s.strip(r)
}

func (s *Syncer) setStatus(st SyncStatus) {
	if s.status == st {
		return
	}
	s.status = st
	s.lg.Info("syncer status", logKeyStatus, st.String())
	s.handler.OnStatus(st)
}

func (s *Syncer) reportBad(de *DecodeError) {
	s.lim.Warn("syncer skipped a value that does not decode; the last version that did stays in force", logKeyKey, de.Key, logKeyRevision, de.Revision, logKeyError, de.Err)
	if s.onBad != nil {
		s.onBad(de)
	}
}
