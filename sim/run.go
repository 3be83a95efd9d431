package sim

import (
	"context"
	"errors"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Run boots a topology, waits for convergence, runs the checks, injects
// the faults (each followed by the checks) and tears everything down: what
// `sim run` does. The report is complete even when something fails; the
// error says only that the run could not be carried out (boot failed).
func Run(ctx context.Context, topo *topology.Topology, o Options) (rep *Report, err error) {
	o.Keep = false
	f, err := Boot(ctx, topo, o)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	obs := o.Observer
	if obs == nil {
		obs = nopObserver{}
	}
	obs.Booted(f)
	obs.Phase("converge")
	_, convErr := f.WaitConverged(ctx)
	obs.Phase("checks")
	checks := f.Check(ctx)
	obs.Checks(checks)
	rep = f.NewReport(ctx)
	rep.Converged = convErr == nil
	if convErr != nil {
		rep.ConvergeError = convErr.Error()
	}
	rep.AddChecks(checks)
	if len(f.Plan.Faults) > 0 {
		obs.Phase("faults")
	}
	for _, fp := range f.Plan.Faults {
		if ctx.Err() != nil {
			break
		}
		obs.FaultStarted(fp)
		fr, fchecks := f.Fault(ctx, fp)
		obs.FaultDone(fr)
		obs.Checks(fchecks)
		rep.Faults = append(rep.Faults, fr)
		rep.AddChecks(fchecks)
		if fr.Status != Passed && len(fchecks) == 0 {
			rep.ChecksFailed++
		}
	}
	obs.Phase("done")
	obs.Done(rep)
	return rep, ctx.Err()
}
