package statusdiff

import (
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/latest"
)

func TestBGP(t *testing.T) {
	base := func() *api.BGPStatus {
		return &api.BGPStatus{ObjectMeta: api.ObjectMeta{Name: "n1"}, Status: api.BGPStatusReport{
			RouterID: "10.0.0.1", ASNumber: 64512, LastUpdate: "2026-01-01T00:00:00Z",
			Peers: []api.BGPPeerStatus{{PeerIP: "10.0.0.2", State: api.BGPEstablished, Type: api.PeerTypeNode, Since: "2026-01-01T00:00:00Z", PrefixesReceived: 3}},
		}}
	}
	for _, tc := range []struct {
		name   string
		change func(*api.BGPStatus)
		want   latest.Change
	}{
		{"timestamp only", func(s *api.BGPStatus) { s.Status.LastUpdate = "2026-01-01T00:01:00Z" }, latest.Same},
		{"prefix count", func(s *api.BGPStatus) { s.Status.Peers[0].PrefixesReceived = 4 }, latest.Counters},
		{"session state", func(s *api.BGPStatus) { s.Status.Peers[0].State = api.BGPIdle }, latest.State},
		{"state and count", func(s *api.BGPStatus) {
			s.Status.Peers[0].State, s.Status.Peers[0].PrefixesReceived = api.BGPIdle, 0
		}, latest.State},
		{"error", func(s *api.BGPStatus) { s.Status.Peers[0].LastError = "hold timer expired" }, latest.State},
		{"new peer", func(s *api.BGPStatus) {
			s.Status.Peers = append(s.Status.Peers, api.BGPPeerStatus{PeerIP: "10.0.0.3"})
		}, latest.State},
		{"router ID", func(s *api.BGPStatus) { s.Status.RouterID = "10.0.0.9" }, latest.State},
	} {
		next := base()
		tc.change(next)
		if got := BGP(base(), next); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
