package sim

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/sim/probe"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Check statuses.
const (
	Passed  = "passed"
	Failed  = "failed"
	Skipped = "skipped" // could not run: counts as not passed
)

// CheckResult is the outcome of one check.
type CheckResult struct {
	Name     string   `json:"name"`
	Kind     string   `json:"kind"` // connectivity, blocked, routes
	Status   string   `json:"status"`
	Seconds  float64  `json:"seconds"`
	Probes   int      `json:"probes,omitempty"`
	Failures []string `json:"failures,omitempty"`
	Message  string   `json:"message,omitempty"`
}

// Probe timeouts.
const (
	reachTimeout   = 5 * time.Second
	blockedTimeout = 2 * time.Second
)

// Check runs every check of the topology and returns their results.
func (f *Fabric) Check(ctx context.Context) []CheckResult {
	var out []CheckResult
	for _, fl := range f.Plan.Checks.Connectivity {
		out = append(out, f.checkFlow(ctx, "connectivity", fl, true))
	}
	for _, fl := range f.Plan.Checks.Blocked {
		out = append(out, f.checkFlow(ctx, "blocked", fl, false))
	}
	for i, rc := range f.Plan.Checks.Routes {
		out = append(out, f.checkRoutes(ctx, i, rc))
	}
	return out
}

// checkFlow probes every pair of a flow, 32 at a time, with real packets
// from inside the source workload's namespace.
func (f *Fabric) checkFlow(ctx context.Context, kind string, fl topology.FlowPlan, reach bool) CheckResult {
	start := time.Now()
	res := CheckResult{Name: fl.Name, Kind: kind}
	if !f.WorkloadsWired() {
		res.Status, res.Message = Skipped, "workloads are not wired (no CNI plugin run): nothing to probe"
		return res
	}
	var mu sync.Mutex
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, pair := range f.Plan.Pairs(fl) {
		for _, fam := range fl.Families {
			src, dst := f.workloads[pair.From.Name], f.workloads[pair.To.Name]
			to, ok := dst.addr(fam)
			if !ok {
				continue
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				fail := f.probePair(ctx, fl, src, to, reach)
				mu.Lock()
				defer mu.Unlock()
				res.Probes++
				if fail != "" {
					res.Failures = append(res.Failures, fmt.Sprintf("%s -> %s (%s): %s", src.plan.Name, dst.plan.Name, to, fail))
				}
			})
		}
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	switch {
	case res.Probes == 0:
		res.Status, res.Message = Failed, "no pair had addresses of the flow's families"
	case len(res.Failures) > 0:
		res.Status = Failed
		res.Message = fmt.Sprintf("%d of %d probes failed", len(res.Failures), res.Probes)
	default:
		res.Status = Passed
	}
	return res
}

// probePair returns why a probe did not go as expected, or "".
func (f *Fabric) probePair(ctx context.Context, fl topology.FlowPlan, src *workloadState, to netip.Addr, reach bool) string {
	timeout := reachTimeout
	if !reach {
		timeout = blockedTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var r probe.Result
	if fl.Protocol == "tcp" {
		r = probe.TCP(pctx, src.ns, to, fl.Port)
	} else {
		r = probe.Ping(pctx, src.ns, to)
	}
	switch {
	case reach && !r.OK:
		return fmt.Sprint(r.Err)
	case !reach && r.OK:
		return "reached, but must be blocked"
	case !reach && r.Refused:
		return "refused by the destination: the packet got through (a blocked flow must not reach it)"
	}
	return ""
}

// checkRoutes checks the routes of one node.
func (f *Fabric) checkRoutes(ctx context.Context, i int, rc topology.RouteCheck) CheckResult {
	start := time.Now()
	res := CheckResult{Name: fmt.Sprintf("routes-%s", rc.Node), Kind: "routes"}
	routes, err := f.Routes(rc.Node)
	if err != nil {
		res.Status, res.Message = Failed, err.Error()
		return res
	}
	have := map[netip.Prefix]bool{}
	for _, r := range routes {
		have[r.Dst] = true
	}
	want := map[string]bool{}
	for _, s := range rc.Present {
		want[s] = true
	}
	if rc.Blocks {
		blocks, err := f.otherBlocks(ctx, rc.Node)
		if err != nil {
			res.Status, res.Message = Failed, err.Error()
			return res
		}
		if len(blocks) == 0 {
			res.Failures = append(res.Failures, "no IPAM block is affine to another node: nothing to route")
		}
		for _, b := range blocks {
			want[b.String()] = true
		}
	}
	for s := range want {
		res.Probes++
		if !have[netip.MustParsePrefix(s).Masked()] {
			res.Failures = append(res.Failures, "missing "+s)
		}
	}
	for _, s := range rc.Absent {
		res.Probes++
		if have[netip.MustParsePrefix(s).Masked()] {
			res.Failures = append(res.Failures, "unexpected "+s)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Status = Passed
	if len(res.Failures) > 0 {
		res.Status, res.Message = Failed, strings.Join(res.Failures, "; ")
	}
	return res
}

// otherBlocks lists the IPAM blocks affine to nodes other than node.
func (f *Fabric) otherBlocks(ctx context.Context, node string) ([]netip.Prefix, error) {
	rs, _, err := f.client.List(ctx, api.KindIPAMBlock, "")
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, r := range rs {
		b, ok := r.(*api.IPAMBlock)
		if !ok {
			continue
		}
		if host, ok := b.Host(); ok && host != node {
			if pfx, err := netip.ParsePrefix(b.Spec.CIDR); err == nil {
				out = append(out, pfx)
			}
		}
	}
	return out, nil
}
