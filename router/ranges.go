package router

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
)

// Dynamic neighbours: a BGPPeer with peerPrefix gives the node a range
// (peering.PeerRange), and the speaker accepts any router that connects
// from inside it. The loop keeps the ranges as it keeps sessions (running,
// their speaker configuration, and the failed ones), and the routers the
// ranges accepted in dynamic, from the speaker's events: a dynamic
// neighbour appears in the status when its session starts and leaves it
// when the session ends (the speaker forgets it then). Their routes are
// imported and ours exported to them like any peer's. They do not hold up
// the end of a graceful restart (allEndOfRIB): a router that connected
// before the restart need not come back.

// rangeFailure is a desired range that could not be configured.
type rangeFailure struct {
	r   peering.PeerRange
	err string
}

// applyRanges applies the difference between the running and the desired
// ranges: adding, changing or removing one touches only that range (and
// the sessions it accepted).
func (l *loop) applyRanges(ctx context.Context, desired []peering.PeerRange) {
	d := peering.DiffRanges(slices.Collect(maps.Values(l.ranges)), desired)
	sp := l.r.cfg.Speaker
	want := make(map[netip.Prefix]bool, len(desired))
	for _, r := range desired {
		want[r.Prefix] = true
	}
	for p := range l.rangeFailed {
		if !want[p] {
			delete(l.rangeFailed, p)
		}
	}
	for _, r := range d.Remove {
		if err := sp.DeletePeerRange(ctx, r.Prefix); err != nil {
			l.lg.Warn("removing peer range", logKeyRange, r.String(), logKeyError, err)
			l.retryLater()
			continue
		}
		l.lg.Info("peer range removed", logKeyRange, r.String())
		delete(l.ranges, r.Prefix)
		delete(l.rangeConfigs, r.Prefix)
		l.forgetDynamic(r.Prefix)
	}
	for _, r := range d.Add {
		rc, ok := l.rangeConfig(r)
		if !ok {
			continue
		}
		if err := sp.AddPeerRange(ctx, rc); err != nil {
			l.failRange(r, err)
			continue
		}
		l.lg.Info("peer range added", logKeyRange, r.String())
		delete(l.rangeFailed, r.Prefix)
		l.ranges[r.Prefix], l.rangeConfigs[r.Prefix] = r, rc
	}
	for _, u := range d.Update {
		if !u.Reset {
			// Only the description changed (the status shows the new
			// type).
			l.ranges[u.New.Prefix] = u.New
			continue
		}
		l.updateRange(ctx, u.New, "peer range updated")
	}
	// A changed secret changes no resource: compare the passwords.
	for _, r := range desired {
		old, ok := l.rangeConfigs[r.Prefix]
		if !ok || r.Password.IsZero() || l.ranges[r.Prefix] != r {
			continue
		}
		pw, err := l.r.cfg.Secrets.Password(r.Password)
		if err != nil {
			l.failRange(r, err)
			continue
		}
		if pw != old.Password {
			l.updateRange(ctx, r, "peer range password changed")
		}
	}
}

// updateRange configures a running range again with r's settings, which
// ends the sessions it accepted.
func (l *loop) updateRange(ctx context.Context, r peering.PeerRange, what string) {
	rc, ok := l.rangeConfig(r)
	if !ok {
		return
	}
	if err := l.r.cfg.Speaker.UpdatePeerRange(ctx, rc); err != nil {
		// The range stays as it ran, to be updated again on the retry.
		l.failRange(r, err)
		return
	}
	l.lg.Info(what, logKeyRange, r.String())
	delete(l.rangeFailed, r.Prefix)
	l.ranges[r.Prefix], l.rangeConfigs[r.Prefix] = r, rc
	l.forgetDynamic(r.Prefix)
}

// rangeConfig resolves the range's password and builds its speaker
// configuration; a missing secret fails the range.
func (l *loop) rangeConfig(r peering.PeerRange) (PeerRangeConfig, bool) {
	if err := unicastOnly(r.Source, r.Families); err != nil {
		l.failRange(r, err)
		return PeerRangeConfig{}, false
	}
	pw, err := l.r.cfg.Secrets.Password(r.Password)
	if err != nil {
		l.failRange(r, err)
		return PeerRangeConfig{}, false
	}
	rc := rangeConfig(r, pw)
	rc.Policy = l.speakerPolicy(r.Source, r.EBGP)
	return rc, true
}

