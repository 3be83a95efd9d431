package topology

import (
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/peering"
)

// TestBFDInTopology: bgp.bfd reaches the default BGPConfiguration, and so
// every node's sessions; a bad value is refused naming the field.
func TestBFDInTopology(t *testing.T) {
	topo, err := Parse("bfd.yaml", []byte(`
name: bfd
bgp: {bfd: {enabled: true, minTx: 300ms, minRx: 300ms, multiplier: 5}}
nodes:
  - name: n
    count: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Expand(topo, ExpandOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var in peering.Input
	for _, r := range p.Resources {
		in.Add(r)
	}
	res, err := peering.Compute(in, "n-1")
	if err != nil {
		t.Fatal(err)
	}
	want := peering.BFD{Enabled: true, MinTx: 300 * time.Millisecond, MinRx: 300 * time.Millisecond, Multiplier: 5}
	if len(res.Sessions) != 1 || res.Sessions[0].BFD != want {
		t.Errorf("sessions %v, want one with %v", res.Sessions, want)
	}

	bad := []byte("name: bad\nbgp: {bfd: {enabled: true, minTx: 1ms}}\nnodes:\n  - name: n\n    count: 2\n")
	if _, err := Parse("bad.yaml", bad); err == nil || !strings.Contains(err.Error(), "spec.bfd.minTx") {
		t.Errorf("minTx 1ms: error %v, want one naming spec.bfd.minTx", err)
	}
}
