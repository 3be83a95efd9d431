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
)

// DefaultStatusTTL is how long a status record outlives its writer.
const DefaultStatusTTL = 30 * time.Second

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
// to an etcd lease that a goroutine owned by the writer keeps alive. When
// the writer's process dies, or its ctx ends, the lease stops being renewed
// and etcd deletes the records by itself after the TTL, so a dead node's
// status disappears. Close revokes the lease, deleting them at once. If the
// lease is lost (etcd was away longer than the TTL), the writer grants a
// new one and puts every record again.
type StatusWriter struct {
	c   *Client
	ttl int64 // seconds
	lg  *slog.Logger

	mu      sync.Mutex // guards lease and records, held across their writes
	lease   clientv3.LeaseID
	records map[string]string // key → value of every record written

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// NewStatusWriter grants a lease and starts keeping it alive. The writer
// lives until Close, or until ctx ends: then it stops renewing without
// revoking, and its records expire after the TTL like those of a crashed
// process.
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
	lease, err := c.cli.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("granting status lease of %ds: %w", secs, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	w := &StatusWriter{
		c: c, ttl: secs, lg: lg,
		lease:   lease.ID,
		records: map[string]string{},
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go w.run(rctx)
	return w, nil
}

// Put writes (or replaces) a status record under the writer's lease. The
// record is defaulted and validated first; it keeps the UID and creation
// time of its first Put.
func (w *StatusWriter) Put(ctx context.Context, r api.Resource) (api.Resource, error) {
	obj, key, err := prepare(r)
	if err != nil {
		return nil, fmt.Errorf("writing status: %w", err)
	}
	id := IDOf(obj)
	w.mu.Lock()
	defer w.mu.Unlock()
	m := obj.GetObjectMeta()
	var prev []byte
	if v, ok := w.records[key]; ok {
		prev = []byte(v)
	}
	keepIdentity(obj, prev)
	m.ResourceVersion = ""
	val, err := encode(obj)
	if err != nil {
		return nil, fmt.Errorf("writing status %s: %w", id, err)
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
		if w.c.closed() {
			return // the lease expires by itself
		}
		ctx, cancel := context.WithTimeout(context.Background(), DefaultDialTimeout)
		defer cancel()
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, err := w.c.cli.Revoke(ctx, w.lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			w.closeErr = fmt.Errorf("revoking status lease %x: %w", int64(w.lease), err)
		}
	})
	return w.closeErr
}

// run keeps the lease alive until ctx ends or the client closes, and
// replaces it when it is lost.
func (w *StatusWriter) run(ctx context.Context) {
	defer close(w.done)
	for {
		w.mu.Lock()
		lease := w.lease
		w.mu.Unlock()
		ka, err := w.c.cli.KeepAlive(ctx, lease)
		if err == nil {
			for range ka {
				// Drain the responses; the channel closes when the lease
				// is lost, ctx ends or the client closes.
			}
		}
		if ctx.Err() != nil || w.c.closed() {
			return
		}
		w.lg.Warn("status lease lost; granting a new one", logKeyLease, fmt.Sprintf("%x", int64(lease)), logKeyError, err)
		wait := rewatchMinBackoff
		for {
			w.mu.Lock()
			err := w.regrantLocked(ctx, lease)
			w.mu.Unlock()
			if err == nil {
				break
			}
			if ctx.Err() != nil || w.c.closed() {
				return
			}
			w.lg.Warn("re-granting status lease failed", logKeyError, err)
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			wait = min(2*wait, rewatchMaxBackoff)
		}
	}
}

// regrantLocked replaces the lease old (unless that was done already) and
// puts every record again under the new one.
func (w *StatusWriter) regrantLocked(ctx context.Context, old clientv3.LeaseID) error {
	if w.lease != old {
		return nil
	}
	lease, err := w.c.cli.Grant(ctx, w.ttl)
	if err != nil {
		return fmt.Errorf("granting status lease: %w", err)
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
	w.lg.Info("status records moved to a new lease", logKeyLease, fmt.Sprintf("%x", int64(lease.ID)), logKeyCount, len(w.records))
	return nil
}
