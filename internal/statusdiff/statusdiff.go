// Package statusdiff says what a new status record changes compared with
// the one last written (latest.Compare), for the writers of BGPStatus:
// the node's router and the reflector. Sessions, their states, times and
// errors are state, written soon; prefix counts move with every route and
// are counters, written on a slow period (they are on each agent's
// /metrics at any time); the report's timestamp is not news at all.
package statusdiff

import (
	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/latest"
)

// BGP compares two BGPStatus records.
func BGP(written, next *api.BGPStatus) latest.Change {
	if written == nil || next == nil {
		if written == next {
			return latest.Same
		}
		return latest.State
	}
	a, b := &written.Status, &next.Status
	if written.Name != next.Name || a.RouterID != b.RouterID || a.ASNumber != b.ASNumber || len(a.Peers) != len(b.Peers) {
		return latest.State
	}
	change := latest.Same
	for i := range a.Peers {
		p, q := a.Peers[i], b.Peers[i]
		if p.PrefixesReceived != q.PrefixesReceived || p.PrefixesAccepted != q.PrefixesAccepted || p.PrefixesAdvertised != q.PrefixesAdvertised {
			change = latest.Counters
		}
		p.PrefixesReceived, p.PrefixesAccepted, p.PrefixesAdvertised = 0, 0, 0
		q.PrefixesReceived, q.PrefixesAccepted, q.PrefixesAdvertised = 0, 0, 0
		if p != q {
			return latest.State
		}
	}
	return change
}
