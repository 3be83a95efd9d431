package ipam_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/ipam"
)

// BenchmarkConcurrentNodes: 4 nodes allocate 50 addresses each, all 200
// calls at once, then release them all at once. Each node has its own
// Client (one process per host); "uncoordinated" gives every call its own
// Client, the worst case of CNI plugins without the IPAM lock file. It
// reports the time of the 200 allocations and the CAS retries they took.
func BenchmarkConcurrentNodes(b *testing.B) {
	for _, mode := range []string{"per-node", "uncoordinated"} {
		b.Run(mode, func(b *testing.B) {
			const nodes, per = 4, 50
			e := newEnv(b)
			e.apply(ipPool("p", "10.0.0.0/24", 26))
			for n := range nodes {
				e.apply(node(fmt.Sprintf("n%d", n), nil))
			}
			var assignTime time.Duration
			var conflicts uint64
			for b.Loop() {
				clients := make([]*ipam.Client, nodes*per)
				for i := range clients {
					if mode == "uncoordinated" || i%per == 0 {
						clients[i] = e.ipam(ipam.Config{MaxConflicts: 10000})
					} else {
						clients[i] = clients[i-1]
					}
				}
				var wg sync.WaitGroup
				start := time.Now()
				for i, c := range clients {
					wg.Go(func() {
						_, err := c.AutoAssign(e.ctx, ipam.AssignArgs{Node: fmt.Sprintf("n%d", i/per), Handle: fmt.Sprint(i), Num4: 1})
						if err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				assignTime += time.Since(start)
				seen := map[*ipam.Client]bool{}
				for _, c := range clients {
					if !seen[c] {
						seen[c] = true
						conflicts += c.Stats().Conflicts
					}
				}
				for i, c := range clients {
					wg.Go(func() {
						if _, err := c.ReleaseByHandle(e.ctx, fmt.Sprint(i)); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(assignTime.Microseconds())/1000/float64(b.N), "ms/200-allocs")
			b.ReportMetric(float64(conflicts)/float64(b.N), "cas-retries/op")
		})
	}
}