// failRange records a range that could not be configured, logs why (once
// per reason: a BGPStatus lists peers by address, so the log is where a
// range's problem shows) and retries later.
func (l *loop) failRange(r peering.PeerRange, err error) {
	msg := err.Error()
	if f, ok := l.rangeFailed[r.Prefix]; !ok || f.err != msg {
		l.lg.Error("cannot configure peer range", logKeyRange, r.String(), logKeyError, err)
	}
	l.rangeFailed[r.Prefix] = rangeFailure{r: r, err: msg}
	l.retryLater()
}

// rangeOf returns the running range that a dynamic neighbour at a came
// from: the longest prefix that holds it, as the speaker matches.
func (l *loop) rangeOf(a netip.Addr) (peering.PeerRange, bool) {
	var best peering.PeerRange
	found := false
	for p, r := range l.ranges {
		if p.Contains(a) && (!found || p.Bits() > best.Prefix.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}

// forgetDynamic drops the dynamic neighbours inside prefix from the
// status: the speaker ended their sessions with the range. Those that
// connect again come back with their events.
func (l *loop) forgetDynamic(prefix netip.Prefix) {
	for a := range l.dynamic {
		if prefix.Contains(a) {
			delete(l.dynamic, a)
			delete(l.counts, a)
		}
	}
	l.statusDirty = true
}

// dynamicPeer returns the state of the dynamic neighbour that event e is
// about, starting to track one that a running range holds when its
// session starts, and forgetting one whose session ended (Idle: the
// speaker forgets it too). ok is false for events to ignore.
func (l *loop) dynamicPeer(e PeerEvent) (*peerInfo, bool) {
	p, known := l.dynamic[e.Address]
	if e.State == api.BGPIdle {
		if known {
			l.lg.Info("dynamic neighbour gone", logKeyPeer, e.Address)
			delete(l.dynamic, e.Address)
			delete(l.counts, e.Address)
			l.statusDirty = true
		}
		return nil, false
	}
	if known {
		return p, true
	}
	if e.State == "" {
		return nil, false
	}
	r, ok := l.rangeOf(e.Address)
	if !ok {
		return nil, false
	}
	l.lg.Info("dynamic neighbour", logKeyPeer, e.Address, logKeyRange, r.String())
	p = &peerInfo{state: api.BGPIdle, since: time.Now()}
	l.dynamic[e.Address] = p
	return p, true
}

// syncDynamic makes the dynamic neighbours those that the speaker lists
// (refreshCounters' view), in case an event was missed.
func (l *loop) syncDynamic(ps []PeerStatus) {
	seen := make(map[netip.Addr]bool, len(l.dynamic))
	for _, p := range ps {
		if !p.Dynamic || p.State == api.BGPIdle {
			continue
		}
		if _, ok := l.peers[p.Address]; ok {
			continue
		}
		if _, ok := l.rangeOf(p.Address); !ok {
			continue
		}
		seen[p.Address] = true
		pi, ok := l.dynamic[p.Address]
		if !ok {
			pi = &peerInfo{state: p.State, since: time.Now()}
			l.dynamic[p.Address] = pi
		}
		syncPeerInfo(pi, p)
	}
	for a := range l.dynamic {
		if !seen[a] {
			delete(l.dynamic, a)
		}
	}
}

// dynamicStatus renders a dynamic neighbour for the BGPStatus: its type
// and AS are its range's (the AS the speaker saw, if it has one).
func (l *loop) dynamicStatus(a netip.Addr, pi *peerInfo) api.BGPPeerStatus {
	ps := api.BGPPeerStatus{PeerIP: a.String(), State: pi.state, LastError: pi.lastError}
	if r, ok := l.rangeOf(a); ok {
		ps.ASNumber, ps.Type = r.PeerAS, r.Type
	}
	if !pi.since.IsZero() {
		ps.Since = pi.since.UTC().Format(time.RFC3339)
	}
	if c, ok := l.counts[a]; ok {
		if c.PeerAS != 0 {
			ps.ASNumber = c.PeerAS
		}
		ps.PrefixesReceived, ps.PrefixesAccepted, ps.PrefixesAdvertised = c.PrefixesReceived, c.PrefixesAccepted, c.PrefixesAdvertised
	}
	return ps
}
