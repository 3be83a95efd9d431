package fabric

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/peering"
	"github.com/bgpfabric/bgpfabric/reflector"
)

var cmpNet = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func secrets(ref peering.SecretRef) (string, error) {
	if ref.Name == "bgp" {
		return "pw-" + ref.Key, nil
	}
	return "", errors.New("no such secret")
}

// TestNeighborsTTLAndNextHop: ttlSecurity, ebgpMultihop and
// keepOriginalNextHop reach the engine, with no warnings.
func TestNeighborsTTLAndNextHop(t *testing.T) {
	sessions := []peering.Session{
		{PeerAddress: netip.MustParseAddr("10.0.0.2"), PeerPort: 179, PeerAS: 64512, LocalAS: 64512, RouteReflectorClient: true,
			HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, TTLSecurity: 1},
		{PeerAddress: netip.MustParseAddr("192.0.2.1"), PeerPort: 179, PeerAS: 65100, LocalAS: 64512, EBGP: true,
			HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, EBGPMultihop: 3, KeepOriginalNextHop: true,
			Password: peering.SecretRef{Name: "bgp", Key: "edge"}},
	}
	ns, warnings, err := Neighbors(sessions, secrets)
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Neighbors: warnings %v, err %v", warnings, err)
	}
	want := []reflector.NeighborConfig{
		{Address: netip.MustParseAddr("10.0.0.2"), Port: 179, ASN: 64512, Client: true,
			HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, TTLSecurity: 1},
		{Address: netip.MustParseAddr("192.0.2.1"), Port: 179, ASN: 65100,
			HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, EBGPMultihop: 3, KeepNextHop: true, Password: "pw-edge"},
	}
	if d := cmp.Diff(want, ns, cmpNet); d != "" {
		t.Errorf("neighbours (-want +got):\n%s", d)
	}
}

// TestDynamicNeighborsConversion: a peer range becomes a dynamic
// neighbour with its settings; one whose password cannot be read is left
// out, naming the range.
func TestDynamicNeighborsConversion(t *testing.T) {
	ranges := []peering.PeerRange{
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), PeerAS: 64512, LocalAS: 64512, Type: api.PeerTypeReflectorClient,
			Source: "racks", RouteReflectorClient: true, ClusterID: netip.MustParseAddr("10.0.0.1"),
			HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second,
			GracefulRestart: peering.GracefulRestart{Enabled: true, RestartTime: time.Minute, LongLivedStaleTime: time.Hour},
			MaxPrefixes:     100, TTLSecurity: 2, Password: peering.SecretRef{Name: "bgp", Key: "racks"}},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), PeerAS: 65100, LocalAS: 64512, EBGP: true, Type: api.PeerTypeNode,
			Source: "edge", KeepOriginalNextHop: true, EBGPMultihop: 2},
		{Prefix: netip.MustParsePrefix("10.9.0.0/16"), PeerAS: 64512, LocalAS: 64512, Source: "secret-missing",
			HoldTime: 90 * time.Second, Password: peering.SecretRef{Name: "other", Key: "x"}},
	}
	ds, err := DynamicNeighbors(ranges, secrets)
	if err == nil || !strings.Contains(err.Error(), "peerPrefix 10.9.0.0/16") {
		t.Errorf("error %v, want one naming peerPrefix 10.9.0.0/16", err)
	}
	want := []reflector.DynamicNeighbor{
		{Prefix: netip.MustParsePrefix("10.1.0.0/16"), ASN: 64512, Client: true, HoldTime: 90 * time.Second,
			KeepaliveTime: 30 * time.Second, GracefulRestart: true, RestartTime: time.Minute, LongLivedStaleTime: time.Hour,
			MaxPrefixes: 100, TTLSecurity: 2, Password: "pw-racks"},
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), ASN: 65100, HoldTime: reflector.NoHoldTime,
			KeepNextHop: true, EBGPMultihop: 2},
	}
	if d := cmp.Diff(want, ds, cmpNet); d != "" {
		t.Errorf("dynamic neighbours (-want +got):\n%s", d)
	}
}

