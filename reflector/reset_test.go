package reflector

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// TestResetSession: ResetSession sends the neighbour a Cease,
// Administrative Reset (6/4); the neighbour connects again at once and is
// taken (no hold-down); an address that is no neighbour is ErrNoNeighbor.
func TestResetSession(t *testing.T) {
	r, addr := startReflector(t, testConfig("127.0.0.2"))
	s := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	collect(t, s, false, hasEORs)
	n, err := r.ResetSession(netip.MustParseAddr("127.0.0.2"))
	if err != nil || n != 1 {
		t.Fatalf("ResetSession = %d, %v; want 1 session", n, err)
	}
	expectNotification(t, s, bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_RESET)
	// The neighbour's new connection may race the old session's end (a
	// collision Cease): it is taken within a few attempts.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		again, err := dialSpeaker(ctx, addr, "127.0.0.2", opts("10.0.0.2"))
		cancel()
		if err == nil {
			t.Cleanup(func() { again.conn.Close() })
			collect(t, again, false, hasEORs)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the neighbour cannot connect again after the reset: %v", err)
		}
		<-tick.C
	}
	if _, err := r.ResetSession(netip.MustParseAddr("127.0.0.9")); !errors.Is(err, ErrNoNeighbor) {
		t.Errorf("reset of an unknown address: %v, want ErrNoNeighbor", err)
	}
}
