package peering

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bgpfabric/bgpfabric/api"
)

// diffBase is a mesh of three nodes, a global ToR with its own timers and
// a per-node peer with a password.
func diffBase() Input {
	return Input{
		Nodes: []*api.Node{
			mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", ""), mkNode("n3", "10.0.0.3/24", ""),
		},
		BGPConfigurations: []*api.BGPConfiguration{globalConfigOf(func(*api.BGPConfigurationSpec) {})},
		BGPPeers: []*api.BGPPeer{
			mkPeer("tor", func(s *api.BGPPeerSpec) {
				s.PeerIP, s.ASNumber, s.HoldTime = "10.0.0.254", ptr(uint32(65000)), "9s"
			}),
			mkPeer("n1-ext", func(s *api.BGPPeerSpec) {
				s.Node, s.PeerIP, s.ASNumber = "n1", "192.0.2.1", ptr(uint32(65001))
				s.Password = &api.BGPPassword{SecretKeyRef: &api.SecretKeySelector{Name: "bgp", Key: "v1"}}
			}),
		},
	}
}

// change is a summary of a Delta: peer addresses, and for updates the
// changed fields and whether they reset.
type change struct {
	Add, Remove []string
	Update      []string
}

func summarize(d Delta) change {
	var c change
	for _, s := range d.Add {
		c.Add = append(c.Add, s.AddrPort().String())
	}
	for _, s := range d.Remove {
		c.Remove = append(c.Remove, s.AddrPort().String())
	}
	for _, u := range d.Update {
		mode := "live"
		if u.Reset {
			mode = "reset"
		}
		c.Update = append(c.Update, u.New.PeerAddress.String()+" "+mode+" "+fmt.Sprint(u.Changed))
	}
	return c
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Input)
		want   map[string]change // by node; unlisted nodes have no change
	}{
		{"nothing", func(*Input) {}, nil},
		{"add a node", func(in *Input) {
			in.Nodes = append(in.Nodes, mkNode("n4", "10.0.0.4/24", ""))
		}, map[string]change{
			"n1": {Add: []string{"10.0.0.4:179"}},
			"n2": {Add: []string{"10.0.0.4:179"}},
			"n3": {Add: []string{"10.0.0.4:179"}},
			// The new node gets all of its own.
			"n4": {Add: []string{"10.0.0.1:179", "10.0.0.2:179", "10.0.0.3:179", "10.0.0.254:179"}},
		}},
		{"remove a node", func(in *Input) { in.Nodes = in.Nodes[:2] }, map[string]change{
			"n1": {Remove: []string{"10.0.0.3:179"}},
			"n2": {Remove: []string{"10.0.0.3:179"}},
		}},
		{"global timers", func(in *Input) {
			in.BGPConfigurations[0].Spec.HoldTime = "30s"
		}, map[string]change{
			// The ToR has its own hold time: its sessions keep their timers.
			"n1": {Update: []string{"10.0.0.2 reset [HoldTime KeepaliveTime]", "10.0.0.3 reset [HoldTime KeepaliveTime]", "192.0.2.1 reset [HoldTime KeepaliveTime]"}},
			"n2": {Update: []string{"10.0.0.1 reset [HoldTime KeepaliveTime]", "10.0.0.3 reset [HoldTime KeepaliveTime]"}},
			"n3": {Update: []string{"10.0.0.1 reset [HoldTime KeepaliveTime]", "10.0.0.2 reset [HoldTime KeepaliveTime]"}},
		}},
		{"password", func(in *Input) {
			in.BGPPeers[1].Spec.Password.SecretKeyRef.Key = "v2"
		}, map[string]change{"n1": {Update: []string{"192.0.2.1 reset [Password]"}}}},
		{"max prefixes", func(in *Input) { in.BGPPeers[0].Spec.MaxPrefixes = 1000 }, map[string]change{
			"n1": {Update: []string{"10.0.0.254 live [MaxPrefixes]"}},
			"n2": {Update: []string{"10.0.0.254 live [MaxPrefixes]"}},
			"n3": {Update: []string{"10.0.0.254 live [MaxPrefixes]"}},
		}},
		{"port", func(in *Input) { in.BGPPeers[1].Spec.PeerIP = "192.0.2.1:1179" }, map[string]change{
			"n1": {Update: []string{"192.0.2.1 reset [PeerPort]"}},
		}},
		{"node becomes a reflector", func(in *Input) {
			in.Nodes[2].Spec.BGP.RouteReflectorClusterID = "1.0.0.1"
		}, map[string]change{
			// It leaves the mesh; its ToR session is unchanged.
			"n1": {Remove: []string{"10.0.0.3:179"}},
			"n2": {Remove: []string{"10.0.0.3:179"}},
			"n3": {Remove: []string{"10.0.0.1:179", "10.0.0.2:179"}},
		}},
		{"peer AS", func(in *Input) { in.BGPPeers[0].Spec.ASNumber = ptr(uint32(64512)) }, map[string]change{
			"n1": {Update: []string{"10.0.0.254 reset [PeerAS EBGP]"}},
			"n2": {Update: []string{"10.0.0.254 reset [PeerAS EBGP]"}},
			"n3": {Update: []string{"10.0.0.254 reset [PeerAS EBGP]"}},
		}},
		{"rename the BGPPeer", func(in *Input) { in.BGPPeers[1].Name = "n1-external" }, map[string]change{
			"n1": {Update: []string{"192.0.2.1 live [Source]"}},
		}},
	}
	before, err := Fabric(diffBase())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := diffBase()
			tt.modify(&in)
			after, err := Fabric(in)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]change{}
			for node, r := range after {
				if d := Diff(before[node].Sessions, r.Sessions); !d.Empty() {
					got[node] = summarize(d)
				}
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("changes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiffDetails(t *testing.T) {
	a := Session{PeerAddress: mustAddr("10.0.0.2"), PeerPort: 179, PeerAS: 1, LocalAS: 1, MaxPrefixes: 10}
	b := a
	b.MaxPrefixes, b.KeepOriginalNextHop = 20, true
	c := Session{PeerAddress: mustAddr("10.0.0.1"), PeerPort: 179}
	got := Diff([]Session{a, c}, []Session{b})
	want := Delta{
		Remove: []Session{c},
		Update: []Update{{Old: a, New: b, Reset: false, Changed: []string{"KeepOriginalNextHop", "MaxPrefixes"}}},
	}
	if diff := cmp.Diff(want, got, cmpNet); diff != "" {
		t.Errorf("Diff (-want +got):\n%s", diff)
	}
	if d := Diff(nil, nil); !d.Empty() {
		t.Errorf("Diff(nil, nil) = %+v", d)
	}
}

func TestDiffFieldsCoverSession(t *testing.T) {
	st := reflect.TypeFor[Session]()
	var names []string
	for i := range st.NumField() {
		names = append(names, st.Field(i).Name)
	}
	var got []string
	for _, f := range fields {
		got = append(got, f.name)
	}
	if diff := cmp.Diff(names, got); diff != "" {
		t.Errorf("Diff's fields do not list every Session field in order (-Session +fields):\n%s", diff)
	}
}
