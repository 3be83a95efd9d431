package routepolicy

import (
	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

// Policy is one session's import and export chains; the zero Policy
// accepts everything both ways.
type Policy struct {
	Import, Export Chain
}

// Resolve builds a session's chain from its BGPPeer's filter names, the
// compiled filters by name, and the session's default (Accept for iBGP;
// for eBGP BGPConfiguration's ebgpDefaultPolicy, RFC 8212 by default).
// If a named filter does not exist, the session gets no filter at all, only
// the default (for eBGP under RFC 8212: nothing in or out), rather than the
// rest of its chain, which might accept what the missing filter was there
// to reject; the missing names are returned, for the status.
func Resolve(names []string, filters map[string]*Filter, defaultAccept bool) (Policy, []string) {
	reject := !defaultAccept
	var missing []string
	var chain []*Filter
	for _, n := range names {
		f, ok := filters[n]
		if !ok {
			missing = append(missing, n)
			continue
		}
		chain = append(chain, f)
	}
	if missing != nil {
		chain = nil
	}
	return Policy{Import: Chain{Filters: chain, Reject: reject}, Export: Chain{Filters: chain, Reject: reject}}, missing
}

// AcceptsAll reports whether the chain accepts every route unchanged: no
// filters and a default of Accept.
func (c Chain) AcceptsAll() bool { return len(c.Filters) == 0 && !c.Reject }

// AppliesOn reports whether BGPPeer p's filters apply on node n: n is the
// BGPPeer's node side (spec.node, a node spec.nodeSelector selects, or any
// node for a global peer). The sessions back to those nodes that a node
// gets only because spec.peerSelector selects it (the reverse sessions,
// e.g. a route reflector's with the compute nodes that select it) have
// the default policy: filters are the node side's, as in Calico.
func AppliesOn(p *api.BGPPeer, n *api.Node) bool {
	if n == nil {
		return false
	}
	switch {
	case p.Spec.Node != "":
		return p.Spec.Node == n.Name
	case p.Spec.NodeSelector != "":
		sel, err := selector.Parse(p.Spec.NodeSelector)
		return err == nil && sel.Evaluate(n.Labels)
	}
	return true
}
