package nft

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/policy"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// benchCluster is the benchmark's cluster: 10,000 workload endpoints (the
// first `local` of them on this node, the rest spread over 99 others) and
// 1,000 global policies. Endpoint i has app = app-(i%200) and role =
// role-(i%1000); policy j applies to app-(j%200) (so to 50 endpoints, and
// every local endpoint has 5 policies), allows TCP 80+j%100 in from
// role-j (10 endpoints) and TCP 443 out to role-(j+1) (10 endpoints).
type benchCluster struct {
	endpoints []*api.WorkloadEndpoint
	policies  []*api.GlobalNetworkPolicy
}

func newBenchCluster(endpoints, policies, local int) *benchCluster {
	bc := &benchCluster{}
	for i := range endpoints {
		nodeName := thisNode
		if i >= local {
			nodeName = fmt.Sprintf("node-%d", 2+i%99)
		}
		bc.endpoints = append(bc.endpoints, wep(fmt.Sprintf("ns-%d", i%20), fmt.Sprintf("ep-%d", i), nodeName,
			fmt.Sprintf("wl-%d", i), fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255),
			map[string]string{"app": fmt.Sprintf("app-%d", i%200), "role": fmt.Sprintf("role-%d", i%1000)}))
	}
	for j := range policies {
		bc.policies = append(bc.policies, gnp(fmt.Sprintf("pol-%d", j), ptr(float64(j)), fmt.Sprintf("app == 'app-%d'", j%200),
			[]api.Rule{{Action: api.Allow, Protocol: tcp(),
				Source:      api.EntityRule{Selector: fmt.Sprintf("role == 'role-%d'", j)},
				Destination: api.EntityRule{Ports: []api.Port{api.PortNumber(uint16(80 + j%100))}}}},
			[]api.Rule{{Action: api.Allow, Protocol: tcp(),
				Destination: api.EntityRule{Selector: fmt.Sprintf("role == 'role-%d'", (j+1)%1000), Ports: []api.Port{"443"}}}}))
	}
	return bc
}

func (bc *benchCluster) load(tb testing.TB, c *policy.Calculator) {
	for _, p := range bc.policies {
		if err := c.OnGlobalNetworkPolicyUpdate(p); err != nil {
			tb.Fatal(err)
		}
	}
	for _, w := range bc.endpoints {
		c.OnWorkloadEndpointUpdate(w)
	}
}

var benchLocals = []int{500, 2000}

// BenchmarkFullApply: calculation of the whole ruleset from scratch plus
// writing it into a fresh namespace as one transaction (which replaces
// the table the previous iteration wrote).
func BenchmarkFullApply(b *testing.B) {
	for _, local := range benchLocals {
		b.Run(fmt.Sprintf("local=%d", local), func(b *testing.B) {
			ns := nstest.New(b)
			bc := newBenchCluster(10000, 1000, local)
			dp := NewNetlink(NetlinkConfig{NetNS: int(ns.Handle)})
			var calcTime, applyTime time.Duration
			var ops int
			for b.Loop() {
				start := time.Now()
				c := policy.New(policy.Config{Node: thisNode})
				bc.load(b, c)
				u := c.TakeUpdate()
				mid := time.Now()
				fake := &countingDP{dp: dp}
				if err := New(fake, Config{}).Apply(context.Background(), u); err != nil {
					b.Fatal(err)
				}
				calcTime += mid.Sub(start)
				applyTime += time.Since(mid)
				ops = fake.ops
			}
			n := float64(b.N)
			b.ReportMetric(float64(calcTime.Milliseconds())/n, "calc-ms/op")
			b.ReportMetric(float64(applyTime.Milliseconds())/n, "apply-ms/op")
			b.ReportMetric(float64(ops), "nft-ops")
		})
	}
}

// BenchmarkLabelChange: one remote endpoint's label changes (it moves
// from one rule selector's set to another's); calculation plus the nft
// transaction.
func BenchmarkLabelChange(b *testing.B) {
	for _, local := range benchLocals {
		b.Run(fmt.Sprintf("local=%d", local), func(b *testing.B) {
			ns := nstest.New(b)
			bc := newBenchCluster(10000, 1000, local)
			c := policy.New(policy.Config{Node: thisNode})
			bc.load(b, c)
			tbl := New(NewNetlink(NetlinkConfig{NetNS: int(ns.Handle)}), Config{})
			if err := tbl.Apply(context.Background(), c.TakeUpdate()); err != nil {
				b.Fatal(err)
			}
			w := bc.endpoints[len(bc.endpoints)-1].DeepCopyResource().(*api.WorkloadEndpoint)
			roles := [2]string{w.Labels["role"], "role-7"}
			i := 0
			for b.Loop() {
				i++
				w.Labels = map[string]string{"app": w.Labels["app"], "role": roles[i%2]}
				c.OnWorkloadEndpointUpdate(w)
				u := c.TakeUpdate()
				if len(u.Members) != 2 || len(u.Policies)+len(u.Endpoints) != 0 {
					b.Fatalf("update: %d member changes, %d policies, %d endpoints", len(u.Members), len(u.Policies), len(u.Endpoints))
				}
				if err := tbl.Apply(context.Background(), u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingDP counts the ops it passes on.
type countingDP struct {
	dp  Dataplane
	ops int
}

func (c *countingDP) Commit(ctx context.Context, ops []Op) error {
	c.ops = len(ops)
	return c.dp.Commit(ctx, ops)
}
