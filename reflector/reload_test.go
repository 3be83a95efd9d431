package reflector

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

const reloadBase = `routerID: 10.255.0.1
asNumber: 65000
listen: ["127.0.0.1:0"]
filters:
- name: no-10-99
  importV4: [{cidr: 10.99.0.0/16, matchOperator: In, action: Reject}]
`

func parseTestConfig(t *testing.T, neighbors string) Config {
	t.Helper()
	cfg, err := ParseConfigFile([]byte(reloadBase + neighbors))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func mustNeighbor(t *testing.T, ns []NeighborStatus, addr string) NeighborStatus {
	t.Helper()
	n, ok := neighborByAddr(ns, addr)
	if !ok {
		t.Fatalf("no neighbour %s in %+v", addr, ns)
	}
	return n
}

func neighborByAddr(ns []NeighborStatus, addr string) (NeighborStatus, bool) {
	for _, n := range ns {
		if n.Address == addr {
			return n, true
		}
	}
	return NeighborStatus{}, false
}

// TestReconfigure: a reload with one neighbour added, one removed (Cease
// 6/3 on the wire) and one changed in live fields only (description and
// filters: same session, and its new import filter takes effect); an
// invalid configuration is refused whole; a changed router ID is refused
// by name and the rest applied.
func TestReconfigure(t *testing.T) {
	cfg := parseTestConfig(t, `neighbors:
- {address: 127.0.0.2, passive: true}
- {address: 127.0.0.3, passive: true}
- {address: 127.0.0.4, passive: true, description: rack 4}
`)
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	c := connect(t, addr, "127.0.0.4", opts("10.0.0.4"))
	for _, s := range []*rawSpeaker{a, b, c} {
		collect(t, s, false, hasEORs)
	}
	before := r.Neighbors()
	if n, _ := neighborByAddr(before, "127.0.0.4"); n.Description != "rack 4" {
		t.Fatalf("description %q before the reload, want %q", n.Description, "rack 4")
	}

	res, err := r.Reconfigure(parseTestConfig(t, `neighbors:
- {address: 127.0.0.2, passive: true}
- {address: 127.0.0.4, passive: true, description: rack 4 row 2, filters: [no-10-99]}
- {address: 127.0.0.5, passive: true}
`))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	want := ReloadResult{Added: []netip.Addr{ip("127.0.0.5")}, Removed: []netip.Addr{ip("127.0.0.3")}, Live: []netip.Addr{ip("127.0.0.4")}, Applied: true}
	if d := cmp.Diff(want, res, cmp.Comparer(func(x, y netip.Addr) bool { return x == y })); d != "" {
		t.Errorf("reload result (-want +got):\n%s", d)
	}
	expectNotification(t, b, bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_PEER_DECONFIGURED)

	// The changed neighbour's new import filter applies on its session:
	// 10.99.1.0/24 stays out, 10.11.0.0/24 (sent after it) reaches a.
	c.send(t, ipv4Update("192.0.2.4", pfx("10.99.1.0/24")))
	c.send(t, ipv4Update("192.0.2.4", pfx("10.11.0.0/24")))
	got := collect(t, a, false, hasKeys("10.11.0.0/24"))
	if _, ok := got["10.99.1.0/24"]; ok {
		t.Errorf("a received 10.99.1.0/24, which 127.0.0.4's new import filter rejects")
	}
	// The added neighbour connects and gets the table.
	d := connect(t, addr, "127.0.0.5", opts("10.0.0.5"))
	collect(t, d, false, hasKeys("EOR ipv4-unicast", "10.11.0.0/24"))

	after := r.Neighbors()
	for _, addr := range []string{"127.0.0.2", "127.0.0.4"} {
		was, _ := neighborByAddr(before, addr)
		now, ok := neighborByAddr(after, addr)
		if !ok || now.State != StateEstablished || !now.Since.Equal(was.Since) {
			t.Errorf("%s: %+v after the reload, want the same Established session as before (since %v)", addr, now, was.Since)
		}
	}
	if n, _ := neighborByAddr(after, "127.0.0.4"); n.Description != "rack 4 row 2" {
		t.Errorf("description %q after the reload, want %q", n.Description, "rack 4 row 2")
	}
	if _, ok := neighborByAddr(after, "127.0.0.3"); ok {
		t.Errorf("127.0.0.3 still a neighbour after its removal")
	}

	// An invalid configuration is refused whole: nothing changes.
	bad := []byte(reloadBase + `neighbors:
- {address: 127.0.0.2, passive: true}
- {address: 127.0.0.6, passive: true, holdTime: 1s}
`)
	if _, err := ParseConfigFile(bad); err == nil || !strings.Contains(err.Error(), "neighbors[1].holdTime") {
		t.Fatalf("invalid config: err %v, want one naming neighbors[1].holdTime", err)
	}
	invalid := parseTestConfig(t, `neighbors:
- {address: 127.0.0.2, passive: true}
`)
	invalid.Neighbors = append(invalid.Neighbors, NeighborConfig{Address: ip("127.0.0.6")}) // no ASN
	if res, err := r.Reconfigure(invalid); err == nil || !strings.Contains(err.Error(), "ASN") || res.Applied {
		t.Fatalf("Reconfigure of an invalid config: err %v, applied %v; want an error naming the ASN, nothing applied", err, res.Applied)
	}
	if ns := r.Neighbors(); len(ns) != 3 {
		t.Errorf("after a refused reload: %d neighbours, want the 3 running ones: %+v", len(ns), ns)
	}

	// A changed router ID is refused by name; the neighbours apply.
	// 127.0.0.4's hold time changes: a reset, Cease 6/6. 127.0.0.2 gets
	// BFD (live: no BFD server here, so it runs without, and keeps its
	// session).
	moved := parseTestConfig(t, `neighbors:
- {address: 127.0.0.2, passive: true, bfd: {enabled: true, minTx: 300ms, minRx: 300ms, multiplier: 3}}
- {address: 127.0.0.4, passive: true, holdTime: 30s, description: rack 4 row 2, filters: [no-10-99]}
`)
	moved.RouterID = ip("10.255.0.9")
	res, err = r.Reconfigure(moved)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Refused) != 1 || !strings.HasPrefix(res.Refused[0], "routerID: ") {
		t.Errorf("refused %q, want routerID", res.Refused)
	}
	if len(res.Reset) != 1 || res.Reset[0] != ip("127.0.0.4") || len(res.Live) != 1 || res.Live[0] != ip("127.0.0.2") {
		t.Errorf("reset %v, live %v; want reset [127.0.0.4], live [127.0.0.2]", res.Reset, res.Live)
	}
	expectNotification(t, d, bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_PEER_DECONFIGURED)
	expectNotification(t, c, bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_OTHER_CONFIGURATION_CHANGE)
	if n, _ := neighborByAddr(r.Neighbors(), "127.0.0.2"); !n.Since.Equal(mustNeighbor(t, before, "127.0.0.2").Since) {
		t.Errorf("127.0.0.2 went down or up in a reload that did not change it")
	}
	r.mu.Lock()
	id := r.cfg.RouterID
	r.mu.Unlock()
	if id != ip("10.255.0.1") {
		t.Errorf("router ID %v after a refused change, want 10.255.0.1", id)
	}
}
