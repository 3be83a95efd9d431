package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestSimUIRefusesRemote: --ui on an address that is not loopback is
// refused before anything is booted (the run directory stays empty).
func TestSimUIRefusesRemote(t *testing.T) {
	for _, args := range [][]string{
		{"sim", "run", "-f", "../../topologies/mesh-3.yaml", "--ui", "0.0.0.0:18080"},
		{"sim", "up", "-f", "../../topologies/mesh-3.yaml", "--ui", ":18080"},
		{"sim", "run", "-f", "../../topologies/mesh-3.yaml", "--ui", "192.0.2.1:18080", "--html", "x.html"},
	} {
		base := t.TempDir()
		var out, errb bytes.Buffer
		code := run(append(args, "--state-dir", base), strings.NewReader(""), &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), "--ui-allow-remote") {
			t.Errorf("bgpfabric %s: exit %d, stderr %q", strings.Join(args, " "), code, errb.String())
		}
		if ents, _ := os.ReadDir(base); len(ents) != 0 {
			t.Errorf("bgpfabric %s booted something: %v", strings.Join(args, " "), ents)
		}
	}
}
