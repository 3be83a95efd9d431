package datastore_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

func TestCreateGetUpdateDelete(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)

	created, err := c.Create(ctx, nodeAddr("n1", "10.0.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	m := created.GetObjectMeta()
	if m.UID == "" || m.CreationTimestamp == "" || m.ResourceVersion == "" {
		t.Fatalf("Create returned meta %+v, want UID, creation time and version set", m)
	}
	if _, err := c.Create(ctx, node("n1")); !errors.Is(err, datastore.ErrAlreadyExists) {
		t.Errorf("second Create: %v, want ErrAlreadyExists", err)
	}

	got, err := c.Get(ctx, "nodes", "", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("Get differs from Create's result (-created +got):\n%s", diff)
	}

	upd := got.DeepCopyResource().(*api.Node)
	upd.Spec.BGP.IPv4Address = "10.0.0.2/24"
	upd.UID = "caller-cannot-change-this"
	updated, err := c.Update(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	if um := updated.GetObjectMeta(); um.UID != m.UID || um.CreationTimestamp != m.CreationTimestamp || um.ResourceVersion == m.ResourceVersion {
		t.Errorf("Update meta %+v, want UID and creation time of %+v and a new version", um, m)
	}

	// The version read before the update is stale now.
	if _, err := c.Update(ctx, got); !errors.Is(err, datastore.ErrConflict) {
		t.Errorf("Update with stale version: %v, want ErrConflict", err)
	}
	if err := c.Delete(ctx, "Node", "", "n1", m.ResourceVersion); !errors.Is(err, datastore.ErrConflict) {
		t.Errorf("Delete with stale version: %v, want ErrConflict", err)
	}
	if err := c.Delete(ctx, "Node", "", "n1", updated.GetObjectMeta().ResourceVersion); err != nil {
		t.Errorf("Delete with current version: %v", err)
	}

	_, err = c.Get(ctx, "Node", "", "n1")
	if !errors.Is(err, datastore.ErrNotFound) || !strings.Contains(err.Error(), "Node n1") {
		t.Errorf("Get after delete: %v, want ErrNotFound naming Node n1", err)
	}
	if _, err := c.Update(ctx, updated); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("Update after delete: %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, "Node", "", "n1", ""); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("Delete after delete: %v, want ErrNotFound", err)
	}
	if err := c.Delete(ctx, "Node", "", "n1", "7"); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("CAS Delete after delete: %v, want ErrNotFound", err)
	}
}

func TestCreateValidates(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	_, err := c.Create(ctx, node("Not_A_Name"))
	var ve *api.ValidationError
	if !errors.As(err, &ve) || ve.Fields[0].Field != "metadata.name" {
		t.Fatalf("Create of an invalid name: %v, want a ValidationError on metadata.name", err)
	}
	if _, err := c.Update(ctx, node("n1")); err == nil || !strings.Contains(err.Error(), "resourceVersion") {
		t.Errorf("Update without a version: %v, want an error about resourceVersion", err)
	}
	if _, err := c.Get(ctx, "Gadget", "", "x"); err == nil {
		t.Error("Get of an unknown kind succeeded")
	}
}

func TestConcurrentUpdateExactlyOneWins(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	cur, err := c.Create(ctx, node("n1"))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		var wg sync.WaitGroup
		results := make([]api.Resource, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := cur.DeepCopyResource().(*api.Node)
				n.Labels = map[string]string{"writer": strconv.Itoa(i)}
				results[i], errs[i] = c.Update(ctx, n)
			}()
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won == -1:
				won = i
			case err == nil:
				t.Fatalf("round %d: both writers won", round)
			case !errors.Is(err, datastore.ErrConflict):
				t.Fatalf("round %d: writer %d: %v, want ErrConflict", round, i, err)
			}
		}
		if won == -1 {
			t.Fatalf("round %d: no writer won: %v", round, errs)
		}
		cur = results[won]
	}
}

