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

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// BenchmarkRR2x50, BenchmarkRR2x98 and BenchmarkRR2x298 boot the 52-,
// 100- and 300-node reflector fabrics with the real agents, wait for
// convergence, measure the converged fabric at rest for -sim.idle (agent
// CPU, datastore writes), run the topology's sampled all-pairs check and
// tear down, and report where the time went, the datastore's load (from
// the embedded etcd's own Prometheus counters) and what the agents cost
// (docs/benchmarks.md, "Simulator"; docs/scale.md). Run them one at a
// time, on an idle machine:
//
//	go test ./e2e -run '^$' -bench 'RR2x98$' -benchtime 1x -timeout 30m
//	go test ./e2e -run '^$' -bench 'RR2x298' -benchtime 1x -timeout 60m
var (
	cniParallel = flag.Int("sim.cni-parallel", 0, "nodes wired through CNI at once (0: sim.DefaultCNIParallel)")
	idleFor     = flag.Duration("sim.idle", 60*time.Second, "how long the benchmarks measure the converged fabric at rest")
	viaProxy    = flag.Bool("sim.proxy", false, "connect the agents to etcd through etcd's gRPC proxy (sim.Options.DatastoreProxy)")
)

func BenchmarkRR2x50(b *testing.B)  { benchFabric(b, "rr-2x50") }
func BenchmarkRR2x98(b *testing.B)  { benchFabric(b, "rr-2x98") }
func BenchmarkRR2x298(b *testing.B) { benchFabric(b, "rr-2x298") }

func benchFabric(b *testing.B, name string) {
	nstest.RequireRoot(b)
	topo, err := topology.Load(filepath.Join("..", "topologies", name+".yaml"))
	if err != nil {
		b.Fatal(err)
	}
	// The topology's faults are for `sim run`, not for the benchmark.
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		o := sim.Options{Binary: binary, Grace: 3 * time.Second, CNIParallel: *cniParallel, DatastoreProxy: *viaProxy}
		if *verbose {
			o.Progress = os.Stderr
		}
		ds0 := readEtcdCounters(b)
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
		ds1 := readEtcdCounters(b)
		st1 := statusWrites(b, f)
		nodeRSS, rrRSS := agentRSS(f)
		// At rest: what the converged fabric costs.
		// Two windows: the first after convergence still holds each
		// agent's deferred write of its final prefix counts (latest's
		// slow period); the second is the steady state.
		idle0 := time.Now()
		time.Sleep(*idleFor) // a measurement window, not a wait for state
		settleWall := time.Since(idle0)
		ds2 := readEtcdCounters(b)
		st2 := statusWrites(b, f)
		cpu0 := agentCPU(f)
		idle1 := time.Now()
		time.Sleep(*idleFor)
		idleWall := time.Since(idle1)
		cpu1 := agentCPU(f)
		ds3 := readEtcdCounters(b)
		st3 := statusWrites(b, f)
		nodeCPU, rrCPU := cpuPercent(f, cpu0, cpu1, idleWall)
		nodeRSSIdle, _ := agentRSS(f)
		nodeMemIdle := agentMem(f)
		nodePSS := memField(nodeMemIdle, func(m nodeMem) float64 { return m.pss })
		nodePrivate := memField(nodeMemIdle, func(m nodeMem) float64 { return m.private })
		agents := float64(len(f.Plan.Nodes))
		convWrites := ds1.sub(ds0)
		settleWrites := ds2.sub(ds1)
		idleWrites := ds3.sub(ds2)
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
		b.ReportMetric(convWrites.writes()/upAndConverged.Seconds(), "ds-writes/s-converging")
		b.ReportMetric(idleWrites.writes()/idleWall.Seconds()/agents, "ds-writes/s/agent-idle")
		b.ReportMetric(idleWrites.events/idleWall.Seconds(), "ds-watch-events/s-idle")
		b.ReportMetric(ds3.watchers, "ds-watchers")
		b.ReportMetric(mean(nodeCPU), "node-cpu-idle-%")
		b.ReportMetric(maxOr0(nodeCPU), "node-cpu-idle-max-%")
		b.ReportMetric(mean(nodeRSSIdle)/1024, "node-rss-idle-MiB")
		b.ReportMetric(maxOr0(nodeRSSIdle)/1024, "node-rss-idle-max-MiB")
		b.ReportMetric(mean(nodePSS)/1024, "node-pss-idle-MiB")
		b.ReportMetric(mean(nodePrivate)/1024, "node-private-idle-MiB")
		b.Logf("%s: %d nodes, %d workloads, %d namespaces; boot %.2fs = namespaces %.2fs + datastore %.2fs + agents started %.2fs + workloads (CNI) %.2fs",
			name, len(f.Plan.Nodes), len(f.Plan.Workloads), nsCount, tm.Boot.Seconds(), tm.Namespaces.Seconds(), tm.Datastore.Seconds(), tm.Agents.Seconds(), tm.Workloads.Seconds())
		b.Logf("after boot start: all nodes ready %.2fs, all sessions established %.2fs, all routes installed %.2fs; converged %.2fs after boot (up and converged %.2fs)",
			tm.AllReady.Seconds(), tm.AllEstablished.Seconds(), tm.AllRoutes.Seconds(), conv.Seconds(), upAndConverged.Seconds())
		b.Logf("checks: %d probes in %.2fs; teardown %.2fs", probes, checkTime, teardown.Seconds())
		b.Logf("baseline in the same run: `ip -batch` netns add of %d namespaces %.2fs, delete %.2fs; the sim's namespace phase (namespaces, veths, addresses, sysctls) is %.1fx the bare add",
			nsCount, baseAdd.Seconds(), baseDel.Seconds(), tm.Namespaces.Seconds()/baseAdd.Seconds())
		b.Logf("agent RSS at convergence: nodes (felix+router) mean %.1f MiB, max %.1f MiB over %d; reflectors mean %.1f MiB, max %.1f MiB over %d",
			mean(nodeRSS)/1024, slices.Max(nodeRSS)/1024, len(nodeRSS), mean(rrRSS)/1024, maxOr0(rrRSS)/1024, len(rrRSS))
		b.Logf("datastore while booting and converging (%.1fs): %s = %.1f writes/s (%.2f per agent)",
			upAndConverged.Seconds(), convWrites, convWrites.writes()/upAndConverged.Seconds(), convWrites.writes()/upAndConverged.Seconds()/agents)
		b.Logf("status records (BGPStatus, FelixStatus): %d written up to convergence (%.1f per agent), %d in the settling window, %d at rest",
			st1, float64(st1)/agents, st2-st1, st3-st2)
		b.ReportMetric(float64(st3-st2)/idleWall.Seconds()/agents, "status-writes/s/agent-idle")
		b.Logf("datastore in the first %.0fs after convergence: %s = %.3f writes/s (%.4f per agent); at rest (the next %.0fs): %s = %.3f writes/s (%.4f per agent)",
			settleWall.Seconds(), settleWrites, settleWrites.writes()/settleWall.Seconds(), settleWrites.writes()/settleWall.Seconds()/agents,
			idleWall.Seconds(), idleWrites, idleWrites.writes()/idleWall.Seconds(), idleWrites.writes()/idleWall.Seconds()/agents)
		b.Logf("agents at rest: nodes (agent + speaker) CPU mean %.2f%%, max %.2f%% of a core; RSS summed over both processes mean %.1f MiB, max %.1f MiB; PSS mean %.1f MiB; private %.1f MiB (the rest of RSS is the binary's pages, shared by every agent); reflectors CPU mean %.2f%%, max %.2f%%",
			mean(nodeCPU), maxOr0(nodeCPU), mean(nodeRSSIdle)/1024, maxOr0(nodeRSSIdle)/1024, mean(nodePSS)/1024, mean(nodePrivate)/1024, mean(rrCPU), maxOr0(rrCPU))
	}
}

