package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/sim"
)

// TestSimFaultCLI drives a run through the command line, as a fabric
// engineer would: `sim up`, then `sim fault` with each kind of fault that
// restores itself or is expected to stay (restart-agent, stop-datastore
// for a while, kill-agent without a duration, which waits until the
// fabric has reconverged without the node and reports how long that
// took), `sim check`, `sim down`; nothing of the run is left.
func TestSimFaultCLI(t *testing.T) {
	requireFabric(t)
	base, err := os.MkdirTemp("", "bfcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	file := filepath.Join("..", "topologies", "mesh-3.yaml")
	bgpfabric := func(args ...string) (string, error) {
		cmd := exec.Command(binary, append([]string{"sim"}, append(args, "--state-dir", base)...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := bgpfabric(args...)
		if err != nil {
			t.Fatalf("bgpfabric sim %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	out := must("up", "-f", file)
	m := regexp.MustCompile(`run ([0-9a-f]{6}) is up`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sim up said:\n%s", out)
	}
	id := m[1]
	t.Cleanup(func() {
		if out, err := bgpfabric("down", "--run", id); err != nil {
			t.Errorf("sim down: %v\n%s", err, out)
		}
	})

	reconverged := regexp.MustCompile(`fault (\S+)\s+(\S+)\s+PASSED\s+\S+\s+reconverged in ([0-9.]+)s`)
	for _, args := range [][]string{
		{"--action", "restart-agent", "--node", "node-2"},
		{"--action", "stop-datastore", "--duration", "2s"},
		{"--action", "kill-agent", "--node", "node-3"},
	} {
		out := must(append([]string{"fault", "--run", id}, args...)...)
		fm := reconverged.FindStringSubmatch(out)
		if fm == nil {
			t.Fatalf("sim fault %s: no passed fault with its reconvergence time in:\n%s", strings.Join(args, " "), out)
		}
		t.Logf("sim fault %s: reconverged in %ss", strings.Join(args, " "), fm[3])
		if !strings.Contains(out, "checks: ") || strings.Contains(out, "FAILED") {
			t.Errorf("sim fault %s:\n%s", strings.Join(args, " "), out)
		}
	}
	// A wrong fault is refused with the reason.
	if out, err := bgpfabric("fault", "--run", id, "--action", "link-down", "--node", "node-1", "--peer", "nowhere"); err == nil || !strings.Contains(out, "no interface") {
		t.Errorf("a link fault on a link that does not exist: err %v\n%s", err, out)
	}
	must("check", "--run", id)
	must("down", "--run", id)
	runs, err := sim.Runs(base, "")
	if err != nil || len(runs) != 0 {
		t.Errorf("runs left after down: %+v %v", runs, err)
	}
	if out, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(out), "bf-"+id) {
		t.Errorf("namespaces of run %s left:\n%s", id, out)
	}
}
