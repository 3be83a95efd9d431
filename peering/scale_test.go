package peering

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

// The same resources in any order give the same sessions and warnings.
func TestDeterministic(t *testing.T) {
	in := genFabric(genSpec{racks: 4, perRack: 6, reflectors: 3, torPerRack: true, mesh: true})
	// Overlapping BGPPeers, so that precedence and shadowing matter.
	in.BGPPeers = append(in.BGPPeers,
		mkPeer("z-all-to-rr", func(s *api.BGPPeerSpec) { s.PeerSelector, s.MaxPrefixes = "has(rr)", 7 }),
		mkPeer("a-rack1-to-rr", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerSelector = "rack == 'r001'", "has(rr)" }),
		mkPeer("global-tor", func(s *api.BGPPeerSpec) { s.PeerIP, s.ASNumber = "10.1.0.254", ptr(uint32(65000)) }),
		// Dynamic-neighbour ranges, overlapping and shadowing each other.
		mkPeer("range-rr", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerPrefix = "has(rr)", "10.0.0.0/8" }),
		mkPeer("range-all", func(s *api.BGPPeerSpec) { s.PeerPrefix, s.MaxPrefixes = "10.0.0.0/8", 3 }),
		mkPeer("range-v6", func(s *api.BGPPeerSpec) { s.NodeSelector, s.PeerPrefix = "has(rr)", "fd00::/16" }),
	)
	in.BGPConfigurations = append(in.BGPConfigurations, &api.BGPConfiguration{
		ObjectMeta: api.ObjectMeta{Name: "node.r002-n03"}, Spec: api.BGPConfigurationSpec{ListenPort: ptr(1179)},
	})
	want, err := Fabric(in)
	if err != nil {
		t.Fatal(err)
	}
	checkSymmetric(t, want)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		p := Input{
			Nodes:             slices.Clone(in.Nodes),
			BGPConfigurations: slices.Clone(in.BGPConfigurations),
			BGPPeers:          slices.Clone(in.BGPPeers),
		}
		rng.Shuffle(len(p.Nodes), func(i, j int) { p.Nodes[i], p.Nodes[j] = p.Nodes[j], p.Nodes[i] })
		rng.Shuffle(len(p.BGPConfigurations), func(i, j int) {
			p.BGPConfigurations[i], p.BGPConfigurations[j] = p.BGPConfigurations[j], p.BGPConfigurations[i]
		})
		rng.Shuffle(len(p.BGPPeers), func(i, j int) { p.BGPPeers[i], p.BGPPeers[j] = p.BGPPeers[j], p.BGPPeers[i] })
		got, err := Fabric(p)
		if err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(want, got) {
			continue // cmp is slow on this much; it only explains a failure
		}
		t.Fatalf("permutation %d (-first +permuted):\n%s", i, cmp.Diff(want, got, cmpNet))
	}
}

// TestScale is a whole fabric of 5,000 compute nodes and three reflectors:
// every session is there, at both ends. It takes well under a second, so
// it runs with -short too; BenchmarkFabric5000 measures it.
func TestScale(t *testing.T) {
	g := genSpec{racks: 125, perRack: 40, reflectors: 3, torPerRack: true}
	in := genFabric(g)
	start := time.Now()
	fab, err := Fabric(in)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes in %v", len(fab), time.Since(start))
	compute := g.racks * g.perRack
	if len(fab) != compute+g.reflectors {
		t.Fatalf("%d results, want %d", len(fab), compute+g.reflectors)
	}
	for name, r := range fab {
		want := 2*g.reflectors + 1 // each reflector over both families, and the ToR
		if r.Local.IsReflector() {
			want = 2*compute + 2*(g.reflectors-1) + 1 // clients, other reflectors, edge
		}
		if len(r.Sessions) != want {
			t.Fatalf("%s has %d sessions, want %d", name, len(r.Sessions), want)
		}
		if len(r.Warnings) != 0 {
			t.Fatalf("%s warnings: %v", name, r.Warnings)
		}
	}
	checkSymmetric(t, fab)
}
