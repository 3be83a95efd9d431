package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// FaultResult is what a fault did and how the fabric took it: one entry
// of the report's fault timeline.
type FaultResult struct {
	Name              string  `json:"name"`
	Action            string  `json:"action"`
	Status            string  `json:"status"`
	Seconds           float64 `json:"seconds"`
	ReconvergeSeconds float64 `json:"reconverge_seconds"`
	Message           string  `json:"message,omitempty"`
	ChecksFailed      int     `json:"checks_failed"`

	// Target is what the fault hit, e.g. "node-1 eth0" or
	// "node-1,node-2 | node-3"; Detail what it did there (an
	// impairment, a partition's direction).
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
	// StartSeconds is when the fault began, counted from the start of
	// the boot.
	StartSeconds float64 `json:"start_seconds"`
	// SessionsLost counts the BGP sessions (node, peer) of bgpfabric
	// nodes and reflectors that were Established when the fault began
	// and left that state before the fabric had reconverged.
	SessionsLost int `json:"sessions_lost"`
	// LostSessions names them, "NODE PEER-ADDRESS", sorted; the first
	// 64 only.
	LostSessions []string `json:"lost_sessions,omitempty"`
	// RoutesWithdrawn counts the routes the nodes' routers deleted from
	// their kernels meanwhile.
	RoutesWithdrawn int `json:"routes_withdrawn"`
	// LongestStallSeconds is the longest time a TCP stream between two
	// workloads (StallFlow) went without an echo meanwhile; absent
	// without two workloads on different nodes.
	LongestStallSeconds *float64 `json:"longest_stall_seconds,omitempty"`
	StallFlow           string   `json:"stall_flow,omitempty"`
}