func TestApplyKeepsIdentity(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	first, err := c.Apply(ctx, nodeAddr("n1", "10.0.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Apply(ctx, nodeAddr("n1", "10.0.0.9/24"))
	if err != nil {
		t.Fatal(err)
	}
	f, s := first.GetObjectMeta(), second.GetObjectMeta()
	if f.UID != s.UID || f.CreationTimestamp != s.CreationTimestamp || f.ResourceVersion == s.ResourceVersion {
		t.Errorf("second Apply meta %+v, want the identity of %+v and a new version", s, f)
	}
	got, err := c.Get(ctx, "Node", "", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if addr := got.(*api.Node).Spec.BGP.IPv4Address; addr != "10.0.0.9/24" {
		t.Errorf("stored address %s, want the applied 10.0.0.9/24", addr)
	}
}

func TestApplyAllAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)

	var batch []api.Resource
	for _, n := range names("n", 3000) {
		batch = append(batch, node(n))
	}
	batch[2] = node("Bad_Name")
	batch[1500] = node("also bad")
	_, err := c.ApplyAll(ctx, batch)
	if err == nil || !strings.Contains(err.Error(), "document 2:") || !strings.Contains(err.Error(), "document 1500:") {
		t.Fatalf("ApplyAll with two invalid documents: %v, want an error naming both", err)
	}
	if rs, _, err := c.List(ctx, "Node", ""); err != nil || len(rs) != 0 {
		t.Fatalf("after failed ApplyAll: %d nodes (%v), want none", len(rs), err)
	}

	batch[2], batch[1500] = node("n-2"), node("n-1500")
	out, err := c.ApplyAll(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	rs, rev, err := c.List(ctx, "Node", "")
	if err != nil || len(rs) != 3000 {
		t.Fatalf("after ApplyAll: %d nodes (%v), want 3000", len(rs), err)
	}
	if rv := out[0].GetObjectMeta().ResourceVersion; rv != strconv.FormatInt(rev, 10) {
		t.Errorf("ApplyAll version %s, want the list revision %d (one transaction)", rv, rev)
	}

	// Too big for one transaction of the server: refused, nothing written.
	var huge []api.Resource
	for _, n := range names("h", datastore.EmbeddedMaxTxnOps+1) {
		huge = append(huge, node(n))
	}
	if _, err := c.ApplyAll(ctx, huge); !errors.Is(err, datastore.ErrTooManyOps) {
		t.Errorf("ApplyAll of %d: %v, want ErrTooManyOps", len(huge), err)
	}
	if rs, _, _ := c.List(ctx, "Node", ""); len(rs) != 3000 {
		t.Errorf("after refused ApplyAll: %d nodes, want 3000", len(rs))
	}
	// Duplicates in one batch are refused too.
	if _, err := c.ApplyAll(ctx, []api.Resource{node("d"), node("d")}); err == nil || !strings.Contains(err.Error(), "also document 0") {
		t.Errorf("ApplyAll with a duplicate: %v", err)
	}
}

func TestApplyAllClientLimit(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	e, _ := newEnv(t)
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{e.ClientEndpoint()}, MaxTxnOps: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ApplyAll(ctx, []api.Resource{node("a"), node("b"), node("c")}); !errors.Is(err, datastore.ErrTooManyOps) {
		t.Errorf("ApplyAll over MaxTxnOps: %v, want ErrTooManyOps", err)
	}
}

func TestBadStoredValue(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	for _, n := range []string{"a", "c"} {
		if _, err := c.Create(ctx, node(n)); err != nil {
			t.Fatal(err)
		}
	}
	const badKey = api.KeyRoot + "nodes/b"
	if _, err := c.Etcd().Put(ctx, badKey, "{not json"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Get(ctx, "Node", "", "b")
	var de *datastore.DecodeError
	if !errors.As(err, &de) || de.Key != badKey {
		t.Errorf("Get of a bad value: %v, want a DecodeError naming %s", err, badKey)
	}
	rs, _, err := c.List(ctx, "Node", "")
	if len(rs) != 2 || !errors.As(err, &de) || de.Key != badKey {
		t.Errorf("List: %d resources, error %v; want a and c and a DecodeError naming %s", len(rs), err, badKey)
	}
}

func TestListNamespacesAndKinds(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, c := newEnv(t)
	for i := range 3 {
		if _, err := c.Create(ctx, node(fmt.Sprintf("n%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	all, _, err := c.List(ctx, "", "")
	if err != nil || len(all) != 3 {
		t.Fatalf("List of all kinds: %d (%v), want 3", len(all), err)
	}
	if _, _, err := c.List(ctx, "Node", "ns1"); err == nil {
		t.Error("List of Nodes in a namespace succeeded; Node is not namespaced")
	}
	// A raw key written beside ours under another prefix is not listed.
	if _, err := c.Etcd().Put(ctx, "/other/x", "y"); err != nil {
		t.Fatal(err)
	}
	if all, _, _ := c.List(ctx, "", ""); len(all) != 3 {
		t.Errorf("List sees %d, want 3", len(all))
	}
}
