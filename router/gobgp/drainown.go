package gobgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// A draining node keeps its own paths best (RFC 8326, docs/policy.md).
//
// While the node drains, its own routes carry LOCAL_PREF 0 in GoBGP's
// table (localPath: GoBGP sends a path's own LOCAL_PREF to iBGP peers,
// and its policy engine cannot set 0). GoBGP's best-path selection
// compares LOCAL_PREF before local origin, so a peer's path to one of the
// node's own prefixes (another node announcing the same block) would win:
// GoBGP would then withdraw the node's own route from its iBGP peers (it
// passes no iBGP path to iBGP peers) and send the peer's path to eBGP
// ones, long before the drain time ends. So the import policy
// bgpfabric-gshut (gshut.go) also rejects the paths peers send for the
// prefixes the node announces with GracefulShutdown (the defined sets
// below, kept by Announce and Withdraw). A soft reset in applies a change
// to the paths already received: before a draining route goes in, and
// after one that no longer drains went in or was withdrawn, so that the
// node's own path is never second. The router never installs a learned
// path for a prefix it announces anyway (router's originates).

const (
	drainOwnSet4 = "bgpfabric-drain-own-v4"
	drainOwnSet6 = "bgpfabric-drain-own-v6"
)

// drainOwn are the prefixes in the sets.
type drainOwn struct {
	mu       sync.Mutex // held across a change of the sets and its soft reset
	prefixes map[netip.Prefix]struct{}
}

func drainOwnSetFor(p netip.Prefix) string {
	if p.Addr().Is4() {
		return drainOwnSet4
	}
	return drainOwnSet6
}

// drainOwnSets are the defined sets holding ps, by set.
func drainOwnSets(ps []netip.Prefix) []*api.DefinedSet {
	var sets []*api.DefinedSet
	for _, name := range []string{drainOwnSet4, drainOwnSet6} {
		ds := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name}
		for _, p := range ps {
			if drainOwnSetFor(p) == name {
				bits := uint32(p.Bits())
				ds.Prefixes = append(ds.Prefixes, &api.Prefix{IpPrefix: p.String(), MaskLengthMin: bits, MaskLengthMax: bits})
			}
		}
		sets = append(sets, ds)
	}
	return sets
}

// setDrainOwnSets creates the sets with the prefixes in force (called by
// setGShutPolicy, which deleted any left from an earlier Start), and
// returns the statements that reject peers' paths for them.
func (s *Speaker) setDrainOwnSets(ctx context.Context) ([]*api.Statement, error) {
	s.drainOwn.mu.Lock()
	defer s.drainOwn.mu.Unlock()
	var stmts []*api.Statement
	for _, ds := range drainOwnSets(slices.Collect(mapKeys(s.drainOwn.prefixes))) {
		_ = s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: ds.Name}, All: true})
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
			return nil, fmt.Errorf("adding the prefix set %s: %w", ds.Name, err)
		}
		// Only paths from peers: the node's own go in.
		for _, rt := range []api.Conditions_RouteType{api.Conditions_ROUTE_TYPE_INTERNAL, api.Conditions_ROUTE_TYPE_EXTERNAL} {
			stmts = append(stmts, &api.Statement{
				Name:       ds.Name + "-reject-" + rt.String(),
				Conditions: &api.Conditions{PrefixSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: ds.Name}, RouteType: rt},
				Actions:    &api.Actions{RouteAction: api.RouteAction_REJECT},
			})
		}
	}
	return stmts, nil
}

func mapKeys(m map[netip.Prefix]struct{}) func(func(netip.Prefix) bool) {
	return func(yield func(netip.Prefix) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// drainOwnAdd puts the draining routes' prefixes in the sets, then
// applies them to the paths received: before the routes go in with
// LOCAL_PREF 0.
func (s *Speaker) drainOwnAdd(ctx context.Context, routes []speaker.LocalRoute) error {
	s.drainOwn.mu.Lock()
	defer s.drainOwn.mu.Unlock()
	var add []netip.Prefix
	for _, r := range routes {
		if _, ok := s.drainOwn.prefixes[r.Prefix]; r.GracefulShutdown && !ok {
			add = append(add, r.Prefix)
		}
	}
	if len(add) == 0 {
		return nil
	}
	var errs []error
	for _, ds := range drainOwnSets(add) {
		if len(ds.Prefixes) == 0 {
			continue
		}
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
			errs = append(errs, fmt.Errorf("keeping peers' paths for the draining prefixes out: %w", err))
			continue
		}
		if s.drainOwn.prefixes == nil {
			s.drainOwn.prefixes = map[netip.Prefix]struct{}{}
		}
		for _, p := range add {
			if drainOwnSetFor(p) == ds.Name {
				s.drainOwn.prefixes[p] = struct{}{}
			}
		}
	}
	return errors.Join(append(errs, s.drainOwnResetLocked(ctx))...)
}

// drainOwnRemove takes out of the sets the prefixes announced again
// without GracefulShutdown (routes) or withdrawn (gone), then applies
// that to the paths received: after the node's own paths went in
// without LOCAL_PREF 0, or out.
func (s *Speaker) drainOwnRemove(ctx context.Context, routes []speaker.LocalRoute, gone []netip.Prefix) error {
	s.drainOwn.mu.Lock()
	defer s.drainOwn.mu.Unlock()
	var del []netip.Prefix
	for _, r := range routes {
		if _, ok := s.drainOwn.prefixes[r.Prefix]; ok && !r.GracefulShutdown {
			del = append(del, r.Prefix)
		}
	}
	for _, p := range gone {
		if _, ok := s.drainOwn.prefixes[p]; ok {
			del = append(del, p)
		}
	}
	if len(del) == 0 {
		return nil
	}
	var errs []error
	for _, ds := range drainOwnSets(del) {
		if len(ds.Prefixes) == 0 {
			continue
		}
		if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: ds}); err != nil {
			errs = append(errs, fmt.Errorf("letting peers' paths for the drained prefixes in again: %w", err))
			continue
		}
		for _, p := range del {
			if drainOwnSetFor(p) == ds.Name {
				delete(s.drainOwn.prefixes, p)
			}
		}
	}
	return errors.Join(append(errs, s.drainOwnResetLocked(ctx))...)
}

// drainOwnResetLocked applies the import policy again to every peer's
// received paths (GoBGP keeps them, rejected or not); without BGP
// running there are none. It does not take s.mu, which Start holds while
// it calls setDrainOwnSets.
func (s *Speaker) drainOwnResetLocked(ctx context.Context) error {
	if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: "all", Soft: true, Direction: api.ResetPeerRequest_IN}); err != nil {
		return fmt.Errorf("applying the draining prefixes to the received paths: %w", err)
	}
	return nil
}
