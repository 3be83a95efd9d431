package felix

import (
	"context"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestStatusNotRewrittenWhenUnchanged: an agent that reconciles again and
// again (a kernel resync every 20 ms) with nothing changing does not
// write its FelixStatus again: etcd's version of the key stays. A change
// (an endpoint) is written.
func TestStatusNotRewrittenWhenUnchanged(t *testing.T) {
	env := startEtcd(t)
	k := newFakeKernel()
	k.addLink("wla")
	env.create(t, wep("a", nodeName, "wla", "10.65.0.1/32"), block("10.65.0.0/26", nodeName))
	cfg := k.config(t, env.client)
	cfg.ResyncInterval = 20 * time.Millisecond
	runAgent(t, cfg)
	env.waitStatus(t, "programmed", inSyncWith(2))
	key := api.KeyRoot + "felixstatuses/" + nodeName
	version := func() int64 {
		resp, err := env.client.Etcd().Get(context.Background(), key)
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("reading %s: %v (%d keys)", key, err, len(resp.Kvs))
		}
		return resp.Kvs[0].Version
	}
	v0 := version()
	// A measurement window, not a wait for state: 50 resyncs, each a
	// reconcile and a report, at a StatusInterval of 10 ms.
	time.Sleep(time.Second)
	if v := version(); v != v0 {
		t.Fatalf("FelixStatus written %d times in 1 s with nothing changed", v-v0)
	}
	k.addLink("wlb")
	env.create(t, wep("b", nodeName, "wlb", "10.65.0.2/32"))
	env.waitStatus(t, "second endpoint", inSyncWith(3))
	if v := version(); v == v0 {
		t.Fatal("a changed status was not written")
	}
}
