package datastore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// Benchmarks run against an embedded etcd with fsync on, as in production.
// Writers run concurrently (as CNI plugins on many nodes do), so that
// etcd batches its fsyncs; the raw benchmarks write the same values with
// the same concurrency through clientv3 directly and read them with a raw
// watch, the baseline for our overhead.

const (
	benchEndpoints = 10000
	benchWriters   = 64
	benchFanout    = 50
	benchUpdates   = 1000
)

// benchWEP returns WorkloadEndpoint i of a namespace.
func benchWEP(b *testing.B, ns string, i int) api.Resource {
	r, err := api.New("WorkloadEndpoint")
	if err != nil {
		b.Fatal(err)
	}
	w := r.(*api.WorkloadEndpoint)
	nodeName := fmt.Sprintf("node-%d", i%100)
	workload := fmt.Sprintf("pod-%d", i)
	w.Namespace = ns
	w.Name = api.WorkloadEndpointName(nodeName, "k8s", workload, "eth0")
	w.Labels = map[string]string{"app": fmt.Sprintf("app-%d", i%20), "projectcalico.org/namespace": ns}
	w.Spec = api.WorkloadEndpointSpec{
		Node: nodeName, Orchestrator: "k8s", Workload: workload, Endpoint: "eth0",
		ContainerID:   fmt.Sprintf("%016x", i),
		InterfaceName: fmt.Sprintf("cali%011x", i),
		MAC:           fmt.Sprintf("02:00:0a:%02x:%02x:%02x", (i>>16)&0xff, (i>>8)&0xff, i&0xff),
		IPNetworks:    []string{fmt.Sprintf("10.%d.%d.%d/32", 64+(i>>16)&0x3f, (i>>8)&0xff, i&0xff)},
		IPv4Gateway:   "169.254.1.1",
		Profiles:      []string{"kns." + ns},
	}
	return w
}

// benchContext bounds a whole benchmark, setup and every iteration.
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b.Cleanup(cancel)
	return ctx
}

