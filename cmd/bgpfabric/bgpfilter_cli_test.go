package main

import (
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
)

const torFilter = `kind: BGPFilter
metadata: {name: tor-in}
spec:
  importV4:
  - {cidr: 0.0.0.0/0, matchOperator: Equal, action: Accept}
  - {action: Reject}
  exportV4:
  - {cidr: 10.244.0.0/16, matchOperator: In, action: Accept, addCommunities: ["65000:1:2"]}
  importEVPN:
  - {evpnRouteTypes: [5], routeTargets: ["65000:100"], action: Accept}
  exportVPNv4:
  - {routeTargets: ["65000:100"], action: Accept}
  exportVPNv6:
  - {action: Reject}
---
kind: BGPPeer
metadata: {name: tor}
spec: {peerIP: 10.0.0.254, asNumber: 65100, filters: [tor-in]}
`

func TestBGPFilterApplyGetDelete(t *testing.T) {
	c := cli{t: t, endpoint: etcdtest.Start(t).ClientEndpoint()}
	out := c.ok(torFilter, "apply", "-f", "-")
	if !strings.Contains(out, "bgpfilters/tor-in applied") {
		t.Errorf("apply output:\n%s", out)
	}
	table := c.ok("", "get", "bgpfilters")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME IMPORT-V4 EXPORT-V4 IMPORT-V6 EXPORT-V6 IMPORT-VPN/EVPN EXPORT-VPN/EVPN" ||
		strings.Join(strings.Fields(lines[1]), " ") != "tor-in 2 1 0 0 1 2" {
		t.Errorf("get bgpfilters table:\n%s", table)
	}
	if out := c.ok("", "get", "bgppeer", "tor"); !strings.Contains(out, "FILTERS") || !strings.Contains(out, "tor-in") {
		t.Errorf("get bgppeer shows no filters:\n%s", out)
	}
	bad := "kind: BGPFilter\nmetadata: {name: bad}\nspec:\n  importV6: [{cidr: 10.0.0.0/8, matchOperator: In, action: Allow}]\n"
	errs := c.fails(bad, "apply", "-f", "-")
	for _, want := range []string{"spec.importV6[0].cidr", "spec.importV6[0].action"} {
		if !strings.Contains(errs, want) {
			t.Errorf("apply of an invalid filter: error lacks %q:\n%s", want, errs)
		}
	}
	c.ok("", "delete", "bgpfilter", "tor-in")
	if errs := c.fails("", "get", "bgpfilter", "tor-in"); !strings.Contains(errs, "not found") {
		t.Errorf("get of a deleted filter: %s", errs)
	}
}

// TestApplyRefusesMissingFilter: a BGPPeer naming a BGPFilter that is in
// neither the file nor the datastore is refused with the field's path and
// nothing is written; one applied earlier or in the same file is fine.
func TestApplyRefusesMissingFilter(t *testing.T) {
	c := cli{t: t, endpoint: etcdtest.Start(t).ClientEndpoint()}
	peer := "kind: BGPPeer\nmetadata: {name: tor}\nspec: {peerIP: 10.0.0.254, asNumber: 65100, filters: [tor-in, absent]}\n"
	errs := c.fails(peer, "apply", "-f", "-")
	if !strings.Contains(errs, `spec.filters[0]: BGPFilter "tor-in" does not exist`) ||
		!strings.Contains(errs, `spec.filters[1]: BGPFilter "absent" does not exist`) || !strings.Contains(errs, "document 1") {
		t.Errorf("apply of a peer with missing filters:\n%s", errs)
	}
	if errs := c.fails("", "get", "bgppeer", "tor"); !strings.Contains(errs, "not found") {
		t.Errorf("the refused peer was written: %s", errs)
	}
	// In the same file: fine (torFilter holds the filter and a peer).
	c.ok(torFilter, "apply", "-f", "-")
	// Already in the datastore: fine, for the name that exists.
	c.ok("kind: BGPPeer\nmetadata: {name: tor2}\nspec: {peerIP: 10.0.0.253, asNumber: 65100, filters: [tor-in]}\n", "apply", "-f", "-")
	if errs := c.fails(peer, "apply", "-f", "-"); strings.Contains(errs, "tor-in") || !strings.Contains(errs, `spec.filters[1]: BGPFilter "absent"`) {
		t.Errorf("second apply: want only the absent filter refused:\n%s", errs)
	}
}
