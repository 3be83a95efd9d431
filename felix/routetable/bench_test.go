package routetable

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// The benchmarks need root. Each iteration programs a fresh namespace,
// which is removed at once. BenchmarkIPBatch100k is the bar that
// BenchmarkProgram100k must beat: the same 100,000 routes through
// `ip -batch`, one netlink round trip per route.

const benchRoutes = 100_000

// benchNS returns a fresh namespace with veth v0 up, outside the timer.
func benchNS(b *testing.B) *nstest.NS {
	b.StopTimer()
	ns := nstest.New(b)
	nstest.Veth(b, ns, "v0", ns, "v1")
	return ns
}

// closeBenchNS removes ns. It deletes v0 first, which flushes the routes
// through it at once: the kernel would otherwise do that in the
// background, under the rtnl lock, during the next iteration.
func closeBenchNS(b *testing.B, ns *nstest.NS) {
	b.StopTimer()
	link, err := ns.Netlink.LinkByName("v0")
	if err == nil {
		err = ns.Netlink.LinkDel(link)
	}
	if err != nil {
		b.Fatal(err)
	}
	if err := ns.Close(); err != nil {
		b.Fatal(err)
	}
}

func checkCount(b *testing.B, dp *NetlinkDataplane, want int) {
	if got := countRoutes(b, dp); got != want {
		b.Fatalf("%d routes in the kernel, want %d", got, want)
	}
}

func BenchmarkProgram100k(b *testing.B) {
	routes := hostRoutes(benchRoutes, "v0")
	for range b.N {
		ns := benchNS(b)
		dp, err := NewNetlinkDataplane(ns.Handle)
		if err != nil {
			b.Fatal(err)
		}
		rt, err := New(Config{}, dp)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := rt.Set(routes); err != nil {
			b.Fatal(err)
		}
		if err := rt.Apply(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		checkCount(b, dp, benchRoutes)
		dp.Close()
		closeBenchNS(b, ns)
	}
	b.ReportMetric(float64(benchRoutes)*float64(b.N)/b.Elapsed().Seconds(), "routes/s")
}

func BenchmarkIPBatch100k(b *testing.B) {
	var script strings.Builder
	for _, r := range hostRoutes(benchRoutes, "v0") {
		fmt.Fprintf(&script, "route add %s dev v0 proto 80\n", r.Dst)
	}
	file := filepath.Join(b.TempDir(), "routes.batch")
	if err := os.WriteFile(file, []byte(script.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		ns := benchNS(b)
		b.StartTimer()
		if out, err := exec.Command("ip", "-n", ns.Name, "-batch", file).CombinedOutput(); err != nil {
			b.Fatalf("ip -batch: %v: %s", err, out)
		}
		closeBenchNS(b, ns)
	}
	b.ReportMetric(float64(benchRoutes)*float64(b.N)/b.Elapsed().Seconds(), "routes/s")
}

// BenchmarkResync1pct measures Resync and Apply over 100,000 programmed
// routes of which 1% were deleted (500) or changed (500) behind our back.
func BenchmarkResync1pct(b *testing.B) {
	routes := hostRoutes(benchRoutes, "v0")
	ctx := context.Background()
	for range b.N {
		ns := benchNS(b)
		dp, err := NewNetlinkDataplane(ns.Handle)
		if err != nil {
			b.Fatal(err)
		}
		rt, err := New(Config{}, dp)
		if err != nil {
			b.Fatal(err)
		}
		if err := rt.Set(routes); err != nil {
			b.Fatal(err)
		}
		if err := rt.Apply(ctx); err != nil {
			b.Fatal(err)
		}
		var damage []RouteOp
		for i := 0; i < benchRoutes; i += 100 {
			k := KernelRoute{Table: TableMain, Protocol: ProtoFelix, Dst: routes[i].Dst}
			if i%200 == 0 {
				k.Scope = scopeNowhere
				damage = append(damage, RouteOp{Kind: OpDelete, Route: k})
			} else {
				k.Type = TypeBlackhole
				damage = append(damage, RouteOp{Kind: OpReplace, Route: k})
			}
		}
		if failed := dp.WriteRoutes(ctx, damage); len(failed) > 0 {
			b.Fatalf("damaging: %v", failed[0].Err)
		}
		b.StartTimer()
		rt.Resync()
		if err := rt.Apply(ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if i := len(rt.dirty); i != 0 {
			b.Fatalf("%d prefixes still dirty", i)
		}
		checkCount(b, dp, benchRoutes)
		dp.Close()
		closeBenchNS(b, ns)
	}
}
