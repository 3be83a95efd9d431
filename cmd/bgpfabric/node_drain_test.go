package main

import (
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
)

// TestNodeDrainCLI: `node drain` sets the Node's spec.bgp.drain, `node
// undrain` clears it, each says so and is idempotent; the advertisement
// fields are refused at apply with their field paths.
func TestNodeDrainCLI(t *testing.T) {
	c := cli{t: t, endpoint: etcdtest.Start(t).ClientEndpoint()}
	c.ok("kind: Node\nmetadata: {name: n1}\nspec: {bgp: {ipv4Address: 10.0.0.1/24}}\n---\nkind: Node\nmetadata: {name: nobgp}\n", "apply", "-f", "-")
	drained := func() bool { return strings.Contains(c.ok("", "get", "node", "n1", "-o", "yaml"), "drain: true") }
	if out := c.ok("", "node", "drain", "n1"); !strings.Contains(out, "node n1 drained") || !drained() {
		t.Errorf("drain: %q, drained %v", out, drained())
	}
	if out := c.ok("", "node", "drain", "n1"); !strings.Contains(out, "already drained") {
		t.Errorf("second drain: %q", out)
	}
	if out := c.ok("", "node", "undrain", "n1"); !strings.Contains(out, "node n1 undrained") || drained() {
		t.Errorf("undrain: %q, drained %v", out, drained())
	}
	if errs := c.fails("", "node", "drain", "missing"); !strings.Contains(errs, "not found") {
		t.Errorf("drain of a missing node: %s", errs)
	}
	if errs := c.fails("", "node", "drain", "nobgp"); !strings.Contains(errs, "does not speak BGP") {
		t.Errorf("drain of a node without BGP: %s", errs)
	}

	bad := `kind: BGPConfiguration
metadata: {name: default}
spec:
  communities: [{name: rack-1, value: "65000:1"}, "1:2:3:4"]
  prefixAdvertisements: [{cidr: 10.65.0.1/16, communities: [rack-2]}]
  serviceLoadBalancerIPs: [{cidr: nope}]
  drainTime: 2h
---
kind: BGPPeer
metadata: {name: tor}
spec: {peerIP: 10.0.0.254, asNumber: 65100, localASNumber: 0, nextHopMode: Sometimes}
`
	errs := c.fails(bad, "apply", "-f", "-")
	for _, want := range []string{"spec.communities[1]", "spec.prefixAdvertisements[0].cidr", "spec.prefixAdvertisements[0].communities[0]",
		"spec.serviceLoadBalancerIPs[0].cidr", "spec.drainTime", "spec.localASNumber", "spec.nextHopMode"} {
		if !strings.Contains(errs, want) {
			t.Errorf("apply of invalid advertisement settings: error lacks %q:\n%s", want, errs)
		}
	}
	if errs := c.fails("kind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.0.0.254, asNumber: 65100, localASNumber: 4294967296}\n",
		"apply", "-f", "-"); !strings.Contains(errs, "localASNumber") {
		t.Errorf("AS above 32 bits: %s", errs)
	}
}
