//go:build e2e

package example_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// TestFabricUnderFaults is what a team writes to guard its fabric: it
// converges, every web pod reaches every other on TCP 8080, and that
// still holds once the fabric has come back from a lossy link, a
// partition and a hung agent.
func TestFabricUnderFaults(t *testing.T) {
	if os.Geteuid() != 0 {
		// In CI a missing privilege must fail, not pass by skipping.
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root: the fabric runs in network namespaces, and CI=true forbids skipping")
		}
		t.Skip("needs root: the fabric runs in network namespaces")
	}
	topo, err := topology.Load("fabric.yaml")
	if err != nil {
		t.Fatal(err) // file:line:column of what is wrong
	}
	// BootT tears everything down when the test ends, also on failure.
	f := sim.BootT(t, topo, sim.Options{Binary: os.Getenv("BGPFABRIC_BIN")})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := f.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	requirePassed(t, f.Check(ctx))

	// 30% loss on node-1's port for 5 s: TCP and BGP ride it out.
	lan := f.Plan.Interface("node-1", "lan", "")
	faults := []topology.FaultPlan{
		{Name: "lossy", Action: topology.FaultImpair, Node: "node-1", Interface: lan,
			Impair: &topology.ImpairPlan{Loss: 30}, Duration: 5 * time.Second},
		// node-1 and node-2 cannot talk for twice the hold time: their
		// session drops and each withdraws the other's routes; healed,
		// it comes back.
		{Name: "split", Action: topology.FaultPartition, Nodes: []string{"node-1"}, From: []string{"node-2"},
			Duration: 6 * time.Second},
		// node-3's agent hangs past the hold time: its peers time it out.
		{Name: "hung", Action: topology.FaultPauseAgent, Node: "node-3", Duration: 4 * time.Second},
	}
	for _, fp := range faults {
		res, checks := f.Fault(ctx, fp)
		t.Logf("%s: reconverged in %.2fs; %d sessions lost, %d routes withdrawn", res.Name, res.ReconvergeSeconds, res.SessionsLost, res.RoutesWithdrawn)
		if res.Status != sim.Passed {
			t.Errorf("%s: %s", res.Name, res.Message)
		}
		requirePassed(t, checks)
	}
}

func requirePassed(t *testing.T, checks []sim.CheckResult) {
	t.Helper()
	for _, c := range checks {
		if c.Status != sim.Passed {
			t.Errorf("check %s: %s %v", c.Name, c.Message, c.Failures)
		}
	}
}
