package peering

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestFamilies: a BGPPeer's spec.families reaches a route reflector's
// sessions (forward and reverse) and ranges, in canonical order; a node
// that is not a reflector gets its sessions without them, and a warning
// naming it, and NonReflectorUsers lists it (what `bgpfabric apply`
// refuses).
func TestFamilies(t *testing.T) {
	evpn := []string{"l2vpn-evpn", "ipv4-unicast"}
	in := Input{
		BGPConfigurations: []*api.BGPConfiguration{meshOff()},
		Nodes: []*api.Node{
			mkNode("rr1", "10.0.0.1/24", "", withCluster("10.0.0.1"), withLabels("rr", "")),
			mkNode("n2", "10.0.0.2/24", "", withLabels("evpn", "")),
			mkNode("n3", "10.0.0.3/24", ""),
		},
		BGPPeers: []*api.BGPPeer{
			// rr1 to a router, and a range, with EVPN.
			mkPeer("rr-router", func(s *api.BGPPeerSpec) {
				s.Node, s.PeerIP, s.ASNumber, s.Families = "rr1", "10.0.0.9", ptr(uint32(64512)), evpn
			}),
			mkPeer("rr-racks", func(s *api.BGPPeerSpec) {
				s.NodeSelector, s.PeerPrefix, s.Families = "has(rr)", "10.1.0.0/16", evpn
			}),
			// n2 selects the reflector with EVPN: rr1's reverse session
			// carries it, n2's own does not.
			mkPeer("to-rr", func(s *api.BGPPeerSpec) {
				s.NodeSelector, s.PeerSelector, s.Families = "has(evpn)", "has(rr)", evpn
			}),
			// Unicast only: no warning, and the default is "".
			mkPeer("n3-unicast", func(s *api.BGPPeerSpec) {
				s.Node, s.PeerIP, s.ASNumber, s.Families = "n3", "10.0.0.8", ptr(uint32(65000)), []string{"ipv6-unicast", "ipv4-unicast"}
			}),
		},
	}
	m, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := m.Compute("rr1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range rr.Sessions {
		got[s.Source] = s.Families
	}
	for _, r := range rr.PeerRanges {
		got[r.Source+" range"] = r.Families
	}
	want := map[string]string{"rr-router": "ipv4-unicast,l2vpn-evpn", "rr-racks range": "ipv4-unicast,l2vpn-evpn", "to-rr": "ipv4-unicast,l2vpn-evpn"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rr1's families by BGPPeer (-want +got):\n%s\n%s", d, strings.Join(strs(rr.Sessions), "\n"))
	}
	for _, name := range []string{"n2", "n3"} {
		r, err := m.Compute(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Sessions {
			if s.Families != "" {
				t.Errorf("%s: session %s carries families %q, want none (not a reflector)", name, s.AddrPort(), s.Families)
			}
		}
	}
	if got := m.NonReflectorUsers("to-rr"); !slices.Equal(got, []string{"n2"}) {
		t.Errorf("NonReflectorUsers(to-rr) = %v, want [n2]", got)
	}
	for _, p := range []string{"rr-router", "rr-racks", "n3-unicast"} {
		if got := m.NonReflectorUsers(p); got != nil {
			t.Errorf("NonReflectorUsers(%s) = %v, want none", p, got)
		}
	}
	ws := warnStrs(m.Warnings())
	if !slices.ContainsFunc(ws, func(w string) bool {
		return strings.HasPrefix(w, "BGPPeer to-rr: spec.families:") && strings.Contains(w, "Nodes n2, which")
	}) {
		t.Errorf("no warning about to-rr's families on n2 in %q", ws)
	}
	for _, w := range ws {
		if strings.Contains(w, "spec.families") && !strings.HasPrefix(w, "BGPPeer to-rr:") {
			t.Errorf("unexpected warning %q", w)
		}
	}

	// A change of families restarts the session.
	old := rr.Sessions
	in.BGPPeers[0].Spec.Families = []string{"ipv4-unicast", "ipv4-vpn"}
	rr2, err := Compute(in, "rr1")
	if err != nil {
		t.Fatal(err)
	}
	d := Diff(old, rr2.Sessions)
	if len(d.Update) != 1 || !d.Update[0].Reset || !slices.Contains(d.Update[0].Changed, "Families") {
		t.Errorf("Diff after a families change = %+v, want one reset update of Families", d)
	}
}
