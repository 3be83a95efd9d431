package peering

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestFabric computes whole fabrics and compares the sessions of the
// interesting nodes, rendered one per line, and every node's warnings.
// Every fabric must also be symmetric (see checkSymmetric).
func TestFabric(t *testing.T) {
	rr := withLabels("rr", "true")
	tests := []struct {
		name string
		in   Input
		// want is the sessions of the listed nodes.
		want map[string][]string
		// warnings are every node's warnings that are not about the
		// resources themselves; unlisted nodes have none.
		warnings map[string][]string
	}{
		{
			name: "full mesh v4",
			in: Input{Nodes: []*api.Node{
				mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", ""), mkNode("n3", "10.0.0.3/24", ""),
			}},
			want: map[string][]string{
				"n1": {
					"10.0.0.2:179 mesh iBGP as 64512 from 10.0.0.1 node n2 passive",
					"10.0.0.3:179 mesh iBGP as 64512 from 10.0.0.1 node n3 passive",
				},
				"n2": {
					"10.0.0.1:179 mesh iBGP as 64512 from 10.0.0.2 node n1",
					"10.0.0.3:179 mesh iBGP as 64512 from 10.0.0.2 node n3 passive",
				},
			},
		},
		{
			name: "full mesh dual-stack, v4-only and v6-only nodes",
			in: Input{Nodes: []*api.Node{
				mkNode("n1", "10.0.0.1/24", "fd00::1/64"),
				mkNode("n2", "10.0.0.2/24", "fd00::2/64"),
				mkNode("n3", "10.0.0.3/24", ""),
				mkNode("n4", "", "fd00::4/64", withRouterID("10.255.0.4")),
			}},
			want: map[string][]string{
				"n1": {
					"10.0.0.2:179 mesh iBGP as 64512 from 10.0.0.1 node n2 passive",
					"10.0.0.3:179 mesh iBGP as 64512 from 10.0.0.1 node n3 passive",
					"[fd00::2]:179 mesh iBGP as 64512 from fd00::1 node n2 passive",
					"[fd00::4]:179 mesh iBGP as 64512 from fd00::1 node n4 passive",
				},
				"n3": {
					"10.0.0.1:179 mesh iBGP as 64512 from 10.0.0.3 node n1",
					"10.0.0.2:179 mesh iBGP as 64512 from 10.0.0.3 node n2",
				},
				"n4": {
					"[fd00::1]:179 mesh iBGP as 64512 from fd00::4 node n1",
					"[fd00::2]:179 mesh iBGP as 64512 from fd00::4 node n2",
				},
			},
		},
		{
			name: "mesh off, reflectors selected by every node (Calico's recipe)",
			in: Input{
				Nodes: []*api.Node{
					mkNode("rr1", "10.0.0.1/16", "", withCluster("1.0.0.1"), rr),
					mkNode("rr2", "10.0.0.2/16", "", withCluster("1.0.0.1"), rr),
					mkNode("c1", "10.0.1.1/16", ""), mkNode("c2", "10.0.1.2/16", ""),
				},
				BGPConfigurations: []*api.BGPConfiguration{meshOff()},
				BGPPeers: []*api.BGPPeer{mkPeer("peer-with-rrs", func(s *api.BGPPeerSpec) {
					s.NodeSelector, s.PeerSelector = "all()", "has(rr)"
				})},
			},
			want: map[string][]string{
				"c1": {
					"10.0.0.1:179 reflector iBGP as 64512 from 10.0.1.1 bgppeer peer-with-rrs node rr1",
					"10.0.0.2:179 reflector iBGP as 64512 from 10.0.1.1 bgppeer peer-with-rrs node rr2",
				},
				"rr1": {
					// Same cluster: a plain iBGP session, not a client.
					"10.0.0.2:179 node iBGP as 64512 from 10.0.0.1 bgppeer peer-with-rrs node rr2 passive",
					"10.0.1.1:179 reflectorClient iBGP as 64512 from 10.0.0.1 bgppeer peer-with-rrs node c1 rr-client cluster 1.0.0.1 passive",
					"10.0.1.2:179 reflectorClient iBGP as 64512 from 10.0.0.1 bgppeer peer-with-rrs node c2 rr-client cluster 1.0.0.1 passive",
				},
			},
		},
		{
			name: "reflectors of two clusters are each other's clients",
			in: Input{
				Nodes: []*api.Node{
					mkNode("rr1", "10.0.0.1/16", "", withCluster("1.0.0.1"), rr),
					mkNode("rr2", "10.0.0.2/16", "", withCluster("1.0.0.2"), rr),
					mkNode("c1", "10.0.1.1/16", ""),
				},
				BGPConfigurations: []*api.BGPConfiguration{meshOff()},
				BGPPeers: []*api.BGPPeer{
					mkPeer("to-rr", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerSelector = "!has(rr)", "has(rr)" }),
					mkPeer("rr-mesh", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerSelector = "has(rr)", "has(rr)" }),
				},
			},
			want: map[string][]string{
				"c1": {
					"10.0.0.1:179 reflector iBGP as 64512 from 10.0.1.1 bgppeer to-rr node rr1",
					"10.0.0.2:179 reflector iBGP as 64512 from 10.0.1.1 bgppeer to-rr node rr2",
				},
				"rr1": {
					"10.0.0.2:179 reflectorClient iBGP as 64512 from 10.0.0.1 bgppeer rr-mesh node rr2 rr-client cluster 1.0.0.1 passive",
					"10.0.1.1:179 reflectorClient iBGP as 64512 from 10.0.0.1 bgppeer to-rr node c1 rr-client cluster 1.0.0.1 passive",
				},
				"rr2": {
					"10.0.0.1:179 reflectorClient iBGP as 64512 from 10.0.0.2 bgppeer rr-mesh node rr1 rr-client cluster 1.0.0.2",
					"10.0.1.1:179 reflectorClient iBGP as 64512 from 10.0.0.2 bgppeer to-rr node c1 rr-client cluster 1.0.0.2 passive",
				},
			},
		},
		{
			name: "reflectors stay out of the mesh",
			in: Input{Nodes: []*api.Node{
				mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", ""),
				mkNode("rr1", "10.0.0.3/24", "", withCluster("1.0.0.1")),
			}},
			want: map[string][]string{
				"n1":  {"10.0.0.2:179 mesh iBGP as 64512 from 10.0.0.1 node n2 passive"},
				"rr1": {},
			},
			warnings: map[string][]string{"rr1": {
				"Node rr1: route reflector has no sessions: reflectors are left out of the node-to-node mesh; select them with a BGPPeer peerSelector",
			}},
		},
		{
			name: "global peers, one of a family a node lacks",
			in: Input{
				Nodes: []*api.Node{
					mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", "fd00::2/64"),
				},
				BGPConfigurations: []*api.BGPConfiguration{meshOff()},
				BGPPeers: []*api.BGPPeer{
					mkPeer("tor", func(s *api.BGPPeerSpec) { s.PeerIP, s.ASNumber = "10.0.0.254", ptr(uint32(65000)) }),
					mkPeer("tor6", func(s *api.BGPPeerSpec) { s.PeerIP, s.ASNumber = "[fd00::fe]:1179", ptr(uint32(65000)) }),
				},
			},
			want: map[string][]string{
				"n1": {"10.0.0.254:179 global eBGP as 64512->65000 from 10.0.0.1 bgppeer tor"},
				"n2": {
					"10.0.0.254:179 global eBGP as 64512->65000 from 10.0.0.2 bgppeer tor",
					"[fd00::fe]:1179 global eBGP as 64512->65000 from fd00::2 bgppeer tor6",
				},
			},
			warnings: map[string][]string{"n1": {"BGPPeer tor6: Node n1 has no IPv6 address to peer with fd00::fe from"}},
		},
		{
			name: "per-node and node-selector peers",
			in: Input{
				Nodes: []*api.Node{
					mkNode("n1", "10.0.1.1/24", "", withLabels("rack", "r1")),
					mkNode("n2", "10.0.1.2/24", "", withLabels("rack", "r1")),
					mkNode("n3", "10.0.2.3/24", "", withLabels("rack", "r2")),
				},
				BGPConfigurations: []*api.BGPConfiguration{meshOff()},
				BGPPeers: []*api.BGPPeer{
					mkPeer("n1-only", func(s *api.BGPPeerSpec) {
						s.Node, s.PeerIP, s.ASNumber = "n1", "192.168.0.1", ptr(uint32(65010))
						s.Password = &api.BGPPassword{SecretKeyRef: &api.SecretKeySelector{Name: "bgp", Key: "n1"}}
					}),
					mkPeer("rack-r2", func(s *api.BGPPeerSpec) {
						s.NodeSelector, s.PeerIP, s.ASNumber = "rack == 'r2'", "10.0.2.254", ptr(uint32(65020))
						s.MaxPrefixes, s.TTLSecurity = 100, ptr(1)
					}),
					mkPeer("kernel-chooses", func(s *api.BGPPeerSpec) {
						s.Node, s.PeerIP, s.ASNumber = "n2", "10.9.9.9", ptr(uint32(64512))
						s.SourceAddress = api.SourceAddressNone
					}),
				},
			},
			want: map[string][]string{
				"n1": {"192.168.0.1:179 node eBGP as 64512->65010 from 10.0.1.1 bgppeer n1-only password bgp/n1"},
				"n2": {"10.9.9.9:179 node iBGP as 64512 bgppeer kernel-chooses"},
				"n3": {"10.0.2.254:179 node eBGP as 64512->65020 from 10.0.2.3 bgppeer rack-r2 max-prefixes 100 ttl-security 1"},
			},
		},
		{
			name: "AS per rack with eBGP to each rack's ToR",
			in: Input{
				Nodes: []*api.Node{
					mkNode("n1", "10.0.1.1/24", "", withAS(65001), withLabels("rack", "1")),
					mkNode("n2", "10.0.1.2/24", "", withAS(65001), withLabels("rack", "1")),
					mkNode("n3", "10.0.2.1/24", "", withAS(65002), withLabels("rack", "2")),
				},
				BGPConfigurations: []*api.BGPConfiguration{meshOff()},
				BGPPeers: []*api.BGPPeer{
					mkPeer("tor-rack1", func(s *api.BGPPeerSpec) {
						s.NodeSelector, s.PeerIP, s.ASNumber = "rack == '1'", "10.0.1.254", ptr(uint32(65101))
						s.KeepOriginalNextHop = true
					}),
					mkPeer("tor-rack2", func(s *api.BGPPeerSpec) {
						s.NodeSelector, s.PeerIP, s.ASNumber = "rack == '2'", "10.0.2.254", ptr(uint32(65102))
						s.KeepOriginalNextHop = true
					}),
				},
			},
			want: map[string][]string{
				"n1": {"10.0.1.254:179 node eBGP as 65001->65101 from 10.0.1.1 bgppeer tor-rack1 next-hop-keep"},
				"n2": {"10.0.1.254:179 node eBGP as 65001->65101 from 10.0.1.2 bgppeer tor-rack1 next-hop-keep"},
				"n3": {"10.0.2.254:179 node eBGP as 65002->65102 from 10.0.2.1 bgppeer tor-rack2 next-hop-keep"},
			},
		},
		{
			name: "AS per node: the mesh is eBGP, next hop kept only on eBGP",
			in: Input{
				Nodes: []*api.Node{
					mkNode("n1", "10.0.0.1/24", "", withAS(65001)),
					mkNode("n2", "10.0.0.2/24", "", withAS(65002)),
					mkNode("n3", "10.0.0.3/24", ""),
				},
				BGPPeers: []*api.BGPPeer{
					mkPeer("ibgp-rs", func(s *api.BGPPeerSpec) {
						s.Node, s.PeerIP, s.ASNumber = "n3", "10.0.0.200", ptr(uint32(64512))
						s.KeepOriginalNextHop = true
					}),
				},
			},
			want: map[string][]string{
				"n1": {
					"10.0.0.2:179 mesh eBGP as 65001->65002 from 10.0.0.1 node n2 passive",
					"10.0.0.3:179 mesh eBGP as 65001->64512 from 10.0.0.1 node n3 passive",
				},
				"n3": {
					"10.0.0.1:179 mesh eBGP as 64512->65001 from 10.0.0.3 node n1",
					"10.0.0.2:179 mesh eBGP as 64512->65002 from 10.0.0.3 node n2",
					"10.0.0.200:179 node iBGP as 64512 from 10.0.0.3 bgppeer ibgp-rs",
				},
			},
		},
		{
			name: "localASNumber and nextHopMode",
			in: Input{
				Nodes: []*api.Node{
					mkNode("n1", "10.0.1.1/24", "", withAS(65001)),
					mkNode("n2", "10.0.1.2/24", "", withAS(65001)),
					mkNode("n3", "10.0.1.3/24", "", withAS(65001)),
				},
				BGPConfigurations: []*api.BGPConfiguration{meshOff()},
				BGPPeers: []*api.BGPPeer{
					mkPeer("tor-as", func(s *api.BGPPeerSpec) {
						s.Node, s.PeerIP, s.ASNumber = "n1", "10.0.1.254", ptr(uint32(65101))
						s.LocalASNumber = ptr(uint32(65111))
						s.NextHopMode = api.NextHopModeKeep
					}),
					mkPeer("ibgp-self", func(s *api.BGPPeerSpec) {
						s.Node, s.PeerIP, s.ASNumber = "n2", "10.0.1.253", ptr(uint32(65001))
						s.NextHopMode = api.NextHopModeSelf
					}),
					mkPeer("ebgp-self", func(s *api.BGPPeerSpec) { // eBGP is self anyway
						s.Node, s.PeerIP, s.ASNumber = "n2", "10.0.1.252", ptr(uint32(65102))
						s.NextHopMode = api.NextHopModeSelf
					}),
					mkPeer("local-as-same", func(s *api.BGPPeerSpec) { // iBGP by localASNumber
						s.Node, s.PeerIP, s.ASNumber = "n3", "10.0.1.251", ptr(uint32(65200))
						s.LocalASNumber = ptr(uint32(65200))
					}),
				},
			},
			want: map[string][]string{
				"n1": {"10.0.1.254:179 node eBGP as 65111->65101 from 10.0.1.1 bgppeer tor-as next-hop-keep"},
				"n2": {
					"10.0.1.252:179 node eBGP as 65001->65102 from 10.0.1.2 bgppeer ebgp-self",
					"10.0.1.253:179 node iBGP as 65001 from 10.0.1.2 bgppeer ibgp-self next-hop-self",
				},
				"n3": {"10.0.1.251:179 node iBGP as 65200 from 10.0.1.3 bgppeer local-as-same"},
			},
		},
		{
			name: "localASNumber on a peerSelector peer: the reverse session expects it",
			in: Input{
				Nodes: []*api.Node{
					mkNode("n1", "10.0.0.1/24", ""),
					mkNode("n2", "10.0.0.2/24", "", withLabels("role", "edge")),
				},
				BGPConfigurations: []*api.BGPConfiguration{meshOff()},
				BGPPeers: []*api.BGPPeer{
					mkPeer("to-edge", func(s *api.BGPPeerSpec) {
						s.Node, s.PeerSelector = "n1", "role == 'edge'"
						s.LocalASNumber = ptr(uint32(65111))
					}),
				},
			},
			want: map[string][]string{
				"n1": {"10.0.0.2:179 node eBGP as 65111->64512 from 10.0.0.1 bgppeer to-edge node n2 passive"},
				"n2": {"10.0.0.1:179 node eBGP as 64512->65111 from 10.0.0.2 bgppeer to-edge node n1"},
			},
		},
		{
			name: "precedence: global BGPPeer, then node BGPPeer, then mesh",
			in: Input{
				Nodes: []*api.Node{
					mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", ""), mkNode("n3", "10.0.0.3/24", ""),
				},
				BGPPeers: []*api.BGPPeer{
					mkPeer("b-node", func(s *api.BGPPeerSpec) {
						s.Node, s.PeerIP, s.ASNumber, s.MaxPrefixes = "n1", "10.0.0.2", ptr(uint32(64512)), 5
					}),
					mkPeer("a-global", func(s *api.BGPPeerSpec) {
						s.PeerIP, s.ASNumber = "10.0.0.2", ptr(uint32(64512))
						s.Password = &api.BGPPassword{SecretKeyRef: &api.SecretKeySelector{Name: "s", Key: "a"}}
					}),
				},
			},
			want: map[string][]string{
				"n1": {
					"10.0.0.2:179 global iBGP as 64512 from 10.0.0.1 bgppeer a-global node n2 passive password s/a",
					"10.0.0.3:179 mesh iBGP as 64512 from 10.0.0.1 node n3 passive",
				},
				// n2 is a-global's peer, so it gets the reverse sessions with
				// every node, which beat the mesh.
				"n2": {
					"10.0.0.1:179 node iBGP as 64512 from 10.0.0.2 bgppeer a-global node n1 password s/a",
					"10.0.0.3:179 node iBGP as 64512 from 10.0.0.2 bgppeer a-global node n3 passive password s/a",
				},
				"n3": {
					"10.0.0.1:179 mesh iBGP as 64512 from 10.0.0.3 node n1",
					"10.0.0.2:179 global iBGP as 64512 from 10.0.0.3 bgppeer a-global node n2 password s/a",
				},
			},
			warnings: map[string][]string{
				"n1": {"BGPPeer b-node: Node n1: the session with 10.0.0.2 comes from BGPPeer a-global instead, whose settings differ"},
				"n2": {"BGPPeer b-node: Node n2: the session with 10.0.0.1 comes from BGPPeer a-global instead, whose settings differ"},
			},
		},
		{
			name: "peer selector matches a node without the family",
			in: Input{
				Nodes: []*api.Node{
					mkNode("n1", "10.0.0.1/24", "fd00::1/64"),
					mkNode("rr1", "10.0.0.9/24", "", withCluster("1.0.0.1"), rr),
				},
				BGPConfigurations: []*api.BGPConfiguration{meshOff()},
				BGPPeers: []*api.BGPPeer{
					mkPeer("to-rr", func(s *api.BGPPeerSpec) { s.PeerSelector = "has(rr)" }),
				},
			},
			want: map[string][]string{
				"n1":  {"10.0.0.9:179 reflector iBGP as 64512 from 10.0.0.1 bgppeer to-rr node rr1 passive"},
				"rr1": {"10.0.0.1:179 reflectorClient iBGP as 64512 from 10.0.0.9 bgppeer to-rr node n1 rr-client cluster 1.0.0.1"},
			},
			warnings: map[string][]string{"n1": {
				"BGPPeer to-rr: selected Node rr1 has no IPv6 address: no IPv6 session with it from Node n1",
			}},
		},
		{
			name: "per-node listen port",
			in: Input{
				Nodes: []*api.Node{mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", "")},
				BGPConfigurations: []*api.BGPConfiguration{
					globalConfigOf(func(s *api.BGPConfigurationSpec) { s.ListenPort = ptr(1179) }),
					{ObjectMeta: api.ObjectMeta{Name: "node.n2"}, Spec: api.BGPConfigurationSpec{ListenPort: ptr(2179)}},
				},
			},
			want: map[string][]string{
				"n1": {"10.0.0.2:2179 mesh iBGP as 64512 from 10.0.0.1 node n2 passive"},
				"n2": {"10.0.0.1:1179 mesh iBGP as 64512 from 10.0.0.2 node n1"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			fab, err := m.Fabric()
			if err != nil {
				t.Fatal(err)
			}
			checkSymmetric(t, fab)
			for node, want := range tt.want {
				if diff := cmp.Diff(want, strs(fab[node].Sessions)); diff != "" {
					t.Errorf("sessions of %s (-want +got):\n%s", node, diff)
				}
			}
			for node, r := range fab {
				if diff := cmp.Diff(tt.warnings[node], warnStrs(nodeWarnings(m, r))); diff != "" {
					t.Errorf("warnings of %s (-want +got):\n%s", node, diff)
				}
				// Compute for one node gives the same as Fabric.
				one, err := Compute(tt.in, node)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(r, one, cmpNet); diff != "" {
					t.Errorf("Compute(%s) differs from Fabric (-fabric +compute):\n%s", node, diff)
				}
			}
		})
	}
}
