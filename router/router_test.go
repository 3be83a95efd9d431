package router

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
	"github.com/bgpfabric/bgpfabric/internal/testlog"
)

type harness struct {
	r      *Router
	sp     *FakeSpeaker
	res    *fakeResources
	fib    fakeFIB
	dp     *routetable.Fake
	status *fakeStatus
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	h := &harness{
		sp: NewFakeSpeaker(), res: newFakeResources(), fib: fakeFIB{ch: make(chan FIBBatch, 16)},
		dp: routetable.NewFake(), status: &fakeStatus{}, done: make(chan error, 1),
	}
	// Status writes 50 ms apart (1 s in production): the tests wait for
	// many status changes, and the spacing is latest.Writer's, tested
	// there. Retries after testRetryDelay (2 s in production).
	cfg := Config{NodeName: "n1", Resources: h.res, Speaker: h.sp, Dataplane: h.dp, FIB: h.fib, Status: h.status,
		StatusWriteInterval: 50 * time.Millisecond, RetryDelay: testRetryDelay}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.r = r
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- r.Run(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *harness) stop(t *testing.T) {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func meshConfig(hold string) *api.BGPConfiguration {
	c := &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}}
	c.Spec.HoldTime = api.Duration(hold)
	f := false
	c.Spec.GracefulRestart = &api.GracefulRestart{Enabled: &f}
	return c
}

// TestPeerDiffApplied checks that resource changes reach the speaker as
// the smallest change: one node added or removed touches its session
// only, a timer change resets only the sessions that inherit it.
func TestPeerDiffApplied(t *testing.T) {
	h := start(t, nil)
	tor := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.0.0.254", ASNumber: ptr(uint32(65000)), HoldTime: "30s"}}
	if err := h.r.Ready(); err == nil {
		t.Error("ready before the datastore's resources arrived")
	}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), node("n3", "10.0.0.3/24"), meshConfig("90s"), tor)
	waitUntil(t, "three peers", func() bool { return len(h.sp.PeerConfigs()) == 3 })
	if err := h.r.Ready(); err == nil {
		t.Error("ready before the route feed delivered felix's routes")
	}
	h.fib.ch <- FIBBatch{Snapshot: true}
	waitUntil(t, "ready", func() bool { return h.r.Ready() == nil })
	if g, ok := h.sp.Started(); !ok || g.AS != 64512 || g.RouterID != addr("10.0.0.1") {
		t.Fatalf("speaker started with %+v (%v)", g, ok)
	}
	if got, want := peerAddrs(h.sp), "10.0.0.2/90 10.0.0.3/90 10.0.0.254/30"; got != want {
		t.Fatalf("peers = %s, want %s", got, want)
	}
	h.sp.Calls()

	h.res.put(t, node("n4", "10.0.0.4/24"))
	waitUntil(t, "n4 added", func() bool { return len(h.sp.PeerConfigs()) == 4 })
	if diff := cmp.Diff([]string{"AddPeer 10.0.0.4"}, h.sp.Calls()); diff != "" {
		t.Errorf("adding a node (-want +got):\n%s", diff)
	}

	h.res.del(t, api.KindNode, "n2")
	waitUntil(t, "n2 removed", func() bool { return len(h.sp.PeerConfigs()) == 3 })
	if diff := cmp.Diff([]string{"DeletePeer 10.0.0.2"}, h.sp.Calls()); diff != "" {
		t.Errorf("removing a node (-want +got):\n%s", diff)
	}

	h.res.put(t, meshConfig("60s"))
	waitUntil(t, "timers changed", func() bool { return peerAddrs(h.sp) == "10.0.0.3/60 10.0.0.4/60 10.0.0.254/30" })
	if diff := cmp.Diff([]string{"UpdatePeer 10.0.0.3 reset", "UpdatePeer 10.0.0.4 reset"}, h.sp.Calls()); diff != "" {
		t.Errorf("changing the mesh hold time (-want +got):\n%s", diff)
	}

	// maxPrefixes is applied live.
	tor.Spec.MaxPrefixes = 100
	h.res.put(t, tor)
	waitUntil(t, "max prefixes", func() bool {
		for _, p := range h.sp.PeerConfigs() {
			if p.Address == addr("10.0.0.254") {
				return p.MaxPrefixes == 100
			}
		}
		return false
	})
	if diff := cmp.Diff([]string{"UpdatePeer 10.0.0.254 live"}, h.sp.Calls()); diff != "" {
		t.Errorf("changing maxPrefixes (-want +got):\n%s", diff)
	}
}

