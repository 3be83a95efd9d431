package router

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/routepolicy"
)

func peerPolicy(sp *FakeSpeaker, a string) (routepolicy.Policy, bool) {
	for _, p := range sp.PeerConfigs() {
		if p.Address == addr(a) {
			return p.Policy, true
		}
	}
	return routepolicy.Policy{}, false
}

func chainOf(c routepolicy.Chain) string {
	var names []string
	for _, f := range c.Filters {
		names = append(names, f.Name)
	}
	if c.Reject {
		return strings.Join(append(names, "reject"), ",")
	}
	return strings.Join(append(names, "accept"), ",")
}

// TestSessionPolicies: the router gives each session its BGPPeer's
// filters and the default: RFC 8212 (reject) for eBGP unless the
// BGPConfiguration says Accept, accept for iBGP and the mesh. A missing
// filter leaves the session with the default alone and says so in the
// status; creating it, changing it, or changing the default updates the
// running session without a reset.
func TestSessionPolicies(t *testing.T) {
	h := start(t, nil)
	tor := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.0.0.254", ASNumber: ptr(uint32(65000)), Filters: []string{"tor-in"}}}
	ibgp := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "rr"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.0.0.253", ASNumber: ptr(uint32(64512))}}
	ebgpNoFilter := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "edge"}, Spec: api.BGPPeerSpec{
		PeerIP: "10.0.0.252", ASNumber: ptr(uint32(65100))}}
	h.res.snapshot(t, node("n1", "10.0.0.1/24"), node("n2", "10.0.0.2/24"), meshConfig("90s"), tor, ibgp, ebgpNoFilter)
	waitUntil(t, "four peers", func() bool { return len(h.sp.PeerConfigs()) == 4 })
	want := map[string]string{"10.0.0.2": "accept", "10.0.0.253": "accept", "10.0.0.252": "reject", "10.0.0.254": "reject"}
	for a, w := range want {
		p, _ := peerPolicy(h.sp, a)
		if got := chainOf(p.Import) + " " + chainOf(p.Export); got != w+" "+w {
			t.Errorf("peer %s policy %q, want %q both ways", a, got, w)
		}
	}
	waitUntil(t, "status notes the missing filter", func() bool {
		st := h.status.get()
		for _, p := range st.Status.Peers {
			if p.PeerIP == "10.0.0.254" {
				return strings.Contains(p.Policy, "tor-in not found")
			}
		}
		return false
	})
	waitUntil(t, "status notes RFC 8212 on the eBGP session without filters", func() bool {
		for _, p := range h.status.get().Status.Peers {
			if p.PeerIP == "10.0.0.252" {
				return p.Policy == RFC8212Note
			}
		}
		return false
	})
	for _, p := range h.status.get().Status.Peers {
		if (p.PeerIP == "10.0.0.2" || p.PeerIP == "10.0.0.253") && p.Policy != "" {
			t.Errorf("iBGP session %s has a policy note %q", p.PeerIP, p.Policy)
		}
	}
	h.sp.Calls()

	// The filter appears: applied live.
	f := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: "tor-in"}, Spec: api.BGPFilterSpec{
		ImportV4: []api.BGPFilterRule{{CIDR: "0.0.0.0/0", MatchOperator: api.MatchEqual, Action: api.FilterAccept}}}}
	h.res.put(t, f)
	waitUntil(t, "the filter on the session", func() bool {
		p, _ := peerPolicy(h.sp, "10.0.0.254")
		return chainOf(p.Import) == "tor-in,reject"
	})
	if diff := cmp.Diff([]string{"UpdatePeer 10.0.0.254 live"}, h.sp.Calls()); diff != "" {
		t.Errorf("creating the filter (-want +got):\n%s", diff)
	}
	waitUntil(t, "status note gone", func() bool {
		for _, p := range h.status.get().Status.Peers {
			if p.PeerIP == "10.0.0.254" {
				return p.Policy == ""
			}
		}
		return false
	})
	p, _ := peerPolicy(h.sp, "10.0.0.254")
	if _, ok := p.Import.Evaluate(routepolicy.Import, routepolicy.Route{Prefix: pfx("0.0.0.0/0"), FromPeer: true}); !ok {
		t.Error("the session's chain rejects the default route its filter accepts")
	}

	// A changed rule: live again.
	f.Spec.ImportV4[0].Action = api.FilterReject
	h.res.put(t, f)
	waitUntil(t, "the changed rule on the session", func() bool {
		p, _ := peerPolicy(h.sp, "10.0.0.254")
		return len(p.Import.Filters) == 1 && !p.Import.Filters[0].RulesFor(routepolicy.Import, false)[0].Accept
	})
	if diff := cmp.Diff([]string{"UpdatePeer 10.0.0.254 live"}, h.sp.Calls()); diff != "" {
		t.Errorf("changing the filter (-want +got):\n%s", diff)
	}

	// ebgpDefaultPolicy Accept restores the old behaviour for eBGP
	// sessions, live; iBGP ones are untouched.
	cfg := meshConfig("90s")
	cfg.Spec.EBGPDefaultPolicy = api.FilterAccept
	h.res.put(t, cfg)
	waitUntil(t, "eBGP default accept", func() bool {
		p, _ := peerPolicy(h.sp, "10.0.0.252")
		q, _ := peerPolicy(h.sp, "10.0.0.254")
		return chainOf(p.Import) == "accept" && chainOf(q.Import) == "tor-in,accept"
	})
	calls := h.sp.Calls()
	if diff := cmp.Diff([]string{"UpdatePeer 10.0.0.252 live", "UpdatePeer 10.0.0.254 live"}, sortedCopy(calls)); diff != "" {
		t.Errorf("changing the eBGP default (-want +got):\n%s", diff)
	}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
