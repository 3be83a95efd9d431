package peering

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

func rangeStrs(rs []PeerRange) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

// TestPeerRanges: BGPPeers with peerPrefix give the reflectors they select
// dynamic-neighbour ranges, with the BGPPeer's settings; other nodes get a
// warning instead, and nobody gets sessions from them.
func TestPeerRanges(t *testing.T) {
	rr := withLabels("rr", "true")
	nodes := func() []*api.Node {
		return []*api.Node{
			mkNode("rr1", "10.0.0.1/24", "fd00::1/64", withCluster("10.0.0.1"), rr),
			mkNode("rr4", "10.0.0.4/24", "", withCluster("10.0.0.1"), rr),
			mkNode("n2", "10.0.0.2/24", "", withLabels("role", "compute")),
		}
	}
	tests := []struct {
		name     string
		peers    []*api.BGPPeer
		cfg      []*api.BGPConfiguration
		want     map[string][]string // ranges by node
		warnings map[string][]string // node warnings; unlisted nodes have none
	}{
		{
			name: "iBGP range on the selected reflectors, AS defaulting to theirs",
			peers: []*api.BGPPeer{mkPeer("racks", func(s *api.BGPPeerSpec) {
				s.NodeSelector, s.PeerPrefix = "has(rr)", "10.1.0.0/16"
			})},
			want: map[string][]string{
				"rr1": {"10.1.0.0/16 reflectorClient iBGP as 64512 bgppeer racks rr-client cluster 10.0.0.1"},
				"rr4": {"10.1.0.0/16 reflectorClient iBGP as 64512 bgppeer racks rr-client cluster 10.0.0.1"},
			},
		},
		{
			name: "global range: compute nodes ignore it with a warning",
			peers: []*api.BGPPeer{mkPeer("everyone", func(s *api.BGPPeerSpec) {
				s.PeerPrefix = "10.1.0.0/16"
			})},
			want: map[string][]string{
				"rr1": {"10.1.0.0/16 reflectorClient iBGP as 64512 bgppeer everyone rr-client cluster 10.0.0.1"},
				"rr4": {"10.1.0.0/16 reflectorClient iBGP as 64512 bgppeer everyone rr-client cluster 10.0.0.1"},
			},
			warnings: map[string][]string{
				"n2": {"BGPPeer everyone: Node n2 is not a route reflector: peerPrefix 10.1.0.0/16 is ignored (only reflectors accept dynamic neighbours)"},
			},
		},
		{
			name: "eBGP range keeps every setting; a v6 range skips the v4-only reflector",
			peers: []*api.BGPPeer{
				mkPeer("edge", func(s *api.BGPPeerSpec) {
					s.Node, s.PeerPrefix, s.ASNumber = "rr1", "192.0.2.0/24", ptr(uint32(65100))
					s.KeepOriginalNextHop, s.MaxPrefixes, s.EBGPMultihop = true, 50, ptr(3)
					s.Password = &api.BGPPassword{SecretKeyRef: &api.SecretKeySelector{Name: "bgp", Key: "edge"}}
				}),
				mkPeer("v6", func(s *api.BGPPeerSpec) {
					s.NodeSelector, s.PeerPrefix, s.TTLSecurity = "has(rr)", "fd00:1::/64", ptr(1)
					s.KeepOriginalNextHop = true // iBGP: dropped
				}),
			},
			want: map[string][]string{
				"rr1": {
					"192.0.2.0/24 node eBGP as 64512->65100 bgppeer edge password bgp/edge next-hop-keep max-prefixes 50 multihop 3",
					"fd00:1::/64 reflectorClient iBGP as 64512 bgppeer v6 rr-client cluster 10.0.0.1 ttl-security 1",
				},
			},
			warnings: map[string][]string{
				"rr4": {
					"BGPPeer v6: Node rr4 has no IPv6 address to accept peers from fd00:1::/64 on",
					"Node rr4: route reflector has no sessions: reflectors are left out of the node-to-node mesh; select them with a BGPPeer peerSelector",
				},
			},
		},
		{
			name: "one prefix from two BGPPeers: global first, then by name; sorted by prefix",
			peers: []*api.BGPPeer{
				mkPeer("b-wide", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerPrefix = "has(rr)", "10.0.0.0/8" }),
				mkPeer("c-node", func(s *api.BGPPeerSpec) { s.Node, s.PeerPrefix, s.MaxPrefixes = "rr1", "10.1.0.0/16", 9 }),
				mkPeer("z-global", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerPrefix = "", "10.1.0.0/16" }),
			},
			want: map[string][]string{
				"rr1": {
					"10.0.0.0/8 reflectorClient iBGP as 64512 bgppeer b-wide rr-client cluster 10.0.0.1",
					"10.1.0.0/16 reflectorClient iBGP as 64512 bgppeer z-global rr-client cluster 10.0.0.1",
				},
				"rr4": {
					"10.0.0.0/8 reflectorClient iBGP as 64512 bgppeer b-wide rr-client cluster 10.0.0.1",
					"10.1.0.0/16 reflectorClient iBGP as 64512 bgppeer z-global rr-client cluster 10.0.0.1",
				},
			},
			warnings: map[string][]string{
				"rr1": {"BGPPeer c-node: Node rr1: the peers from 10.1.0.0/16 come from BGPPeer z-global instead, whose settings differ"},
				"n2":  {"BGPPeer z-global: Node n2 is not a route reflector: peerPrefix 10.1.0.0/16 is ignored (only reflectors accept dynamic neighbours)"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := Input{Nodes: nodes(), BGPPeers: tc.peers, BGPConfigurations: []*api.BGPConfiguration{meshOff()}}
			m, err := New(in)
			if err != nil {
				t.Fatal(err)
			}
			fab, err := m.Fabric()
			if err != nil {
				t.Fatal(err)
			}
			for name, r := range fab {
				if d := cmp.Diff(tc.want[name], rangeStrs(r.PeerRanges)); d != "" {
					t.Errorf("%s ranges (-want +got):\n%s", name, d)
				}
				if d := cmp.Diff(tc.warnings[name], warnStrs(nodeWarnings(m, r))); d != "" {
					t.Errorf("%s warnings (-want +got):\n%s", name, d)
				}
				// Ranges never become sessions, at either end.
				if len(r.Sessions) != 0 {
					t.Errorf("%s has sessions %v", name, strs(r.Sessions))
				}
			}
		})
	}
}

