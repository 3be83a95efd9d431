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
	_, convErr := f.WaitConverged(ctx)
	checks := f.Check(ctx)
	rep = f.NewReport(ctx)
	rep.Converged = convErr == nil
	if convErr != nil {
		rep.ConvergeError = convErr.Error()
	}
	rep.AddChecks(checks)
	for _, fp := range f.Plan.Faults {
		if ctx.Err() != nil {
			break
		}
		fr, fchecks := f.Fault(ctx, fp)
		rep.Faults = append(rep.Faults, fr)
		rep.AddChecks(fchecks)
		if fr.Status != Passed && len(fchecks) == 0 {
			rep.ChecksFailed++
		}
	}
	return rep, ctx.Err()
}
