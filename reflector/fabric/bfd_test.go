package fabric

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/reflector"
)

// TestBFDConverted: a session's BFD settings reach the neighbour's
// configuration, and its BFD state the BGPStatus.
func TestBFDConverted(t *testing.T) {
	b := peering.BFD{Enabled: true, MinTx: 100 * time.Millisecond, MinRx: 200 * time.Millisecond, Multiplier: 5, Multihop: true, RequireUp: true}
	ns, _, err := Neighbors([]peering.Session{{PeerAddress: netip.MustParseAddr("10.0.0.2"), PeerPort: 179, PeerAS: 64512, LocalAS: 64512, BFD: b}}, nil)
	if err != nil || len(ns) != 1 {
		t.Fatalf("Neighbors = %v, %v", ns, err)
	}
	want := reflector.BFDConfig{Enabled: true, MinTx: 100 * time.Millisecond, MinRx: 200 * time.Millisecond, Multiplier: 5, Multihop: true, RequireUp: true}
	if ns[0].BFD != want {
		t.Errorf("BFD = %+v, want %+v", ns[0].BFD, want)
	}
	st := Status("rr1", Identity{RouterID: netip.MustParseAddr("10.0.0.1"), AS: 64512}, nil, nil,
		[]reflector.NeighborStatus{{Address: "10.0.0.2", ASN: 64512, State: reflector.StateEstablished, BFD: "Up"}}, time.Unix(0, 0))
	if len(st.Status.Peers) != 1 || st.Status.Peers[0].BFD != "Up" {
		t.Errorf("status peers %+v, want BFD Up", st.Status.Peers)
	}
}
