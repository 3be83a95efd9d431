package e2e

import (
	"testing"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// TestDualStackMesh boots a three-node mesh with IPv6 (a topology built in
// code, as a pipeline in another repository would): every workload gets
// an IPv4 and an IPv6 address from the plugin, both families' sessions
// come up, and ICMP and ICMPv6 and TCP over IPv6 reach every pair.
func TestDualStackMesh(t *testing.T) {
	requireFabric(t)
	topo, err := topology.Parse("dual-stack.yaml", []byte(`name: dual-stack
bgp: {model: mesh, keepaliveTime: 3s, holdTime: 9s}
addressing: {ipv6: auto}
nodes:
  - name: node
    count: 3
    workloads: [{name: wl, count: 2}]
checks:
  convergence: 30s
  connectivity:
    - {name: icmp-both-families, family: 0}
    - {name: tcp6, protocol: tcp, port: 8080, family: 6}
  routes:
    - {node: node-1, blocks: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := bootTopo(t, topo)
	converge(t, f)
	res := requireChecks(t, f)
	for _, c := range res {
		if c.Name == "icmp-both-families" && c.Probes != 60 {
			t.Errorf("ICMP over both families: %d probes, want 60 (30 pairs × 2)", c.Probes)
		}
	}
	for _, w := range f.Plan.Workloads {
		var v4, v6 int
		for _, a := range f.WorkloadAddrs(w.Name) {
			if a.Is4() {
				v4++
			} else {
				v6++
			}
		}
		if v4 != 1 || v6 != 1 {
			t.Errorf("%s has %d IPv4 and %d IPv6 addresses, want one each", w.Name, v4, v6)
		}
	}
	requireExactRoutes(t, f, viaOwner(f))
}
