package reflector

import (
	"slices"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// Graceful shutdown (RFC 8326). Before the reflector closes its sessions
// it re-advertises every path with the GRACEFUL_SHUTDOWN community
// (65535:0) and, towards iBGP peers, LOCAL_PREF 0, so that clients move to
// the other reflector of a redundant pair (or to other paths) while this
// one is still forwarding nothing but still advertising. The withdrawal
// (the Cease that closes each session) then changes nothing at clients.

// gracefulShutdownCommunity is RFC 8326's well-known community 65535:0.
const gracefulShutdownCommunity = 0xffff0000

// gracefulShutdown switches exports to their graceful-shutdown form and
// re-advertises the whole table to every session.
func (rl *ribLoop) gracefulShutdown() int {
	if rl.exp.gshut {
		return 0
	}
	rl.flush()
	rl.exp.gshut = true
	for _, a := range rl.attrs.byKey {
		a.out = nil // drop every cached export
	}
	n := 0
	for _, g := range rl.groups {
		for _, m := range g.members {
			if rl.deferring {
				continue // endDeferral's dump carries the community
			}
			n++
			for f := range numFamilies {
				if m.fams.has(f) {
					rl.dump(m, f, false)
				}
			}
		}
	}
	return n
}

// withGracefulShutdown adds the community and, for iBGP, sets LOCAL_PREF
// to 0 in an export's attribute list (which the caller owns).
func withGracefulShutdown(list []bgp.PathAttributeInterface, ibgp bool) []bgp.PathAttributeInterface {
	hasComm, hasLP := false, false
	for i, p := range list {
		switch v := p.(type) {
		case *bgp.PathAttributeCommunities:
			hasComm = true
			if !slices.Contains(v.Value, gracefulShutdownCommunity) {
				list[i] = bgp.NewPathAttributeCommunities(append(slices.Clone(v.Value), gracefulShutdownCommunity))
			}
		case *bgp.PathAttributeLocalPref:
			if ibgp {
				hasLP = true
				list[i] = bgp.NewPathAttributeLocalPref(0)
			}
		}
	}
	if !hasComm {
		list = append(list, bgp.NewPathAttributeCommunities([]uint32{gracefulShutdownCommunity}))
	}
	if ibgp && !hasLP {
		list = append(list, bgp.NewPathAttributeLocalPref(0))
	}
	return list
}
