package ui

import (
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// TestLiveRecordsTheRun: what Run reports to its observer lands in the
// view's checks, faults and timeline, in order, with verdicts.
func TestLiveRecordsTheRun(t *testing.T) {
	l := NewLive(nil)
	defer l.Close()
	l.Phase("checks")
	l.Checks([]sim.CheckResult{{Name: "a", Status: sim.Passed}, {Name: "b", Status: sim.Failed}})
	l.Checks(nil) // nothing to record
	l.FaultStarted(topology.FaultPlan{Name: "f", Action: topology.FaultKillAgent, Node: "n-1", Duration: 5 * time.Second})
	l.FaultDone(sim.FaultResult{Name: "f", Action: topology.FaultKillAgent, Status: sim.Failed, Message: "not converged"})
	l.Done(&sim.Report{})
	s := l.Snapshot()
	if s.Phase != "checks" || len(s.Checks) != 2 || len(s.Faults) != 1 || s.Faults[0].Message != "not converged" {
		t.Fatalf("snapshot: %+v", s)
	}
	want := []TimelineEntry{
		{Kind: "phase", Text: "checks"},
		{Kind: "check", Status: sim.Failed, Text: "checks: 1 of 2 passed"},
		{Kind: "fault", Text: "fault f: kill-agent n-1 for 5s"},
		{Kind: "fault", Status: sim.Failed, Text: "fault f done: reconverged in 0.00s: not converged"},
	}
	if len(s.Timeline) != len(want) {
		t.Fatalf("timeline: %+v", s.Timeline)
	}
	for i, w := range want {
		got := s.Timeline[i]
		if got.Kind != w.Kind || got.Status != w.Status || got.Text != w.Text {
			t.Errorf("timeline[%d] = %+v, want %+v", i, got, w)
		}
		if i > 0 && got.At < s.Timeline[i-1].At {
			t.Errorf("timeline[%d] goes back in time", i)
		}
	}
}
