package e2e

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/probe"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// echoPort is where the tests' echo listeners run inside workloads.
const echoPort = 9000

// startStream opens a TCP stream from a workload on one node to a
// workload on another and returns it running.
func startStream(t *testing.T, f *sim.Fabric, from, to string) *probe.Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	src, dst := workloadOn(t, f, from), workloadOn(t, f, to)
	dns, _ := f.WorkloadNetns(dst.Name)
	sns, _ := f.WorkloadNetns(src.Name)
	if err := probe.ListenEcho(ctx, dns, echoPort); err != nil {
		t.Fatal(err)
	}
	s, err := probe.StartStream(ctx, sns, addr4(t, f, dst.Name), echoPort, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRedundantReflectorFailure kills one reflector of the pair (SIGKILL):
// its clients notice at once, keep every route through the other one, and
// all-pairs connectivity (ICMP and TCP) holds; a TCP stream across the
// fabric never stalls. The kill-agent fault's reconvergence is measured.
func TestRedundantReflectorFailure(t *testing.T) {
	f := boot(t, "rr-2x4")
	converge(t, f)
	requireChecks(t, f)
	blocks := blocksByNode(t, f)
	var all []netip.Prefix
	var computes []string
	for n, bs := range blocks {
		all = append(all, bs...)
		computes = append(computes, n)
	}
	w := watchRoutes(t, f, computes, all)
	stream := startStream(t, f, "node-1", "node-4")

	ctx := context.Background()
	fr, checks := f.Fault(ctx, topology.FaultPlan{Name: "reflector-1-down", Action: topology.FaultKillAgent, Node: "reflector-1"})
	if fr.Status != sim.Passed {
		t.Errorf("fault: %s: %s", fr.Status, fr.Message)
	}
	for _, c := range checks {
		if c.Status != sim.Passed {
			t.Errorf("after the fault, check %s: %s %v", c.Name, c.Message, c.Failures)
		}
	}
	t.Logf("reflector-1 killed: clients reconverged (sessions to it down, all else in place) in %.3fs", fr.ReconvergeSeconds)
	// Stay past the hold time: nothing may have been withdrawn meanwhile.
	wait(ctx, 4*time.Second)
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
	if d := w.deletions(); len(d) > 0 {
		t.Errorf("routes withdrawn while a reflector of the pair remained: %+v", d)
	}
	for _, n := range computes {
		peers, _ := f.PeerStates(ctx, n)
		up := 0
		for _, p := range peers {
			if p.State == "Established" {
				up++
			}
		}
		if up != 1 {
			t.Errorf("%s: %d sessions Established, want 1 (to reflector-2): %+v", n, up, peers)
		}
	}
	st := stream.Stop(2 * time.Second)
	t.Logf("stream node-1 -> node-4 across the failure: %d sent, %d echoed, longest gap %s", st.Sent, st.Echoed, st.MaxGap)
	if st.Err != nil || st.Echoed != st.Sent || st.MaxGap > time.Second {
		t.Errorf("the stream suffered: %+v", st)
	}
}

// TestNodeAgentRestartGracefulRestart kills node-2's agent with SIGKILL
// and starts it again. With graceful restart its peers keep its routes,
// its own kernel keeps what it programmed, and an established TCP stream
// from a workload on node-1 to one on node-2 survives: no reset, no route
// deleted anywhere, and the longest gap between echoes is measured.
func TestNodeAgentRestartGracefulRestart(t *testing.T) {
	f := boot(t, "mesh-3")
	converge(t, f)
	blocks := blocksByNode(t, f)
	var all []netip.Prefix
	for _, bs := range blocks {
		all = append(all, bs...)
	}
	w := watchRoutes(t, f, []string{"node-1", "node-2", "node-3"}, all)
	stream := startStream(t, f, "node-1", "node-2")
	ctx := context.Background()
	wait(ctx, 200*time.Millisecond) // some traffic before the crash

	killed := time.Now()
	if err := f.KillAgent("node-2", true); err != nil {
		t.Fatal(err)
	}
	wait(ctx, time.Second) // down for a second, as a crash-looping agent would be
	if err := f.StartAgent("node-2"); err != nil {
		t.Fatal(err)
	}
	d, err := f.WaitConverged(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node-2's agent killed and restarted: reconverged %s after the restart, %s after the kill",
		d.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	// Past the end of the restart (End-of-RIB and stale-route sweep).
	wait(ctx, 2*time.Second)
	st := stream.Stop(2 * time.Second)
	t.Logf("stream node-1 -> node-2 across the restart: %d sent, %d echoed, longest gap %s", st.Sent, st.Echoed, st.MaxGap)
	if st.Err != nil {
		t.Errorf("the stream broke: %v", st.Err)
	}
	if st.Echoed != st.Sent || st.MaxGap > time.Second {
		t.Errorf("the stream stalled: %+v", st)
	}
	if d := w.deletions(); len(d) > 0 {
		t.Errorf("routes deleted across a graceful restart: %+v", d)
	}
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
}

// TestDatastoreStopKeepsForwarding stops etcd for a while (the
// stop-datastore fault with a duration): the agents keep running, the
// kernels keep every route, all checks pass during the outage, and after
// etcd is back the fabric reconverges.
func TestDatastoreStopKeepsForwarding(t *testing.T) {
	f := boot(t, "mesh-3")
	converge(t, f)
	before := map[string][]sim.Route{}
	for _, n := range f.Plan.Nodes {
		before[n.Name], _ = f.Routes(n.Name)
	}
	blocks := blocksByNode(t, f)
	var all []netip.Prefix
	for _, bs := range blocks {
		all = append(all, bs...)
	}
	w := watchRoutes(t, f, []string{"node-1", "node-2", "node-3"}, all)
	stream := startStream(t, f, "node-1", "node-3")
	ctx := context.Background()

	const outage = 8 * time.Second
	done := make(chan sim.FaultResult, 1)
	go func() {
		fr, checks := f.Fault(ctx, topology.FaultPlan{Name: "datastore-down", Action: topology.FaultStopDatastore, Duration: outage})
		for _, c := range checks {
			if c.Status != sim.Passed {
				t.Errorf("after the datastore came back, check %s: %s %v", c.Name, c.Message, c.Failures)
			}
		}
		done <- fr
	}()
	// Midway through the outage: traffic flows on the programmed state.
	wait(ctx, outage/2)
	if run, total := f.AgentsRunning(); run != total {
		t.Errorf("agents running during the outage: %d of %d", run, total)
	}
	for _, c := range f.Check(ctx) {
		if c.Kind != "routes" && c.Status != sim.Passed { // route checks read IPAM from etcd
			t.Errorf("during the outage, check %s: %s %v", c.Name, c.Message, c.Failures)
		}
	}
	for _, n := range f.Plan.Nodes {
		now, _ := f.Routes(n.Name)
		if len(now) != len(before[n.Name]) {
			t.Errorf("%s: %d routes during the outage, %d before", n.Name, len(now), len(before[n.Name]))
		}
	}
	fr := <-done
	t.Logf("datastore stopped for %s: reconverged %.3fs after it came back", outage, fr.ReconvergeSeconds)
	if fr.Status != sim.Passed {
		t.Errorf("fault: %s: %s", fr.Status, fr.Message)
	}
	if d := w.deletions(); len(d) > 0 {
		t.Errorf("routes deleted while the datastore was down: %+v", d)
	}
	st := stream.Stop(2 * time.Second)
	t.Logf("stream node-1 -> node-3 across the outage: %d sent, %d echoed, longest gap %s", st.Sent, st.Echoed, st.MaxGap)
	if st.Err != nil || st.Echoed != st.Sent || st.MaxGap > time.Second {
		t.Errorf("the stream suffered: %+v", st)
	}
}

// TestLinkDownWithdrawsWithinHoldTime takes node-3's segment port down.
// There is no other path to node-3, so its peers must withdraw its blocks
// within the hold time (9 s in mesh-3) while node-1 and node-2 keep
// talking; when the link comes back (the link-down fault's duration ends)
// the fabric reconverges and every check passes again.
func TestLinkDownWithdrawsWithinHoldTime(t *testing.T) {
	f := boot(t, "mesh-3")
	converge(t, f)
	blocks := blocksByNode(t, f)
	w := watchRoutes(t, f, []string{"node-1", "node-2"}, blocks["node-3"])
	stream := startStream(t, f, "node-1", "node-2")
	const hold = 9 * time.Second

	ctx := context.Background()
	type result struct {
		fr     sim.FaultResult
		checks []sim.CheckResult
	}
	done := make(chan result, 1)
	down := time.Now()
	go func() {
		fr, checks := f.Fault(ctx, topology.FaultPlan{Name: "node-3-link-down", Action: topology.FaultLinkDown, Node: "node-3", Interface: "eth0", Duration: hold + 3*time.Second})
		done <- result{fr, checks}
	}()
	for _, n := range []string{"node-1", "node-2"} {
		wctx, cancel := context.WithTimeout(ctx, hold+2*time.Second)
		at, ok := w.waitDeleted(wctx, n, blocks["node-3"])
		cancel()
		if !ok {
			t.Errorf("%s still routes to node-3's blocks %s after the hold time", n, blocks["node-3"])
			continue
		}
		t.Logf("%s withdrew node-3's blocks %s after the link went down (hold time %s)", n, at.Sub(down).Round(time.Millisecond), hold)
		if at.Sub(down) > hold+time.Second {
			t.Errorf("%s withdrew node-3's blocks after %s: over the hold time %s", n, at.Sub(down), hold)
		}
	}
	r := <-done
	t.Logf("link back up: reconverged in %.3fs, fault took %.1fs", r.fr.ReconvergeSeconds, r.fr.Seconds)
	if r.fr.Status != sim.Passed {
		t.Errorf("fault: %s: %s", r.fr.Status, r.fr.Message)
	}
	for _, c := range r.checks {
		if c.Status != sim.Passed {
			t.Errorf("after the link came back, check %s: %s %v", c.Name, c.Message, c.Failures)
		}
	}
	st := stream.Stop(2 * time.Second)
	t.Logf("stream node-1 -> node-2 during node-3's outage: %d sent, %d echoed, longest gap %s", st.Sent, st.Echoed, st.MaxGap)
	if st.Err != nil || st.MaxGap > time.Second {
		t.Errorf("traffic between the other nodes suffered: %+v", st)
	}
	requireExactRoutes(t, f, viaOwner(f))
}
