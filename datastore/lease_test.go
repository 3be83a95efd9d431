package datastore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/datastore"
)

// countingLease counts a client's lease grants and keep-alive answers, and
// can refuse grants, as an overloaded etcd does.
type countingLease struct {
	clientv3.Lease
	grants, kaResponses atomic.Int64
	mu                  sync.Mutex
	refuse              bool
	grantTimes          []time.Time
}

func (l *countingLease) Grant(ctx context.Context, ttl int64) (*clientv3.LeaseGrantResponse, error) {
	l.grants.Add(1)
	l.mu.Lock()
	l.grantTimes = append(l.grantTimes, time.Now())
	refuse := l.refuse
	l.mu.Unlock()
	if refuse {
		return nil, errors.New("etcdserver: too many requests")
	}
	return l.Lease.Grant(ctx, ttl)
}

func (l *countingLease) KeepAlive(ctx context.Context, id clientv3.LeaseID) (<-chan *clientv3.LeaseKeepAliveResponse, error) {
	in, err := l.Lease.KeepAlive(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make(chan *clientv3.LeaseKeepAliveResponse)
	go func() {
		defer close(out)
		for r := range in {
			l.kaResponses.Add(1)
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func (l *countingLease) setRefuse(v bool) {
	l.mu.Lock()
	l.refuse = v
	l.mu.Unlock()
}

// TestStatusLeaseKeptAliveNotRegranted: one lease carries every record of
// a writer through many TTLs, renewed by the keep-alive stream and never
// granted again; a Put of an unchanged record writes nothing.
func TestStatusLeaseKeptAliveNotRegranted(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	e, c := newEnv(t)
	agent := newClient(t, e.ClientEndpoint())
	cl := &countingLease{Lease: agent.Etcd().Lease}
	agent.Etcd().Lease = cl
	w, err := agent.NewStatusWriter(ctx, datastore.StatusWriterConfig{TTL: time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for _, n := range names("s", 3) {
		if _, err := w.Put(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	// Keep-alives go every TTL/3: 9 answers span 3 TTLs.
	for cl.kaResponses.Load() < 9 {
		if ctx.Err() != nil {
			t.Fatalf("keep-alive answers: %d, want 9", cl.kaResponses.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g := cl.grants.Load(); g != 1 {
		t.Fatalf("%d lease grants over 3 TTLs, want 1 (kept alive, not re-granted)", g)
	}
	if rs, _, err := c.List(ctx, "Node", ""); err != nil || len(rs) != 3 {
		t.Fatalf("after 3 TTLs: %d records (%v), want 3", len(rs), err)
	}
	leases, err := c.Etcd().Leases(ctx)
	if err != nil || len(leases.Leases) != 1 {
		t.Fatalf("leases in etcd: %v (%v), want the writer's one", leases, err)
	}

	// An unchanged record is not written again: etcd's revision stays.
	before, err := c.Etcd().Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := w.Put(ctx, node("s-1")); err != nil {
			t.Fatal(err)
		}
	}
	after, err := c.Etcd().Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if after.Header.Revision != before.Header.Revision {
		t.Fatalf("10 puts of an unchanged record moved etcd from revision %d to %d", before.Header.Revision, after.Header.Revision)
	}
	if _, err := w.Put(ctx, nodeAddr("s-1", "10.0.0.1/32")); err != nil {
		t.Fatal(err)
	}
	if changed, _ := c.Etcd().Get(ctx, "x"); changed.Header.Revision != after.Header.Revision+1 {
		t.Fatalf("a changed record: revision %d, want %d", changed.Header.Revision, after.Header.Revision+1)
	}
}

// TestStatusLeaseGrantBacksOff: while etcd refuses grants, the writer
// retries with growing pauses (not in a loop), Put waits, and once etcd
// grants, the waiting Put goes through.
func TestStatusLeaseGrantBacksOff(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	e, _ := newEnv(t)
	agent := newClient(t, e.ClientEndpoint())
	cl := &countingLease{Lease: agent.Etcd().Lease, refuse: true}
	agent.Etcd().Lease = cl
	w, err := agent.NewStatusWriter(ctx, datastore.StatusWriterConfig{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("NewStatusWriter must not wait for etcd: %v", err)
	}
	defer w.Close()
	pctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	_, err = w.Put(pctx, node("s1"))
	cancel()
	if err == nil {
		t.Fatal("Put succeeded without a lease")
	}
	// Pauses of at least 0.5, 1, 2 s: at most 4 grants in 4 s.
	if g := cl.grants.Load(); g < 1 || g > 4 {
		t.Fatalf("%d grant attempts in 4 s of refusals, want 1 to 4 (backoff)", g)
	}
	cl.mu.Lock()
	times := append([]time.Time(nil), cl.grantTimes...)
	cl.mu.Unlock()
	for i := 2; i < len(times); i++ {
		if prev, gap := times[i-1].Sub(times[i-2]), times[i].Sub(times[i-1]); gap < prev/2 {
			t.Fatalf("grant pauses %v then %v: not growing", prev, gap)
		}
	}
	cl.setRefuse(false)
	if _, err := w.Put(ctx, node("s1")); err != nil {
		t.Fatalf("Put once etcd grants: %v", err)
	}
}
