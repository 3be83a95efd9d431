package datastore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

func TestWatchDeliversEveryChangeInOrder(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	_, rev, err := c.List(ctx, "Node", "")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := c.Watch(wctx, "Node", "", rev+1)

	// 500 changes over 50 nodes: create, modify, delete in turn.
	type change struct {
		typ  datastore.EventType
		name string
	}
	var want []change
	exists := map[string]bool{}
	for i := range 500 {
		name := fmt.Sprintf("n-%d", i%50)
		switch {
		case !exists[name]:
			if _, err := c.Create(ctx, nodeAddr(name, fmt.Sprintf("10.0.%d.1/24", i%250))); err != nil {
				t.Fatal(err)
			}
			exists[name] = true
			want = append(want, change{datastore.Added, name})
		case i%7 == 0:
			if err := c.Delete(ctx, "Node", "", name, ""); err != nil {
				t.Fatal(err)
			}
			delete(exists, name)
			want = append(want, change{datastore.Deleted, name})
		default:
			if _, err := c.Apply(ctx, nodeAddr(name, fmt.Sprintf("10.0.%d.1/24", i%250))); err != nil {
				t.Fatal(err)
			}
			want = append(want, change{datastore.Modified, name})
		}
	}

	last := rev
	for i, w := range want {
		var ev datastore.WatchEvent
		select {
		case ev = <-ch:
		case <-ctx.Done():
			t.Fatalf("event %d of %d: %v", i, len(want), ctx.Err())
		}
		if ev.Err != nil {
			t.Fatalf("event %d: %v", i, ev.Err)
		}
		if ev.Type != w.typ || ev.ID.Name != w.name {
			t.Fatalf("event %d: %s %s, want %s %s", i, ev.Type, ev.ID, w.typ, w.name)
		}
		if ev.Revision <= last {
			t.Fatalf("event %d: revision %d after %d", i, ev.Revision, last)
		}
		if ev.Resource == nil || ev.Resource.GetObjectMeta().Name != w.name {
			t.Fatalf("event %d: resource %v", i, ev.Resource)
		}
		last = ev.Revision
	}
}

func TestWatchDeleteCarriesPreviousValue(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	n, err := c.Create(ctx, nodeAddr("n1", "10.0.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	rv := n.GetObjectMeta().ResourceVersion
	created, err := parseRV(n)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// From the revision after the create: a watch from "now" might open
	// after the update below and miss it.
	ch := c.Watch(wctx, "", "", created+1)
	if _, err := c.Apply(ctx, nodeAddr("n1", "10.0.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != datastore.Modified {
		t.Fatalf("first event %s, want Modified", ev.Type)
	}
	if err := c.Delete(ctx, "Node", "", "n1", ""); err != nil {
		t.Fatal(err)
	}
	ev := <-ch
	if ev.Type != datastore.Deleted || ev.Resource.(*api.Node).Spec.BGP.IPv4Address != "10.0.0.1/24" {
		t.Fatalf("delete event %+v, want Deleted with the previous value", ev)
	}
	if ev.Resource.GetObjectMeta().ResourceVersion == rv {
		t.Errorf("deleted value has the version of the create, want that of the last update")
	}
}

func TestWatchCompacted(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	var rev int64
	for i := range 5 {
		r, err := c.Apply(ctx, node(fmt.Sprintf("n%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		rev, _ = parseRV(r)
	}
	if _, err := c.Etcd().Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	ch := c.Watch(ctx, "Node", "", 2)
	ev, ok := <-ch
	if !ok || !errors.Is(ev.Err, datastore.ErrCompacted) {
		t.Fatalf("watch from a compacted revision: %+v, want ErrCompacted", ev)
	}
	if _, ok := <-ch; ok {
		t.Error("watch goes on after ErrCompacted, want the channel closed")
	}
}

func parseRV(r api.Resource) (int64, error) {
	var rev int64
	_, err := fmt.Sscan(r.GetObjectMeta().ResourceVersion, &rev)
	return rev, err
}