// agentProcs returns the processes of node's agent: the agent and every
// process it started (a node agent's BGP speaker runs in a child of its
// own, router/speakerproc), so that CPU and memory figures are the
// agent's whole cost.
func agentProcs(f *sim.Fabric, node string) []int {
	pid := f.AgentPID(node)
	if pid == 0 {
		return nil
	}
	pids := []int{pid}
	for i := 0; i < len(pids); i++ {
		tasks, _ := os.ReadDir("/proc/" + strconv.Itoa(pids[i]) + "/task")
		for _, t := range tasks {
			data, err := os.ReadFile("/proc/" + strconv.Itoa(pids[i]) + "/task/" + t.Name() + "/children")
			if err != nil {
				continue
			}
			for _, c := range strings.Fields(string(data)) {
				if p, err := strconv.Atoi(c); err == nil {
					pids = append(pids, p)
				}
			}
		}
	}
	return pids
}

// agentRSS reads VmRSS (KiB) of every agent, summed over its processes
// (the pages of the binary they share are counted once per process).
func agentRSS(f *sim.Fabric) (nodes, reflectors []float64) {
	for _, n := range f.Plan.Nodes {
		pids := agentProcs(f, n.Name)
		if len(pids) == 0 {
			continue
		}
		var kb float64
		ok := true
		for _, pid := range pids {
			v, got := vmRSS(pid)
			kb, ok = kb+v, ok && got
		}
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

// etcdCounters are the embedded etcd's own counters (the sim's etcd runs in
// this process and registers them with the default Prometheus registry).
type etcdCounters struct {
	puts, deletes, txns float64 // etcd_mvcc_*_total: keys written
	proposals           float64 // etcd_server_proposals_committed_total: raft entries (writes, lease grants and revokes)
	leaseGrants         float64 // etcd_debugging_lease_granted_total
	events              float64 // etcd_debugging_mvcc_events_total: watch events sent
	watchers            float64 // etcd_debugging_mvcc_watcher_total: watches open now (a gauge)
}

func readEtcdCounters(b *testing.B) etcdCounters {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		b.Fatalf("gathering etcd's metrics: %v", err)
	}
	var c etcdCounters
	for _, mf := range mfs {
		var v float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				v += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v += m.GetGauge().GetValue()
			}
		}
		switch mf.GetName() {
		case "etcd_mvcc_put_total":
			c.puts = v
		case "etcd_mvcc_delete_total":
			c.deletes = v
		case "etcd_mvcc_txn_total":
			c.txns = v
		case "etcd_server_proposals_committed_total":
			c.proposals = v
		case "etcd_debugging_lease_granted_total":
			c.leaseGrants = v
		case "etcd_debugging_mvcc_events_total":
			c.events = v
		case "etcd_debugging_mvcc_watcher_total":
			c.watchers = v
		}
	}
	return c
}

