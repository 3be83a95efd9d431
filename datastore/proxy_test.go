package datastore_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// TestProxyCoalescesAgentWatches: ten agents' syncers (the router's
// kinds: two watch ranges each, twenty watches) behind etcd's gRPC proxy
// cost etcd a handful of watches, not twenty; every agent still receives
// every change, and status writes under a lease go through the proxy.
func TestProxyCoalescesAgentWatches(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	e, c := newEnv(t)
	upstream := newClient(t, e.ClientEndpoint())
	cw := &countingWatcher{Watcher: upstream.Etcd().Watcher, keys: map[string]int{}}
	upstream.Etcd().Watcher = cw
	dir, err := os.MkdirTemp("", "bf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p, err := datastore.StartProxy(ctx, datastore.ProxyConfig{Upstream: upstream, Listen: "unix://" + filepath.Join(dir, "proxy.sock"), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing the proxy: %v", err)
		}
	})

	const agents = 10
	recs := make([]*recorder, agents)
	for i := range recs {
		ac := newClient(t, p.Endpoint())
		recs[i] = newRecorder()
		runSyncer(t, ac, datastore.SyncerConfig{Kinds: []string{api.KindNode, api.KindBGPConfiguration, api.KindBGPPeer}, Handler: recs[i], Logger: testLogger(t)})
	}
	for i, r := range recs {
		r.waitFor(ctx, t, fmt.Sprintf("agent %d in sync", i), func() bool { return r.lastStatus() == datastore.InSync })
	}
	if _, err := c.Create(ctx, node("n1")); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		r.waitFor(ctx, t, fmt.Sprintf("agent %d has n1", i), func() bool {
			return r.state[datastore.ResourceID{Kind: api.KindNode, Name: "n1"}] != nil
		})
	}
	cw.mu.Lock()
	upstreamWatches := cw.calls
	cw.mu.Unlock()
	t.Logf("%d agents, %d watches: %d upstream", agents, 2*agents, upstreamWatches)
	if upstreamWatches > 2*agents/2 {
		t.Fatalf("%d upstream watches for %d agents' %d, want them coalesced (at most %d)", upstreamWatches, agents, 2*agents, agents)
	}

	// A node's status writer through the proxy: its lease and records.
	ac := newClient(t, p.Endpoint())
	w, err := ac.NewStatusWriter(ctx, datastore.StatusWriterConfig{TTL: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Put(ctx, node("status-1")); err != nil {
		t.Fatalf("status write through the proxy: %v", err)
	}
	leases, err := c.Etcd().Leases(ctx)
	if err != nil || len(leases.Leases) != 1 {
		t.Fatalf("leases in etcd: %v (%v), want the writer's one", leases, err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("closing the status writer: %v", err)
	}
	if rs, _, err := c.List(ctx, api.KindNode, ""); err != nil || len(rs) != 1 {
		t.Fatalf("after Close: %d nodes (%v), want n1 only", len(rs), err)
	}
}
