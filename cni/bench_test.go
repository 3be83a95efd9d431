package cni_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// BenchmarkAddDel runs 100 sequential ADDs on one node through libcni, as
// a runtime does (one plugin process per call), then 100 DELs, and
// reports the latency percentiles of each.
func BenchmarkAddDel(b *testing.B) {
	const n = 100
	f := newFabric(b)
	list := f.confList(nil)
	c := f.cni()
	rts := make([]*libcni.RuntimeConf, n)
	for i := range rts {
		_, rts[i] = f.container(fmt.Sprintf("bench%03d", i))
	}
	var add, del []time.Duration
	for b.Loop() {
		for _, rt := range rts {
			start := time.Now()
			if err := f.inHost(func() error { _, err := c.AddNetworkList(f.ctx, list, rt); return err }); err != nil {
				b.Fatalf("ADD %s: %v", rt.ContainerID, err)
			}
			add = append(add, time.Since(start))
		}
		for _, rt := range rts {
			start := time.Now()
			if err := f.inHost(func() error { return c.DelNetworkList(f.ctx, list, rt) }); err != nil {
				b.Fatalf("DEL %s: %v", rt.ContainerID, err)
			}
			del = append(del, time.Since(start))
		}
	}
	report(b, "add", add)
	report(b, "del", del)
}

func report(b *testing.B, what string, ds []time.Duration) {
	slices.Sort(ds)
	pct := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, what+"-p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, what+"-p99-ms")
}
