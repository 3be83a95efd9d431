package datastore_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// testTimeout bounds every wait of a test: generous, for a busy machine.
const testTimeout = 30 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// etcdDirs is where a test's etcd keeps its data and socket. The socket
// lives in a short os.MkdirTemp path: t.TempDir paths can exceed the 107
// bytes a unix socket path may have.
type etcdDirs struct {
	data, sock string
}

func newEtcdDirs(t testing.TB) etcdDirs {
	d, err := os.MkdirTemp("", "bf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return etcdDirs{data: filepath.Join(d, "data"), sock: filepath.Join(d, "etcd.sock")}
}

func (d etcdDirs) listen() string { return "unix://" + d.sock }

// startEtcd starts an embedded etcd in dirs, stopped when the test ends.
func startEtcd(t testing.TB, dirs etcdDirs) *datastore.Embedded {
	t.Helper()
	e, err := datastore.StartEmbedded(testContext(t), datastore.EmbeddedConfig{DataDir: dirs.data, Listen: dirs.listen(), Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// newClient connects to endpoint, closed when the test ends.
func newClient(t testing.TB, endpoint string) *datastore.Client {
	t.Helper()
	c, err := datastore.New(testContext(t), datastore.Config{Endpoints: []string{endpoint}, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newEnv starts an etcd and a client of it.
func newEnv(t testing.TB) (*datastore.Embedded, *datastore.Client) {
	e := startEtcd(t, newEtcdDirs(t))
	return e, newClient(t, e.ClientEndpoint())
}

func node(name string) *api.Node {
	return &api.Node{TypeMeta: api.TypeMeta{Kind: api.KindNode}, ObjectMeta: api.ObjectMeta{Name: name}}
}

func nodeAddr(name, addr string) *api.Node {
	n := node(name)
	n.Spec.BGP = &api.NodeBGPSpec{IPv4Address: addr}
	return n
}

// recorder is a SyncHandler that keeps the state it was given and every
// call, and wakes waiters on each call.
type recorder struct {
	mu        sync.Mutex
	state     map[datastore.ResourceID]api.Resource
	snapshots []datastore.Snapshot
	updates   []datastore.Event
	statuses  []datastore.SyncStatus
	bad       []*datastore.DecodeError
	changed   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{state: map[datastore.ResourceID]api.Resource{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) OnStatus(s datastore.SyncStatus) {
	r.mu.Lock()
	r.statuses = append(r.statuses, s)
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) OnSnapshot(s datastore.Snapshot) {
	r.mu.Lock()
	r.snapshots = append(r.snapshots, s)
	r.state = map[datastore.ResourceID]api.Resource{}
	for _, res := range s.Resources {
		r.state[datastore.IDOf(res)] = res
	}
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) OnUpdates(evs []datastore.Event) {
	r.mu.Lock()
	for _, ev := range evs {
		r.updates = append(r.updates, ev)
		if ev.Type == datastore.Deleted {
			delete(r.state, ev.ID)
		} else {
			r.state[ev.ID] = ev.Resource
		}
	}
	r.mu.Unlock()
	r.poke()
}

func (r *recorder) onBad(de *datastore.DecodeError) {
	r.mu.Lock()
	r.bad = append(r.bad, de)
	r.mu.Unlock()
	r.poke()
}

// waitFor waits, without polling, until cond (called with r.mu held) holds.
func (r *recorder) waitFor(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	for {
		r.mu.Lock()
		ok := cond()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-ctx.Done():
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waiting for %s: %v (statuses %v, %d snapshots, %d updates, %d resources)", what, ctx.Err(), r.statuses, len(r.snapshots), len(r.updates), len(r.state))
		}
	}
}

func (r *recorder) lastStatus() datastore.SyncStatus {
	if len(r.statuses) == 0 {
		return 0
	}
	return r.statuses[len(r.statuses)-1]
}

// stateString renders what the handler holds, to compare with etcd.
func stateString(m map[datastore.ResourceID]api.Resource) map[string]string {
	out := map[string]string{}
	for id, r := range m {
		out[id.String()] = r.GetObjectMeta().ResourceVersion
	}
	return out
}

func listString(t testing.TB, rs []api.Resource) map[string]string {
	out := map[string]string{}
	for _, r := range rs {
		out[datastore.IDOf(r).String()] = r.GetObjectMeta().ResourceVersion
	}
	return out
}

// runSyncer runs a syncer until the test ends.
func runSyncer(t testing.TB, c *datastore.Client, cfg datastore.SyncerConfig) {
	t.Helper()
	s, err := datastore.NewSyncer(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("syncer Run: %v", err)
		}
	})
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}
