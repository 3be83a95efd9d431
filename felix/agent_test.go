package felix

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/calc"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// TestAgentFake runs the agent against a real embedded etcd and an
// in-memory kernel: what is written to the datastore appears as routes and
// interface settings, stale routes of ours go, foreign ones stay, routes
// wait for their interface, and nothing is programmed before the first
// snapshot.
func TestAgentFake(t *testing.T) {
	env := startEtcd(t)
	k := newFakeKernel()
	k.addLink("wla")
	// Left by a "previous run": ours, stale; and someone else's.
	k.routes.PutRoute(routetable.KernelRoute{Table: 254, Protocol: 80, Type: routetable.TypeBlackhole, Dst: netip.MustParsePrefix("10.99.0.0/26")})
	k.routes.PutRoute(routetable.KernelRoute{Table: 254, Protocol: 4, Type: routetable.TypeBlackhole, Dst: netip.MustParsePrefix("10.98.0.0/24")})
	// Still wanted: kept across the restart.
	k.routes.PutRoute(routetable.KernelRoute{Table: 254, Protocol: 80, Type: routetable.TypeBlackhole, Dst: netip.MustParsePrefix("10.65.0.0/26")})

	env.create(t,
		wep("a", nodeName, "wla", "10.65.0.1/32"),
		wep("b", nodeName, "wlb", "10.65.0.2/32"), // interface not there yet
		wep("c", "node-2", "wlc", "10.65.0.65/32"),
		block("10.65.0.0/26", nodeName),
		block("10.65.0.64/26", "node-2"),
	)
	runAgent(t, k.config(t, env.client))
	st := env.waitStatus(t, "programmed", inSyncWith(2))
	if st.Endpoints != 2 {
		t.Errorf("status endpoints = %d, want 2", st.Endpoints)
	}
	want := []string{
		"10.65.0.1 dev wla proto 80 scope link",
		"blackhole 10.65.0.0/26 proto 80",
		"blackhole 10.98.0.0/24 proto 4",
	}
	if diff := cmp.Diff(want, routeLines(k.routes)); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if got := k.ifaces.Render(); !strings.Contains(got, "net/ipv4/conf/wla/proxy_arp = 1") || !strings.Contains(got, "net/ipv4/ip_forward = 1") {
		t.Errorf("interface settings:\n%s", got)
	}

	// The pending route appears with its interface.
	k.addLink("wlb")
	env.waitStatus(t, "wlb's route", inSyncWith(3))
	if got := routeLines(k.routes); !strings.Contains(strings.Join(got, "\n"), "10.65.0.2 dev wlb proto 80 scope link") {
		t.Errorf("route via wlb missing: %v", got)
	}

	// An endpoint is deleted; another moves here. (Each step ends in a
	// status that differs from the one before, so the waits cannot be
	// satisfied early.)
	env.delete(t, api.KindWorkloadEndpoint, "default", "a")
	env.waitStatus(t, "deleted", func(s api.FelixStatusReport) bool { return inSyncWith(2)(s) && s.Endpoints == 1 })
	env.apply(t, wep("c", nodeName, "wla", "10.65.0.65/32"))
	env.waitStatus(t, "moved here", func(s api.FelixStatusReport) bool { return inSyncWith(3)(s) && s.Endpoints == 2 })
	want = []string{
		"10.65.0.2 dev wlb proto 80 scope link",
		"10.65.0.65 dev wla proto 80 scope link",
		"blackhole 10.65.0.0/26 proto 80",
		"blackhole 10.98.0.0/24 proto 4",
	}
	if diff := cmp.Diff(want, routeLines(k.routes)); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
}

