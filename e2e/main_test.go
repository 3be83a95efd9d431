package e2e

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

var verbose = flag.Bool("sim.progress", false, "print the sims' boot progress")

// binary is the bgpfabric executable the fabrics run.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() == 0 && !listOnly() && !testing.Short() {
		if b := os.Getenv("BGPFABRIC_BIN"); b != "" {
			binary = b
		} else {
			dir, err := os.MkdirTemp("", "bf-e2e-bin")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			binary = filepath.Join(dir, "bgpfabric")
			// The node's speaker binary and the node agent's own
			// binary beside it, as make build installs them
			// (router/speakerproc.Command, sim.NodeBinaryName).
			for _, args := range [][]string{
				{"-o", dir + "/", "../cmd/bgpfabric", "../cmd/bgpfabric-speaker"},
				{"-tags", "nodeonly", "-o", filepath.Join(dir, sim.NodeBinaryName), "../cmd/bgpfabric"},
			} {
				cmd := exec.Command("go", append([]string{"build", "-trimpath"}, args...)...)
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
				if out, err := cmd.CombinedOutput(); err != nil {
					fmt.Fprintf(os.Stderr, "building %v: %v\n%s", args, err, out)
					return 1
				}
			}
		}
	}
	return m.Run()
}

func listOnly() bool {
	f := flag.Lookup("test.list")
	return f != nil && f.Value.String() != ""
}

// boot boots a shipped topology with the real agents and registers its
// teardown; when the test fails, the tails of the agents' logs are printed
// before the run's directory goes.
func boot(t testing.TB, name string) *sim.Fabric {
	t.Helper()
	requireFabric(t)
	topo, err := topology.Load(filepath.Join("..", "topologies", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return bootTopo(t, topo)
}

func bootTopo(t testing.TB, topo *topology.Topology) *sim.Fabric {
	t.Helper()
	requireFabric(t)
	o := sim.Options{Binary: binary, Grace: 3 * time.Second}
	if *verbose {
		o.Progress = os.Stderr
	}
	start := time.Now()
	f := sim.BootT(t, topo, o)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, f)
		}
	})
	t.Logf("%s: booted in %s (run %s)", topo.Name, time.Since(start).Round(time.Millisecond), f.RunID())
	return f
}

// dumpLogs prints the last lines of every log of the run.
func dumpLogs(t testing.TB, f *sim.Fabric) {
	files, _ := filepath.Glob(filepath.Join(f.Dir(), "logs", "*.log"))
	for _, file := range files {
		fh, err := os.Open(file)
		if err != nil {
			continue
		}
		var lines []string
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if len(lines) > 15 {
				lines = lines[1:]
			}
		}
		fh.Close()
		t.Logf("--- %s:\n%s", filepath.Base(file), strings.Join(lines, "\n"))
	}
}

// converge waits for convergence and fails the test if it is not reached
// within the topology's deadline.
func converge(t testing.TB, f *sim.Fabric) time.Duration {
	t.Helper()
	d, err := f.WaitConverged(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", f.Plan.Name, err)
	}
	if d > f.Plan.Checks.Convergence {
		t.Fatalf("%s: converged in %s, over the deadline %s", f.Plan.Name, d, f.Plan.Checks.Convergence)
	}
	t.Logf("%s: converged in %s (deadline %s)", f.Plan.Name, d.Round(time.Millisecond), f.Plan.Checks.Convergence)
	return d
}

// requireChecks runs the topology's checks and fails on any that did not
// pass or probed nothing.
func requireChecks(t testing.TB, f *sim.Fabric) []sim.CheckResult {
	t.Helper()
	res := f.Check(context.Background())
	if len(res) == 0 {
		t.Fatalf("%s has no checks", f.Plan.Name)
	}
	for _, c := range res {
		if c.Status != sim.Passed {
			t.Errorf("check %s (%s): %s: %s %v", c.Name, c.Kind, c.Status, c.Message, c.Failures)
		}
		if c.Kind != "routes" && c.Probes == 0 {
			t.Errorf("check %s probed nothing", c.Name)
		}
	}
	return res
}

// blocksByNode reads which IPAM blocks are affine to which node.
func blocksByNode(t testing.TB, f *sim.Fabric) map[string][]netip.Prefix {
	t.Helper()
	rs, _, err := f.Client().List(context.Background(), api.KindIPAMBlock, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]netip.Prefix{}
	for _, r := range rs {
		b := r.(*api.IPAMBlock)
		if host, ok := b.Host(); ok {
			out[host] = append(out[host], netip.MustParsePrefix(b.Spec.CIDR))
		}
	}
	return out
}

