package sim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/buildid"
	"github.com/bgpfabric/bgpfabric/internal/buildid/buildidtest"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// writeExe writes an executable file (its contents do not matter: the
// sim only chooses it here).
func writeExe(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
}

// commands gives the first word of a node's and a reflector's agent
// command for o.
func commands(t *testing.T, o Options) (node, reflector string) {
	t.Helper()
	o, err := o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	n := &topology.NodePlan{Name: "n-1", Agent: topology.AgentNode}
	r := &topology.NodePlan{Name: "rr-1", Agent: topology.AgentReflector}
	nc, rc := o.agentCommand(n, "unix:///ds.sock", "/run"), o.agentCommand(r, "unix:///ds.sock", "/run")
	if len(nc) < 2 || nc[1] != "node" {
		t.Fatalf("node command %q: want BINARY node ...", nc)
	}
	return nc[0], rc[0]
}

func TestNodeAgentsRunFromTheNodeBinaryBesideBgpfabric(t *testing.T) {
	dir := t.TempDir()
	bin, nodeBin := filepath.Join(dir, "bgpfabric"), filepath.Join(dir, NodeBinaryName)
	writeExe(t, bin, 0o755)
	writeExe(t, nodeBin, 0o755)
	node, rr := commands(t, Options{Binary: bin})
	if node != nodeBin {
		t.Errorf("node agent runs %s, want %s", node, nodeBin)
	}
	if rr != bin {
		t.Errorf("reflector runs %s, want %s", rr, bin)
	}
}

func TestNodeAgentsFindTheNodeBinaryThroughPATH(t *testing.T) {
	dir := t.TempDir()
	writeExe(t, filepath.Join(dir, "bgpfabric"), 0o755)
	writeExe(t, filepath.Join(dir, NodeBinaryName), 0o755)
	t.Setenv("PATH", dir)
	if node, _ := commands(t, Options{Binary: "bgpfabric"}); node != filepath.Join(dir, NodeBinaryName) {
		t.Errorf("node agent runs %s, want %s beside bgpfabric in $PATH", node, NodeBinaryName)
	}
}

func TestNodeAgentsRunBgpfabricNodeWithoutTheNodeBinary(t *testing.T) {
	for name, setup := range map[string]func(dir string){
		"absent": func(string) {},
		// Not executable: not an installed binary.
		"not executable": func(dir string) { writeExe(t, filepath.Join(dir, NodeBinaryName), 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bgpfabric")
			writeExe(t, bin, 0o755)
			setup(dir)
			if node, _ := commands(t, Options{Binary: bin}); node != bin {
				t.Errorf("node agent runs %s, want %s node", node, bin)
			}
		})
	}
}

func TestNodeBinaryGivenMustExist(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bgpfabric")
	writeExe(t, bin, 0o755)
	missing := filepath.Join(dir, "elsewhere", NodeBinaryName)
	_, err := Options{Binary: bin, NodeBinary: missing}.withDefaults()
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("withDefaults with a missing node binary: %v, want an error naming %s", err, missing)
	}
	given := filepath.Join(dir, "my-node")
	writeExe(t, given, 0o755)
	if node, _ := commands(t, Options{Binary: bin, NodeBinary: given}); node != given {
		t.Errorf("node agent runs %s, want the given %s", node, given)
	}
}

// TestNodeBinaryOfOtherSourcesRefused: a bgpfabric-node beside bgpfabric
// that was built from other sources (another source digest: a stale
// build) stops the sim before it boots, with an error naming both files
// and both identities; one of the same sources runs; buildid.EnvMixed
// lets a deliberate mix run.
func TestNodeBinaryOfOtherSourcesRefused(t *testing.T) {
	dir := t.TempDir()
	bin, nodeBin := filepath.Join(dir, "bgpfabric"), filepath.Join(dir, NodeBinaryName)
	buildidtest.Build(t, bin, "00000000000000ee")
	buildidtest.Build(t, nodeBin, "00000000000000dd")
	t.Setenv(buildid.EnvMixed, "")
	_, err := Options{Binary: bin}.withDefaults()
	if err == nil {
		t.Fatal("withDefaults with a stale node binary: no error")
	}
	for _, s := range []string{bin, nodeBin, "00000000000000ee", "00000000000000dd"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %s", err, s)
		}
	}
	// The same refusal for a node binary given by name.
	given := filepath.Join(t.TempDir(), "my-node")
	buildidtest.Build(t, given, "00000000000000dd")
	if _, err := (Options{Binary: bin, NodeBinary: given}).withDefaults(); err == nil || !strings.Contains(err.Error(), given) {
		t.Errorf("withDefaults with a stale node binary given: %v, want a refusal naming %s", err, given)
	}

	t.Setenv(buildid.EnvMixed, "1")
	if node, _ := commands(t, Options{Binary: bin}); node != nodeBin {
		t.Errorf("with %s=1: node agent runs %s, want %s", buildid.EnvMixed, node, nodeBin)
	}

	t.Setenv(buildid.EnvMixed, "")
	buildidtest.Build(t, nodeBin, "00000000000000ee")
	if node, _ := commands(t, Options{Binary: bin}); node != nodeBin {
		t.Errorf("node binary of the same sources: node agent runs %s, want %s", node, nodeBin)
	}
}
