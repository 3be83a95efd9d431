package gobgp

import (
	"context"
	"net/netip"
	"sync"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/bgpfabric/bgpfabric/routepolicy"
	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// Withdrawing what a stricter export policy no longer sends.
//
// GoBGP's soft reset out sends what the export policy now accepts, but
// never withdraws what it sent before and now rejects (it keeps no
// Adj-RIB-Out for that, and its filter evaluates the old path with the
// new policy). So when a session's export chain changes, the speaker
// evaluates its own originated routes with the old and the new chain
// (package routepolicy, the same semantics GoBGP's statements implement):
// the routes the old accepted and the new rejects are withdrawn while the
// old policy is still in force (GoBGP sends the withdrawal to every peer
// that had them), the new policy goes in, and they are announced again
// (sent to every peer whose policy accepts them). Other peers thus see a
// withdrawal and a re-announcement of only those prefixes. Routes the
// node passes on (a reflecting node's iBGP routes) are not covered: see
// docs/policy.md.

// originatedRoutes are the routes we announce, by prefix.
type originatedRoutes struct {
	mu     sync.Mutex
	routes map[netip.Prefix]speaker.LocalRoute
}

func (o *originatedRoutes) add(r speaker.LocalRoute) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.routes == nil {
		o.routes = map[netip.Prefix]speaker.LocalRoute{}
	}
	o.routes[r.Prefix] = r
}

func (o *originatedRoutes) remove(p netip.Prefix) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.routes, p)
}

// newlyRejected returns the routes that old accepts and now rejects.
func (o *originatedRoutes) newlyRejected(old, now routepolicy.Chain) []speaker.LocalRoute {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []speaker.LocalRoute
	for _, r := range o.routes {
		rt := routepolicy.Route{Prefix: r.Prefix, Communities: r.Communities}
		if _, ok := old.Evaluate(routepolicy.Export, rt); !ok {
			continue
		}
		if _, ok := now.Evaluate(routepolicy.Export, rt); !ok {
			out = append(out, r)
		}
	}
	return out
}

// withdrawForPolicy withdraws routes from the table (not from
// originated: reannounce puts them back).
func (s *Speaker) withdrawForPolicy(ctx context.Context, routes []speaker.LocalRoute) {
	for _, r := range routes {
		path, err := localPath(speaker.LocalRoute{Prefix: r.Prefix}, true)
		if err == nil {
			err = s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path})
		}
		if err != nil {
			s.lg.Warn("withdrawing a route for a stricter export policy", "prefix", r.Prefix, "err", err)
		}
	}
}

func (s *Speaker) reannounce(ctx context.Context, routes []speaker.LocalRoute) {
	for _, r := range routes {
		path, err := localPath(r, false)
		if err == nil {
			_, err = s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		}
		if err != nil {
			s.lg.Warn("announcing a route again after an export policy change", "prefix", r.Prefix, "err", err)
		}
	}
}
