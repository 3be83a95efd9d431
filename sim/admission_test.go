package sim_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// TestAgentsAdmittedByReadiness: with a window of two, the third agent
// starts only when one of the first two says it is ready (its FelixStatus,
// written here on the stand-in agents' behalf), not when they have merely
// started; and the agents run at the agents' nice value, below the sim.
func TestAgentsAdmittedByReadiness(t *testing.T) {
	nstest.RequireRoot(t)
	topo, err := topology.Parse("t.yaml", []byte(`name: admit
nodes:
  - name: n
    count: 4
`))
	if err != nil {
		t.Fatal(err)
	}
	o := standIn(t)
	o.Ready = sim.ReadyStatus // admission by the agents' status records
	o.AgentWindow = 2
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	booted := make(chan *sim.Fabric, 1)
	go func() {
		f, err := sim.Boot(ctx, topo, o)
		if err != nil {
			t.Errorf("boot: %v", err)
		}
		booted <- f
	}()
	var f *sim.Fabric
	t.Cleanup(func() {
		if f == nil {
			f = <-booted
		}
		if f != nil {
			f.Close()
		}
	})

	// The run's state shows which agents were started.
	started := func() map[string]int {
		runs, _ := runstate.List(o.Base)
		out := map[string]int{}
		for _, r := range runs {
			for _, p := range r.State().Procs {
				if name, ok := strings.CutPrefix(p.Name, "agent/"); ok {
					out[name] = p.PID
				}
			}
		}
		return out
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: %v (agents started: %v)", what, ctx.Err(), started())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("two agents", func() bool { return len(started()) == 2 })
	runs, err := runstate.List(o.Base)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs: %d (%v)", len(runs), err)
	}
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{runs[0].State().Datastore}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w, err := c.NewStatusWriter(ctx, datastore.StatusWriterConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ready := func(node string) {
		t.Helper()
		fs := &api.FelixStatus{ObjectMeta: api.ObjectMeta{Name: node}, Status: api.FelixStatusReport{
			Ready: true, InSync: true, LastUpdate: time.Now().UTC().Format(time.RFC3339), Dataplane: api.DataplaneStatus{State: api.DataplaneInSync}}}
		if _, err := w.Put(ctx, fs); err != nil {
			t.Fatal(err)
		}
	}

	// Started is not ready: a third agent waits (a second and a half of
	// the admission's polls and status events).
	hold := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(hold) {
		if n := len(started()); n != 2 {
			t.Fatalf("%d agents started while none was ready, want 2 (the window)", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ready("n-1")
	waitFor("the third agent", func() bool { return len(started()) == 3 })
	if _, ok := started()["n-4"]; ok {
		t.Fatal("n-4 started with only one agent ready")
	}
	ready("n-2")
	ready("n-3")
	f = <-booted
	if f == nil {
		t.Fatal("boot failed")
	}
	for name, pid := range started() {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, rest, _ := strings.Cut(string(data), ") ")
		fields := strings.Fields(rest)
		if nice := fields[16]; nice != strconv.Itoa(sim.DefaultAgentNice) {
			t.Errorf("agent of %s runs at nice %s, want %d", name, nice, sim.DefaultAgentNice)
		}
	}
}
