package gobgp

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"
)

// keepOriginalNextHop (BGPPeer) on the node's GoBGP speaker.
//
// GoBGP sets the next hop of every path it sends to an eBGP peer to the
// session's local address before the export policy runs
// (table.UpdatePathAttrs), and its export policy is global (per peer only
// for route-server clients, which would also leave the AS path alone). So
// the global export policy starts with a statement that matches the
// neighbours in the neighbor set keepNextHopSet and sets the next hop
// "unchanged": back to what it was before UpdatePathAttrs (for our own
// routes, whose next hop is unspecified, that is the local address, as
// without the setting). The set holds the address of every peer, and the
// prefix of every range, with keepOriginalNextHop; it changes in place,
// and a changed peer gets a soft reset out (UpdatePeer), so that what it
// was sent is sent again.
//
// Only routes that the speaker passes on keep a next hop other than its
// own: on a compute node (ExportLocalOnly) every route it sends is its
// own, so the setting changes nothing on the wire; on a node that
// reflects (a routeReflectorClusterID, ExportNoExternal) the routes of its
// iBGP peers reach the eBGP peer with their original next hops.

const (
	keepNextHopSet       = "bgpfabric-keep-nexthop"
	keepNextHopStatement = exportPolicyName + "-keep-nexthop"
	// keepNextHopSentinel is always in the set: GoBGP's neighbor
	// condition matches every neighbour when its set is empty. No
	// neighbour has the address 0.0.0.0.
	keepNextHopSentinel = "0.0.0.0/32"
)

// keepNextHopPolicyStatement is the first statement of the export policy.
// Without a route action, evaluation goes on to the next statement with
// the next hop set.
func keepNextHopPolicyStatement() *api.Statement {
	return &api.Statement{
		Name:       keepNextHopStatement,
		Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: keepNextHopSet}},
		Actions:    &api.Actions{Nexthop: &api.NexthopAction{Unchanged: true}},
	}
}

// resetKeepNextHopSet creates the neighbor set with only the sentinel,
// replacing any left from an earlier Start. The export policy that refers
// to it must not exist yet.
func (s *Speaker) resetKeepNextHopSet(ctx context.Context) error {
	_ = s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{
		DefinedSet: &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: keepNextHopSet}, All: true})
	if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_NEIGHBOR, Name: keepNextHopSet, List: []string{keepNextHopSentinel}}}); err != nil {
		return fmt.Errorf("adding the keepOriginalNextHop neighbor set: %w", err)
	}
	return nil
}

// setKeepNextHop puts a neighbour (an address, or a range's prefix) in or
// out of the set when its setting changes from was to now.
func (s *Speaker) setKeepNextHop(ctx context.Context, who netip.Prefix, was, now bool) error {
	if was == now {
		return nil
	}
	ds := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: keepNextHopSet, List: []string{who.String()}}
	if now {
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
			return fmt.Errorf("keepOriginalNextHop for %s: %w", who, err)
		}
		return nil
	}
	if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: ds}); err != nil {
		return fmt.Errorf("ending keepOriginalNextHop for %s: %w", who, err)
	}
	return nil
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
