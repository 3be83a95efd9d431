package main

import (
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
)

// TestApplyRefusesFamiliesOnNodes: a BGPPeer asking for EVPN that a Node
// without a cluster ID would have sessions of is refused, naming the
// field and the Node, and is not written; selecting only the reflector
// is fine, and so is unicast anywhere.
func TestApplyRefusesFamiliesOnNodes(t *testing.T) {
	c := cli{t: t, endpoint: etcdtest.Start(t).ClientEndpoint()}
	c.ok(`kind: Node
metadata: {name: rr1, labels: {route-reflector: ""}}
spec: {bgp: {ipv4Address: 10.0.0.1/24, routeReflectorClusterID: 10.0.0.1}}
---
kind: Node
metadata: {name: n2}
spec: {bgp: {ipv4Address: 10.0.0.2/24}}
`, "apply", "-f", "-")
	bad := "kind: BGPPeer\nmetadata: {name: to-rr}\nspec: {nodeSelector: all(), peerSelector: has(route-reflector), families: [ipv4-unicast, l2vpn-evpn]}\n"
	errs := c.fails(bad, "apply", "-f", "-")
	if !strings.Contains(errs, "spec.families[1]: l2vpn-evpn is carried by route reflectors only, and Node n2,") {
		t.Errorf("apply of an EVPN peer that n2 would use:\n%s", errs)
	}
	if errs := c.fails("", "get", "bgppeer", "to-rr"); !strings.Contains(errs, "not found") {
		t.Errorf("the refused peer was written: %s", errs)
	}
	c.ok("kind: BGPPeer\nmetadata: {name: rr-evpn}\nspec: {nodeSelector: has(route-reflector), peerPrefix: 10.1.0.0/16, families: [l2vpn-evpn]}\n", "apply", "-f", "-")
	c.ok("kind: BGPPeer\nmetadata: {name: to-rr}\nspec: {nodeSelector: all(), peerSelector: has(route-reflector), families: [ipv4-unicast]}\n", "apply", "-f", "-")
	// A Node applied with the peer counts too.
	errs = c.fails("kind: Node\nmetadata: {name: n3, labels: {route-reflector: \"\"}}\nspec: {bgp: {ipv4Address: 10.0.0.3/24}}\n---\n"+
		"kind: BGPPeer\nmetadata: {name: rr-evpn2}\nspec: {nodeSelector: has(route-reflector), peerPrefix: 10.2.0.0/16, families: [ipv4-vpn]}\n", "apply", "-f", "-")
	if !strings.Contains(errs, "spec.families[0]: ipv4-vpn is carried by route reflectors only, and Node n3,") {
		t.Errorf("apply of a VPN peer with a non-reflector Node in the same file:\n%s", errs)
	}
}
