package api

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNodeDefault(t *testing.T) {
	tests := []struct {
		name     string
		in, want NodeBGPSpec
	}{
		{"router ID from IPv4", NodeBGPSpec{IPv4Address: "10.0.0.7/24"}, NodeBGPSpec{IPv4Address: "10.0.0.7/24", RouterID: "10.0.0.7"}},
		{"router ID kept", NodeBGPSpec{IPv4Address: "10.0.0.7/24", RouterID: "1.1.1.1"}, NodeBGPSpec{IPv4Address: "10.0.0.7/24", RouterID: "1.1.1.1"}},
		{"IPv6 only", NodeBGPSpec{IPv6Address: "FD00::0001/64"}, NodeBGPSpec{IPv6Address: "fd00::1/64"}},
		{"bad address left alone", NodeBGPSpec{IPv4Address: "10.0.0.300/24"}, NodeBGPSpec{IPv4Address: "10.0.0.300/24"}},
	}
	for _, tt := range tests {
		n := &Node{Spec: NodeSpec{BGP: &tt.in}}
		n.Default()
		if diff := cmp.Diff(&tt.want, n.Spec.BGP); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
		if n.TypeMeta != tm(KindNode) {
			t.Errorf("%s: TypeMeta %+v", tt.name, n.TypeMeta)
		}
	}
}

func TestNodeValidate(t *testing.T) {
	base := func() *Node {
		return &Node{ObjectMeta: ObjectMeta{Name: "node-1"}, Spec: NodeSpec{BGP: &NodeBGPSpec{
			IPv4Address: "10.0.0.1/24", IPv6Address: "fd00::1/64",
		}}}
	}
	bgp := func(f func(*NodeBGPSpec)) func(*Node) { return func(n *Node) { f(n.Spec.BGP) } }
	runValidation(t, base, []validationCase[*Node]{
		{"valid", func(*Node) {}, nil},
		{"no BGP", func(n *Node) { n.Spec.BGP = nil }, nil},
		{"drained", bgp(func(b *NodeBGPSpec) { b.Drain = true }), nil},
		{"IPv4 /32", bgp(func(b *NodeBGPSpec) { b.IPv4Address = "10.0.0.0/32" }), nil},
		{"IPv4 /31", bgp(func(b *NodeBGPSpec) { b.IPv4Address = "10.0.0.0/31" }), nil},
		{"IPv6 only with router ID", bgp(func(b *NodeBGPSpec) { b.IPv4Address = ""; b.RouterID = "1.2.3.4" }), nil},
		{"IPv6 only without router ID", bgp(func(b *NodeBGPSpec) { b.IPv4Address = "" }), []string{"spec.bgp.routerID"}},
		{"no addresses", bgp(func(b *NodeBGPSpec) { *b = NodeBGPSpec{RouterID: "1.2.3.4"} }), []string{"spec.bgp"}},
		{"ASN 0", bgp(func(b *NodeBGPSpec) { b.ASNumber = ptr(uint32(0)) }), []string{"spec.bgp.asNumber"}},
		{"ASN max", bgp(func(b *NodeBGPSpec) { b.ASNumber = ptr(uint32(4294967295)) }), nil},
		{"bare IPv4", bgp(func(b *NodeBGPSpec) { b.IPv4Address = "10.0.0.1" }), []string{"spec.bgp.ipv4Address"}},
		{"network address", bgp(func(b *NodeBGPSpec) { b.IPv4Address = "10.0.0.0/24" }), []string{"spec.bgp.ipv4Address"}},
		{"IPv6 network address", bgp(func(b *NodeBGPSpec) { b.IPv6Address = "fd00::/64" }), []string{"spec.bgp.ipv6Address"}},
		{"IPv6 in IPv4 field", bgp(func(b *NodeBGPSpec) { b.IPv4Address = "fd00::2/64" }), []string{"spec.bgp.ipv4Address"}},
		{"IPv4 in IPv6 field", bgp(func(b *NodeBGPSpec) { b.IPv6Address = "10.0.0.2/24" }), []string{"spec.bgp.ipv6Address"}},
		{"mapped IPv4 in IPv6 field", bgp(func(b *NodeBGPSpec) { b.IPv6Address = "::ffff:10.0.0.2/120" }), []string{"spec.bgp.ipv6Address"}},
		{"loopback", bgp(func(b *NodeBGPSpec) { b.IPv4Address = "127.0.0.1/8" }), []string{"spec.bgp.ipv4Address"}},
		{"garbage", bgp(func(b *NodeBGPSpec) { b.IPv4Address = "ten/8" }), []string{"spec.bgp.ipv4Address"}},
		{"router ID IPv6", bgp(func(b *NodeBGPSpec) { b.RouterID = "fd00::1" }), []string{"spec.bgp.routerID"}},
		{"router ID zero", bgp(func(b *NodeBGPSpec) { b.RouterID = "0.0.0.0" }), []string{"spec.bgp.routerID"}},
		{"cluster ID", bgp(func(b *NodeBGPSpec) { b.RouteReflectorClusterID = "1.0.0.1" }), nil},
		{"cluster ID bad", bgp(func(b *NodeBGPSpec) { b.RouteReflectorClusterID = "1" }), []string{"spec.bgp.routeReflectorClusterID"}},
		{"bad name", func(n *Node) { n.Name = "Node_1" }, []string{"metadata.name"}},
		{"no name", func(n *Node) { n.Name = "" }, []string{"metadata.name"}},
		{"namespace", func(n *Node) { n.Namespace = "default" }, []string{"metadata.namespace"}},
		{"wrong kind", func(n *Node) { n.Kind = "BGPPeer" }, []string{"kind"}},
		{"wrong apiVersion", func(n *Node) { n.APIVersion = "v1" }, []string{"apiVersion"}},
		{"labels", func(n *Node) {
			n.Labels = map[string]string{"ok": "", "example.com/ok": "a.b-c_d", "-bad": "x", "k": "bad value", "/x": "y", "Bad.Prefix/x": "y"}
		}, []string{`metadata.labels["-bad"]`, `metadata.labels["/x"]`, `metadata.labels["Bad.Prefix/x"]`, `metadata.labels["k"]`}},
		{"annotations", func(n *Node) { n.Annotations = map[string]string{"ok": "any value at all", "not ok": ""} }, []string{"metadata.annotations"}},
		{"all errors at once", func(n *Node) {
			n.Name = ""
			*n.Spec.BGP = NodeBGPSpec{ASNumber: ptr(uint32(0)), IPv4Address: "x", IPv6Address: "y", RouterID: "z", RouteReflectorClusterID: "w"}
		}, []string{"metadata.name", "spec.bgp.asNumber", "spec.bgp.ipv4Address", "spec.bgp.ipv6Address", "spec.bgp.routeReflectorClusterID", "spec.bgp.routerID"}},
	})
}

func TestNodeAddresses(t *testing.T) {
	b := &NodeBGPSpec{IPv4Address: "10.0.0.1/24", IPv6Address: "fd00::1/64"}
	if p, ok := b.IPv4(); !ok || p != netip.MustParsePrefix("10.0.0.1/24") {
		t.Errorf("IPv4() = %v, %v", p, ok)
	}
	if p, ok := b.IPv6(); !ok || p != netip.MustParsePrefix("fd00::1/64") {
		t.Errorf("IPv6() = %v, %v", p, ok)
	}
	b = &NodeBGPSpec{IPv4Address: "fd00::1/64"}
	if _, ok := b.IPv4(); ok {
		t.Errorf("IPv4() of an IPv6 address is ok")
	}
}
