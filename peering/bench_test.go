package peering

import (
	"fmt"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
)

// genSpec describes a generated fabric: racks of compute nodes behind
// route reflectors of one cluster, dual-stack.
type genSpec struct {
	racks, perRack, reflectors int
	// torPerRack adds one BGPPeer per rack, for its ToR (eBGP).
	torPerRack bool
	mesh       bool
}

func genFabric(g genSpec) Input {
	var in Input
	for i := range g.reflectors {
		in.Nodes = append(in.Nodes, mkNode(fmt.Sprintf("rr%d", i),
			fmt.Sprintf("10.0.0.%d/24", i+1), fmt.Sprintf("fd00::%x/64", i+1),
			withCluster("1.0.0.1"), withLabels("rr", "true")))
	}
	for r := range g.racks {
		rack := fmt.Sprintf("r%03d", r)
		for k := range g.perRack {
			in.Nodes = append(in.Nodes, mkNode(fmt.Sprintf("%s-n%02d", rack, k),
				fmt.Sprintf("10.%d.%d.%d/24", 1+r/250, r%250, k+1), fmt.Sprintf("fd00:%x::%x/64", r+1, k+1),
				withLabels("rack", rack)))
		}
		if g.torPerRack {
			in.BGPPeers = append(in.BGPPeers, mkPeer("tor-"+rack, func(s *api.BGPPeerSpec) {
				s.NodeSelector = "rack == '" + rack + "'"
				s.PeerIP = fmt.Sprintf("10.%d.%d.254", 1+r/250, r%250)
				s.ASNumber = ptr(uint32(65000 + r))
			}))
		}
	}
	in.BGPConfigurations = []*api.BGPConfiguration{
		globalConfigOf(func(s *api.BGPConfigurationSpec) { s.NodeToNodeMeshEnabled = ptr(g.mesh) }),
	}
	in.BGPPeers = append(in.BGPPeers,
		mkPeer("to-rr", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerSelector = "!has(rr)", "has(rr)" }),
		mkPeer("rr-mesh", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerSelector = "has(rr)", "has(rr)" }),
		mkPeer("edge", func(s *api.BGPPeerSpec) {
			s.NodeSelector, s.PeerIP, s.ASNumber = "has(rr)", "192.0.2.1", ptr(uint32(64999))
		}),
	)
	return in
}

// BenchmarkFabric5000 computes every session of 5,000 compute nodes with
// three route reflectors: a few BGPPeers, and one ToR BGPPeer per rack.
func BenchmarkFabric5000(b *testing.B) {
	for _, tor := range []bool{false, true} {
		in := genFabric(genSpec{racks: 125, perRack: 40, reflectors: 3, torPerRack: tor})
		b.Run(fmt.Sprintf("bgppeers=%d", len(in.BGPPeers)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Fabric(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCompute5000 is one node's computation in the same fabric,
// model included, as a router does it on every change.
func BenchmarkCompute5000(b *testing.B) {
	in := genFabric(genSpec{racks: 125, perRack: 40, reflectors: 3, torPerRack: true})
	for _, node := range []string{"r042-n07", "rr0"} {
		b.Run(node, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compute(in, node); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
