package netbuild_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/probe"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

const small = `name: small
addressing: {ipv6: auto}
nodes:
  - name: n
    count: 3
    workloads: [{name: w}]
  - name: ext-a
    role: external
    asNumber: 65100
    segment: lan
  - name: ext-b
    role: external
    asNumber: 65200
links:
  - between: [ext-a, ext-b]
`

// newRun creates a run in a temporary base and tears it down when the test
// ends, also on failure, and checks that nothing of it is left.
func newRun(t *testing.T, slot int) (*runstate.Run, *topology.Plan) {
	return newRunOf(t, slot, small, nil)
}

// newRunOf is newRun of a topology, whose plan edit may change.
func newRunOf(t *testing.T, slot int, yaml string, edit func(*topology.Plan)) (*runstate.Run, *topology.Plan) {
	t.Helper()
	nstest.RequireRoot(t)
	base := t.TempDir()
	topo, err := topology.Parse("small.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	id := runstate.NewID()
	plan, err := topology.Expand(topo, topology.ExpandOptions{RunID: id, Slot: slot})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(plan)
	}
	run, err := runstate.Create(base, runstate.State{RunID: id, Slot: slot, Fabric: plan.Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := run.Teardown(time.Second); err != nil {
			t.Errorf("teardown: %v", err)
		}
		if left := runstate.RunNamespaces(id); len(left) > 0 {
			t.Errorf("namespaces left after teardown: %v", left)
		}
	})
	return run, plan
}

func TestBuildPingTeardown(t *testing.T) {
	run, plan := newRun(t, 7)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	net, err := netbuild.Build(ctx, plan, run, netbuild.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	t.Logf("built %d namespaces in %s", len(plan.Namespaces()), time.Since(start))

	entries, _ := os.ReadDir(runstate.NetnsDir)
	var ours int
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), topology.RunPrefix(plan.RunID)) {
			ours++
		}
	}
	if ours != len(plan.Namespaces()) {
		t.Errorf("%d namespaces in %s, want %d", ours, runstate.NetnsDir, len(plan.Namespaces()))
	}
	if got := run.State().Namespaces; len(got) != ours {
		t.Errorf("state records %d namespaces, want %d", len(got), ours)
	}

	from, _ := net.Handle(plan.Node("n-1").Netns)
	for _, to := range []string{"n-2", "n-3", "ext-a"} {
		for _, a := range []string{plan.Node(to).IPv4.Addr().String(), plan.Node(to).IPv6.Addr().String()} {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			r := probe.Ping(pctx, from, mustAddr(t, a))
			pcancel()
			if !r.OK {
				t.Errorf("ping n-1 -> %s (%s): %v", to, a, r.Err)
			}
		}
	}
	// Over the point-to-point link.
	a, _ := net.Handle(plan.Node("ext-a").Netns)
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if r := probe.Ping(pctx, a, plan.Node("ext-b").IPv4.Addr()); !r.OK {
		t.Errorf("ping ext-a -> ext-b over the link: %v", r.Err)
	}
	// TCP: a listener in n-2, a connect from n-1; a refused port.
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	n2, _ := net.Handle(plan.Node("n-2").Netns)
	if err := probe.Listen(lctx, n2, 8080); err != nil {
		t.Fatal(err)
	}
	if r := probe.TCP(ctx, from, plan.Node("n-2").IPv4.Addr(), 8080); !r.OK {
		t.Errorf("tcp n-1 -> n-2:8080: %v", r.Err)
	}
	if r := probe.TCP(ctx, from, plan.Node("n-2").IPv4.Addr(), 8081); r.OK || !r.Refused {
		t.Errorf("tcp n-1 -> n-2:8081: want refused, got %+v", r)
	}
	// Forwarding is on in router namespaces.
	var fwd []byte
	if err := netbuild.Do(from, func() error {
		var err error
		fwd, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		return err
	}); err != nil || strings.TrimSpace(string(fwd)) != "1" {
		t.Errorf("ip_forward in n-1: %q %v", fwd, err)
	}
	// A link fault takes the port down: the ping fails.
	if err := net.SetLink(plan.Node("n-3").Netns, "eth0", false); err != nil {
		t.Fatal(err)
	}
	pctx2, pcancel2 := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer pcancel2()
	if r := probe.Ping(pctx2, from, plan.Node("n-3").IPv4.Addr()); r.OK {
		t.Error("ping to n-3 with its link down succeeded")
	}
}

func mustAddr(t *testing.T, s string) (a netipAddr) {
	t.Helper()
	a, err := parseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestBuild100 builds the 100-node benchmark topology (297 namespaces) and
// reports how long creation and teardown take.
func TestBuild100(t *testing.T) {
	if testing.Short() {
		t.Skip("100 nodes: not in -short")
	}
	nstest.RequireRoot(t)
	topo, err := topology.Load("../../topologies/rr-2x98.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	id := runstate.NewID()
	plan, err := topology.Expand(topo, topology.ExpandOptions{RunID: id, Slot: 9})
	if err != nil {
		t.Fatal(err)
	}
	run, err := runstate.Create(base, runstate.State{RunID: id, Slot: 9, Fabric: plan.Name})
	if err != nil {
		t.Fatal(err)
	}
	tornDown := false
	t.Cleanup(func() {
		if !tornDown {
			run.Teardown(time.Second)
		}
	})
	start := time.Now()
	net, err := netbuild.Build(context.Background(), plan, run, netbuild.Options{})
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	net.Close()
	start = time.Now()
	err = run.Teardown(time.Second)
	tornDown = true
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes, %d namespaces: built in %s, torn down in %s", len(plan.Nodes), len(plan.Namespaces()), built.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if left := runstate.RunNamespaces(id); len(left) > 0 {
		t.Errorf("left: %v", left)
	}
}