// Fault injects one fault: it applies it, restores it after its duration
// (if any), waits for the fabric to converge again and runs the checks.
// What it changed meanwhile (sessions lost, routes withdrawn, the longest
// stall of a TCP stream across the fabric) is measured from just before
// it begins until the fabric has reconverged. The checks' results are
// returned for the report; the fault passes when the fabric reconverged
// and every check passed.
func (f *Fabric) Fault(ctx context.Context, fp topology.FaultPlan) (FaultResult, []CheckResult) {
	start := time.Now()
	res := FaultResult{Name: fp.Name, Action: fp.Action, Target: faultTarget(fp), Detail: faultDetail(fp)}
	if !f.bootStart.IsZero() {
		res.StartSeconds = start.Sub(f.bootStart).Seconds()
	}
	f.progress("fault %s: %s %s", fp.Name, fp.Action, res.Target)
	if err := checkFault(fp); err != nil {
		res.Status, res.Message = Failed, err.Error()
		return res, nil
	}
	w := f.watchFault(ctx, fp)
	defer w.close()
	if err := f.inject(ctx, fp); err != nil {
		w.result(&res)
		res.Status, res.Message = Failed, err.Error()
		res.Seconds = time.Since(start).Seconds()
		return res, nil
	}
	if fp.Action == topology.FaultSessionReset {
		f.waitSessionLost(ctx, w, fp)
	}
	conv, err := f.waitAfterFault(ctx, fp)
	res.ReconvergeSeconds = conv.Seconds()
	w.result(&res)
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

// faultTarget names what a fault hits, for the timeline.
func faultTarget(fp topology.FaultPlan) string {
	switch {
	case fp.Action == topology.FaultPartition && fp.Datastore:
		return strings.Join(fp.Nodes, ",") + " | datastore"
	case fp.Action == topology.FaultPartition:
		return strings.Join(fp.Nodes, ",") + " | " + strings.Join(fp.From, ",")
	case fp.Action == topology.FaultSessionReset:
		return fp.Node + " - " + fp.Peer
	case fp.Interface != "":
		return fp.Node + " " + fp.Interface
	}
	return fp.Node
}

// faultDetail says what a fault does to its target, for the timeline.
func faultDetail(fp topology.FaultPlan) string {
	var s string
	switch fp.Action {
	case topology.FaultImpair:
		s = fp.Impair.String()
	case topology.FaultPartition:
		s = "both directions"
		if fp.Datastore {
			s = "from the datastore only"
		}
		if fp.OneWay {
			s = "one way: what the first set sends to the second is dropped"
		}
	case topology.FaultFlap:
		return fmt.Sprintf("down and up %d times, %s each", fp.Count, fp.Interval)
	}
	if fp.Duration > 0 {
		if s != "" {
			s += ", "
		}
		s += "for " + fp.Duration.String()
	}
	return s
}

// checkFault refuses a fault plan built in code (or by `sim fault`) that
// lacks what its action needs; a topology's faults are validated by
// topology.Parse already.
func checkFault(fp topology.FaultPlan) error {
	switch fp.Action {
	case topology.FaultImpair:
		if fp.Impair == nil || fp.Interface == "" {
			return fmt.Errorf("fault %s: impair needs an interface and an impairment", fp.Name)
		}
	case topology.FaultPartition:
		if len(fp.Nodes) == 0 || (len(fp.From) == 0) != fp.Datastore {
			return fmt.Errorf("fault %s: partition needs two sets of nodes, or one and the datastore", fp.Name)
		}
	case topology.FaultPauseAgent:
		if fp.Duration <= 0 {
			return fmt.Errorf("fault %s: pause-agent needs a duration", fp.Name)
		}
	case topology.FaultSessionReset:
		if fp.Node == "" || fp.Peer == "" {
			return fmt.Errorf("fault %s: session-reset needs a node and a peer", fp.Name)
		}
	case topology.FaultFlap:
		if fp.Interface == "" || fp.Count < 1 || fp.Interval <= 0 {
			return fmt.Errorf("fault %s: flap needs an interface, a count and an interval", fp.Name)
		}
	}
	return nil
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
	case topology.FaultImpair:
		if err := f.Impair(fp.Node, fp.Interface, fp.Impair); err != nil {
			return err
		}
		restore = func() error { return f.Impair(fp.Node, fp.Interface, f.ownImpairment(fp.Node, fp.Interface)) }
	case topology.FaultPartition:
		partition := func() (func() error, error) { return f.Partition(fp.Name, fp.Nodes, fp.From, fp.OneWay) }
		if fp.Datastore {
			partition = func() (func() error, error) { return f.PartitionDatastore(fp.Nodes) }
		}
		heal, err := partition()
		if err != nil {
			return err
		}
		restore = heal
	case topology.FaultPauseAgent:
		if err := f.PauseAgent(fp.Node); err != nil {
			return err
		}
		restore = func() error { return f.ResumeAgent(fp.Node) }
	case topology.FaultFlap:
		return f.Flap(ctx, fp.Node, fp.Interface, fp.Count, fp.Interval)
	case topology.FaultSessionReset:
		return f.ResetSession(ctx, fp.Node, fp.Peer)
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

// sessionLostLimit bounds waitSessionLost: a bgpfabric agent writes its
// BGPStatus within a second or two of a change.
const sessionLostLimit = 10 * time.Second

// waitSessionLost waits until the status of an end of a session-reset's
// session that writes one (a bgpfabric node or reflector) has shown it
// leave Established: the reset itself returns at once, before the
// fabric's status says anything, and convergence measured from then
// would miss it. Without such an end it does not wait.
func (f *Fabric) waitSessionLost(ctx context.Context, w *faultWatch, fp topology.FaultPlan) {
	a, b := f.Plan.Node(fp.Node), f.Plan.Node(fp.Peer)
	if a == nil || b == nil || (!writesStatus(a) && !writesStatus(b)) {
		return
	}
	addrs := func(n *topology.NodePlan) []string {
		var out []string
		for _, x := range nodeAddrs(n) {
			out = append(out, x.String())
		}
		return out
	}
	aAddrs, bAddrs := addrs(a), addrs(b)
	if !w.waitLost(ctx, func(node, peer string) bool {
		return (node == a.Name && slices.Contains(bAddrs, peer)) || (node == b.Name && slices.Contains(aAddrs, peer))
	}, sessionLostLimit) {
		f.log.Warn("fault timeline: the reset session did not show as down", "fault", fp.Name, "within", sessionLostLimit)
	}
}

// writesStatus reports whether the node's agent writes a BGPStatus.
func writesStatus(n *topology.NodePlan) bool {
	return n.Agent == topology.AgentNode || n.Agent == topology.AgentReflector
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
