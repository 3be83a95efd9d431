package topology

import (
	"strings"
	"time"
)

// faultActions lists the fault actions, for error messages.
var faultActions = []string{FaultKillAgent, FaultRestartAgent, FaultLinkDown, FaultLinkUp, FaultStopDatastore,
	FaultImpair, FaultPartition, FaultPauseAgent, FaultFlap, FaultSessionReset}

// maxFlaps bounds a flap's count.
const maxFlaps = 1000

// fault validates one fault as written: its action, the fields that
// action needs, and no field it would ignore. Names of nodes, groups and
// links are checked by Expand.
func (c *checker) fault(p path, f Fault) {
	c.name(p.key("name"), f.Name, false)
	dur := c.duration(p.key("duration"), f.Duration)
	// used lists the optional fields the action reads; any other that is
	// set is refused, so that no field is silently ignored.
	var used []string
	needNode := func() {
		if f.Node == "" {
			c.add(p.key("node"), "is required for %s", f.Action)
		}
	}
	needLink := func() {
		needNode()
		if (f.Segment == "") == (f.Peer == "") {
			c.add(p.key("segment"), "%s needs either segment or peer to pick the link", f.Action)
		}
	}
	switch f.Action {
	case FaultKillAgent, FaultRestartAgent:
		needNode()
		used = []string{"node", "duration"}
	case FaultLinkDown, FaultLinkUp:
		needLink()
		used = []string{"node", "segment", "peer", "duration"}
	case FaultStopDatastore:
		used = []string{"duration"}
	case FaultImpair:
		needLink()
		if f.Impair == nil {
			c.add(p.key("impair"), "is required for impair")
		}
		c.impairment(p.key("impair"), f.Impair)
		used = []string{"node", "segment", "peer", "duration", "impair"}
	case FaultPartition:
		if len(f.Nodes) == 0 {
			c.add(p.key("nodes"), "is required for partition: the nodes (or groups) to cut off")
		}
		switch {
		case f.Datastore && len(f.From) > 0:
			c.add(p.key("from"), "a partition cuts nodes off from other nodes (from) or from the datastore, not both")
		case !f.Datastore && len(f.From) == 0:
			c.add(p.key("from"), "is required for partition: the nodes (or groups) to cut them off from, or datastore: true")
		}
		switch f.Direction {
		case "", DirectionBoth:
		case DirectionOneWay:
			if f.Datastore {
				c.add(p.key("direction"), "a datastore partition cuts both directions")
			}
		default:
			c.add(p.key("direction"), "must be both or one-way (got %q)", f.Direction)
		}
		used = []string{"nodes", "from", "datastore", "direction", "duration"}
	case FaultPauseAgent:
		needNode()
		if dur <= 0 {
			c.add(p.key("duration"), "is required for pause-agent: how long the agent stays stopped")
		}
		used = []string{"node", "duration"}
	case FaultFlap:
		needLink()
		if f.Count < 1 || f.Count > maxFlaps {
			c.add(p.key("count"), "must be from 1 to %d (got %d)", maxFlaps, f.Count)
		}
		if iv := c.duration(p.key("interval"), f.Interval); iv <= 0 || iv > time.Hour {
			c.add(p.key("interval"), "is required for flap: how long the link stays down, then up, each time (at most 1h)")
		}
		used = []string{"node", "segment", "peer", "count", "interval"}
	case FaultSessionReset:
		needNode()
		if f.Peer == "" {
			c.add(p.key("peer"), "is required for session-reset: the other end of the BGP session")
		}
		used = []string{"node", "peer"}
	default:
		c.add(p.key("action"), "must be one of %s (got %q)", strings.Join(faultActions, ", "), f.Action)
		return
	}
	set := map[string]bool{
		"node": f.Node != "", "segment": f.Segment != "", "peer": f.Peer != "", "duration": f.Duration != "",
		"impair": f.Impair != nil, "nodes": len(f.Nodes) > 0, "from": len(f.From) > 0, "direction": f.Direction != "",
		"count": f.Count != 0, "interval": f.Interval != "", "datastore": f.Datastore,
	}
	for _, k := range []string{"node", "segment", "peer", "duration", "impair", "nodes", "from", "datastore", "direction", "count", "interval"} {
		if set[k] && !contains(used, k) {
			c.add(p.key(k), "is not used by %s", f.Action)
		}
	}
}

func contains(l []string, s string) bool {
	for _, e := range l {
		if e == s {
			return true
		}
	}
	return false
}
