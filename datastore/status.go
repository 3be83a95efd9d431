package datastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/backoff"
	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// DefaultStatusTTL is how long a status record outlives its writer.
const DefaultStatusTTL = 30 * time.Second

// Backoff of the status lease's grants after a failure or a loss.
const (
	statusRetryMin = time.Second
	statusRetryMax = 30 * time.Second
)

// statusRePutBatch bounds the puts of one transaction when records move to
// a new lease: etcd's default --max-txn-ops is 128.
const statusRePutBatch = 128

// StatusWriterConfig configures a StatusWriter.
type StatusWriterConfig struct {
	// TTL is how long records stay after the writer stops renewing its
	// lease (rounded up to whole seconds; at least 1s). Zero means
	// DefaultStatusTTL.
	TTL time.Duration
	// Logger; nil means the client's.
	Logger *slog.Logger
}

// StatusWriter writes status records (FelixStatus, BGPStatus...) attached
// to one etcd lease, which etcd's keep-alive stream keeps alive: a node's
// agent makes one writer and shares it between its parts, so the node
// holds one lease however many records it writes. When the writer's
// process dies, or its ctx ends, the lease is no longer renewed and etcd
// deletes the records by itself after the TTL, so a dead node's status
// disappears. Close revokes the lease, deleting them at once.
//
// The lease is granted in the background, with jittered backoff while
// etcd refuses: a Put waits for it (within its ctx). If the lease is lost
// (etcd did not answer keep-alives for longer than the TTL), the writer
// grants a new one, with the same backoff, and puts every record again.
// A Put of a record equal to what the writer last wrote is not sent.
// Failures are logged at most once per kind and minute.
type StatusWriter struct {
	c   *Client
	ttl int64 // seconds
	lg  *slog.Logger
	lim *ratelog.Limiter

	mu      sync.Mutex // guards lease and records, held across their writes
	lease   clientv3.LeaseID
	records map[string]string // key → value of every record written
	ready   chan struct{}     // closed when the first lease is granted

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewStatusWriter returns a writer and starts granting its lease and
// keeping it alive, in the background: it does not wait for etcd. The
// writer lives until Close, or until ctx ends: then it stops renewing
// without revoking, and its records expire after the TTL like those of a
// crashed process.
func (c *Client) NewStatusWriter(ctx context.Context, cfg StatusWriterConfig) (*StatusWriter, error) {
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = DefaultStatusTTL
	}
	secs := max(int64((ttl+time.Second-1)/time.Second), 1)
	lg := cfg.Logger
	if lg == nil {
		lg = c.lg
	}
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.closed() {
		return nil, errors.New("status writer: the datastore client is closed")
	}
	rctx, cancel := context.WithCancel(ctx)
	w := &StatusWriter{
		c: c, ttl: secs, lg: lg, lim: ratelog.New(ratelog.Config{Logger: lg}),
		records: map[string]string{},
		ready:   make(chan struct{}),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go w.run(rctx)
	return w, nil
}

// Put writes (or replaces) a status record under the writer's lease,
// unless it equals what the writer last wrote for it. The record is
// defaulted and validated first; it keeps the UID and creation time of
// its first Put. Put waits for the writer's lease until ctx ends.
func (w *StatusWriter) Put(ctx context.Context, r api.Resource) (api.Resource, error) {
	obj, key, err := prepare(r)
	if err != nil {
		return nil, fmt.Errorf("writing status: %w", err)
	}
	id := IDOf(obj)
	select {
	case <-w.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("writing status %s: waiting for the status lease: %w", id, context.Cause(ctx))
	case <-w.done:
		return nil, fmt.Errorf("writing status %s: the status writer has stopped", id)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	m := obj.GetObjectMeta()
	prev, had := w.records[key]
	keepIdentity(obj, []byte(prev))
	m.ResourceVersion = ""
	val, err := encode(obj)
	if err != nil {
		return nil, fmt.Errorf("writing status %s: %w", id, err)
	}
	if had && prev == string(val) {
		return obj, nil // etcd has it, under the current lease
	}
	resp, err := w.c.cli.Put(ctx, key, string(val), clientv3.WithLease(w.lease))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		if err := w.regrantLocked(ctx, w.lease); err != nil {
			return nil, fmt.Errorf("writing status %s: %w", id, err)
		}
		resp, err = w.c.cli.Put(ctx, key, string(val), clientv3.WithLease(w.lease))
	}
	if err != nil {
		return nil, fmt.Errorf("writing status %s: %w", id, err)
	}
	w.records[key] = string(val)
	m.ResourceVersion = strconv.FormatInt(resp.Header.Revision, 10)
	return obj, nil
}

// Delete removes a status record that this writer wrote.
func (w *StatusWriter) Delete(ctx context.Context, kind, namespace, name string) error {
	ki, key, err := lookupKey(kind, namespace, name)
	if err != nil {
		return fmt.Errorf("deleting status: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.records, key)
	if _, err := w.c.cli.Delete(ctx, key); err != nil {
		return fmt.Errorf("deleting status %s: %w", ResourceID{Kind: ki.Kind, Namespace: namespace, Name: name}, err)
	}
	return nil
}

// Close stops renewing the lease and revokes it, which deletes every record
// of the writer.
func (w *StatusWriter) Close() error {
	w.closeOnce.Do(func() {
		w.cancel()
		<-w.done
		w.lim.Close()
		if w.c.closed() {
			return // the lease expires by itself
		}
		ctx, cancel := context.WithTimeout(context.Background(), DefaultDialTimeout)
		defer cancel()
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.lease == 0 {
			return // never granted
		}
		if _, err := w.c.cli.Revoke(ctx, w.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			w.closeErr = fmt.Errorf("revoking status lease %x: %w", int64(w.lease), err)
		}
	})
	return w.closeErr
}

// run grants the lease, keeps it alive until ctx ends or the client
// closes, and replaces it when it is lost, backing off (with jitter) while
// etcd refuses grants or keeps dropping the lease at once.
func (w *StatusWriter) run(ctx context.Context) {
	defer close(w.done)
	bo := backoff.New(statusRetryMin, statusRetryMax)
	var lost clientv3.LeaseID // the lease to replace; 0 at first
	stopping := func() bool { return ctx.Err() != nil || w.c.closed() }
	for {
		for {
			w.mu.Lock()
			err := w.regrantLocked(ctx, lost)
			w.mu.Unlock()
			if err == nil {
				break
			}
			if stopping() {
				return
			}
			wait := bo.Next()
			w.lim.Warn("granting status lease failed; will retry", logKeyError, err, logKeyRetryIn, wait)
			if !backoff.Sleep(ctx, wait) {
				return
			}
		}
		w.lim.Reset("granting status lease failed; will retry")
		w.mu.Lock()
		lease := w.lease
		w.mu.Unlock()
		began := time.Now()
		ka, err := w.c.cli.KeepAlive(ctx, lease)
		if err == nil {
			for range ka {
				// Drain the responses; the channel closes when the lease
				// is lost, ctx ends or the client closes.
			}
		}
		if stopping() {
			return
		}
		w.lim.Warn("status lease lost; granting a new one", logKeyLease, fmt.Sprintf("%x", int64(lease)), logKeyError, err)
		lost = lease
		if time.Since(began) < time.Duration(w.ttl)*time.Second {
			// Lost before a TTL went by: do not grant at once again.
			if !bo.Wait(ctx) {
				return
			}
		} else {
			bo.Reset()
		}
	}
}

// regrantLocked replaces the lease old (unless that was done already; old
// 0 grants the first lease) and puts every record again under the new one.
func (w *StatusWriter) regrantLocked(ctx context.Context, old clientv3.LeaseID) error {
	if w.lease != old {
		return nil
	}
	lease, err := w.c.cli.Grant(ctx, w.ttl)
	if err != nil {
		return fmt.Errorf("granting status lease of %ds: %w", w.ttl, err)
	}
	ops := make([]clientv3.Op, 0, len(w.records))
	for k, v := range w.records {
		ops = append(ops, clientv3.OpPut(k, v, clientv3.WithLease(lease.ID)))
	}
	for len(ops) > 0 {
		n := min(len(ops), statusRePutBatch)
		if _, err := w.c.cli.Txn(ctx).Then(ops[:n]...).Commit(); err != nil {
			_, _ = w.c.cli.Revoke(ctx, lease.ID)
			return fmt.Errorf("putting %d status records under new lease: %w", len(w.records), err)
		}
		ops = ops[n:]
	}
	w.lease = lease.ID
	if old == 0 {
		close(w.ready)
		return nil
	}
	w.lg.Info("status records moved to a new lease", logKeyLease, fmt.Sprintf("%x", int64(lease.ID)), logKeyCount, len(w.records))
	return nil
}
