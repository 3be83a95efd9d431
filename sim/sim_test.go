package sim_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// standIn runs agents that do nothing: the lifecycle is tested apart
// from the agents it launches.
func standIn(t *testing.T) sim.Options {
	return sim.Options{
		Base:             shortBase(t),
		NodeCommand:      []string{"sleep", "3600"},
		ReflectorCommand: []string{"sleep", "3601"},
		Ready:            sim.ReadyProcess,
		Workloads:        "none",
		Grace:            time.Second,
	}
}

// shortBase is a run base with a path short enough for etcd's socket.
func shortBase(t *testing.T) string {
	dir, err := os.MkdirTemp("", "bfsim")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestLifecycleWithStandInAgents(t *testing.T) {
	nstest.RequireRoot(t)
	topo, err := topology.Parse("t.yaml", []byte(`name: life
bgp: {model: reflectors}
nodes:
  - name: rr
    role: reflector
  - name: n
    count: 3
    workloads: [{name: w}]
faults:
  - action: restart-agent
    node: n-2
`))
	if err != nil {
		t.Fatal(err)
	}
	o := standIn(t)
	f := sim.BootT(t, topo, o)
	ctx := context.Background()
	if _, err := f.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	// Resources are in the datastore.
	nodes, _, err := f.Client().List(ctx, api.KindNode, "")
	if err != nil || len(nodes) != 4 {
		t.Fatalf("nodes in the datastore: %d %v", len(nodes), err)
	}
	// Each agent runs inside its node's namespace: compare the namespace
	// of the process with the node's.
	st := f.RunState()
	if len(st.Procs) != 4 {
		t.Fatalf("recorded processes: %+v", st.Procs)
	}
	for _, p := range st.Procs {
		node := strings.TrimPrefix(p.Name, "agent/")
		want, err := netns.GetFromName(f.Plan.Node(node).Netns)
		if err != nil {
			t.Fatal(err)
		}
		got, err := netns.GetFromPath(fmt.Sprintf("/proc/%d/ns/net", p.PID))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(want) {
			t.Errorf("agent of %s runs in another namespace", node)
		}
		got.Close()
		want.Close()
	}
	// A fault: restart an agent; it runs again with a new PID.
	before := st.Procs
	fr, _ := f.Fault(ctx, f.Plan.Faults[0])
	if fr.Status != sim.Passed {
		t.Errorf("fault: %+v", fr)
	}
	if running, total := f.AgentsRunning(); running != total {
		t.Errorf("after restart: %d of %d agents run", running, total)
	}
	after, _ := runstate.Open(f.Dir())
	for _, p := range after.State().Procs {
		for _, q := range before {
			if p.Name == "agent/n-2" && q.Name == p.Name && p.PID == q.PID {
				t.Error("n-2's agent was not restarted")
			}
		}
	}
	rep := f.NewReport(ctx)
	rep.AddChecks(f.Check(ctx))
	if rep.Nodes != 4 {
		t.Errorf("report nodes %d", rep.Nodes)
	}

	// Close removes everything: processes, namespaces, the run directory.
	procs := after.State().Procs
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if p.Alive() {
			t.Errorf("%s (pid %d) still runs", p.Name, p.PID)
		}
	}
	if left := runstate.RunNamespaces(f.RunID()); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	if _, err := os.Stat(f.Dir()); !os.IsNotExist(err) {
		t.Errorf("run directory left: %v", err)
	}
}

// TestBootCleansCrashedRun: a run whose sim died mid-boot is removed by
// the next Boot.
func TestBootCleansCrashedRun(t *testing.T) {
	nstest.RequireRoot(t)
	topo, err := topology.Parse("t.yaml", []byte("name: crash\nnodes:\n  - name: n\n    count: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := standIn(t)
	o.Keep = false
	f, err := sim.Boot(context.Background(), topo, o)
	if err != nil {
		t.Fatal(err)
	}
	id, dir := f.RunID(), f.Dir()
	procs := f.RunState().Procs
	// Pretend the sim crashed: its owner record points to a dead process,
	// and nothing was torn down.
	crashed, _ := runstate.Open(dir)
	crashed.Update(func(s *runstate.State) { s.Owner.Start++ })
	f.Abandon()

	g := sim.BootT(t, topo, o)
	if g.RunID() == id {
		t.Fatal("same run ID")
	}
	if left := runstate.RunNamespaces(id); len(left) > 0 {
		t.Errorf("crashed run's namespaces left: %v", left)
	}
	for _, p := range procs {
		if p.Alive() {
			t.Errorf("crashed run's %s still runs", p.Name)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Error("crashed run's directory left")
	}
}

// TestCrashCleanupWithFaultsInPlace: a run that crashes with an
// impairment, a partition and a paused agent in place leaves nothing once
// the next boot has cleaned it up: its namespaces (and with them the
// qdiscs and nftables tables) are gone, and the paused agent too.
func TestCrashCleanupWithFaultsInPlace(t *testing.T) {
	nstest.RequireRoot(t)
	topo, err := topology.Parse("t.yaml", []byte("name: crash2\nsegments:\n  - name: lan\n    impair: {rate: 10mbit}\nnodes:\n  - name: n\n    count: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := standIn(t)
	o.DatastoreRelay = true
	f, err := sim.Boot(context.Background(), topo, o)
	if err != nil {
		t.Fatal(err)
	}
	id, dir := f.RunID(), f.Dir()
	if qs, err := f.Qdiscs("n-1", "eth0"); err != nil || len(qs) != 1 {
		t.Fatalf("n-1's qdiscs: %v %v", qs, err)
	}
	// netem's part: a qdisc, or on kernels without netem an NFQUEUE rule
	// and a reader of this process; the crash leaves the rule.
	if err := f.Impair("n-2", "eth0", &topology.ImpairPlan{Delay: 20 * time.Millisecond, Duplicate: 1, Rate: 1_250_000}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Partition("p", []string{"n-1"}, []string{"n-2"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.PartitionDatastore([]string{"n-2"}); err != nil {
		t.Fatal(err)
	}
	if err := f.PauseAgent("n-1"); err != nil {
		t.Fatal(err)
	}
	procs := f.RunState().Procs
	crashed, _ := runstate.Open(dir)
	crashed.Update(func(s *runstate.State) { s.Owner.Start++ })
	f.Abandon()

	sim.BootT(t, topo, o)
	if left := runstate.RunNamespaces(id); len(left) > 0 {
		t.Errorf("crashed run's namespaces left: %v", left)
	}
	for _, p := range procs {
		if p.Alive() {
			t.Errorf("crashed run's %s still runs", p.Name)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Error("crashed run's directory left")
	}
}
