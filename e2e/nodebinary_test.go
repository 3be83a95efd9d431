package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/bgpfabric/bgpfabric/router/speakerproc"
	"github.com/bgpfabric/bgpfabric/sim"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// requireNodeBinaries checks that every node agent of f runs from the
// node agent's own binary (sim.NodeBinaryName) beside the bgpfabric the
// fabric was booted with, when it is there (else from bgpfabric), and that
// its speaker child runs from bgpfabric-speaker beside it.
func requireNodeBinaries(t *testing.T, f *sim.Fabric) {
	t.Helper()
	dir := filepath.Dir(binary)
	want := filepath.Join(dir, sim.NodeBinaryName)
	if _, err := os.Stat(want); err != nil {
		want = binary
	}
	checked := 0
	for _, n := range f.Plan.Nodes {
		if n.Agent != topology.AgentNode {
			continue
		}
		pids := agentProcs(f, n.Name)
		if len(pids) != 2 {
			t.Errorf("%s: processes %v, want the node and its speaker", n.Name, pids)
			continue
		}
		for i, w := range []string{want, filepath.Join(dir, speakerproc.BinaryName)} {
			exe, err := os.Readlink("/proc/" + strconv.Itoa(pids[i]) + "/exe")
			if err != nil {
				t.Fatalf("%s: %v", n.Name, err)
			}
			if exe != w {
				t.Errorf("%s: process %d runs %s, want %s", n.Name, pids[i], exe, w)
			}
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no node agent to check")
	}
}
