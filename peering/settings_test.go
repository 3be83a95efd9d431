package peering

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

// timers is a session's hold and keepalive time, for comparison.
type timers struct{ Hold, Keepalive time.Duration }

func TestTimerInheritance(t *testing.T) {
	peerIP := func(name, ip string, f func(*api.BGPPeerSpec)) *api.BGPPeer {
		return mkPeer(name, func(s *api.BGPPeerSpec) {
			s.Node, s.PeerIP, s.ASNumber = "n1", ip, ptr(uint32(65000))
			f(s)
		})
	}
	peers := []*api.BGPPeer{
		peerIP("inherits", "192.0.2.1", func(*api.BGPPeerSpec) {}),
		peerIP("both", "192.0.2.2", func(s *api.BGPPeerSpec) { s.HoldTime, s.KeepaliveTime = "240s", "20s" }),
		peerIP("hold-only", "192.0.2.3", func(s *api.BGPPeerSpec) { s.HoldTime = "9s" }),
		peerIP("keepalive-only", "192.0.2.4", func(s *api.BGPPeerSpec) { s.KeepaliveTime = "5s" }),
		peerIP("keepalive-above-hold", "192.0.2.5", func(s *api.BGPPeerSpec) { s.KeepaliveTime = "2m" }),
		peerIP("no-keepalives", "192.0.2.6", func(s *api.BGPPeerSpec) { s.HoldTime = "0s" }),
	}
	nodes := []*api.Node{mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", "")}
	tests := []struct {
		name     string
		cfg      *api.BGPConfiguration
		want     map[string]timers // by Source
		warnings []string
	}{
		{
			name: "no BGPConfiguration",
			want: map[string]timers{
				"mesh": {90 * time.Second, 30 * time.Second}, "inherits": {90 * time.Second, 30 * time.Second},
				"both": {240 * time.Second, 20 * time.Second}, "hold-only": {9 * time.Second, 3 * time.Second},
				"keepalive-only": {90 * time.Second, 5 * time.Second}, "keepalive-above-hold": {90 * time.Second, 30 * time.Second},
				"no-keepalives": {0, 0},
			},
			warnings: []string{"BGPPeer keepalive-above-hold: keepaliveTime 2m0s is not below holdTime 1m30s: using 30s"},
		},
		{
			name: "global hold time only",
			cfg:  globalConfigOf(func(s *api.BGPConfigurationSpec) { s.HoldTime = "60s" }),
			want: map[string]timers{
				"mesh": {60 * time.Second, 20 * time.Second}, "inherits": {60 * time.Second, 20 * time.Second},
				"both": {240 * time.Second, 20 * time.Second}, "hold-only": {9 * time.Second, 3 * time.Second},
				"keepalive-only": {60 * time.Second, 5 * time.Second}, "keepalive-above-hold": {60 * time.Second, 20 * time.Second},
				"no-keepalives": {0, 0},
			},
			warnings: []string{"BGPPeer keepalive-above-hold: keepaliveTime 2m0s is not below holdTime 1m0s: using 20s"},
		},
		{
			name: "global both",
			cfg:  globalConfigOf(func(s *api.BGPConfigurationSpec) { s.HoldTime, s.KeepaliveTime = "30s", "3s" }),
			want: map[string]timers{
				"mesh": {30 * time.Second, 3 * time.Second}, "inherits": {30 * time.Second, 3 * time.Second},
				"both": {240 * time.Second, 20 * time.Second}, "hold-only": {9 * time.Second, 3 * time.Second},
				"keepalive-only": {30 * time.Second, 5 * time.Second}, "keepalive-above-hold": {30 * time.Second, 10 * time.Second},
				"no-keepalives": {0, 0},
			},
			warnings: []string{"BGPPeer keepalive-above-hold: keepaliveTime 2m0s is not below holdTime 30s: using 10s"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Nodes: nodes, BGPPeers: peers}
			if tt.cfg != nil {
				in.BGPConfigurations = append(in.BGPConfigurations, tt.cfg)
			}
			r, err := Compute(in, "n1")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]timers{}
			for _, s := range r.Sessions {
				got[s.Source] = timers{s.HoldTime, s.KeepaliveTime}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("timers by source (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, warnStrs(r.Warnings)); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGracefulRestart(t *testing.T) {
	tests := []struct {
		name string
		gr   *api.GracefulRestart
		want GracefulRestart
	}{
		{"default", nil, GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, StaleRoutesTime: 360 * time.Second}},
		{"restart time", &api.GracefulRestart{RestartTime: "60s"}, GracefulRestart{Enabled: true, RestartTime: time.Minute, StaleRoutesTime: 360 * time.Second}},
		{"disabled", &api.GracefulRestart{Enabled: ptr(false), RestartTime: "60s"}, GracefulRestart{}},
		{"long-lived", &api.GracefulRestart{LongLivedStaleTime: "1h"},
			GracefulRestart{Enabled: true, RestartTime: 120 * time.Second, StaleRoutesTime: 360 * time.Second, LongLivedStaleTime: time.Hour}},
		{"long-lived disabled", &api.GracefulRestart{Enabled: ptr(false), LongLivedStaleTime: "1h"}, GracefulRestart{}},
	}
	for _, tt := range tests {
		in := Input{
			Nodes:             []*api.Node{mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", "")},
			BGPConfigurations: []*api.BGPConfiguration{globalConfigOf(func(s *api.BGPConfigurationSpec) { s.GracefulRestart = tt.gr })},
			BGPPeers:          []*api.BGPPeer{mkPeer("tor", func(s *api.BGPPeerSpec) { s.PeerIP, s.ASNumber = "10.0.0.254", ptr(uint32(1)) })},
		}
		r, err := Compute(in, "n1")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Sessions {
			if diff := cmp.Diff(tt.want, s.GracefulRestart); diff != "" {
				t.Errorf("%s: %v (-want +got):\n%s", tt.name, s, diff)
			}
		}
	}
}

func TestLocal(t *testing.T) {
	in := Input{
		Nodes: []*api.Node{
			mkNode("rr1", "10.0.0.1/24", "fd00::1/64", withAS(65001), withCluster("1.0.0.1")),
			mkNode("v6", "", "fd00::6/64", withRouterID("10.255.0.6")),
		},
		BGPConfigurations: []*api.BGPConfiguration{
			{ObjectMeta: api.ObjectMeta{Name: "node.rr1"}, Spec: api.BGPConfigurationSpec{ListenPort: ptr(1179)}},
		},
	}
	r, err := ReflectorSessions(in, "rr1")
	if err != nil {
		t.Fatal(err)
	}
	want := Local{
		Node: "rr1", AS: 65001, RouterID: mustAddr("10.0.0.1"),
		IPv4: mustPrefix("10.0.0.1/24"), IPv6: mustPrefix("fd00::1/64"),
		ListenPort: 1179, ClusterID: mustAddr("1.0.0.1"),
	}
	if diff := cmp.Diff(want, r.Local, cmpNet); diff != "" {
		t.Errorf("Local (-want +got):\n%s", diff)
	}
	r, err = Compute(in, "v6")
	if err != nil {
		t.Fatal(err)
	}
	want = Local{Node: "v6", AS: 64512, RouterID: mustAddr("10.255.0.6"), IPv6: mustPrefix("fd00::6/64"), ListenPort: 179}
	if diff := cmp.Diff(want, r.Local, cmpNet); diff != "" {
		t.Errorf("Local (-want +got):\n%s", diff)
	}
	if _, err := ReflectorSessions(in, "v6"); err == nil || !strings.Contains(err.Error(), "not a route reflector") {
		t.Errorf("ReflectorSessions(v6) = %v, want not a route reflector", err)
	}
}

func TestErrors(t *testing.T) {
	n1, n2 := mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", "")
	tests := []struct {
		name string
		in   Input
		node string
		want string // a substring of the error
	}{
		{"duplicate address", Input{Nodes: []*api.Node{n1, n2, mkNode("n3", "10.0.0.9/24", "fd00::1/64"), mkNode("n4", "10.0.0.2/16", "")}},
			"n1", "Nodes n2 and n4 both have the address 10.0.0.2"},
		{"duplicate v6 address", Input{Nodes: []*api.Node{mkNode("a", "", "fd00::1/64", withRouterID("1.1.1.1")), mkNode("b", "10.0.0.9/24", "fd00::1/64")}},
			"a", "Nodes a and b both have the address fd00::1"},
		{"duplicate name", Input{Nodes: []*api.Node{n1, n1}}, "n1", `two Nodes are named "n1"`},
		{"no address", Input{Nodes: []*api.Node{n1, {ObjectMeta: api.ObjectMeta{Name: "bad"}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{}}}}},
			"bad", "Node bad: spec.bgp: has neither ipv4Address nor ipv6Address"},
		{"bad address", Input{Nodes: []*api.Node{n1, mkNode("bad", "10.0.0.300/24", "")}},
			"bad", `Node bad: spec.bgp.ipv4Address: must be an IPv4 address with its prefix length (got "10.0.0.300/24")`},
		{"v6 in v4 field", Input{Nodes: []*api.Node{mkNode("bad", "fd00::1/64", "")}},
			"bad", "spec.bgp.ipv4Address: must be an IPv4 address"},
		{"no router ID", Input{Nodes: []*api.Node{mkNode("bad", "", "fd00::1/64")}},
			"bad", "spec.bgp.routerID: is required when the node has no ipv4Address"},
		{"bad cluster ID", Input{Nodes: []*api.Node{mkNode("bad", "10.0.0.1/24", "", withCluster("1"))}},
			"bad", "spec.bgp.routeReflectorClusterID: must be a dotted quad"},
		{"unknown node", Input{Nodes: []*api.Node{n1}}, "n9", `no BGP-speaking Node named "n9"`},
		{"node without BGP", Input{Nodes: []*api.Node{n1, {ObjectMeta: api.ObjectMeta{Name: "plain"}}}}, "plain", `no BGP-speaking Node named "plain"`},
		{"invalid BGPPeer", Input{Nodes: []*api.Node{n1}, BGPPeers: []*api.BGPPeer{mkPeer("p", func(*api.BGPPeerSpec) {})}},
			"n1", "spec.peerIP: one of peerIP, peerSelector and peerPrefix is required"},
		{"bad selector", Input{Nodes: []*api.Node{n1}, BGPPeers: []*api.BGPPeer{mkPeer("p", func(s *api.BGPPeerSpec) { s.PeerSelector = "rr ==" })}},
			"n1", "spec.peerSelector"},
		{"duplicate BGPPeer", Input{Nodes: []*api.Node{n1}, BGPPeers: []*api.BGPPeer{
			mkPeer("p", func(s *api.BGPPeerSpec) { s.PeerSelector = "all()" }), mkPeer("p", func(s *api.BGPPeerSpec) { s.PeerSelector = "all()" }),
		}}, "n1", "two BGPPeers are named p"},
		{"invalid BGPConfiguration", Input{Nodes: []*api.Node{n1}, BGPConfigurations: []*api.BGPConfiguration{
			globalConfigOf(func(s *api.BGPConfigurationSpec) { s.HoldTime = "90" }),
		}}, "n1", "spec.holdTime"},
		{"unknown BGPConfiguration", Input{Nodes: []*api.Node{n1}, BGPConfigurations: []*api.BGPConfiguration{
			{ObjectMeta: api.ObjectMeta{Name: "other"}},
		}}, "n1", `BGPConfiguration other is invalid: metadata.name: must be "default" or "node.<node name>"`},
	}
	for _, tt := range tests {
		_, err := Compute(tt.in, tt.node)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Compute(%s) = %v, want an error containing %q", tt.name, tt.node, err, tt.want)
		}
	}
}

// A broken node is left out of the others' sessions with a warning, and
// Fabric reports it while computing the others.
func TestBrokenNodeLeftOut(t *testing.T) {
	in := Input{Nodes: []*api.Node{
		mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", ""), mkNode("bad", "10.0.0.3", ""),
	}}
	fab, err := Fabric(in)
	if err == nil || !strings.Contains(err.Error(), "Node bad: spec.bgp.ipv4Address") {
		t.Errorf("Fabric error = %v, want one about Node bad", err)
	}
	if _, ok := fab["bad"]; ok || len(fab) != 2 {
		t.Errorf("Fabric computed %d nodes, want n1 and n2", len(fab))
	}
	want := []string{"10.0.0.2:179 mesh iBGP as 64512 from 10.0.0.1 node n2 passive"}
	if diff := cmp.Diff(want, strs(fab["n1"].Sessions)); diff != "" {
		t.Errorf("n1 sessions (-want +got):\n%s", diff)
	}
	wantW := []string{`Node bad: left out of every peering: spec.bgp.ipv4Address: must be an IPv4 address with its prefix length (got "10.0.0.3")`}
	if diff := cmp.Diff(wantW, warnStrs(fab["n1"].Warnings)); diff != "" {
		t.Errorf("n1 warnings (-want +got):\n%s", diff)
	}
}

// Resource warnings: references to nothing, and peerIPs that name a node
// with another AS or port (which get no reverse session, so the session
// is not passive and the node does not have it back).
func TestResourceWarnings(t *testing.T) {
	in := Input{
		Nodes: []*api.Node{
			mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", "", withAS(65002)),
			mkNode("rr", "10.0.0.3/24", "", withLabels("rr", "")),
		},
		BGPConfigurations: []*api.BGPConfiguration{meshOff()},
		BGPPeers: []*api.BGPPeer{
			mkPeer("gone", func(s *api.BGPPeerSpec) { s.Node, s.PeerSelector = "n9", "all()" }),
			mkPeer("wrong-as", func(s *api.BGPPeerSpec) { s.Node, s.PeerIP, s.ASNumber = "n1", "10.0.0.2", ptr(uint32(64512)) }),
			mkPeer("wrong-port", func(s *api.BGPPeerSpec) { s.Node, s.PeerIP, s.ASNumber = "n2", "10.0.0.1:1179", ptr(uint32(64512)) }),
			mkPeer("sel-as", func(s *api.BGPPeerSpec) { s.Node, s.PeerSelector, s.ASNumber = "n2", "has(rr)", ptr(uint32(1)) }),
		},
	}
	m, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"BGPPeer gone: spec.node n9 is not a BGP node of the fabric",
		"BGPPeer sel-as: spec.asNumber 1 is not the AS 64512 of the selected Node rr",
		"BGPPeer wrong-as: spec.asNumber 64512 is not the AS 65002 of Node n2, whose address peerIP is",
		"BGPPeer wrong-port: spec.peerIP port 1179 is not the listen port 179 of Node n1, whose address peerIP is",
	}
	if diff := cmp.Diff(want, warnStrs(m.Warnings())); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	fab, err := m.Fabric()
	if err != nil {
		t.Fatal(err)
	}
	wantS := map[string][]string{
		"n1": {"10.0.0.2:179 node iBGP as 64512 from 10.0.0.1 bgppeer wrong-as node n2"},
		"n2": {
			"10.0.0.1:1179 node eBGP as 65002->64512 from 10.0.0.2 bgppeer wrong-port node n1",
			"10.0.0.3:179 node eBGP as 65002->1 from 10.0.0.2 bgppeer sel-as node rr passive",
		},
		"rr": {"10.0.0.2:179 node eBGP as 64512->65002 from 10.0.0.3 bgppeer sel-as node n2"},
	}
	for node, want := range wantS {
		if diff := cmp.Diff(want, strs(fab[node].Sessions)); diff != "" {
			t.Errorf("%s sessions (-want +got):\n%s", node, diff)
		}
	}
}
