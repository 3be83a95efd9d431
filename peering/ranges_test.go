package peering

import (
	"net/netip"
	"slices"
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

// TestPeerRanges: BGPPeers with peerPrefix give every node they select a
// dynamic-neighbour range, with the BGPPeer's settings: on reflectors an
// iBGP range's routers are clients, on compute nodes plain iBGP
// neighbours; nobody gets sessions from them.
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
			name: "global range: clients on reflectors, plain iBGP neighbours on compute nodes",
			peers: []*api.BGPPeer{mkPeer("everyone", func(s *api.BGPPeerSpec) {
				s.PeerPrefix = "10.1.0.0/16"
			})},
			want: map[string][]string{
				"rr1": {"10.1.0.0/16 reflectorClient iBGP as 64512 bgppeer everyone rr-client cluster 10.0.0.1"},
				"rr4": {"10.1.0.0/16 reflectorClient iBGP as 64512 bgppeer everyone rr-client cluster 10.0.0.1"},
				"n2":  {"10.1.0.0/16 global iBGP as 64512 bgppeer everyone"},
			},
		},
		{
			name: "compute node: node iBGP range, eBGP range with its settings, v6 range without a v6 address",
			peers: []*api.BGPPeer{
				mkPeer("rack", func(s *api.BGPPeerSpec) {
					s.NodeSelector, s.PeerPrefix = "role == 'compute'", "10.2.0.0/24"
					s.KeepOriginalNextHop = true // iBGP: dropped
				}),
				mkPeer("vms", func(s *api.BGPPeerSpec) {
					s.Node, s.PeerPrefix, s.ASNumber = "n2", "192.0.2.0/24", ptr(uint32(65100))
					s.KeepOriginalNextHop, s.MaxPrefixes, s.EBGPMultihop = true, 50, ptr(2)
					s.Password = &api.BGPPassword{SecretKeyRef: &api.SecretKeySelector{Name: "bgp", Key: "vms"}}
				}),
				mkPeer("vms6", func(s *api.BGPPeerSpec) { s.Node, s.PeerPrefix = "n2", "fd00:2::/64" }),
			},
			want: map[string][]string{
				"n2": {
					"10.2.0.0/24 node iBGP as 64512 bgppeer rack",
					"192.0.2.0/24 node eBGP as 64512->65100 bgppeer vms password bgp/vms next-hop-keep max-prefixes 50 multihop 2",
				},
			},
			warnings: map[string][]string{
				"n2":  {"BGPPeer vms6: Node n2 has no IPv6 address to accept peers from fd00:2::/64 on"},
				"rr1": {"Node rr1: route reflector has no sessions: reflectors are left out of the node-to-node mesh; select them with a BGPPeer peerSelector"},
				"rr4": {"Node rr4: route reflector has no sessions: reflectors are left out of the node-to-node mesh; select them with a BGPPeer peerSelector"},
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
				"n2": {"10.1.0.0/16 global iBGP as 64512 bgppeer z-global"},
			},
			warnings: map[string][]string{
				"rr1": {"BGPPeer c-node: Node rr1: the peers from 10.1.0.0/16 come from BGPPeer z-global instead, whose settings differ"},
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

// TestPeerRangeComputeNode: a compute node in the mesh gets its range
// beside its mesh sessions, with the inherited timers and graceful
// restart, and the mesh session with a node inside the range stays a
// session. A range on a compute node never becomes a reverse session on
// the nodes inside it.
func TestPeerRangeComputeNode(t *testing.T) {
	in := Input{
		Nodes: []*api.Node{mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", "")},
		BGPConfigurations: []*api.BGPConfiguration{globalConfigOf(func(s *api.BGPConfigurationSpec) {
			s.HoldTime = "30s"
			s.GracefulRestart = &api.GracefulRestart{RestartTime: "60s"}
		})},
		BGPPeers: []*api.BGPPeer{mkPeer("lan", func(s *api.BGPPeerSpec) { s.Node, s.PeerPrefix = "n1", "10.0.0.0/24" })},
	}
	r, err := Compute(in, "n1")
	if err != nil {
		t.Fatal(err)
	}
	want := []PeerRange{{
		Prefix: mustPrefix("10.0.0.0/24"), PeerAS: 64512, LocalAS: 64512, Type: api.PeerTypeNode, Source: "lan",
		HoldTime: 30 * time.Second, KeepaliveTime: 10 * time.Second,
		GracefulRestart: GracefulRestart{Enabled: true, RestartTime: 60 * time.Second, StaleRoutesTime: api.DefaultStaleRoutesTime},
	}}
	if d := cmp.Diff(want, r.PeerRanges, cmpNet); d != "" {
		t.Errorf("n1 ranges (-want +got):\n%s", d)
	}
	if got := strs(r.Sessions); len(got) != 1 || !strings.HasPrefix(got[0], "10.0.0.2:179 mesh iBGP") {
		t.Errorf("n1 sessions %v, want the mesh session with n2 only", got)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("n1 warnings %v", warnStrs(r.Warnings))
	}
	r, err = Compute(in, "n2")
	if err != nil {
		t.Fatal(err)
	}
	if got := strs(r.Sessions); len(got) != 1 || !strings.HasPrefix(got[0], "10.0.0.1:179 mesh iBGP") || len(r.PeerRanges) != 0 {
		t.Errorf("n2 sessions %v, ranges %v; want the mesh session only", got, rangeStrs(r.PeerRanges))
	}
}

// TestDiffRanges: ranges are compared by prefix; a change of Type or
// Source alone needs no reset, any other does.
func TestDiffRanges(t *testing.T) {
	mk := func(p string, f func(*PeerRange)) PeerRange {
		r := PeerRange{Prefix: mustPrefix(p), PeerAS: 64512, LocalAS: 64512, Type: api.PeerTypeGlobal, Source: "a", HoldTime: 90 * time.Second}
		if f != nil {
			f(&r)
		}
		return r
	}
	summary := func(d RangeDelta) []string {
		var out []string
		for _, r := range d.Add {
			out = append(out, "add "+r.Prefix.String())
		}
		for _, r := range d.Remove {
			out = append(out, "remove "+r.Prefix.String())
		}
		for _, u := range d.Update {
			mode := "live"
			if u.Reset {
				mode = "reset"
			}
			out = append(out, "update "+u.New.Prefix.String()+" "+mode)
		}
		return out
	}
	running := []PeerRange{mk("10.1.0.0/16", nil), mk("10.2.0.0/16", nil), mk("10.3.0.0/16", nil), mk("10.4.0.0/16", nil)}
	desired := []PeerRange{
		mk("10.1.0.0/16", nil), // unchanged
		mk("10.2.0.0/16", func(r *PeerRange) { r.Type, r.Source = api.PeerTypeNode, "b" }),
		mk("10.3.0.0/16", func(r *PeerRange) { r.MaxPrefixes = 10 }),
		mk("fd00:1::/64", nil),
		mk("10.0.0.0/8", func(r *PeerRange) { r.Password = SecretRef{Name: "s", Key: "k"} }),
	}
	want := []string{
		"add 10.0.0.0/8", "add fd00:1::/64",
		"remove 10.4.0.0/16",
		"update 10.2.0.0/16 live", "update 10.3.0.0/16 reset",
	}
	d := DiffRanges(running, desired)
	if diff := cmp.Diff(want, summary(d)); diff != "" {
		t.Errorf("DiffRanges (-want +got):\n%s", diff)
	}
	if d.Empty() || !DiffRanges(desired, desired).Empty() || !DiffRanges(nil, nil).Empty() {
		t.Error("Empty is wrong")
	}
	// Applying the delta to running gives desired, in any input order.
	got := map[netip.Prefix]PeerRange{}
	for _, r := range running {
		got[r.Prefix] = r
	}
	for _, r := range d.Remove {
		delete(got, r.Prefix)
	}
	for _, r := range d.Add {
		got[r.Prefix] = r
	}
	for _, u := range d.Update {
		got[u.New.Prefix] = u.New
	}
	if len(got) != len(desired) {
		t.Fatalf("applied: %d ranges, want %d", len(got), len(desired))
	}
	for _, r := range desired {
		if got[r.Prefix] != r {
			t.Errorf("applied: %v, want %v", got[r.Prefix], r)
		}
	}
	slices.Reverse(desired)
	if diff := cmp.Diff(want, summary(DiffRanges(running, desired))); diff != "" {
		t.Errorf("DiffRanges, desired reversed (-want +got):\n%s", diff)
	}
}
