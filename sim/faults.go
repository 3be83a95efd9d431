package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// FaultResult is what a fault did and how the fabric took it.
type FaultResult struct {
	Name              string  `json:"name"`
	Action            string  `json:"action"`
	Status            string  `json:"status"`
	Seconds           float64 `json:"seconds"`
	ReconvergeSeconds float64 `json:"reconverge_seconds"`
	Message           string  `json:"message,omitempty"`
	ChecksFailed      int     `json:"checks_failed"`
}

// Fault injects one fault: it applies it, restores it after its duration
// (if any), waits for the fabric to converge again and runs the checks.
// The checks' results are returned for the report; the fault passes when
// the fabric reconverged and every check passed.
func (f *Fabric) Fault(ctx context.Context, fp topology.FaultPlan) (FaultResult, []CheckResult) {
	start := time.Now()
	res := FaultResult{Name: fp.Name, Action: fp.Action}
	f.progress("fault %s: %s %s", fp.Name, fp.Action, fp.Node)
	if err := f.inject(ctx, fp); err != nil {
		res.Status, res.Message = Failed, err.Error()
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	conv, err := f.waitAfterFault(ctx, fp)
	res.ReconvergeSeconds = conv.Seconds()
	checks := f.Check(ctx)
	for i := range checks {
		checks[i].Name = fp.Name + "/" + checks[i].Name
		if checks[i].Status != Passed {
			res.ChecksFailed++
		}
	}
	res.Status = Passed
	switch {
	case err != nil:
		res.Status, res.Message = Failed, err.Error()
	case res.ChecksFailed > 0:
		res.Status, res.Message = Failed, fmt.Sprintf("%d checks failed after the fault", res.ChecksFailed)
	}
	res.Seconds = time.Since(start).Seconds()
	return res, checks
}

func (f *Fabric) inject(ctx context.Context, fp topology.FaultPlan) error {
	restore := func() error { return nil }
	switch fp.Action {
	case topology.FaultKillAgent:
		if err := f.KillAgent(fp.Node, true); err != nil {
			return err
		}
		restore = func() error { return f.StartAgent(fp.Node) }
	case topology.FaultRestartAgent:
		return f.RestartAgent(fp.Node)
	case topology.FaultLinkDown, topology.FaultLinkUp:
		up := fp.Action == topology.FaultLinkUp
		if err := f.net.SetLink(f.Plan.Node(fp.Node).Netns, fp.Interface, up); err != nil {
			return err
		}
		restore = func() error { return f.net.SetLink(f.Plan.Node(fp.Node).Netns, fp.Interface, !up) }
	case topology.FaultStopDatastore:
		if err := f.StopDatastore(); err != nil {
			return err
		}
		restore = func() error { return f.StartDatastore(ctx) }
	default:
		return fmt.Errorf("unknown fault action %q", fp.Action)
	}
	if fp.Duration <= 0 {
		return nil
	}
	t := time.NewTimer(fp.Duration)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	f.progress("fault %s: restoring after %s", fp.Name, fp.Duration)
	return restore()
}

// waitAfterFault waits for convergence, counting a killed agent that stays
// down as expected: the fabric converges without it (WaitConvergedWithout).
func (f *Fabric) waitAfterFault(ctx context.Context, fp topology.FaultPlan) (time.Duration, error) {
	if fp.Action == topology.FaultKillAgent && fp.Duration <= 0 {
		// The fabric runs on without that node: it has reconverged when
		// its peers have noticed and everything else is in place.
		return f.WaitConvergedWithout(ctx, fp.Node)
	}
	return f.WaitConverged(ctx)
}
