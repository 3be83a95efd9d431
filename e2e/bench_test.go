package e2e

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// BenchmarkRR2x50 and BenchmarkRR2x98 boot the 52- and 100-node reflector
// fabrics with the real agents, wait for convergence, run the topology's
// sampled all-pairs check and tear down, and report where the time went
// and how much memory the agents hold (docs/benchmarks.md, "Simulator").
// Run them one at a time, on an idle machine:
//
//	go test ./e2e -run '^$' -bench 'RR2x98' -benchtime 1x -timeout 30m
var cniParallel = flag.Int("sim.cni-parallel", 0, "nodes wired through CNI at once (0: sim.DefaultCNIParallel)")

func BenchmarkRR2x50(b *testing.B) { benchFabric(b, "rr-2x50") }
func BenchmarkRR2x98(b *testing.B) { benchFabric(b, "rr-2x98") }

func benchFabric(b *testing.B, name string) {
	nstest.RequireRoot(b)
	topo, err := topology.Load(filepath.Join("..", "topologies", name+".yaml"))
	if err != nil {
		b.Fatal(err)
	}
	// The topology's faults are for `sim run`, not for the benchmark.
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		o := sim.Options{Binary: binary, Grace: 3 * time.Second, CNIParallel: *cniParallel}
		if *verbose {
			o.Progress = os.Stderr
		}
		start := time.Now()
		f, err := sim.Boot(ctx, topo, o)
		if err != nil {
			b.Fatal(err)
		}
		conv, err := f.WaitConverged(ctx)
		if err != nil {
			f.Close()
			b.Fatal(err)
		}
		upAndConverged := time.Since(start)
		nodeRSS, rrRSS := agentRSS(f)
		checks := f.Check(ctx)
		var probes int
		var checkTime float64
		for _, c := range checks {
			if c.Status != sim.Passed {
				b.Errorf("check %s: %s %v", c.Name, c.Message, c.Failures)
			}
			probes += c.Probes
			checkTime += c.Seconds
		}
		tm := f.Timings()
		nsCount := len(f.Plan.Namespaces())
		t0 := time.Now()
		if err := f.Close(); err != nil {
			b.Error(err)
		}
		teardown := time.Since(t0)
		baseAdd, baseDel := ipNetnsBaseline(b, nsCount)

		b.ReportMetric(tm.Boot.Seconds(), "boot-s")
		b.ReportMetric(conv.Seconds(), "converge-s")
		b.ReportMetric(upAndConverged.Seconds(), "up+converged-s")
		b.ReportMetric(teardown.Seconds(), "teardown-s")
		b.ReportMetric(mean(nodeRSS)/1024, "node-rss-mean-MiB")
		b.ReportMetric(slices.Max(nodeRSS)/1024, "node-rss-max-MiB")
		b.Logf("%s: %d nodes, %d workloads, %d namespaces", name, len(f.Plan.Nodes), len(f.Plan.Workloads), nsCount)
		b.Logf("boot %.2fs = namespaces %.2fs + datastore %.2fs + agents started %.2fs + workloads (CNI) %.2fs",
			tm.Boot.Seconds(), tm.Namespaces.Seconds(), tm.Datastore.Seconds(), tm.Agents.Seconds(), tm.Workloads.Seconds())
		b.Logf("after boot start: all nodes ready %.2fs, all sessions established %.2fs, all routes installed %.2fs; converged %.2fs after boot (up and converged %.2fs)",
			tm.AllReady.Seconds(), tm.AllEstablished.Seconds(), tm.AllRoutes.Seconds(), conv.Seconds(), upAndConverged.Seconds())
		b.Logf("checks: %d probes in %.2fs; teardown %.2fs", probes, checkTime, teardown.Seconds())
		b.Logf("baseline in the same run: `ip -batch` netns add of %d namespaces %.2fs, delete %.2fs; the sim's namespace phase (namespaces, veths, addresses, sysctls) is %.1fx the bare add",
			nsCount, baseAdd.Seconds(), baseDel.Seconds(), tm.Namespaces.Seconds()/baseAdd.Seconds())
		b.Logf("agent RSS at convergence: nodes (felix+router) mean %.1f MiB, max %.1f MiB over %d; reflectors mean %.1f MiB, max %.1f MiB over %d",
			mean(nodeRSS)/1024, slices.Max(nodeRSS)/1024, len(nodeRSS), mean(rrRSS)/1024, maxOr0(rrRSS)/1024, len(rrRSS))
	}
}

// agentRSS reads VmRSS (KiB) of every agent process.
func agentRSS(f *sim.Fabric) (nodes, reflectors []float64) {
	for _, n := range f.Plan.Nodes {
		pid := f.AgentPID(n.Name)
		if pid == 0 {
			continue
		}
		kb, ok := vmRSS(pid)
		if !ok {
			continue
		}
		switch n.Agent {
		case topology.AgentNode:
			nodes = append(nodes, kb)
		case topology.AgentReflector:
			reflectors = append(reflectors, kb)
		}
	}
	return nodes, reflectors
}

func vmRSS(pid int) (float64, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb, err == nil
		}
	}
	return 0, false
}

// ipNetnsBaseline creates and deletes n bare namespaces with one `ip
// -batch` each: the floor for the sim's namespace phase on this machine,
// measured in the same run.
func ipNetnsBaseline(b *testing.B, n int) (add, del time.Duration) {
	prefix := fmt.Sprintf("bfbench-%d-", os.Getpid())
	var adds, dels bytes.Buffer
	for i := range n {
		fmt.Fprintf(&adds, "netns add %s%d\n", prefix, i)
		fmt.Fprintf(&dels, "netns delete %s%d\n", prefix, i)
	}
	failed := false
	run := func(script *bytes.Buffer) time.Duration {
		t0 := time.Now()
		cmd := exec.Command("ip", "-batch", "-")
		cmd.Stdin = bytes.NewReader(script.Bytes())
		if out, err := cmd.CombinedOutput(); err != nil {
			failed = true
			b.Errorf("ip -batch: %v: %s", err, out)
		}
		return time.Since(t0)
	}
	defer func() {
		if !failed {
			return
		}
		// Whatever happened, none of them stays.
		for i := range n {
			_ = exec.Command("ip", "netns", "delete", prefix+strconv.Itoa(i)).Run()
		}
	}()
	add = run(&adds)
	del = run(&dels)
	return add, del
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func maxOr0(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}
