package reflector

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// ErrNoNeighbor is ResetSession's error for an address that is no
// neighbour of the reflector.
var ErrNoNeighbor = errors.New("no BGP session with that peer")

// ResetSession ends a neighbour's sessions with a NOTIFICATION Cease,
// Administrative Reset (subcode 4, RFC 4486): an operator's reset (the
// `bgpfabric reflector` control socket, the simulator's session-reset
// fault). The neighbour comes back as after any session end that is not
// its fault: the reflector dials again after its connect retry unless the
// neighbour is passive, and takes the neighbour's connection at once (no
// hold-down). It reports how many sessions it closed: none when the
// neighbour had none open.
func (r *Reflector) ResetSession(addr netip.Addr) (int, error) {
	r.mu.Lock()
	p := r.peers[addr]
	r.mu.Unlock()
	if p == nil {
		return 0, fmt.Errorf("%s: %w", addr, ErrNoNeighbor)
	}
	p.mu.Lock()
	ss := append([]*session(nil), p.sessions...)
	p.mu.Unlock()
	n := 0
	for _, s := range ss {
		if s.abort(newNotify(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_RESET, "reset")) {
			n++
		}
	}
	if n > 0 {
		p.log.Info("session reset on request")
	}
	return n, nil
}
