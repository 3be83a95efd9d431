package router

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/latest"
	"github.com/bgpfabric/bgpfabric/internal/statusdiff"
)

// newStatusOut returns the writer of the node's BGPStatus: a session or
// state change is written within minGap (coalesced, latest wins; zero
// means a second), a
// change of prefix counts only on a slow jittered period (the counts are
// on /metrics at any time), an unchanged status never; failures are
// retried with jittered backoff and logged once a minute.
func newStatusOut(sink StatusSink, minGap time.Duration, lg *slog.Logger) *latest.Writer[*api.BGPStatus] {
	w := latest.New(sink.Put, lg, "BGP status")
	w.Compare = statusdiff.BGP
	if minGap > 0 {
		w.MinInterval = minGap
	}
	return w
}

// refreshCounters reads the peers' counters from the speaker.
func (l *loop) refreshCounters(ctx context.Context) {
	if !l.started {
		return
	}
	ps, err := l.r.cfg.Speaker.Peers(ctx)
	if err != nil {
		l.lg.Warn("reading peer counters", logKeyError, err)
		return
	}
	l.acceptedCounts(ps) // ribloop.go
	clear(l.counts)
	for _, p := range ps {
		l.counts[p.Address] = p
		if pi, ok := l.peers[p.Address]; ok {
			syncPeerInfo(pi, p)
		}
	}
	l.syncDynamic(ps)
	l.statusDirty = true
	l.reconcile(ctx)
}

// syncPeerInfo takes a peer's state, and its uptime, from the speaker's
// listing.
func syncPeerInfo(pi *peerInfo, p PeerStatus) {
	if p.State != "" && p.State != pi.state {
		pi.state, pi.since = p.State, time.Now()
	}
	if p.State == api.BGPEstablished && !p.Since.IsZero() {
		pi.since = p.Since
	}
}

// buildStatus renders the node's BGPStatus: configured sessions with
// their state, sessions that could not be configured as Idle with the
// reason, and the dynamic neighbours that ranges accepted, with their
// range's type.
func (l *loop) buildStatus(now time.Time) *api.BGPStatus {
	st := &api.BGPStatus{
		ObjectMeta: api.ObjectMeta{Name: l.r.cfg.NodeName},
		Status: api.BGPStatusReport{
			RouterID:   l.local.RouterID.String(),
			ASNumber:   l.local.AS,
			LastUpdate: now.UTC().Format(time.RFC3339),
		},
	}
	addrs := make([]netip.Addr, 0, len(l.running)+len(l.failed)+len(l.dynamic))
	for a := range l.running {
		addrs = append(addrs, a)
	}
	for a := range l.failed {
		if _, ok := l.running[a]; !ok {
			addrs = append(addrs, a)
		}
	}
	for a := range l.dynamic {
		_, running := l.running[a]
		_, failed := l.failed[a]
		if !running && !failed {
			addrs = append(addrs, a)
		}
	}
	addrs = l.appendLost(addrs)
	slices.SortFunc(addrs, netip.Addr.Compare)
	for _, a := range addrs {
		s, ok := l.running[a]
		f, failed := l.failed[a]
		if !ok && !failed {
			if ps, lost := l.lostStatus(a); lost {
				st.Status.Peers = append(st.Status.Peers, ps)
				continue
			}
			st.Status.Peers = append(st.Status.Peers, l.dynamicStatus(a, l.dynamic[a]))
			continue
		}
		ps := api.BGPPeerStatus{PeerIP: a.String(), State: api.BGPIdle}
		if failed {
			ps.LastError = f.err
			if f.quarantine {
				ps.QuarantinedUntil = f.until.UTC().Format(time.RFC3339)
			}
			if !ok {
				s = f.session
			}
		}
		ps.ASNumber, ps.Type = s.PeerAS, s.Type
		ps.Policy = l.policyNote(s) // policy.go
		if pi := l.peers[a]; pi != nil {
			ps.State = pi.state
			if !pi.since.IsZero() {
				ps.Since = pi.since.UTC().Format(time.RFC3339)
			}
			if ps.LastError == "" {
				ps.LastError = pi.lastError
			}
		}
		if c, ok := l.counts[a]; ok {
			ps.PrefixesReceived, ps.PrefixesAccepted, ps.PrefixesAdvertised = c.PrefixesReceived, c.PrefixesAccepted, c.PrefixesAdvertised
		}
		st.Status.Peers = append(st.Status.Peers, ps)
	}
	l.bfdStatus(st.Status.Peers)
	return st
}

// maxPeerSeries bounds the per-peer metric series: configured sessions
// come from the datastore, but a range may accept any number of dynamic
// neighbours, whose addresses would otherwise become label values.
const maxPeerSeries = 1024

// writeStatus writes the status record and updates the metrics.
func (l *loop) writeStatus(ctx context.Context) {
	if !l.local.RouterID.IsValid() || l.local.AS == 0 {
		return
	}
	l.statusDirty = false
	st := l.buildStatus(time.Now())
	if m := l.metrics; m != nil {
		m.peerUp.Reset()
		m.received.Reset()
		m.accepted.Reset()
		m.advertis.Reset()
		for i, p := range st.Status.Peers {
			if i == maxPeerSeries {
				break // dynamic neighbours beyond it: their count is in the status
			}
			lv := []string{p.PeerIP, string(p.Type)}
			up := 0.0
			if p.State == api.BGPEstablished {
				up = 1
			}
			m.peerUp.WithLabelValues(lv...).Set(up)
			m.received.WithLabelValues(lv...).Set(float64(p.PrefixesReceived))
			m.accepted.WithLabelValues(lv...).Set(float64(p.PrefixesAccepted))
			m.advertis.WithLabelValues(lv...).Set(float64(p.PrefixesAdvertised))
		}
	}
	if l.statusOut != nil {
		l.statusOut.Put(st)
	}
}
