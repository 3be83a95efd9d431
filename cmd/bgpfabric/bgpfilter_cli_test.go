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
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME IMPORT-V4 EXPORT-V4 IMPORT-V6 EXPORT-V6" ||
		strings.Join(strings.Fields(lines[1]), " ") != "tor-in 2 1 0 0" {
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
