package router

import (
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestFamiliesRefused: a node with a routeReflectorClusterID (the one
// kind of node peering gives BGPPeer families to) does not configure a
// session whose BGPPeer asks for EVPN, which its router cannot carry, and
// says so in its status; a unicast-only families list is configured.
func TestFamiliesRefused(t *testing.T) {
	h := start(t, nil)
	n1 := node("n1", "10.0.0.1/24")
	n1.Spec.BGP.RouteReflectorClusterID = "10.0.0.1"
	evpn := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "evpn"}, Spec: api.BGPPeerSpec{
		Node: "n1", PeerIP: "10.0.0.254", ASNumber: ptr(uint32(64512)), Families: []string{"ipv4-unicast", "l2vpn-evpn"}}}
	plain := &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "plain"}, Spec: api.BGPPeerSpec{
		Node: "n1", PeerIP: "10.0.0.253", ASNumber: ptr(uint32(64512)), Families: []string{"ipv4-unicast"}}}
	h.res.snapshot(t, n1, meshConfig("90s"), evpn, plain)
	waitUntil(t, "status names the refused families", func() bool {
		st := h.status.get()
		if st == nil {
			return false
		}
		for _, p := range st.Status.Peers {
			if p.PeerIP == "10.0.0.254" && strings.Contains(p.LastError, "BGPPeer evpn spec.families ipv4-unicast,l2vpn-evpn: the node's router carries") {
				return true
			}
		}
		return false
	})
	var configured []string
	for _, pc := range h.sp.PeerConfigs() {
		configured = append(configured, pc.Address.String())
	}
	if strings.Join(configured, ",") != "10.0.0.253" {
		t.Errorf("configured sessions %v, want only 10.0.0.253", configured)
	}
}
