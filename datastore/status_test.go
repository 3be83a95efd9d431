package datastore_test

import (
	"context"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/datastore"
)

// nextEvent returns the next event of a watch, failing the test on an
// error event or timeout.
func nextEvent(ctx context.Context, t *testing.T, ch <-chan datastore.WatchEvent) datastore.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch closed")
		}
		if ev.Err != nil {
			t.Fatalf("watch error: %v", ev.Err)
		}
		return ev
	case <-ctx.Done():
		t.Fatalf("waiting for a watch event: %v", ctx.Err())
	}
	panic("unreachable")
}

func TestStatusExpiresWhenWriterDies(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	e, c := newEnv(t)
	ch := watchFromNow(ctx, t, c)

	// The writer's process "dies": its own client goes away without
	// revoking the lease.
	wc := newClient(t, e.ClientEndpoint())
	w, err := wc.NewStatusWriter(ctx, datastore.StatusWriterConfig{TTL: 2 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Put(ctx, node("status-1")); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(ctx, t, ch); ev.Type != datastore.Added {
		t.Fatalf("first event %s, want Added", ev.Type)
	}
	start := time.Now()
	wc.Close()
	ev := nextEvent(ctx, t, ch)
	if ev.Type != datastore.Deleted || ev.ID.Name != "status-1" {
		t.Fatalf("event %s %s, want the status record Deleted", ev.Type, ev.ID)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("record gone after %v, before its 2s TTL", took)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close of a writer whose client closed: %v", err)
	}
}

func TestStatusWriterCancelLetsRecordsExpire(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	ch := watchFromNow(ctx, t, c)
	wctx, cancel := context.WithCancel(ctx)
	w, err := c.NewStatusWriter(wctx, datastore.StatusWriterConfig{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Put(ctx, node("s1")); err != nil {
		t.Fatal(err)
	}
	nextEvent(ctx, t, ch)
	cancel()
	if ev := nextEvent(ctx, t, ch); ev.Type != datastore.Deleted {
		t.Fatalf("event %s, want Deleted after the TTL", ev.Type)
	}
}

func TestStatusWriterCloseRevokes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	w, err := c.NewStatusWriter(ctx, datastore.StatusWriterConfig{TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names("s", 3) {
		if _, err := w.Put(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rs, _, err := c.List(ctx, "Node", ""); err != nil || len(rs) != 0 {
		t.Errorf("after Close: %d records (%v), want none", len(rs), err)
	}
}

func TestStatusWriterRecoversLostLease(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	// Keep-alives go every TTL/3; that is how soon a lost lease shows.
	w, err := c.NewStatusWriter(ctx, datastore.StatusWriterConfig{TTL: 3 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	first, err := w.Put(ctx, node("s1"))
	if err != nil {
		t.Fatal(err)
	}
	ch := watchFromNow(ctx, t, c)
	// Someone revokes the lease (as etcd does when the writer was cut off
	// for longer than the TTL): the record goes, and comes back.
	leases, err := c.Etcd().Leases(ctx)
	if err != nil || len(leases.Leases) != 1 {
		t.Fatalf("leases: %v, %v", leases, err)
	}
	if _, err := c.Etcd().Revoke(ctx, leases.Leases[0].ID); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(ctx, t, ch); ev.Type != datastore.Deleted {
		t.Fatalf("event %s, want Deleted", ev.Type)
	}
	ev := nextEvent(ctx, t, ch)
	if ev.Type != datastore.Added || ev.Resource.GetObjectMeta().UID != first.GetObjectMeta().UID {
		t.Fatalf("event %s %+v, want the record Added again with its UID", ev.Type, ev.Resource.GetObjectMeta())
	}
	// Later puts use the new lease.
	if _, err := w.Put(ctx, node("s2")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rs, _, _ := c.List(ctx, "Node", ""); len(rs) != 0 {
		t.Errorf("after Close: %d records, want none", len(rs))
	}
}

// watchFromNow watches Nodes from the current revision on: a watch from
// "now" (revision 0) may open after the first write the test waits for.
func watchFromNow(ctx context.Context, t *testing.T, c *datastore.Client) <-chan datastore.WatchEvent {
	t.Helper()
	_, rev, err := c.List(ctx, "Node", "")
	if err != nil {
		t.Fatal(err)
	}
	return c.Watch(ctx, "Node", "", rev+1)
}
