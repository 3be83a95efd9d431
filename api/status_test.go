package api

import "testing"

func TestFelixStatusValidate(t *testing.T) {
	base := func() *FelixStatus {
		return &FelixStatus{ObjectMeta: ObjectMeta{Name: "node-1"}, Status: FelixStatusReport{LastUpdate: "2025-01-02T15:04:05Z"}}
	}
	runValidation(t, base, []validationCase[*FelixStatus]{
		{"valid", func(*FelixStatus) {}, nil},
		{"no time", func(f *FelixStatus) { f.Status.LastUpdate = "" }, []string{"status.lastUpdate"}},
		{"bad time", func(f *FelixStatus) { f.Status.LastUpdate = "2025-01-02 15:04:05" }, []string{"status.lastUpdate"}},
		{"bad state", func(f *FelixStatus) { f.Status.Dataplane.State = "Broken" }, []string{"status.dataplane.state"}},
		{"negative counts", func(f *FelixStatus) { f.Status.Routes, f.Status.Rules = -1, -2 }, []string{"status.routes", "status.rules"}},
	})
}

func TestBGPStatusValidate(t *testing.T) {
	base := func() *BGPStatus {
		return &BGPStatus{ObjectMeta: ObjectMeta{Name: "node-1"}, Status: BGPStatusReport{
			RouterID: "10.0.0.1", ASNumber: 64512, LastUpdate: "2025-01-02T15:04:05Z",
			Peers: []BGPPeerStatus{{PeerIP: "fd00::2", ASNumber: 64512, Type: PeerTypeMesh, State: BGPIdle}},
		}}
	}
	runValidation(t, base, []validationCase[*BGPStatus]{
		{"valid", func(*BGPStatus) {}, nil},
		{"identity", func(b *BGPStatus) { b.Status.RouterID, b.Status.ASNumber = "", 0 }, []string{"status.asNumber", "status.routerID"}},
		{"peer", func(b *BGPStatus) {
			b.Status.Peers = append(b.Status.Peers, BGPPeerStatus{PeerIP: "x", Type: "ebgp", State: "Up", Since: "yesterday"})
		}, []string{"status.peers[1].peerIP", "status.peers[1].since", "status.peers[1].state", "status.peers[1].type"}},
	})
}
