package reflector

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParseConfigFileFIBAndTTL: programFIB with its fib block, the TTL
// and next-hop settings of neighbours and ranges, and a range's password
// file; the errors name their field.
func TestParseConfigFileFIBAndTTL(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "range.pw")
	if err := os.WriteFile(pwFile, []byte("r4nge\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfigFile([]byte(`
routerID: 10.255.0.1
asNumber: 65000
programFIB: true
fib: {protocol: 90, multipath: false}
neighbors:
  - address: 192.0.2.1
    asNumber: 65100
    ebgpMultihop: 3
    keepOriginalNextHop: true
  - address: 10.0.0.2
    ttlSecurity: 1
dynamicNeighbors:
  - prefix: 10.1.0.0/16
    ttlSecurity: 2
    keepaliveTime: 10s
    passwordFile: ` + pwFile + `
`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ProgramFIB || cfg.FIB.Protocol != 90 || !cfg.FIB.SinglePath {
		t.Errorf("FIB: %v %+v", cfg.ProgramFIB, cfg.FIB)
	}
	n := cfg.Neighbors
	if n[0].EBGPMultihop != 3 || !n[0].KeepNextHop || n[0].TTLSecurity != 0 || n[1].TTLSecurity != 1 {
		t.Errorf("neighbours %+v", n)
	}
	if d := cfg.DynamicNeighbors[0]; d.TTLSecurity != 2 || d.Password != "r4nge" || d.KeepaliveTime.Seconds() != 10 {
		t.Errorf("dynamic neighbour %+v", d)
	}
	if cfg, err := ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\n")); err != nil || cfg.ProgramFIB {
		t.Errorf("default: programFIB %v, %v", cfg.ProgramFIB, err)
	}
	// The fib block without programFIB: for --program-fib.
	if cfg, err := ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\nfib: {protocol: 90}\n")); err != nil || cfg.ProgramFIB || cfg.FIB.Protocol != 90 {
		t.Errorf("fib without programFIB: %v %+v, %v", cfg.ProgramFIB, cfg.FIB, err)
	}
	if _, err := ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\nprogramFIB: true\nfib: {protocol: 3}\n")); err == nil || !strings.Contains(err.Error(), "FIB.Protocol") {
		t.Errorf("fib protocol 3: %v", err)
	}

	_, err = ParseConfigFile([]byte(`
routerID: 10.255.0.1
asNumber: 65000
programFIB: true
fib: {protocol: 3}
neighbors:
  - address: 10.0.0.2
    ttlSecurity: 256
  - address: 10.0.0.3
    ttlSecurity: 1
    ebgpMultihop: 2
`))
	for _, want := range []string{"neighbors[0].ttlSecurity", "neighbors[1].ebgpMultihop"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want it to name %s", err, want)
		}
	}
}

// TestParseConfigFilePolicy: filters, the filters of neighbours and
// ranges, and ebgpDefaultPolicy become the engine's PolicyConfig; a
// missing name, an invalid rule, interface and an unknown default are
// refused with their field paths.
func TestParseConfigFilePolicy(t *testing.T) {
	cfg, err := ParseConfigFile([]byte(`
routerID: 10.255.0.1
asNumber: 65000
ebgpDefaultPolicy: Accept
filters:
  - name: tor-in
    importV4:
      - {cidr: 0.0.0.0/0, matchOperator: Equal, action: Accept, localPref: 50}
      - {action: Reject}
  - name: tag
    exportV4:
      - {action: Accept, addCommunities: ["65000:1"], prependASPath: {asNumber: 65000}}
    exportEVPN:
      - {evpnRouteTypes: [2, 5], routeTargets: ["65000:100"], action: Accept, addRouteTargets: ["65000:200"]}
    importVPNv4:
      - {cidr: 10.0.0.0/8, matchOperator: In, routeDistinguishers: ["192.0.2.1:7"], action: Reject}
neighbors:
  - address: 192.0.2.1
    asNumber: 65100
    filters: [tor-in, tag]
  - address: 10.0.0.2
dynamicNeighbors:
  - prefix: 10.1.0.0/16
    filters: [tag]
`))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Policy
	if !p.EBGPDefaultAccept || len(p.Filters) != 2 || p.Filters[1].Spec.ExportV4[0].PrependASPath.Repeat != 1 ||
		!slices.Equal(p.Filters[1].Spec.ExportEVPN[0].EVPNRouteTypes, []int{2, 5}) || p.Filters[1].Spec.ImportVPNv4[0].RouteDistinguishers[0] != "192.0.2.1:7" {
		t.Errorf("policy: %+v", p)
	}
	if got := p.Neighbors[netip.MustParseAddr("192.0.2.1")]; !slices.Equal(got, []string{"tor-in", "tag"}) {
		t.Errorf("neighbour filters %v", got)
	}
	if _, ok := p.Neighbors[netip.MustParseAddr("10.0.0.2")]; ok {
		t.Error("a neighbour without filters has an entry")
	}
	if got := p.Ranges[netip.MustParsePrefix("10.1.0.0/16")]; !slices.Equal(got, []string{"tag"}) {
		t.Errorf("range filters %v", got)
	}
	if def, err := ParseConfigFile([]byte("routerID: 10.255.0.1\nasNumber: 65000\n")); err != nil || def.Policy.EBGPDefaultAccept {
		t.Errorf("default ebgpDefaultPolicy: accept=%v, %v; want Reject (RFC 8212)", def.Policy.EBGPDefaultAccept, err)
	}
	_, err = ParseConfigFile([]byte(`
routerID: 10.255.0.1
asNumber: 65000
ebgpDefaultPolicy: Maybe
filters:
  - name: bad
    importV4: [{cidr: 10.0.0.0/33, matchOperator: In, action: Accept}]
  - name: ifc
    exportV4: [{interface: eth0, action: Accept}]
  - name: vpn
    importEVPN: [{cidr: 10.0.0.0/8, matchOperator: In, action: Accept}]
    exportVPNv6: [{evpnRouteTypes: [2], routeTargets: ["65000"], action: Accept}]
    importV6: [{routeTargets: ["65000:1"], action: Accept}]
neighbors:
  - address: 192.0.2.1
    filters: [nope]
dynamicNeighbors:
  - prefix: 10.1.0.0/16
    filters: [gone]
`))
	for _, want := range []string{"ebgpDefaultPolicy", "filters[0]", "spec.importV4[0].cidr", "filters[1]", "spec.exportV4[0].interface",
		"neighbors[0].filters[0]", `"nope"`, "dynamicNeighbors[0].filters[0]",
		"filters[2]", "spec.importEVPN[0].cidr", "spec.exportVPNv6[0].evpnRouteTypes", "spec.exportVPNv6[0].routeTargets[0]", "spec.importV6[0].routeTargets"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

// TestConfigFilePolicyOnWire: a reflector configured from a file applies
// the file's filters (the same engine path as the datastore's).
func TestConfigFilePolicyOnWire(t *testing.T) {
	cfg, err := ParseConfigFile([]byte(`
routerID: 10.255.0.1
asNumber: 65000
clusterID: 10.255.255.1
listen: ["127.0.0.1:0"]
filters:
  - name: in
    importV4: [{cidr: 10.66.0.0/16, matchOperator: In, action: Reject}]
neighbors:
  - {address: 127.0.0.2, passive: true, filters: [in]}
  - {address: 127.0.0.3, passive: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startReflector(t, cfg)
	a := connect(t, addr, cliA, opts("10.0.0.2"))
	b := connect(t, addr, cliB, opts("10.0.0.3"))
	readView(t, a, view{}, eors)
	vb := readView(t, b, view{}, eors)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.66.1.0/24", "10.67.1.0/24")))
	settle(t, a, b, vb, "192.0.2.2", "10.99.1.0/24", "10.99.2.0/24")
	if hasKey(vb, "10.66.1.0/24") || !hasKey(vb, "10.67.1.0/24") {
		t.Errorf("B's routes %v: want 10.67.1.0/24 and not 10.66.1.0/24", vb)
	}
}