func (c etcdCounters) sub(o etcdCounters) etcdCounters {
	return etcdCounters{c.puts - o.puts, c.deletes - o.deletes, c.txns - o.txns, c.proposals - o.proposals, c.leaseGrants - o.leaseGrants, c.events - o.events, c.watchers}
}

// writes are the keys put and deleted.
func (c etcdCounters) writes() float64 { return c.puts + c.deletes }

func (c etcdCounters) String() string {
	return fmt.Sprintf("%.0f puts, %.0f deletes, %.0f txns, %.0f raft proposals, %.0f lease grants, %.0f watch events sent, %.0f watches open at the end",
		c.puts, c.deletes, c.txns, c.proposals, c.leaseGrants, c.events, c.watchers)
}

// agentCPU reads utime+stime (clock ticks) of every agent, summed over its
// processes.
func agentCPU(f *sim.Fabric) map[string]float64 {
	out := map[string]float64{}
	for _, n := range f.Plan.Nodes {
		for _, pid := range agentProcs(f, n.Name) {
			data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if err != nil {
				continue
			}
			// Fields after the command, which is in parentheses.
			_, rest, ok := strings.Cut(string(data), ") ")
			if !ok {
				continue
			}
			fs := strings.Fields(rest)
			if len(fs) < 13 {
				continue
			}
			ut, err1 := strconv.ParseFloat(fs[11], 64)
			st, err2 := strconv.ParseFloat(fs[12], 64)
			if err1 == nil && err2 == nil {
				out[n.Name] += ut + st
			}
		}
	}
	return out
}

// clockTicks is the kernel's USER_HZ, which /proc/PID/stat counts in (100
// on every Linux architecture Go supports).
const clockTicks = 100

// cpuPercent turns two agentCPU readings into percent of one core.
func cpuPercent(f *sim.Fabric, a, b map[string]float64, wall time.Duration) (nodes, reflectors []float64) {
	for _, n := range f.Plan.Nodes {
		t0, ok0 := a[n.Name]
		t1, ok1 := b[n.Name]
		if !ok0 || !ok1 {
			continue
		}
		pct := 100 * (t1 - t0) / clockTicks / wall.Seconds()
		switch n.Agent {
		case topology.AgentNode:
			nodes = append(nodes, pct)
		case topology.AgentReflector:
			reflectors = append(reflectors, pct)
		}
	}
	return nodes, reflectors
}

// nodeMem is a node agent's memory (KiB), summed over its processes
// (the agent and its speaker child) from /proc/PID/smaps_rollup: Rss
// counts every page each process maps, so the binary's pages that both
// map count twice; Pss divides every page by the number of processes
// that map it (the binary's pages are shared by every agent of the
// fabric, so Pss is close to Private); Private is Private_Clean +
// Private_Dirty, the pages no other process maps.
type nodeMem struct{ rss, pss, private float64 }

// agentMem reads nodeMem of every node agent.
func agentMem(f *sim.Fabric) []nodeMem {
	var out []nodeMem
	for _, n := range f.Plan.Nodes {
		pids := agentProcs(f, n.Name)
		if len(pids) == 0 || n.Agent != topology.AgentNode {
			continue
		}
		var m nodeMem
		ok := true
		for _, pid := range pids {
			data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
			if err != nil {
				ok = false
				break
			}
			for _, line := range strings.Split(string(data), "\n") {
				k, rest, found := strings.Cut(line, ":")
				if !found {
					continue
				}
				v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				if err != nil {
					continue
				}
				switch k {
				case "Rss":
					m.rss += v
				case "Pss":
					m.pss += v
				case "Private_Clean", "Private_Dirty":
					m.private += v
				}
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func memField(ms []nodeMem, field func(nodeMem) float64) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = field(m)
	}
	return out
}

// statusWrites counts the writes of every status record since it was
// created: the sum of the keys' versions (etcd counts each key's puts).
func statusWrites(b *testing.B, f *sim.Fabric) int64 {
	var n int64
	for _, plural := range []string{"bgpstatuses/", "felixstatuses/"} {
		resp, err := f.Client().Etcd().Get(context.Background(), api.KeyRoot+plural, clientv3.WithPrefix(), clientv3.WithKeysOnly())
		if err != nil {
			b.Fatalf("reading status keys: %v", err)
		}
		for _, kv := range resp.Kvs {
			n += kv.Version
		}
	}
	return n
}
