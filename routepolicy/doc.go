// Package routepolicy evaluates BGPFilters (api.BGPFilter): one pure
// package, no I/O and no BGP library, shared by the node router (which
// translates a Chain into its speaker's policy, router/gobgp) and the
// reflector. docs/policy.md describes the model for users.
//
// A Filter is a compiled BGPFilter. A Chain is what one session applies in
// one direction: its filters in the BGPPeer's order and a default. Within
// a filter, the rules of the route's family and the chain's direction are
// tried in order and the first that matches decides (Accept, with its
// changes to the route, or Reject); a filter in which no rule matches
// passes the route on to the next filter; after the last filter the
// default decides (Calico's semantics).
//
// Matching, per rule (every condition set must hold):
//   - CIDR with In: the route's prefix is inside CIDR (CIDR included) and
//     its length is within PrefixLength (default: CIDR's length to the
//     family's maximum); NotIn is the negation of that; Equal: the prefix
//     is CIDR exactly; NotEqual: it is not.
//   - PrefixLength without CIDR: the length is within the bounds.
//   - Source RemotePeers: the route was learned from a BGP peer.
//   - Communities: the route carries any of them (standard or large).
//   - VPN and EVPN lists (route reflectors): RouteTargets, the route
//     carries any of them; RDs, its RD is one of them; RouteTypes, an
//     EVPN route's type is one of them. In the VPN lists CIDR and the
//     lengths apply to the prefix inside the RD; EVPN rules have none.
package routepolicy