// TestStatusDynamicType: a dynamic neighbour's status type is its range's
// (the most specific one containing it).
func TestStatusDynamicType(t *testing.T) {
	ranges := []peering.PeerRange{
		{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Type: api.PeerTypeReflectorClient},
		{Prefix: netip.MustParsePrefix("10.5.0.0/16"), Type: api.PeerTypeNode},
	}
	ns := []reflector.NeighborStatus{
		{Address: "10.1.0.1", Dynamic: true, Client: true, State: reflector.StateEstablished},
		{Address: "10.5.0.1", Dynamic: true, State: reflector.StateEstablished},
	}
	st := Status("rr1", Identity{RouterID: netip.MustParseAddr("10.0.0.1"), AS: 64512}, nil, ranges, ns, time.Unix(0, 0))
	var got []api.BGPPeerType
	for _, p := range st.Status.Peers {
		got = append(got, p.Type)
	}
	if d := cmp.Diff([]api.BGPPeerType{api.PeerTypeReflectorClient, api.PeerTypeNode}, got); d != "" {
		t.Errorf("types (-want +got):\n%s", d)
	}
}

// TestFamilyNamesAgree: BGPPeer spec.families takes exactly the
// reflector's family names, in the same order.
func TestFamilyNamesAgree(t *testing.T) {
	if d := cmp.Diff(reflector.FamilyNames(), api.BGPPeerFamilies); d != "" {
		t.Errorf("api.BGPPeerFamilies differ from reflector.FamilyNames (-reflector +api):\n%s", d)
	}
}

// TestFamiliesConversion: a BGPPeer's families, through peering, reach the
// reflector's neighbours and dynamic neighbours; none is the default.
func TestFamiliesConversion(t *testing.T) {
	in := peering.Input{
		BGPConfigurations: []*api.BGPConfiguration{{ObjectMeta: api.ObjectMeta{Name: api.DefaultBGPConfigurationName},
			Spec: api.BGPConfigurationSpec{NodeToNodeMeshEnabled: new(bool)}}},
		Nodes: []*api.Node{{ObjectMeta: api.ObjectMeta{Name: "rr1"},
			Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: "10.0.0.1/24", RouteReflectorClusterID: "10.0.0.1"}}}},
		BGPPeers: []*api.BGPPeer{
			{ObjectMeta: api.ObjectMeta{Name: "evpn-router"}, Spec: api.BGPPeerSpec{Node: "rr1", PeerIP: "10.0.0.9",
				ASNumber: ptrTo(uint32(64512)), Families: []string{"l2vpn-evpn", "ipv4-unicast", "rtc"}}},
			{ObjectMeta: api.ObjectMeta{Name: "plain"}, Spec: api.BGPPeerSpec{Node: "rr1", PeerIP: "10.0.0.8",
				ASNumber: ptrTo(uint32(64512))}},
			{ObjectMeta: api.ObjectMeta{Name: "vpn-racks"}, Spec: api.BGPPeerSpec{Node: "rr1", PeerPrefix: "10.1.0.0/16",
				Families: []string{"ipv4-vpn", "ipv6-vpn"}}},
		},
	}
	r, err := peering.ReflectorSessions(in, "rr1")
	if err != nil {
		t.Fatal(err)
	}
	ns, _, err := Neighbors(r.Sessions, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, n := range ns {
		got[n.Address.String()] = n.Families.Names()
	}
	ds, err := DynamicNeighbors(r.PeerRanges, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		got[d.Prefix.String()] = d.Families.Names()
	}
	want := map[string][]string{
		"10.0.0.9":    {"ipv4-unicast", "l2vpn-evpn", "rtc"},
		"10.0.0.8":    {"ipv4-unicast", "ipv6-unicast"},
		"10.1.0.0/16": {"ipv4-vpn", "ipv6-vpn"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("families (-want +got):\n%s", d)
	}
	for _, n := range ns {
		if n.Address.String() == "10.0.0.8" && n.Families != 0 {
			t.Errorf("neighbour without families has set %v, want the zero (default) set", n.Families.Names())
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
