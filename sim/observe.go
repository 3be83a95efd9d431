package sim

import (
	"net/netip"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Observer follows a run as Run carries it out: the live web view
// (package sim/ui) is one. Run calls it from its own goroutine, in order;
// a call must return quickly and must not call back into Run.
type Observer interface {
	// Booted hands over the fabric once its agents are started; it stays
	// valid until Done returns.
	Booted(f *Fabric)
	// Phase names what the run does now: "converge", "checks", "faults",
	// "done".
	Phase(name string)
	// Checks reports a batch of check results (a fault's carry its name).
	Checks(rs []CheckResult)
	// FaultStarted and FaultDone bracket each fault of the plan.
	FaultStarted(fp topology.FaultPlan)
	FaultDone(fr FaultResult)
	// Done hands over the complete report, before the fabric is torn down.
	Done(rep *Report)
}

// ExpectedSessions returns, for each bgpfabric node and reflector of a
// plan, the peer addresses of the sessions it should have, as its agent
// computes them from the plan's resources.
func ExpectedSessions(p *topology.Plan) map[string][]netip.Addr { return expectedSessions(p) }

// nopObserver is Run's observer when Options has none.
type nopObserver struct{}

func (nopObserver) Booted(*Fabric)                  {}
func (nopObserver) Phase(string)                    {}
func (nopObserver) Checks([]CheckResult)            {}
func (nopObserver) FaultStarted(topology.FaultPlan) {}
func (nopObserver) FaultDone(FaultResult)           {}
func (nopObserver) Done(*Report)                    {}