// TestPeerRangeSettings: timers and graceful restart are inherited as for
// sessions, and an explicit session to an address inside a range stays a
// session.
func TestPeerRangeSettings(t *testing.T) {
	in := Input{
		Nodes: []*api.Node{
			mkNode("rr1", "10.0.0.1/24", "", withCluster("10.0.0.1"), withLabels("rr", "")),
			mkNode("n2", "10.0.0.2/24", ""),
		},
		BGPConfigurations: []*api.BGPConfiguration{globalConfigOf(func(s *api.BGPConfigurationSpec) {
			s.NodeToNodeMeshEnabled = ptr(false)
			s.HoldTime = "30s"
			s.GracefulRestart = &api.GracefulRestart{RestartTime: "60s"}
		})},
		BGPPeers: []*api.BGPPeer{
			mkPeer("range", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerPrefix = "has(rr)", "10.0.0.0/24" }),
			mkPeer("range-timers", func(s *api.BGPPeerSpec) {
				s.NodeSelector, s.PeerPrefix, s.HoldTime = "has(rr)", "10.9.0.0/24", "9s"
			}),
			mkPeer("to-rr", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerSelector = "!has(rr)", "has(rr)" }),
		},
	}
	r, err := ReflectorSessions(in, "rr1")
	if err != nil {
		t.Fatal(err)
	}
	want := []PeerRange{
		{
			Prefix: mustPrefix("10.0.0.0/24"), PeerAS: 64512, LocalAS: 64512, Type: api.PeerTypeReflectorClient,
			Source: "range", RouteReflectorClient: true, ClusterID: mustAddr("10.0.0.1"),
			HoldTime: 30 * time.Second, KeepaliveTime: 10 * time.Second,
			GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second, StaleRoutesTime: api.DefaultStaleRoutesTime},
		},
		{
			Prefix: mustPrefix("10.9.0.0/24"), PeerAS: 64512, LocalAS: 64512, Type: api.PeerTypeReflectorClient,
			Source: "range-timers", RouteReflectorClient: true, ClusterID: mustAddr("10.0.0.1"),
			HoldTime: 9 * time.Second, KeepaliveTime: 3 * time.Second,
			GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second, StaleRoutesTime: api.DefaultStaleRoutesTime},
		},
	}
	if d := cmp.Diff(want, r.PeerRanges, cmpNet); d != "" {
		t.Errorf("ranges (-want +got):\n%s", d)
	}
	if got := strs(r.Sessions); len(got) != 1 || got[0] != "10.0.0.2:179 reflectorClient iBGP as 64512 from 10.0.0.1 bgppeer to-rr node n2 rr-client cluster 10.0.0.1 passive" {
		t.Errorf("sessions %v, want only the explicit one with n2", got)
	}
	// A reflector whose only peers are a range is not "without sessions".
	in.BGPPeers = in.BGPPeers[:1]
	r, err = ReflectorSessions(in, "rr1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 0 || len(r.PeerRanges) != 1 {
		t.Errorf("range-only reflector: warnings %v, ranges %v", warnStrs(r.Warnings), rangeStrs(r.PeerRanges))
	}
}

// TestPeerPrefixInvalid: an invalid peerPrefix BGPPeer fails the model,
// naming the field, as every invalid BGPPeer does.
func TestPeerPrefixInvalid(t *testing.T) {
	_, err := New(Input{
		Nodes:    []*api.Node{mkNode("rr1", "10.0.0.1/24", "", withCluster("10.0.0.1"))},
		BGPPeers: []*api.BGPPeer{mkPeer("bad", func(s *api.BGPPeerSpec) { s.PeerPrefix, s.PeerIP = "10.0.0.0/8", "10.0.0.9" })},
	})
	if err == nil || !strings.Contains(err.Error(), "spec.peerPrefix") {
		t.Errorf("New: %v, want an error naming spec.peerPrefix", err)
	}
}
