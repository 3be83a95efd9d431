package gobgp

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// BGPPeer keepOriginalNextHop and nextHopMode on the node's GoBGP speaker.
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
	selfNextHopSet       = "bgpfabric-self-nexthop"
	selfNextHopStatement = exportPolicyName + "-self-nexthop"
	// nextHopSentinel is always in the sets: GoBGP's neighbor condition
	// matches every neighbour when its set is empty. No neighbour has the
	// address 0.0.0.0.
	nextHopSentinel = "0.0.0.0/32"
)

// nextHopMode is BGPPeer nextHopMode (keepOriginalNextHop is Keep).
//
// Self is the same mechanism as Keep with the other action: a second
// neighbor set, selfNextHopSet, and a statement that sets the next hop to
// the session's local address. It matters on iBGP sessions of a node that
// passes routes on (a reflecting node), which otherwise leaves their
// next hops as they came; on eBGP, GoBGP sets it anyway (peering drops
// Self there). A neighbour is in at most one of the two sets.
type nextHopMode uint8

const (
	nextHopAuto nextHopMode = iota
	nextHopKeep
	nextHopSelf
)

func peerNextHop(p speaker.PeerConfig) nextHopMode {
	return nextHopOf(p.KeepOriginalNextHop, p.NextHopSelf)
}

func rangeNextHop(r speaker.PeerRangeConfig) nextHopMode {
	return nextHopOf(r.KeepOriginalNextHop, r.NextHopSelf)
}

func nextHopOf(keep, self bool) nextHopMode {
	switch {
	case keep:
		return nextHopKeep
	case self:
		return nextHopSelf
	}
	return nextHopAuto
}

func (m nextHopMode) set() string {
	if m == nextHopSelf {
		return selfNextHopSet
	}
	return keepNextHopSet
}

// nextHopPolicyStatements are the first statements of the export policy.
// Without a route action, evaluation goes on to the next statement with
// the next hop set.
func nextHopPolicyStatements() []*api.Statement {
	return []*api.Statement{{
		Name:       keepNextHopStatement,
		Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: keepNextHopSet}},
		Actions:    &api.Actions{Nexthop: &api.NexthopAction{Unchanged: true}},
	}, {
		Name:       selfNextHopStatement,
		Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: selfNextHopSet}},
		Actions:    &api.Actions{Nexthop: &api.NexthopAction{Self: true}},
	}}
}

// resetNextHopSets creates the neighbor sets with only the sentinel,
// replacing any left from an earlier Start. The export policy that refers
// to them must not exist yet.
func (s *Speaker) resetNextHopSets(ctx context.Context) error {
	for _, name := range []string{keepNextHopSet, selfNextHopSet} {
		_ = s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{
			DefinedSet: &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: name}, All: true})
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
			DefinedType: api.DefinedType_NEIGHBOR, Name: name, List: []string{nextHopSentinel}}}); err != nil {
			return fmt.Errorf("adding the next-hop neighbor set %s: %w", name, err)
		}
	}
	return nil
}

// setNextHop moves a neighbour (an address, or a range's prefix) between
// the sets when its mode changes from was to now.
func (s *Speaker) setNextHop(ctx context.Context, who netip.Prefix, was, now nextHopMode) error {
	if was == now {
		return nil
	}
	if was != nextHopAuto {
		ds := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: was.set(), List: []string{who.String()}}
		if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: ds}); err != nil {
			return fmt.Errorf("ending next-hop mode of %s: %w", who, err)
		}
	}
	if now != nextHopAuto {
		ds := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: now.set(), List: []string{who.String()}}
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
			return fmt.Errorf("next-hop mode of %s: %w", who, err)
		}
	}
	return nil
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