// TestAgentGatesOnSnapshot: before the datastore answers with a snapshot,
// the routes of an earlier run are not touched.
func TestAgentGatesOnSnapshot(t *testing.T) {
	env := startEtcd(t)
	k := newFakeKernel()
	ours := routetable.KernelRoute{Table: 254, Protocol: 80, Type: routetable.TypeBlackhole, Dst: netip.MustParsePrefix("10.65.0.0/26")}
	k.routes.PutRoute(ours)
	cfg := k.config(t, env.client)
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Drive the loop by hand: link updates, no snapshot.
	dp, err := openDataplane(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &loop{cfg: a.cfg, log: a.log, in: newInbox(), calc: calc.New(calc.Config{NodeName: nodeName}), dp: dp, reporter: newStatusReporter(a.cfg)}
	l.dp.onLink(routetable.LinkUpdate{Link: routetable.Link{Name: "lo", Index: 1, Up: true}})
	l.dirty = true
	if err := l.applyIfDirty(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := k.routes.Stats(); st.Writes != 0 || st.Lists != 0 {
		t.Errorf("dataplane touched before the first snapshot: %+v", st)
	}
	// The snapshot (empty) comes: now the stale route goes.
	l.onBatch(batch{snapshot: &datastore.Snapshot{}})
	if err := l.applyIfDirty(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := k.routes.Render(); got != "" {
		t.Errorf("after the snapshot, routes = %q, want none", got)
	}
}

// TestAgentDataplaneErrorRetried: a failing kernel is reported in the
// status and retried with backoff; the agent keeps running and converges
// once the kernel works again.
func TestAgentDataplaneErrorRetried(t *testing.T) {
	env := startEtcd(t)
	k := newFakeKernel()
	k.addLink("wla")
	flaky := &flakyRoutes{Dataplane: k.routes, failed: make(chan struct{}, 1)}
	cfg := k.config(t, env.client)
	cfg.Routes = flaky
	runAgent(t, cfg)
	env.waitStatus(t, "empty and in sync", inSyncWith(0))

	flaky.fail.Store(true)
	env.create(t, wep("a", nodeName, "wla", "10.65.0.1/32"))
	st := env.waitStatus(t, "failure reported", func(s api.FelixStatusReport) bool {
		return s.Dataplane.State == api.DataplaneFailed && !s.InSync
	})
	if !strings.Contains(st.Dataplane.Error, "10.65.0.1/32") || !strings.Contains(st.Dataplane.Error, syscall.EIO.Error()) {
		t.Errorf("status error %q does not name the route and the errno", st.Dataplane.Error)
	}
	// Retried, by the backoff timer alone (nothing else changes).
	for range 3 {
		select {
		case <-flaky.failed:
		case <-testContext(t).Done():
			t.Fatal("no retry")
		}
	}

	flaky.fail.Store(false)
	env.waitStatus(t, "recovered", inSyncWith(1))
	if got := k.routes.Render(); !strings.Contains(got, "10.65.0.1 dev wla proto 80") {
		t.Errorf("route missing after recovery: %q", got)
	}
}

// flakyRoutes fails every write while fail is set.
type flakyRoutes struct {
	routetable.Dataplane
	fail   atomic.Bool
	failed chan struct{} // a token per failed write, if there is room
}

func (f *flakyRoutes) WriteRoutes(ctx context.Context, ops []routetable.RouteOp) []routetable.OpError {
	if !f.fail.Load() {
		return f.Dataplane.WriteRoutes(ctx, ops)
	}
	errs := make([]routetable.OpError, len(ops))
	for i := range ops {
		errs[i] = routetable.OpError{Index: i, Err: syscall.EIO}
	}
	select {
	case f.failed <- struct{}{}:
	default:
	}
	return errs
}

// TestInvalidPolicyNeverReachesDataplane: the datastore rejects a policy
// with an invalid selector, naming the field, so the ACL never sees it;
// a valid policy written next goes through.
func TestInvalidPolicyNeverReachesDataplane(t *testing.T) {
	env := startEtcd(t)
	k := newFakeKernel()
	acl := &recordingACL{}
	cfg := k.config(t, env.client)
	cfg.NewACL = acl.factory
	runAgent(t, cfg)
	env.waitStatus(t, "started", inSyncWith(0))

	bad := &api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "bad"}}
	bad.Spec.Selector = "role == 'web"
	_, err := env.client.Create(testContext(t), bad)
	if err == nil || !strings.Contains(err.Error(), "spec.selector") {
		t.Fatalf("creating a policy with selector %q: err = %v, want a validation error naming spec.selector", bad.Spec.Selector, err)
	}
	good := &api.GlobalNetworkPolicy{ObjectMeta: api.ObjectMeta{Name: "good"}}
	good.Spec.Selector = "role == 'web'"
	env.create(t, good)
	env.waitStatus(t, "policy applied", func(s api.FelixStatusReport) bool { return s.InSync && s.Rules == 1 })
	if got := acl.seen(); !slices.Contains(got, "GlobalNetworkPolicy good") || slices.Contains(got, "GlobalNetworkPolicy bad") {
		t.Errorf("ACL saw %v, want the good policy and not the bad one", got)
	}
}

// recordingACL is an ACL that records what it is fed.
type recordingACL struct {
	mu       sync.Mutex
	updates  []string
	policies map[string]bool
}

func (r *recordingACL) factory(netns.NsHandle, *slog.Logger) (ACL, error) { return r, nil }

func (r *recordingACL) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.updates...)
}

func (r *recordingACL) OnSnapshot(rs []api.Resource) {
	r.mu.Lock()
	r.policies = map[string]bool{}
	r.mu.Unlock()
	for _, x := range rs {
		_ = r.OnUpdate(x)
	}
}

func (r *recordingACL) OnUpdate(x api.Resource) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := calc.KeyOf(x)
	r.updates = append(r.updates, k.String())
	if k.Kind == api.KindGlobalNetworkPolicy {
		if r.policies == nil {
			r.policies = map[string]bool{}
		}
		r.policies[k.Name] = true
	}
	return nil
}

func (r *recordingACL) OnRemove(k calc.Key) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.policies, k.Name)
}

func (r *recordingACL) Apply(context.Context) error { return nil }
func (r *recordingACL) Resync()                     {}
func (r *recordingACL) Rules() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.policies)
}
