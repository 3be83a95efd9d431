package datastore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/memtrim"
)

// inSyncWith waits until the recorder holds exactly what etcd holds.
func inSyncWith(ctx context.Context, t *testing.T, r *recorder, c *datastore.Client) {
	t.Helper()
	rs, _, err := c.List(ctx, "Node", "")
	var de *datastore.DecodeError
	if err != nil && !errors.As(err, &de) {
		t.Fatal(err)
	}
	want := listString(t, rs)
	r.waitFor(ctx, t, "syncer state equal to etcd", func() bool {
		return cmp.Equal(stateString(r.state), want)
	})
}

// checkOrdered fails if the updates repeat or go back in revision.
func checkOrdered(t *testing.T, evs []datastore.Event, after int64) {
	t.Helper()
	for i, ev := range evs {
		if ev.Revision <= after {
			t.Fatalf("update %d (%s %s) at revision %d follows revision %d", i, ev.Type, ev.ID, ev.Revision, after)
		}
		after = ev.Revision
	}
}

func TestSyncerSnapshotThenUpdates(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	for _, n := range names("pre", 20) {
		if _, err := c.Create(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	runSyncer(t, c, datastore.SyncerConfig{Kinds: []string{"Node"}, Handler: rec, Logger: testLogger(t), OnBadValue: rec.onBad})
	rec.waitFor(ctx, t, "snapshot", func() bool { return len(rec.snapshots) == 1 && rec.lastStatus() == datastore.InSync })
	if got := len(rec.snapshots[0].Resources); got != 20 || rec.snapshots[0].Resync {
		t.Fatalf("snapshot: %d resources, resync %v; want 20, false", got, rec.snapshots[0].Resync)
	}
	snapRev := rec.snapshots[0].Revision

	for _, n := range names("post", 30) {
		if _, err := c.Create(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names("pre", 5) {
		if err := c.Delete(ctx, "Node", "", n, ""); err != nil {
			t.Fatal(err)
		}
	}
	// A value that does not decode is reported, and the handler keeps the
	// last version that did (fail closed): no update for it.
	pre10 := datastore.ResourceID{Kind: "Node", Name: "pre-10"}
	rec.mu.Lock()
	before := rec.state[pre10]
	rec.mu.Unlock()
	if before == nil {
		t.Fatal("pre-10 is not in the handler's state before it goes bad")
	}
	if _, err := c.Etcd().Put(ctx, api.KeyRoot+"nodes/pre-10", "garbage"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, node("last")); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(ctx, t, "updates", func() bool { return rec.state[datastore.ResourceID{Kind: "Node", Name: "last"}] != nil })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	checkOrdered(t, rec.updates, snapRev)
	if len(rec.updates) != 30+5+1 {
		t.Errorf("%d updates, want 36 (none for the value that stopped decoding)", len(rec.updates))
	}
	if got := rec.state[pre10]; got != before {
		t.Errorf("pre-10 after its value stopped decoding: %v, want the last version that decoded (%v)", got, before)
	}
	if len(rec.bad) != 1 || rec.bad[0].Key != api.KeyRoot+"nodes/pre-10" {
		t.Errorf("bad values reported: %v, want the one at nodes/pre-10", rec.bad)
	}
}

func TestSyncerKindsFilter(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	rec := newRecorder()
	// All kinds: the node arrives; a key outside any kind is reported.
	runSyncer(t, c, datastore.SyncerConfig{Handler: rec, OnBadValue: rec.onBad})
	rec.waitFor(ctx, t, "in sync", func() bool { return rec.lastStatus() == datastore.InSync })
	if _, err := c.Etcd().Put(ctx, api.KeyRoot+"gadgets/x", "{}"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, node("n1")); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(ctx, t, "node and bad key", func() bool { return len(rec.state) == 1 && len(rec.bad) == 1 })
}

func TestSyncerResumesAfterEtcdRestart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dirs := newEtcdDirs(t)
	e := startEtcd(t, dirs)
	c := newClient(t, e.ClientEndpoint()) // the syncer's client lives through the restart
	w := newClient(t, e.ClientEndpoint())
	for _, n := range names("a", 10) {
		if _, err := w.Create(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	runSyncer(t, c, datastore.SyncerConfig{Kinds: []string{"Node"}, Handler: rec, Logger: testLogger(t), StallTimeout: 500 * time.Millisecond})
	rec.waitFor(ctx, t, "snapshot", func() bool { return rec.lastStatus() == datastore.InSync })
	snapRev := rec.snapshots[0].Revision
	for _, n := range names("b", 10) {
		if _, err := w.Create(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	inSyncWith(ctx, t, rec, w)

	// etcd goes away; the syncer notices through its stall check.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	rec.waitFor(ctx, t, "Disconnected", func() bool { return rec.lastStatus() == datastore.Disconnected })

	// Back on the same data and socket; a fresh client changes things.
	e = startEtcd(t, dirs)
	w = newClient(t, e.ClientEndpoint())
	type change struct {
		typ  datastore.EventType
		name string
	}
	var want []change
	for _, n := range names("a", 5) {
		if err := w.Delete(ctx, "Node", "", n, ""); err != nil {
			t.Fatal(err)
		}
		want = append(want, change{datastore.Deleted, n})
	}
	for _, n := range names("c", 10) {
		if _, err := w.Create(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
		want = append(want, change{datastore.Added, n})
	}
	inSyncWith(ctx, t, rec, w)
	rec.waitFor(ctx, t, "InSync again", func() bool { return rec.lastStatus() == datastore.InSync })

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.snapshots) != 1 {
		t.Errorf("%d snapshots, want 1: the watch resumes without a relist", len(rec.snapshots))
	}
	checkOrdered(t, rec.updates, snapRev)
	got := rec.updates[10:] // after the ten b-* creations
	if len(got) != len(want) {
		t.Fatalf("%d updates after the restart, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Type != w.typ || got[i].ID.Name != w.name {
			t.Errorf("update %d after restart: %s %s, want %s %s", i, got[i].Type, got[i].ID.Name, w.typ, w.name)
		}
	}
}

func TestSyncerResyncsAfterCompaction(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dirs := newEtcdDirs(t)
	e := startEtcd(t, dirs)
	c := newClient(t, e.ClientEndpoint())
	for _, n := range names("keep", 5) {
		if _, err := c.Create(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names("gone", 5) {
		if _, err := c.Create(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	rec := newRecorder()
	// Strip marks what it returns: the handler must see only marked
	// resources, also the one the syncer delivers again from what it
	// kept (keep-4 below).
	strip := func(r api.Resource) api.Resource {
		r = r.DeepCopyResource()
		r.GetObjectMeta().Annotations = map[string]string{"stripped": "yes"}
		return r
	}
	runSyncer(t, c, datastore.SyncerConfig{Kinds: []string{"Node"}, Handler: rec, Logger: testLogger(t), Strip: strip})
	rec.waitFor(ctx, t, "snapshot", func() bool { return rec.lastStatus() == datastore.InSync })

	// While the syncer cannot reach it (etcd serves on another socket),
	// nodes are deleted and created and the history is compacted.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	aside := dirs
	aside.sock = dirs.sock + "2"
	e2 := startEtcd(t, aside)
	w := newClient(t, e2.ClientEndpoint())
	for _, n := range names("gone", 5) {
		if err := w.Delete(ctx, "Node", "", n, ""); err != nil {
			t.Fatal(err)
		}
	}
	// keep-4's value stops decoding: the resync keeps its last version.
	if _, err := w.Etcd().Put(ctx, api.KeyRoot+"nodes/keep-4", `{"kind":`); err != nil {
		t.Fatal(err)
	}
	var rev int64
	for _, n := range names("new", 3) {
		r, err := w.Create(ctx, node(n))
		if err != nil {
			t.Fatal(err)
		}
		rev, _ = parseRV(r)
	}
	if _, err := w.Etcd().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}

	// Back where the syncer looks: its watch is compacted, it lists again.
	e = startEtcd(t, dirs)
	rec.waitFor(ctx, t, "resync snapshot", func() bool { return len(rec.snapshots) == 2 && rec.lastStatus() == datastore.InSync })
	rec.mu.Lock()
	snap := rec.snapshots[1]
	var gotNames []string
	for _, sn := range rec.snapshots {
		for _, r := range sn.Resources {
			if r.GetObjectMeta().Annotations["stripped"] != "yes" {
				t.Errorf("snapshot (resync %v) delivered %s unstripped", sn.Resync, r.GetObjectMeta().Name)
			}
		}
	}
	for _, r := range snap.Resources {
		gotNames = append(gotNames, r.GetObjectMeta().Name)
	}
	wantNames := []string{"keep-0", "keep-1", "keep-2", "keep-3", "new-0", "new-1", "new-2", "keep-4"}
	var wantDeleted []datastore.ResourceID
	for _, n := range names("gone", 5) {
		wantDeleted = append(wantDeleted, datastore.ResourceID{Kind: "Node", Name: n})
	}
	if !snap.Resync || snap.Revision < rev {
		t.Errorf("second snapshot: resync %v at %d, want a resync at %d or later", snap.Resync, snap.Revision, rev)
	}
	if diff := cmp.Diff(wantNames, gotNames); diff != "" {
		t.Errorf("resync resources (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDeleted, snap.Deleted); diff != "" {
		t.Errorf("resync deletions (-want +got):\n%s", diff)
	}
	if statuses := fmt.Sprint(rec.statuses); statuses != "[WaitingForDatastore InSync Resyncing InSync]" {
		t.Errorf("statuses %s", statuses)
	}
	rec.mu.Unlock()

	// And it goes on with updates; deleting the bad value deletes keep-4.
	if _, err := c.Create(ctx, node("after")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Etcd().Delete(ctx, api.KeyRoot+"nodes/keep-4"); err != nil {
		t.Fatal(err)
	}
	inSyncWith(ctx, t, rec, c)
	rec.mu.Lock()
	for _, ev := range rec.updates {
		if ev.Resource.GetObjectMeta().Annotations["stripped"] != "yes" {
			t.Errorf("update %s %s delivered unstripped", ev.Type, ev.ID)
		}
	}
	rec.mu.Unlock()
}

// A syncer's delivered changes mark the process's changes for its quiet
// trim (internal/memtrim).
func TestSyncerMarksChanges(t *testing.T) {
	// Not parallel: memtrim's change signal is the process's.
	ctx := testContext(t)
	_, c := newEnv(t)
	rec := newRecorder()
	runSyncer(t, c, datastore.SyncerConfig{Kinds: []string{"Node"}, Handler: rec, Logger: testLogger(t)})
	rec.waitFor(ctx, t, "snapshot", func() bool { return rec.lastStatus() == datastore.InSync })
	armed := memtrim.WatchArming(ctx)
	if _, err := c.Create(ctx, node("n1")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-armed:
	case <-ctx.Done():
		t.Fatal("a delivered update marked no change")
	}
}
