package peering

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
)

// TestBFDSettings: BGPConfiguration's bfd is every session's default, a
// BGPPeer's overrides it field by field, a disabled one is the zero
// value, and a change of BFD alone is a live Update (no BGP reset).
func TestBFDSettings(t *testing.T) {
	n1, n2, n3 := mkNode("n1", "10.0.0.1/24", ""), mkNode("n2", "10.0.0.2/24", ""), mkNode("n3", "10.0.0.3/24", "")
	on := BFD{Enabled: true, MinTx: 100 * time.Millisecond, MinRx: 200 * time.Millisecond, Multiplier: 5}
	tests := []struct {
		name  string
		conf  *api.BFD
		peers []*api.BGPPeer
		want  map[string]BFD // by peer address
	}{
		{"off by default", nil, nil, map[string]BFD{"10.0.0.2": {}, "10.0.0.3": {}}},
		{"global default",
			&api.BFD{Enabled: ptr(true), MinTx: "100ms", MinRx: "200ms", Multiplier: ptr(5)}, nil,
			map[string]BFD{"10.0.0.2": on, "10.0.0.3": on}},
		{"defaults filled", &api.BFD{Enabled: ptr(true)}, nil,
			map[string]BFD{
				"10.0.0.2": {Enabled: true, MinTx: 300 * time.Millisecond, MinRx: 300 * time.Millisecond, Multiplier: 3},
				"10.0.0.3": {Enabled: true, MinTx: 300 * time.Millisecond, MinRx: 300 * time.Millisecond, Multiplier: 3},
			}},
		{"peer overrides and inherits intervals",
			&api.BFD{MinTx: "100ms", MinRx: "200ms", Multiplier: ptr(5)},
			[]*api.BGPPeer{mkPeer("to-n3", func(s *api.BGPPeerSpec) {
				s.Node, s.PeerIP, s.ASNumber = "n1", "10.0.0.3", ptr(uint32(64512))
				s.BFD = &api.BFD{Enabled: ptr(true), Multihop: ptr(true), RequireUp: ptr(true)}
			})},
			map[string]BFD{"10.0.0.2": {}, "10.0.0.3": {Enabled: true, MinTx: 100 * time.Millisecond, MinRx: 200 * time.Millisecond,
				Multiplier: 5, Multihop: true, RequireUp: true}}},
		{"peer disables",
			&api.BFD{Enabled: ptr(true), MinTx: "100ms", MinRx: "200ms", Multiplier: ptr(5)},
			[]*api.BGPPeer{mkPeer("to-n3", func(s *api.BGPPeerSpec) {
				s.Node, s.PeerIP, s.ASNumber = "n1", "10.0.0.3", ptr(uint32(64512))
				s.BFD = &api.BFD{Enabled: ptr(false), MinTx: "1s"}
			})},
			map[string]BFD{"10.0.0.2": on, "10.0.0.3": {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Input{Nodes: []*api.Node{n1, n2, n3}, BGPPeers: tt.peers}
			if tt.conf != nil {
				in.BGPConfigurations = []*api.BGPConfiguration{globalConfigOf(func(s *api.BGPConfigurationSpec) { s.BFD = tt.conf })}
			}
			r, err := Compute(in, "n1")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]BFD{}
			for _, s := range r.Sessions {
				got[s.PeerAddress.String()] = s.BFD
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("BFD by peer (-want +got):\n%s", diff)
			}
		})
	}

	a := Session{PeerAddress: mustAddr("10.0.0.2"), PeerPort: 179}
	b := a
	b.BFD = on
	d := Diff([]Session{a}, []Session{b})
	if len(d.Update) != 1 || d.Update[0].Reset || !cmp.Equal(d.Update[0].Changed, []string{"BFD"}) {
		t.Errorf("Diff of a BFD change = %+v, want one live Update of BFD", d)
	}
	if got, want := b.String(), " bfd 100ms/200ms x5"; !strings.HasSuffix(got, want) || strings.Contains(a.String(), "bfd") {
		t.Errorf("String() = %q, want it to end in %q (and %q without bfd)", got, want, a.String())
	}
}
