package fabric

import (
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/routepolicy"
)

// Route policy on the reflector: not built yet, so it fails closed.
//
// The reflector's engine does not evaluate BGPFilters yet (docs/policy.md).
// An accepted field must never be ignored: a session or range whose
// BGPPeer names filters is not configured at all (no routes from or to
// it), and the reflector's BGPStatus shows the session with an error that
// says why (a range, which has no address to show, is logged). For the
// same reason RFC 8212 (docs/policy.md) leaves out every eBGP session and
// range unless the BGPConfiguration's ebgpDefaultPolicy is Accept: no
// filter could accept anything on them.

// RFC8212Closed is the status error of an eBGP session left out under
// RFC 8212: the reflector cannot evaluate a policy, so without
// ebgpDefaultPolicy Accept an eBGP session would have to exchange
// nothing; it is not configured.
const RFC8212Closed = "eBGP session under RFC 8212 (BGPConfiguration ebgpDefaultPolicy Reject) on a reflector, which cannot evaluate filters yet: session not configured (no routes in or out); set ebgpDefaultPolicy Accept to reflect it"

// FiltersUnsupported is the status error of a session left out for its
// filters.
const FiltersUnsupported = "BGPPeer has spec.filters, which the reflector does not support yet: session not configured (no routes in or out)"

// ebgpAccept reports whether the default BGPConfiguration restores
// accepting eBGP routes without a filter.
func ebgpAccept(in peering.Input) bool {
	for _, c := range in.BGPConfigurations {
		if c.Name == api.DefaultBGPConfigurationName {
			return c.Spec.EBGPDefaultPolicy == api.FilterAccept
		}
	}
	return false
}

// refuseEBGP splits off the eBGP sessions and ranges when RFC 8212
// applies (no ebgpDefaultPolicy Accept).
func refuseEBGP(sessions []peering.Session, ranges []peering.PeerRange, accept bool) (
	keep []peering.Session, keepRanges []peering.PeerRange, refused []peering.Session, refusedRanges []peering.PeerRange) {
	if accept {
		return sessions, ranges, nil, nil
	}
	for _, s := range sessions {
		if s.EBGP {
			refused = append(refused, s)
		} else {
			keep = append(keep, s)
		}
	}
	for _, r := range ranges {
		if r.EBGP {
			refusedRanges = append(refusedRanges, r)
		} else {
			keepRanges = append(keepRanges, r)
		}
	}
	return keep, keepRanges, refused, refusedRanges
}

// filteredPeers returns the names of the BGPPeers with filters that apply
// on node (routepolicy.AppliesOn: the BGPPeer's node side; a reflector's
// sessions with the compute nodes that select it by peerSelector are
// reverse sessions, which have no filters).
func filteredPeers(in peering.Input, node string) map[string]bool {
	var self *api.Node
	for _, n := range in.Nodes {
		if n.Name == node {
			self = n
		}
	}
	out := map[string]bool{}
	for _, p := range in.BGPPeers {
		if len(p.Spec.Filters) > 0 && routepolicy.AppliesOn(p, self) {
			out[p.Name] = true
		}
	}
	return out
}

// refuseFiltered splits off the sessions and ranges of BGPPeers with
// filters.
func refuseFiltered(sessions []peering.Session, ranges []peering.PeerRange, filtered map[string]bool) (
	keep []peering.Session, keepRanges []peering.PeerRange, refused []peering.Session, refusedRanges []peering.PeerRange) {
	for _, s := range sessions {
		if s.Source != peering.SourceMesh && filtered[s.Source] {
			refused = append(refused, s)
		} else {
			keep = append(keep, s)
		}
	}
	for _, r := range ranges {
		if filtered[r.Source] {
			refusedRanges = append(refusedRanges, r)
		} else {
			keepRanges = append(keepRanges, r)
		}
	}
	return keep, keepRanges, refused, refusedRanges
}

// refusal is a session left out and why.
type refusal struct {
	session peering.Session
	reason  string
}

// withRefused adds the refused sessions to a status, in address order.
func withRefused(st *api.BGPStatus, refused []refusal) *api.BGPStatus {
	for _, r := range refused {
		s := r.session
		st.Status.Peers = append(st.Status.Peers, api.BGPPeerStatus{
			PeerIP: s.PeerAddress.String(), ASNumber: s.PeerAS, Type: s.Type, State: api.BGPIdle,
			LastError: r.reason,
		})
	}
	slices.SortStableFunc(st.Status.Peers, func(a, b api.BGPPeerStatus) int {
		x, errx := netip.ParseAddr(a.PeerIP)
		y, erry := netip.ParseAddr(b.PeerIP)
		if errx != nil || erry != nil {
			return 0
		}
		return x.Compare(y)
	})
	return st
}
