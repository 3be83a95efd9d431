package datastore_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// countingWatcher counts the keys of the events etcd sends to a client's
// watches: what the agent receives, before any filter of ours.
type countingWatcher struct {
	clientv3.Watcher
	mu    sync.Mutex
	keys  map[string]int // by kind plural
	calls int            // Watch calls: watches opened
}

func (w *countingWatcher) Watch(ctx context.Context, key string, opts ...clientv3.OpOption) clientv3.WatchChan {
	w.mu.Lock()
	w.calls++
	w.mu.Unlock()
	in := w.Watcher.Watch(ctx, key, opts...)
	out := make(chan clientv3.WatchResponse)
	go func() {
		defer close(out)
		for resp := range in {
			w.mu.Lock()
			for _, ev := range resp.Events {
				plural, _, _ := strings.Cut(strings.TrimPrefix(string(ev.Kv.Key), api.KeyRoot), "/")
				w.keys[plural]++
			}
			w.mu.Unlock()
			select {
			case out <- resp:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func (w *countingWatcher) count(plural string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.keys[plural]
}

// TestSyncerDoesNotReceiveOtherAgentsStatus: a syncer of the router's
// kinds (Node, BGPConfiguration, BGPPeer, whose keys surround the status
// kinds') receives its kinds' changes and no event at all for status
// records: every agent writes those, and before the syncer watched ranges
// that leave them out, each write went to every agent.
func TestSyncerDoesNotReceiveOtherAgentsStatus(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	e, c := newEnv(t)
	agent := newClient(t, e.ClientEndpoint())
	cw := &countingWatcher{Watcher: agent.Etcd().Watcher, keys: map[string]int{}}
	agent.Etcd().Watcher = cw

	rec := newRecorder()
	runSyncer(t, agent, datastore.SyncerConfig{Kinds: []string{api.KindNode, api.KindBGPConfiguration, api.KindBGPPeer}, Handler: rec, Logger: testLogger(t)})
	rec.waitFor(ctx, t, "in sync", func() bool { return rec.lastStatus() == datastore.InSync })

	w, err := c.NewStatusWriter(ctx, datastore.StatusWriterConfig{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	for i := range 20 {
		st := &api.BGPStatus{ObjectMeta: api.ObjectMeta{Name: "n1"}, Status: api.BGPStatusReport{
			RouterID: "10.0.0.1", ASNumber: 64512, LastUpdate: "2026-01-01T00:00:00Z",
			Peers: []api.BGPPeerStatus{{PeerIP: "10.0.0.2", State: api.BGPEstablished, Type: api.PeerTypeNode, PrefixesReceived: uint64(i)}},
		}}
		if _, err := w.Put(ctx, st); err != nil {
			t.Fatal(err)
		}
		fs := &api.FelixStatus{ObjectMeta: api.ObjectMeta{Name: "n1"}, Status: api.FelixStatusReport{LastUpdate: "2026-01-01T00:00:00Z", Routes: i}}
		if _, err := w.Put(ctx, fs); err != nil {
			t.Fatal(err)
		}
	}
	// Changes of the synced kinds on both sides of the status keys.
	if _, err := c.Create(ctx, node("n1")); err != nil {
		t.Fatal(err)
	}
	peer := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{PeerIP: "10.0.0.9", ASNumber: new(uint32(65000))}}
	if _, err := c.Create(ctx, peer); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(ctx, t, "node and peer", func() bool {
		return rec.state[datastore.ResourceID{Kind: api.KindNode, Name: "n1"}] != nil &&
			rec.state[datastore.ResourceID{Kind: api.KindBGPPeer, Name: "tor"}] != nil
	})
	if n, f := cw.count("bgpstatuses"), cw.count("felixstatuses"); n != 0 || f != 0 {
		t.Fatalf("the agent's watches received %d BGPStatus and %d FelixStatus events, want none", n, f)
	}
	if cw.count("nodes") != 1 || cw.count("bgppeers") != 1 {
		t.Fatalf("the agent's watches received %d node and %d peer events, want 1 each", cw.count("nodes"), cw.count("bgppeers"))
	}
}
