package fabric

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/reflector"
	"github.com/bgpfabric/bgpfabric/routepolicy"
)

// Route policy on the reflector (docs/policy.md): the BGPFilters, the
// filters of every session and range whose BGPPeer's node side is this
// reflector (routepolicy.AppliesOn: the sessions back to the compute
// nodes that select it by peerSelector are reverse sessions, with the
// default policy), and the "default" BGPConfiguration's ebgpDefaultPolicy
// become the engine's PolicyConfig, which it applies live
// (reflector.SetPolicy): the same code path as the configuration file's.
//
// A BGPFilter with a field the reflector cannot honour (interface:
// reflector.CheckFilter) is refused: the sessions of BGPPeers that name
// it are not configured (no routes in or out), with the reason, naming the
// field, in BGPStatus; such a range is left out (logged). A BGPPeer naming
// a filter that does not exist is not refused: the engine gives its
// sessions the default policy alone, logs it once and shows it in the
// status, until the filter is created.

// policyInput is what the policy is computed from.
type policyInput struct {
	in      peering.Input
	filters []*api.BGPFilter
}

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

// filteredPeers returns the filter names of the BGPPeers with filters that
// apply on node.
func filteredPeers(in peering.Input, node string) map[string][]string {
	var self *api.Node
	for _, n := range in.Nodes {
		if n.Name == node {
			self = n
		}
	}
	out := map[string][]string{}
	for _, p := range in.BGPPeers {
		if len(p.Spec.Filters) > 0 && routepolicy.AppliesOn(p, self) {
			out[p.Name] = p.Spec.Filters
		}
	}
	return out
}

// policyResult is the policy and the sessions and ranges refused for it.
type policyResult struct {
	policy        reflector.PolicyConfig
	sessions      []peering.Session
	ranges        []peering.PeerRange
	refused       []refusal
	refusedRanges []refusal
}

// policyFor computes the engine's policy for the sessions and ranges, and
// splits off those whose filters the reflector cannot honour.
func policyFor(pi policyInput, node string, sessions []peering.Session, ranges []peering.PeerRange) policyResult {
	res := policyResult{policy: reflector.PolicyConfig{
		Neighbors: map[netip.Addr][]string{}, Ranges: map[netip.Prefix][]string{}, EBGPDefaultAccept: ebgpAccept(pi.in),
	}}
	unusable := map[string]string{}
	for _, f := range pi.filters {
		if err := reflector.CheckFilter(f); err != nil {
			unusable[f.Name] = err.Error()
			continue
		}
		if _, err := routepolicy.Compile(f); err != nil {
			// The datastore validates what it stores: only a filter
			// written around it gets here. It counts as missing.
			unusable[f.Name] = ""
			continue
		}
		res.policy.Filters = append(res.policy.Filters, f)
	}
	slices.SortFunc(res.policy.Filters, func(a, b *api.BGPFilter) int { return strings.Compare(a.Name, b.Name) })
	peers := filteredPeers(pi.in, node)
	why := func(source string) string {
		var reasons []string
		for _, n := range peers[source] {
			if r := unusable[n]; r != "" {
				reasons = append(reasons, r)
			}
		}
		if reasons == nil {
			return ""
		}
		return fmt.Sprintf("BGPPeer %s: %s: session not configured (no routes in or out)", source, strings.Join(reasons, "; "))
	}
	for _, s := range sessions {
		if s.Source == peering.SourceMesh || peers[s.Source] == nil {
			res.sessions = append(res.sessions, s)
			continue
		}
		if r := why(s.Source); r != "" {
			res.refused = append(res.refused, refusal{s, r})
			continue
		}
		res.sessions = append(res.sessions, s)
		res.policy.Neighbors[s.PeerAddress] = peers[s.Source]
	}
	for _, r := range ranges {
		if peers[r.Source] == nil {
			res.ranges = append(res.ranges, r)
			continue
		}
		if reason := why(r.Source); reason != "" {
			res.refusedRanges = append(res.refusedRanges, refusal{reason: reason + " (range " + r.Prefix.String() + ")"})
			continue
		}
		res.ranges = append(res.ranges, r)
		res.policy.Ranges[r.Prefix] = peers[r.Source]
	}
	return res
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
