package felix

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/calc"
	"github.com/bgpfabric/bgpfabric/felix/ifaces"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// testTimeout bounds every wait of a test: generous, for a busy machine.
const testTimeout = 60 * time.Second

const nodeName = "node-1"

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// etcdEnv is an embedded etcd for one test, with its data in a short
// temporary directory (a unix socket path may have at most 107 bytes).
type etcdEnv struct {
	dir    string
	etcd   *datastore.Embedded
	client *datastore.Client
}

func startEtcd(t testing.TB) *etcdEnv {
	t.Helper()
	dir, err := os.MkdirTemp("", "bf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := &etcdEnv{dir: dir}
	env.start(t)
	env.client = env.newClient(t)
	return env
}

func (e *etcdEnv) endpoint() string { return "unix://" + filepath.Join(e.dir, "etcd.sock") }

// start (re)starts the server on the same data and socket.
func (e *etcdEnv) start(t testing.TB) {
	t.Helper()
	srv, err := datastore.StartEmbedded(testContext(t), datastore.EmbeddedConfig{
		DataDir: filepath.Join(e.dir, "data"), Listen: e.endpoint(),
	})
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	e.etcd = srv
	t.Cleanup(func() { srv.Close() })
}

func (e *etcdEnv) newClient(t testing.TB) *datastore.Client {
	t.Helper()
	c, err := datastore.New(testContext(t), datastore.Config{Endpoints: []string{e.endpoint()}})
	if err != nil {
		t.Fatalf("connecting to etcd: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (e *etcdEnv) create(t testing.TB, rs ...api.Resource) {
	t.Helper()
	for _, r := range rs {
		if _, err := e.client.Create(testContext(t), r); err != nil {
			t.Fatalf("creating %s: %v", calc.KeyOf(r), err)
		}
	}
}

func (e *etcdEnv) apply(t testing.TB, rs ...api.Resource) {
	t.Helper()
	for _, r := range rs {
		if _, err := e.client.Apply(testContext(t), r); err != nil {
			t.Fatalf("applying %s: %v", calc.KeyOf(r), err)
		}
	}
}

func (e *etcdEnv) delete(t testing.TB, kind, ns, name string) {
	t.Helper()
	if err := e.client.Delete(testContext(t), kind, ns, name, ""); err != nil {
		t.Fatalf("deleting %s %s/%s: %v", kind, ns, name, err)
	}
}

// waitStatus waits until this node's FelixStatus satisfies ok (nil: until
// it is gone) and returns it. It watches, it does not poll.
func (e *etcdEnv) waitStatus(t testing.TB, what string, ok func(api.FelixStatusReport) bool) api.FelixStatusReport {
	t.Helper()
	return e.waitStatusOf(t, nodeName, what, ok)
}

// waitStatusOf is waitStatus for the FelixStatus of node.
func (e *etcdEnv) waitStatusOf(t testing.TB, node, what string, ok func(api.FelixStatusReport) bool) api.FelixStatusReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	rs, rev, err := e.client.List(ctx, api.KindFelixStatus, "")
	if err != nil {
		t.Fatal(err)
	}
	var cur *api.FelixStatus
	for _, r := range rs {
		if r.GetObjectMeta().Name == node {
			cur = r.(*api.FelixStatus)
		}
	}
	check := func() bool {
		if ok == nil {
			return cur == nil
		}
		return cur != nil && ok(cur.Status)
	}
	w := e.client.Watch(ctx, api.KindFelixStatus, "", rev+1)
	for !check() {
		select {
		case ev, open := <-w:
			if !open {
				t.Fatalf("waiting for felix status: %s: gave up; last: %+v", what, cur)
			}
			if ev.Err != nil || ev.ID.Name != node {
				continue
			}
			if ev.Type == datastore.Deleted {
				cur = nil
			} else {
				cur = ev.Resource.(*api.FelixStatus)
			}
		case <-ctx.Done():
			t.Fatalf("waiting for felix status: %s: timed out; last: %+v", what, cur)
		}
	}
	if cur == nil {
		return api.FelixStatusReport{}
	}
	return cur.Status
}

// inSyncWith is a status predicate: converged, with n routes.
func inSyncWith(routes int) func(api.FelixStatusReport) bool {
	return func(s api.FelixStatusReport) bool {
		return s.Ready && s.InSync && s.Dataplane.State == api.DataplaneInSync && s.Routes == routes
	}
}

// Resource builders.

func wep(name, node, iface string, nets ...string) *api.WorkloadEndpoint {
	return &api.WorkloadEndpoint{
		ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name},
		Spec: api.WorkloadEndpointSpec{
			Node: node, Orchestrator: "cni", Workload: name, Endpoint: "eth0",
			InterfaceName: iface, IPNetworks: nets, Profiles: []string{"default"},
		},
	}
}

func block(cidr, node string) *api.IPAMBlock {
	b, err := api.NewIPAMBlock(netip.MustParsePrefix(cidr), api.HostAffinity(node))
	if err != nil {
		panic(err)
	}
	return b
}

// fakeKernel is the agent's dataplane in memory: routes, interface
// settings and a link watch that the test drives.
type fakeKernel struct {
	routes *routetable.Fake
	ifaces *ifaces.Fake
	links  chan routetable.LinkUpdate
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{routes: routetable.NewFake(), ifaces: ifaces.NewFake(), links: make(chan routetable.LinkUpdate, 64)}
}

// addLink creates an interface (up) and tells the agent.
func (k *fakeKernel) addLink(name string) {
	l := k.routes.AddLink(name, true)
	k.ifaces.AddLink(name, l.Index)
	k.links <- routetable.LinkUpdate{Link: l}
}

// config returns an agent config on the fakes; t may be nil (no logs).
func (k *fakeKernel) config(t testing.TB, c *datastore.Client) Config {
	var log *slog.Logger
	if t != nil {
		log = testLogger(t)
	}
	return Config{
		NodeName: nodeName, Client: c, Logger: log,
		StatusInterval: 10 * time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Routes: k.routes, Interfaces: k.ifaces,
		WatchLinks: func(ctx context.Context) (<-chan routetable.LinkUpdate, error) {
			k.links <- routetable.LinkUpdate{Link: routetable.Link{Name: "lo", Index: 1, Up: true}}
			return k.links, nil
		},
	}
}

// runAgent runs an agent until the test ends (or stop is called) and
// fails the test if Run returns an error.
func runAgent(t testing.TB, cfg Config) (stop func()) {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			t.Errorf("agent Run: %v", err)
		}
	}()
	stop = func() {
		cancel()
		<-done
	}
	t.Cleanup(stop)
	return stop
}

// routeLines returns the fake's routes as sorted `ip route` lines.
func routeLines(f *routetable.Fake) []string {
	out := strings.Fields(strings.ReplaceAll(f.Render(), " ", "_"))
	for i := range out {
		out[i] = strings.ReplaceAll(out[i], "_", " ")
	}
	slices.Sort(out)
	return out
}
