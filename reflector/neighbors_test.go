package reflector

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// TestSetNeighbors: an unchanged neighbour keeps its session, a removed one
// gets Cease/de-configured, and update groups follow membership.
func TestSetNeighbors(t *testing.T) {
	cfg := testConfig("127.0.0.2", "127.0.0.3")
	r, addr := startReflector(t, cfg)
	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	b := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	collect(t, a, false, hasEORs)
	collect(t, b, false, hasEORs)
	if err := r.SetNeighbors(cfg.Neighbors[:1]); err != nil {
		t.Fatal(err)
	}
	expectNotification(t, b, bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_PEER_DECONFIGURED)
	a.send(t, ipv4Update("192.0.2.2", pfx("10.11.0.0/24")))
	ns := r.Neighbors()
	if len(ns) != 1 || ns[0].Address != "127.0.0.2" || ns[0].State != StateEstablished {
		t.Fatalf("neighbours %+v, want only 127.0.0.2 Established", ns)
	}
	// Adding a neighbour back lets it establish and receive the table.
	nb := NeighborConfig{Address: netip.MustParseAddr("127.0.0.3"), ASN: testASN, Passive: true}
	if err := r.SetNeighbors(append(cfg.Neighbors[:1:1], nb)); err != nil {
		t.Fatal(err)
	}
	b2 := connect(t, addr, "127.0.0.3", opts("10.0.0.3"))
	// The client's route reaches it, in the dump or right after it.
	collect(t, b2, false, hasKeys("10.11.0.0/24"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, _ := r.RIBStats(ctx)
	if st.UpdateGroups != 2 || st.Paths != 1 {
		t.Errorf("RIB stats %+v, want 2 update groups (client, non-client) and 1 path", st)
	}
}
