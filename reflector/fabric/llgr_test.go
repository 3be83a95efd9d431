package fabric

import (
	"net/netip"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/peering"
)

// TestNeighborsLongLivedGracefulRestart: BGPConfiguration's graceful
// restart times (restartTime, longLivedStaleTime) reach the engine's
// neighbours.
func TestNeighborsLongLivedGracefulRestart(t *testing.T) {
	gr := peering.GracefulRestart{Enabled: true, RestartTime: time.Minute, StaleRoutesTime: 360 * time.Second, LongLivedStaleTime: time.Hour}
	ns, _, err := Neighbors([]peering.Session{{PeerAddress: netip.MustParseAddr("10.0.0.2"), PeerPort: 179, PeerAS: 64512,
		LocalAS: 64512, RouteReflectorClient: true, HoldTime: 90 * time.Second, GracefulRestart: gr}}, secrets)
	if err != nil || len(ns) != 1 {
		t.Fatalf("Neighbors: %v %v", ns, err)
	}
	if n := ns[0]; !n.GracefulRestart || n.RestartTime != time.Minute || n.LongLivedStaleTime != time.Hour {
		t.Errorf("neighbour: graceful restart %v, restart time %v, long-lived stale time %v", n.GracefulRestart, n.RestartTime, n.LongLivedStaleTime)
	}
}