// nextHopFunc says through which address a node must reach another
// node's blocks.
type nextHopFunc func(node, owner string, v6 bool) netip.Addr

// viaOwner: the mesh and reflector models, where the next hop is the
// block's node itself (reflectors do not change it).
func viaOwner(f *sim.Fabric) nextHopFunc {
	return func(_, owner string, v6 bool) netip.Addr { return nodeAddr(f, owner, v6) }
}

// nodeAddr is a node's peering address of a family.
func nodeAddr(f *sim.Fabric, node string, v6 bool) netip.Addr {
	if v6 {
		return f.Plan.Node(node).IPv6.Addr()
	}
	return f.Plan.Node(node).IPv4.Addr()
}

// requireExactRoutes checks every compute node's main table: the router's
// routes (protocol router.ProtoRouter) are exactly the other nodes' blocks
// through the expected next hop; felix's (routetable.ProtoFelix) are
// exactly a blackhole per own block and a /32 per own workload; there is
// nothing else but the kernel's connected routes. skip leaves nodes out
// (stopped agents).
func requireExactRoutes(t testing.TB, f *sim.Fabric, nh nextHopFunc, skip ...string) {
	t.Helper()
	blocks := blocksByNode(t, f)
	wls := map[string][]netip.Addr{}
	for _, w := range f.Plan.Workloads {
		wls[w.Node] = append(wls[w.Node], f.WorkloadAddrs(w.Name)...)
	}
	checked := 0
	for _, n := range f.Plan.Nodes {
		if n.Agent != topology.AgentNode || contains(skip, n.Name) {
			continue
		}
		checked++
		want := map[string]bool{}
		for owner, bs := range blocks {
			for _, b := range bs {
				if owner == n.Name {
					want[fmt.Sprintf("felix %s blackhole", b)] = true
				} else {
					want[fmt.Sprintf("bgp %s via %s", b, nh(n.Name, owner, b.Addr().Is6()))] = true
				}
			}
		}
		for _, a := range wls[n.Name] {
			want[fmt.Sprintf("felix %s", netip.PrefixFrom(a, a.BitLen()))] = true
		}
		routes, err := f.Routes(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range routes {
			switch r.Protocol {
			case router.ProtoRouter:
				gws := make([]string, len(r.Gateways))
				for i, g := range r.Gateways {
					gws[i] = g.String()
				}
				got[fmt.Sprintf("bgp %s via %s", r.Dst, strings.Join(gws, ","))] = true
			case routetable.ProtoFelix:
				if r.Type == "blackhole" {
					got[fmt.Sprintf("felix %s blackhole", r.Dst)] = true
				} else {
					got[fmt.Sprintf("felix %s", r.Dst)] = true
				}
			case 2: // RTPROT_KERNEL: connected routes (and IPv6 link-local)
			default:
				got[fmt.Sprintf("proto %d %s", r.Protocol, r.Dst)] = true
			}
		}
		var missing, extra []string
		for k := range want {
			if !got[k] {
				missing = append(missing, k)
			}
		}
		for k := range got {
			if !want[k] {
				extra = append(extra, k)
			}
		}
		sort.Strings(missing)
		sort.Strings(extra)
		if len(missing)+len(extra) > 0 {
			t.Errorf("routes of %s: missing %q, unexpected %q", n.Name, missing, extra)
		}
	}
	if checked == 0 {
		t.Fatal("no compute node to check routes on")
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// workloadOn returns the first workload of a node.
func workloadOn(t testing.TB, f *sim.Fabric, node string) *topology.WorkloadPlan {
	t.Helper()
	for _, w := range f.Plan.Workloads {
		if w.Node == node {
			return w
		}
	}
	t.Fatalf("no workload on %s", node)
	return nil
}

// addr4 is a workload's IPv4 address.
func addr4(t testing.TB, f *sim.Fabric, wl string) netip.Addr {
	t.Helper()
	for _, a := range f.WorkloadAddrs(wl) {
		if a.Is4() {
			return a
		}
	}
	t.Fatalf("workload %s has no IPv4 address", wl)
	return netip.Addr{}
}

// wait waits for d or the end of ctx: for tests whose point is that time
// passes (a hold time, an outage), not to wait for a state.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// requireFabric skips under -short (these tests boot whole fabrics, and
// -short is the quick unit-test run) and applies nstest's root rule: skip
// without root, fail instead when CI=true.
func requireFabric(t testing.TB) {
	t.Helper()
	nstest.SkipShort(t, "boots a whole fabric")
	nstest.RequireRoot(t)
}
