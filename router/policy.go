package router

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/routepolicy"
)

// Route policy: BGPFilters per session (docs/policy.md).
//
// Every reconcile compiles the BGPFilters and gives each session (and
// range) the chain of its BGPPeer's spec.filters, with the default: accept
// on iBGP; on eBGP the "default" BGPConfiguration's ebgpDefaultPolicy,
// Reject unless set (RFC 8212: nothing in or out without a filter that
// accepts it). Mesh sessions are iBGP without filters. Filters apply on
// the BGPPeer's node side only (routepolicy.AppliesOn): the sessions a
// node has because a peerSelector selects it get the default. The policy goes to
// the speaker with the session (PeerConfig.Policy), so that it is in force
// before the session starts; a change of a filter, of a peer's filter
// list or of the default is applied to the running session by UpdatePeer
// without a reset (a range's by UpdatePeerRange, which ends the sessions
// it accepted: they connect again). A BGPPeer that names a missing filter
// gets the default alone (routepolicy.Resolve), logged once and shown in
// the session's status until the filter exists.

// Log keys of this file.
const (
	logKeyFilters = "filters"
)

// policyState is the policy input of the last reconcile.
type policyState struct {
	filters     map[string]*routepolicy.Filter
	peerFilters map[string][]string // BGPPeer name -> filter names
	ebgpAccept  bool
	// missing notes, by BGPPeer, the filters it names that do not exist
	// (also the key of the one log line per change).
	missing map[string]string
}

// loadPolicy compiles the filters and collects the peers' filter lists.
func (l *loop) loadPolicy(def *api.BGPConfiguration) {
	ps := policyState{filters: map[string]*routepolicy.Filter{}, peerFilters: map[string][]string{}}
	var self *api.Node
	var peers []*api.BGPPeer
	for _, r := range l.resources {
		switch x := r.(type) {
		case *api.BGPFilter:
			f, err := routepolicy.Compile(x)
			if err != nil {
				// The datastore validates what it stores: only a
				// filter written around it gets here; it counts as
				// missing.
				l.lg.Error("invalid BGPFilter", logKeyFilters, x.Name, logKeyError, err)
				continue
			}
			ps.filters[x.Name] = f
		case *api.BGPPeer:
			if len(x.Spec.Filters) > 0 {
				peers = append(peers, x)
			}
		case *api.Node:
			if x.Name == l.r.cfg.NodeName {
				self = x
			}
		}
	}
	for _, p := range peers {
		if routepolicy.AppliesOn(p, self) { // not on the reverse sessions
			ps.peerFilters[p.Name] = p.Spec.Filters
		}
	}
	ps.ebgpAccept = def != nil && def.Spec.EBGPDefaultPolicy == api.FilterAccept
	ps.missing = map[string]string{}
	for peer, names := range ps.peerFilters {
		var miss []string
		for _, n := range names {
			if _, ok := ps.filters[n]; !ok {
				miss = append(miss, n)
			}
		}
		if miss != nil {
			note := fmt.Sprintf("BGPFilter %s not found: default policy only", strings.Join(miss, ", "))
			ps.missing[peer] = note
			if l.pol.missing[peer] != note {
				l.lg.Warn("BGPPeer names a missing filter: its sessions get the default policy alone",
					logKeyPeer, peer, logKeyFilters, strings.Join(miss, ","))
			}
		}
	}
	l.pol = ps
}

// sessionPolicy is the policy of a session of BGPPeer source (or the mesh).
func (l *loop) sessionPolicy(source string, ebgp bool) routepolicy.Policy {
	accept := !ebgp || l.pol.ebgpAccept
	var names []string
	if source != peering.SourceMesh {
		names = l.pol.peerFilters[source]
	}
	p, _ := routepolicy.Resolve(names, l.pol.filters, accept)
	return p
}

// RFC8212Note is the status note of an eBGP session that exchanges
// nothing because it has no filter (RFC 8212).
const RFC8212Note = "RFC 8212: eBGP without a BGPFilter, nothing accepted or sent (BGPConfiguration ebgpDefaultPolicy Reject)"

// policyNote is what a session's status says about its policy: a missing
// filter, or RFC 8212's reject-all on an eBGP session without filters.
func (l *loop) policyNote(s peering.Session) string {
	if note := l.pol.missing[s.Source]; note != "" {
		return note
	}
	if s.EBGP && !l.pol.ebgpAccept && (s.Source == peering.SourceMesh || len(l.pol.peerFilters[s.Source]) == 0) {
		return RFC8212Note
	}
	return ""
}

// applyPolicyChanges updates the running sessions and ranges whose policy
// changed while the rest of their configuration did not (a filter or the
// default changed, not the BGPPeer's session settings).
func (l *loop) applyPolicyChanges(ctx context.Context, sessions []peering.Session, ranges []peering.PeerRange) {
	sp := l.r.cfg.Speaker
	for _, s := range sessions {
		old, ok := l.configs[s.PeerAddress]
		if !ok || l.running[s.PeerAddress] != s {
			continue
		}
		pol := l.speakerPolicy(s.Source, s.EBGP)
		if reflect.DeepEqual(pol, old.Policy) {
			continue
		}
		pc := old
		pc.Policy = pol
		if err := sp.UpdatePeer(ctx, pc, false); err != nil {
			l.fail(s, err)
			continue
		}
		l.lg.Info("session policy changed", logKeySession, s.String(), logKeyFilters, filterNames(l.sessionPolicy(s.Source, s.EBGP)))
		l.configs[s.PeerAddress] = pc
	}
	for _, r := range ranges {
		old, ok := l.rangeConfigs[r.Prefix]
		if !ok || l.ranges[r.Prefix] != r {
			continue
		}
		if reflect.DeepEqual(l.speakerPolicy(r.Source, r.EBGP), old.Policy) {
			continue
		}
		l.updateRange(ctx, r, "peer range policy changed")
	}
}

func filterNames(p routepolicy.Policy) string {
	names := make([]string, 0, len(p.Import.Filters))
	for _, f := range p.Import.Filters {
		names = append(names, f.Name)
	}
	def := "accept"
	if p.Import.Reject {
		def = "reject"
	}
	return strings.Join(append(slices.Clip(names), "default "+def), ",")
}
