package main

import (
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
)

// TestGetServiceAdvertisements: a ServiceAdvertisement applies, `get`
// shows its policy, addresses and nodes, and a bad field is refused with
// its path.
func TestGetServiceAdvertisements(t *testing.T) {
	c := cli{t: t, endpoint: etcdtest.Start(t).ClientEndpoint()}
	c.ok(`kind: ServiceAdvertisement
metadata: {name: web, namespace: shop}
spec: {clusterIPs: [10.96.0.10], loadBalancerIPs: [192.0.2.20], externalTrafficPolicy: Local, nodes: [node-2, node-1]}
`, "apply", "-f", "-")
	out := c.ok("", "get", "svcadv", "-n", "shop")
	for _, want := range []string{"POLICY", "LB-IPS", "web", "Local", "10.96.0.10", "192.0.2.20", "node-1,node-2"} {
		if !strings.Contains(out, want) {
			t.Errorf("get svcadv: no %q in\n%s", want, out)
		}
	}
	errs := c.fails(`kind: ServiceAdvertisement
metadata: {name: db, namespace: shop}
spec: {externalIPs: [127.0.0.1], nodes: [node-1]}
`, "apply", "-f", "-")
	for _, want := range []string{"spec.externalIPs[0]", "spec.nodes"} {
		if !strings.Contains(errs, want) {
			t.Errorf("apply of a bad ServiceAdvertisement: no %q in %s", want, errs)
		}
	}
}