// benchEnv starts an etcd and a client for a benchmark.
func benchEnv(b *testing.B) (*datastore.Embedded, *datastore.Client) {
	dirs := newEtcdDirs(b)
	e, err := datastore.StartEmbedded(benchContext(b), datastore.EmbeddedConfig{DataDir: dirs.data, Listen: dirs.listen()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	c, err := datastore.New(benchContext(b), datastore.Config{Endpoints: []string{e.ClientEndpoint()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return e, c
}

// parallel runs f(i) for i in [0, n) on benchWriters goroutines.
func parallel(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	var next atomic.Int64
	errs := make([]error, benchWriters)
	var wg sync.WaitGroup
	for w := range benchWriters {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && errs[w] == nil; i = int(next.Add(1) - 1) {
				errs[w] = f(ctx, i)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// counter is a SyncHandler that counts updates and signals when a target
// is reached.
type counter struct {
	mu     sync.Mutex
	n      int
	target int
	reach  chan struct{}
	// seen records, per revision, when it arrived (fan-out benchmark).
	seen map[int64]time.Time
}

func (c *counter) OnStatus(datastore.SyncStatus) {}

func (c *counter) OnSnapshot(s datastore.Snapshot) { c.add(len(s.Resources), nil) }

func (c *counter) OnUpdates(evs []datastore.Event) { c.add(len(evs), evs) }

func (c *counter) add(n int, evs []datastore.Event) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen != nil {
		for _, ev := range evs {
			c.seen[ev.Revision] = now
		}
	}
	c.n += n
	if c.reach != nil && c.n >= c.target {
		close(c.reach)
		c.reach = nil
	}
}

// expect arms the counter for n more updates and returns the channel that
// closes when they have arrived.
func (c *counter) expect(n int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.target = c.n + n
	ch := make(chan struct{})
	c.reach = ch
	return ch
}

func waitClosed(b *testing.B, ctx context.Context, ch <-chan struct{}, what string) {
	select {
	case <-ch:
	case <-ctx.Done():
		b.Fatalf("waiting for %s: %v", what, ctx.Err())
	}
}

// BenchmarkSyncer10kEndpoints: 10,000 WorkloadEndpoints created through
// Client.Create and delivered by a Syncer ("live"), and a Syncer's first
// snapshot of 10,000 ("snapshot").
func BenchmarkSyncer10kEndpoints(b *testing.B) {
	b.Run("live", func(b *testing.B) {
		ctx := benchContext(b)
		_, c := benchEnv(b)
		h := &counter{}
		ready := h.expect(0)
		runSyncer(b, c, datastore.SyncerConfig{Kinds: []string{"WorkloadEndpoint"}, Handler: h})
		waitClosed(b, ctx, ready, "snapshot")
		b.ResetTimer()
		for it := range b.N {
			b.StopTimer()
			ns := fmt.Sprintf("ns-%d", it)
			weps := make([]api.Resource, benchEndpoints)
			for i := range weps {
				weps[i] = benchWEP(b, ns, i)
			}
			done := h.expect(benchEndpoints)
			b.StartTimer()
			if err := parallel(ctx, benchEndpoints, func(ctx context.Context, i int) error {
				_, err := c.Create(ctx, weps[i])
				return err
			}); err != nil {
				b.Fatal(err)
			}
			waitClosed(b, ctx, done, "endpoints")
		}
		b.ReportMetric(float64(b.N*benchEndpoints)/b.Elapsed().Seconds(), "endpoints/s")
	})
	b.Run("snapshot", func(b *testing.B) {
		ctx := benchContext(b)
		_, c := benchEnv(b)
		var weps []api.Resource
		for i := range benchEndpoints {
			weps = append(weps, benchWEP(b, "snap", i))
		}
		for chunk := range slices.Chunk(weps, 2000) {
			if _, err := c.ApplyAll(ctx, chunk); err != nil {
				b.Fatal(err)
			}
		}
		b.ResetTimer()
		for range b.N {
			h := &counter{}
			done := h.expect(benchEndpoints)
			s, err := datastore.NewSyncer(c, datastore.SyncerConfig{Kinds: []string{"WorkloadEndpoint"}, Handler: h})
			if err != nil {
				b.Fatal(err)
			}
			sctx, cancel := context.WithCancel(ctx)
			errc := make(chan error, 1)
			go func() { errc <- s.Run(sctx) }()
			waitClosed(b, ctx, done, "snapshot")
			b.StopTimer()
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.N*benchEndpoints)/b.Elapsed().Seconds(), "endpoints/s")
	})
}

// BenchmarkRawEtcd10kEndpoints is the baseline of BenchmarkSyncer10kEndpoints:
// the same JSON values put with clientv3 (a create-if-absent transaction,
// as Create does) and read by a raw clientv3 watch; and a raw paginated-free
// Get of the 10,000 for the snapshot.
func BenchmarkRawEtcd10kEndpoints(b *testing.B) {
	b.Run("live", func(b *testing.B) {
		ctx := benchContext(b)
		_, c := benchEnv(b)
		cli := c.Etcd()
		ki, _ := api.LookupKind("WorkloadEndpoint")
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var got atomic.Int64
		wch := cli.Watch(wctx, api.ListPrefix(ki, ""), clientv3.WithPrefix(), clientv3.WithPrevKV())
		b.ResetTimer()
		for it := range b.N {
			b.StopTimer()
			ns := fmt.Sprintf("ns-%d", it)
			keys := make([]string, benchEndpoints)
			vals := make([]string, benchEndpoints)
			for i := range keys {
				w := benchWEP(b, ns, i)
				k, _ := api.KeyOf(w)
				v, _ := api.Encode(w)
				keys[i], vals[i] = k, string(v)
			}
			b.StartTimer()
			if err := parallel(ctx, benchEndpoints, func(ctx context.Context, i int) error {
				_, err := cli.Txn(ctx).
					If(clientv3.Compare(clientv3.CreateRevision(keys[i]), "=", 0)).
					Then(clientv3.OpPut(keys[i], vals[i])).Commit()
				return err
			}); err != nil {
				b.Fatal(err)
			}
			for got.Load() < int64(benchEndpoints*(it+1)) {
				select {
				case resp := <-wch:
					got.Add(int64(len(resp.Events)))
				case <-ctx.Done():
					b.Fatal(ctx.Err())
				}
			}
		}
		b.ReportMetric(float64(b.N*benchEndpoints)/b.Elapsed().Seconds(), "endpoints/s")
	})
	b.Run("snapshot", func(b *testing.B) {
		ctx := benchContext(b)
		_, c := benchEnv(b)
		var weps []api.Resource
		for i := range benchEndpoints {
			weps = append(weps, benchWEP(b, "snap", i))
		}
		for chunk := range slices.Chunk(weps, 2000) {
			if _, err := c.ApplyAll(ctx, chunk); err != nil {
				b.Fatal(err)
			}
		}
		ki, _ := api.LookupKind("WorkloadEndpoint")
		b.ResetTimer()
		for range b.N {
			resp, err := c.Etcd().Get(ctx, api.ListPrefix(ki, ""), clientv3.WithPrefix())
			if err != nil || len(resp.Kvs) != benchEndpoints {
				b.Fatalf("raw get: %d keys, %v", len(resp.Kvs), err)
			}
		}
		b.ReportMetric(float64(b.N*benchEndpoints)/b.Elapsed().Seconds(), "endpoints/s")
	})
}

// BenchmarkWatchFanout50: 50 Syncers, each on its own client as 50 nodes
// would be, all receive benchUpdates endpoint updates. Reported: the time
// from issuing an update until the last of the 50 has it (p50, p99), and
// the deliveries per second over all syncers.
func BenchmarkWatchFanout50(b *testing.B) {
	ctx := benchContext(b)
	e, c := benchEnv(b)
	handlers := make([]*counter, benchFanout)
	var ready []<-chan struct{}
	for i := range handlers {
		sc, err := datastore.New(ctx, datastore.Config{Endpoints: []string{e.ClientEndpoint()}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sc.Close() })
		handlers[i] = &counter{seen: map[int64]time.Time{}}
		ready = append(ready, handlers[i].expect(0))
		runSyncer(b, sc, datastore.SyncerConfig{Kinds: []string{"WorkloadEndpoint"}, Handler: handlers[i]})
	}
	for _, r := range ready {
		waitClosed(b, ctx, r, "snapshot")
	}
	var weps []api.Resource
	for i := range 100 {
		weps = append(weps, benchWEP(b, "fan", i))
	}
	var lat []time.Duration
	b.ResetTimer()
	for it := range b.N {
		b.StopTimer()
		var done []<-chan struct{}
		for _, h := range handlers {
			h.mu.Lock()
			clear(h.seen)
			h.mu.Unlock()
			done = append(done, h.expect(benchUpdates))
		}
		var mu sync.Mutex
		issued := map[int64]time.Time{}
		b.StartTimer()
		if err := parallel(ctx, benchUpdates, func(ctx context.Context, i int) error {
			w := weps[i%len(weps)].DeepCopyResource()
			w.GetObjectMeta().Annotations = map[string]string{"update": fmt.Sprint(it, "-", i)}
			t0 := time.Now()
			r, err := c.Apply(ctx, w)
			if err != nil {
				return err
			}
			rev, _ := parseRV(r)
			mu.Lock()
			issued[rev] = t0
			mu.Unlock()
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		for _, d := range done {
			waitClosed(b, ctx, d, "fan-out")
		}
		b.StopTimer()
		for rev, t0 := range issued {
			var last time.Time
			for _, h := range handlers {
				h.mu.Lock()
				if t := h.seen[rev]; t.After(last) {
					last = t
				}
				h.mu.Unlock()
			}
			lat = append(lat, last.Sub(t0))
		}
		b.StartTimer()
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "ms-p99")
	b.ReportMetric(float64(b.N*benchUpdates*benchFanout)/b.Elapsed().Seconds(), "deliveries/s")
}

// BenchmarkRawWatchFanout50 is the baseline of BenchmarkWatchFanout50: 50
// clients with a raw clientv3 watch each, the same raw puts.
func BenchmarkRawWatchFanout50(b *testing.B) {
	ctx := benchContext(b)
	e, c := benchEnv(b)
	ki, _ := api.LookupKind("WorkloadEndpoint")
	prefix := api.ListPrefix(ki, "")
	var counts [benchFanout]atomic.Int64
	changed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	for i := range benchFanout {
		sc, err := datastore.New(ctx, datastore.Config{Endpoints: []string{e.ClientEndpoint()}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { sc.Close() })
		wch := sc.Etcd().Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
		<-wch // created
		wg.Add(1)
		go func() {
			defer wg.Done()
			for resp := range wch {
				counts[i].Add(int64(len(resp.Events)))
				select {
				case changed <- struct{}{}:
				default:
				}
			}
		}()
	}
	keys := make([]string, 100)
	vals := make([]string, 100)
	for i := range keys {
		w := benchWEP(b, "fan", i)
		k, _ := api.KeyOf(w)
		v, _ := api.Encode(w)
		keys[i], vals[i] = k, string(v)
	}
	b.ResetTimer()
	for it := range b.N {
		if err := parallel(ctx, benchUpdates, func(ctx context.Context, i int) error {
			_, err := c.Etcd().Put(ctx, keys[i%len(keys)], vals[i%len(vals)])
			return err
		}); err != nil {
			b.Fatal(err)
		}
		want := int64(benchUpdates * (it + 1))
		for i := range counts {
			for counts[i].Load() < want {
				select {
				case <-changed:
				case <-ctx.Done():
					b.Fatal(ctx.Err())
				}
			}
		}
	}
	b.ReportMetric(float64(b.N*benchUpdates*benchFanout)/b.Elapsed().Seconds(), "deliveries/s")
}