// TestPasswordsAndStatus: a session whose secret is missing is reported
// in the status and configured, with its password, once the secret
// appears; peer states and errors reach the status. (Speaker errors are
// retried: TestFailedPeerRetried.)
func TestPasswordsAndStatus(t *testing.T) {
	dir := t.TempDir()
	h := start(t, func(c *Config) { c.Secrets = Secrets{Dir: dir, Getenv: func(string) string { return "" }} })
	tor := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.0.0.254", ASNumber: ptr(uint32(65000)),
		Password: &api.BGPPassword{SecretKeyRef: &api.SecretKeySelector{Name: "bgp", Key: "tor"}}}}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"), tor)
	waitUntil(t, "status names the missing secret", func() bool {
		st := h.status.get()
		return st != nil && len(st.Status.Peers) == 2 && strings.Contains(st.Status.Peers[1].LastError, "secret bgp/tor")
	})
	if err := os.MkdirAll(filepath.Join(dir, "bgp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bgp", "tor"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The router retries failed sessions.
	waitUntil(t, "the ToR session configured", func() bool { return len(h.sp.PeerConfigs()) == 2 })
	if pw := h.sp.PeerConfigs()[1].Password; pw != "s3cret" {
		t.Errorf("password = %q", pw)
	}
	h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: api.BGPEstablished})
	h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.254"), Err: "prefix limit reached for ipv4-unicast"})
	waitUntil(t, "status", func() bool {
		st := h.status.get()
		return len(st.Status.Peers) == 2 && st.Status.Peers[0].State == api.BGPEstablished &&
			st.Status.Peers[1].LastError == "prefix limit reached for ipv4-unicast"
	})
	st := h.status.get()
	if st.Name != "n1" || st.Status.RouterID != "10.0.0.1" || st.Status.Peers[0].Type != api.PeerTypeMesh || st.Status.Peers[1].Type != api.PeerTypeGlobal {
		t.Errorf("status = %+v", st)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("status does not validate: %v", err)
	}
}

func blackhole(p string) routetable.KernelRoute {
	return routetable.KernelRoute{Table: 254, Protocol: 80, Type: routetable.TypeBlackhole, Dst: pfx(p)}
}

func workload(p string, link int) routetable.KernelRoute {
	return routetable.KernelRoute{Table: 254, Protocol: 80, Type: routetable.TypeUnicast, Scope: routetable.ScopeLink, Dst: pfx(p), LinkIndex: link}
}

// TestExportFollowsFIB checks that the node advertises its blocks and
// borrowed addresses, with the configured communities, and withdraws at
// once what felix removes.
func TestExportFollowsFIB(t *testing.T) {
	h := start(t, nil)
	cfg := meshConfig("90s")
	cfg.Spec.Communities = []api.CommunityEntry{{Value: "64512:100"}}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), cfg)
	h.fib.ch <- FIBBatch{Snapshot: true, Routes: []FIBEvent{
		{Route: blackhole("10.65.1.0/26")},
		{Route: workload("10.65.1.5/32", 7)},  // inside our block: not separately
		{Route: workload("10.65.9.17/32", 8)}, // borrowed
	}}
	announced := func() string {
		var s []string
		for _, r := range h.sp.Announced() {
			c := ""
			for _, cm := range r.Communities {
				c += " " + cm.String()
			}
			s = append(s, r.Prefix.String()+c)
		}
		return strings.Join(s, ",")
	}
	waitUntil(t, "block and borrowed /32 announced", func() bool {
		return announced() == "10.65.1.0/26 64512:100,10.65.9.17/32 64512:100"
	})
	h.fib.ch <- FIBBatch{Routes: []FIBEvent{{Route: blackhole("10.65.1.0/26"), Deleted: true}}}
	// Without the block, its workload is a lone /32.
	waitUntil(t, "block withdrawn", func() bool { return announced() == "10.65.1.5/32 64512:100,10.65.9.17/32 64512:100" })
}

