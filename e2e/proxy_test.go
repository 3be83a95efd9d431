package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// TestRR1x10ThroughProxy: the ten-client reflector fabric with every agent
// connected to etcd through etcd's gRPC proxy (sim.Options.DatastoreProxy,
// docs/scale.md) converges and passes its checks as it does directly.
func TestRR1x10ThroughProxy(t *testing.T) {
	requireFabric(t)
	topo, err := topology.Load(filepath.Join("..", "topologies", "rr-1x10.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	o := sim.Options{Binary: binary, Grace: 3 * time.Second, DatastoreProxy: true}
	if *verbose {
		o.Progress = os.Stderr
	}
	f := sim.BootT(t, topo, o)
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, f)
		}
	})
	proxy := "unix://" + filepath.Join(f.Dir(), "proxy.sock")
	for _, n := range f.Plan.Nodes {
		pid := f.AgentPID(n.Name)
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			t.Fatalf("%s: %v", n.Name, err)
		}
		if !strings.Contains(string(cmdline), proxy) {
			t.Fatalf("%s's agent does not use the proxy %s: %q", n.Name, proxy, cmdline)
		}
	}
	converge(t, f)
	requireChecks(t, f)
	requireExactRoutes(t, f, viaOwner(f))
}
