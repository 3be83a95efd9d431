package reflector

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
)

// Reloading a running reflector's configuration (the configuration file on
// SIGHUP, cmd/bgpfabric/reflector_reload.go).
//
// Reconfigure feeds the same reconcile the datastore controller
// (reflector/fabric) drives on every BGPPeer or BGPFilter change: SetPolicy,
// then SetNeighbors, then SetDynamicNeighbors. Neighbours whose session
// settings are unchanged keep their sessions (sameSession: description,
// BFD and filters apply live); removed ones get a Cease, Peer
// De-configured (6/3); changed ones are restarted.

// ReloadResult is what Reconfigure did.
type ReloadResult struct {
	// Refused are the global settings that cannot change while the
	// reflector runs and were left as they are, each "field: why"; the
	// rest of the configuration was applied.
	Refused []string
	// Added, Removed and Reset are the configured neighbours started,
	// stopped and restarted; Live those whose change applied without a
	// reset.
	Added, Removed, Reset, Live []netip.Addr
	// Applied is set once the configuration passed validation and was
	// applied (an error then means a part of it failed).
	Applied bool
}

// Reconfigure applies cfg to the running (or not yet running) reflector.
// A configuration that does not validate is refused whole and nothing
// changes. Global settings that only apply at start (routerID, asNumber,
// clusterID, listen, programFIB and fib, connectRetry, selectionDeferral)
// are kept as they are and reported in Refused, naming the field; the
// Logger, BFD and Restarting of cfg are ignored (the running ones stay).
func (r *Reflector) Reconfigure(cfg Config) (ReloadResult, error) {
	var res ReloadResult
	cfg.Logger = r.log
	defaultCluster := !cfg.ClusterID.IsValid()
	cfg, err := cfg.validate()
	if err != nil {
		return res, fmt.Errorf("reflector config: %w", err)
	}
	if err := validatePolicy(cfg.Policy, false); err != nil {
		return res, fmt.Errorf("reflector config: %w", err)
	}
	r.mu.Lock()
	cur := r.cfg
	r.mu.Unlock()
	if defaultCluster && cur.ClusterID == cur.RouterID {
		cfg.ClusterID = cur.ClusterID // the router ID's, refused or not below
	}
	res.Refused = refusedGlobals(cur, cfg)
	res.Added, res.Removed, res.Reset, res.Live = neighborChanges(cur.Neighbors, cfg.Neighbors)
	for _, n := range cfg.Neighbors { // filters apply live
		a := n.Address
		if !slices.Equal(cur.Policy.Neighbors[a], cfg.Policy.Neighbors[a]) &&
			!slices.Contains(res.Added, a) && !slices.Contains(res.Reset, a) && !slices.Contains(res.Live, a) {
			res.Live = append(res.Live, a)
		}
	}
	var errs []error
	if !reflect.DeepEqual(cur.Policy, cfg.Policy) {
		// The policy first, as the datastore controller does: a session
		// that starts below starts with it.
		if err := r.SetPolicy(cfg.Policy); err != nil {
			return res, fmt.Errorf("reflector config: route policy: %w", err)
		}
	}
	res.Applied = true
	errs = append(errs, r.SetNeighbors(cfg.Neighbors))
	if !slices.Equal(cur.DynamicNeighbors, cfg.DynamicNeighbors) {
		errs = append(errs, r.SetDynamicNeighbors(cfg.DynamicNeighbors))
	}
	return res, errors.Join(errs...)
}

// refusedGlobals lists the start-only settings that differ, by the
// configuration file's field names.
func refusedGlobals(cur, next Config) []string {
	var out []string
	refuse := func(field string, was, now any) {
		out = append(out, fmt.Sprintf("%s: cannot change while the reflector runs (restart it); keeping %v, not %v", field, was, now))
	}
	if cur.RouterID != next.RouterID {
		refuse("routerID", cur.RouterID, next.RouterID)
	}
	if cur.ASN != next.ASN {
		refuse("asNumber", cur.ASN, next.ASN)
	}
	if cur.ClusterID != next.ClusterID {
		refuse("clusterID", cur.ClusterID, next.ClusterID)
	}
	if !slices.Equal(cur.ListenAddrs, next.ListenAddrs) {
		refuse("listen", cur.ListenAddrs, next.ListenAddrs)
	}
	if cur.ProgramFIB != next.ProgramFIB {
		refuse("programFIB", cur.ProgramFIB, next.ProgramFIB)
	}
	if cur.ProgramFIB && next.ProgramFIB && cur.FIB != next.FIB {
		refuse("fib", fmt.Sprintf("%+v", cur.FIB), fmt.Sprintf("%+v", next.FIB))
	}
	if cur.ConnectRetry != next.ConnectRetry {
		refuse("connectRetry", cur.ConnectRetry, next.ConnectRetry)
	}
	if cur.SelectionDeferral != next.SelectionDeferral {
		refuse("selectionDeferral", cur.SelectionDeferral, next.SelectionDeferral)
	}
	return out
}

// neighborChanges sorts configured neighbours by what SetNeighbors does
// to them.
func neighborChanges(old, next []NeighborConfig) (added, removed, reset, live []netip.Addr) {
	was := map[netip.Addr]NeighborConfig{}
	for _, n := range old {
		was[n.Address] = n
	}
	for _, n := range next {
		o, ok := was[n.Address]
		delete(was, n.Address)
		switch {
		case !ok:
			added = append(added, n.Address)
		case !sameSession(o, n):
			reset = append(reset, n.Address)
		case o != n:
			live = append(live, n.Address)
		}
	}
	for a := range was {
		removed = append(removed, a)
	}
	slices.SortFunc(removed, netip.Addr.Compare)
	return added, removed, reset, live
}

// descriptions maps configured neighbours to their descriptions; r.mu
// must be held.
func (r *Reflector) descriptionsLocked() map[netip.Addr]string {
	m := map[netip.Addr]string{}
	for _, n := range r.cfg.Neighbors {
		if n.Description != "" {
			m[n.Address] = n.Description
		}
	}
	return m
}

// errReconfigured ends a neighbour whose session settings changed: its
// sessions close with a Cease, Other Configuration Change (6/6), and it
// starts again with the new settings.
var errReconfigured = errors.New("neighbour re-configured")

// stopWith is stop with a cause for the sessions' Cease.
func (p *peer) stopWith(cause error) {
	select {
	case p.events <- func() bool { p.pr.cause = cause; return true }:
		<-p.done
	case <-p.done:
	}
}