// TestImportInstallsAndYields checks that learned best paths land in the
// kernel with our protocol via the next hop (several equal ones as one
// ECMP route), never over someone else's route, and leave on a clean shutdown without graceful restart.
func TestImportInstallsAndYields(t *testing.T) {
	h := start(t, nil)
	// Felix's blackhole for our own block, and an operator's static route.
	ctx := context.Background()
	h.dp.WriteRoutes(ctx, []routetable.RouteOp{{Kind: routetable.OpAdd, Route: blackhole("10.65.1.0/26")}})
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), node("n3", "10.0.0.3/24"), meshConfig("90s"))
	waitUntil(t, "speaker started", func() bool { _, ok := h.sp.Started(); return ok })
	h.sp.Learn(
		Destination{Prefix: pfx("10.65.2.0/26"), Paths: []Path{{NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2")}}},
		Destination{Prefix: pfx("10.65.3.0/26"), Paths: []Path{{NextHop: addr("10.0.0.3"), Peer: addr("10.0.0.3")}, {NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2")}}},
		// Someone claims our block: felix's blackhole wins.
		Destination{Prefix: pfx("10.65.1.0/26"), Paths: []Path{{NextHop: addr("10.0.0.3"), Peer: addr("10.0.0.3")}}},
		// Our own route: never installed.
		Destination{Prefix: pfx("10.65.4.0/26"), Paths: []Path{{Local: true}}},
	)
	// Two equal paths: one ECMP route.
	want := []string{"10.65.2.0/26 via 10.0.0.2 proto 81", "10.65.3.0/26 proto 81 nexthop via 10.0.0.2 nexthop via 10.0.0.3"}
	waitUntil(t, "learned routes installed", func() bool { return cmp.Equal(want, renderKernel(h.dp, 81)) })
	if got := renderKernel(h.dp, 80); !cmp.Equal(got, []string{"blackhole 10.65.1.0/26 proto 80"}) {
		t.Errorf("felix's route touched: %v", got)
	}
	h.sp.Learn(Destination{Prefix: pfx("10.65.2.0/26")})
	waitUntil(t, "withdrawn route removed", func() bool { return cmp.Equal(want[1:], renderKernel(h.dp, 81)) })
	// One of the equal paths withdrawn: a single path again.
	h.sp.Learn(Destination{Prefix: pfx("10.65.3.0/26"), Paths: []Path{{NextHop: addr("10.0.0.3"), Peer: addr("10.0.0.3")}}})
	waitUntil(t, "ECMP route down to one path", func() bool {
		return cmp.Equal([]string{"10.65.3.0/26 via 10.0.0.3 proto 81"}, renderKernel(h.dp, 81))
	})
	h.stop(t)
	if got := renderKernel(h.dp, 81); len(got) != 0 {
		t.Errorf("after a clean shutdown without graceful restart, routes left: %v", got)
	}
	if !h.status.closed {
		t.Error("status sink not closed")
	}
}

// TestGracefulRestartKeepsRoutes checks that with graceful restart on,
// the routes stay across a restart and are replaced once the peers have
// sent End-of-RIB.
func TestGracefulRestartKeepsRoutes(t *testing.T) {
	// End-of-RIB as a peer event, or in order with the best paths (as the
	// GoBGP speaker reports it).
	for name, eor := range map[string]func(*FakeSpeaker, netip.Addr){
		"peer event":       func(f *FakeSpeaker, a netip.Addr) { f.SetPeerState(PeerEvent{Address: a, EndOfRIB: true}) },
		"best-path stream": func(f *FakeSpeaker, a netip.Addr) { f.Learn(Destination{EndOfRIB: a}) },
	} {
		t.Run(name, func(t *testing.T) { testGracefulRestartKeepsRoutes(t, eor) })
	}
}

func testGracefulRestartKeepsRoutes(t *testing.T, eor func(*FakeSpeaker, netip.Addr)) {
	dp := routetable.NewFake()
	stale := routetable.KernelRoute{Table: 254, Protocol: 81, Type: routetable.TypeUnicast, Dst: pfx("10.65.7.0/26"), Gateway: addr("10.0.0.2")}
	dp.WriteRoutes(context.Background(), []routetable.RouteOp{{Kind: routetable.OpAdd, Route: stale}})
	sock := filepath.Join(t.TempDir(), "router.sock")
	h := start(t, func(c *Config) { c.Dataplane, c.ControlSocket = dp, sock })
	h.dp = dp
	cfg := &api.BGPConfiguration{ObjectMeta: api.ObjectMeta{Name: "default"}}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), cfg)
	waitUntil(t, "peer configured", func() bool { return len(h.sp.PeerConfigs()) == 1 })
	if p := h.sp.PeerConfigs()[0]; !p.GracefulRestart.Enabled || !p.GracefulRestart.LocalRestarting {
		t.Errorf("restarting speaker must set the restart state: %+v", p.GracefulRestart)
	}
	h.sp.Learn(Destination{Prefix: pfx("10.65.2.0/26"), Paths: []Path{{NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2")}}})
	h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: api.BGPEstablished})
	// Held: once the router has taken the learned route (its report says
	// "held") and the session (its status says established), and has
	// reconciled after both, the stale route stays and nothing is
	// installed. A report is answered by the router's loop between two
	// reconciles, so the last one is a barrier.
	report := func() *RoutesReport {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rep, err := FetchRoutes(ctx, sock)
		if err != nil {
			t.Fatalf("routes report: %v", err)
		}
		return rep
	}
	held := func() bool {
		rep := report()
		return len(rep.Kernel) == 1 && rep.Kernel[0].Prefix == pfx("10.65.2.0/26") && rep.Kernel[0].State == "held"
	}
	waitUntil(t, "the learned route held and the session established", func() bool {
		st := h.status.get()
		return st != nil && len(st.Status.Peers) == 1 && st.Status.Peers[0].State == api.BGPEstablished && held()
	})
	if !held() {
		t.Errorf("learned route no longer held before End-of-RIB: %+v", report().Kernel)
	}
	if got := renderKernel(dp, 81); !cmp.Equal(got, []string{"10.65.7.0/26 via 10.0.0.2 proto 81"}) {
		t.Errorf("before End-of-RIB: %v", got)
	}
	eor(h.sp, addr("10.0.0.2"))
	waitUntil(t, "stale route replaced", func() bool {
		return cmp.Equal(renderKernel(dp, 81), []string{"10.65.2.0/26 via 10.0.0.2 proto 81"})
	})
	h.stop(t)
	if got := renderKernel(dp, 81); len(got) != 1 {
		t.Errorf("graceful restart on: routes must stay after shutdown, have %v", got)
	}
}

func ptr[T any](v T) *T { return &v }

var _ = time.Second

// lockedBuffer collects log output from several goroutines.
type lockedBuffer = testlog.Buffer

// TestPeeringWarningsOnce: a peering warning (here an IPv6 peerPrefix
// BGPPeer that selects IPv4-only nodes) is logged once, not on every
// recomputation the datastore's changes cause.
func TestPeeringWarningsOnce(t *testing.T) {
	var logs lockedBuffer
	h := start(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	ranges := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "ranges"}, Spec: api.BGPPeerSpec{PeerPrefix: "fd00:1::/64"}}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"), ranges)
	waitUntil(t, "one peer", func() bool { return len(h.sp.PeerConfigs()) == 1 })
	h.res.put(t, node("n3", "10.0.0.3/24"))
	waitUntil(t, "two peers", func() bool { return len(h.sp.PeerConfigs()) == 2 })
	h.res.put(t, node("n4", "10.0.0.4/24"))
	waitUntil(t, "three peers", func() bool { return len(h.sp.PeerConfigs()) == 3 })
	if n := strings.Count(logs.String(), "msg=peering "); n != 1 {
		t.Errorf("peering warning logged %d times over three recomputations; want once:\n%s", n, logs.String())
	}
}

// slowStatus is a datastore that does not answer status writes until
// released: each Put waits for its context (or the release).
type slowStatus struct {
	fakeStatus
	release chan struct{}
}

func (s *slowStatus) Put(ctx context.Context, r *api.BGPStatus) error {
	select {
	case <-s.release:
		return s.fakeStatus.Put(ctx, r)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestSlowStatusDoesNotHoldImports: while the datastore does not answer
// status writes, learned routes still reach the kernel at once; the status
// is written when the datastore answers again.
func TestSlowStatusDoesNotHoldImports(t *testing.T) {
	st := &slowStatus{release: make(chan struct{})}
	h := start(t, func(c *Config) { c.Status = st })
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"))
	waitUntil(t, "speaker started", func() bool { _, ok := h.sp.Started(); return ok })
	for i, p := range []string{"10.65.2.0/26", "10.65.3.0/26"} {
		// Each change makes the status dirty; the writer is stuck in Put.
		h.sp.SetPeerState(PeerEvent{Address: addr("10.0.0.2"), State: []api.BGPState{api.BGPEstablished, api.BGPActive}[i]})
		start := time.Now()
		h.sp.Learn(Destination{Prefix: pfx(p), Paths: []Path{{NextHop: addr("10.0.0.2"), Peer: addr("10.0.0.2")}}})
		waitUntil(t, p+" installed", func() bool { return len(renderKernel(h.dp, 81)) == i+1 })
		if took := time.Since(start); took > time.Second {
			t.Errorf("%s installed after %s while status writes hung", p, took)
		}
	}
	close(st.release)
	waitUntil(t, "status written once the datastore answers", func() bool { return st.get() != nil })
}
