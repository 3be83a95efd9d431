package gobgp

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
)

// idleHoldAfterReset is how long, in seconds, a peer stays idle after
// ResetPeer before it connects again: GoBGP's idle hold after any session
// end (5 s), where its default after an operator's reset is 30 s.
const idleHoldAfterReset = 5

// ResetPeer implements speaker.Speaker: GoBGP's hard reset sends the Cease
// with subcode 4 (Administrative Reset) and the session comes back after
// idleHoldAfterReset.
func (s *Speaker) ResetPeer(ctx context.Context, addr netip.Addr) error {
	if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Communication: "bgpfabric: session reset"}); err != nil {
		return fmt.Errorf("resetting peer %s: %w", addr, err)
	}
	return nil
}
