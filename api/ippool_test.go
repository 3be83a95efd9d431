package api

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIPPoolDefault(t *testing.T) {
	tests := []struct {
		in, want IPPoolSpec
	}{
		{IPPoolSpec{CIDR: "10.244.0.0/16"}, IPPoolSpec{CIDR: "10.244.0.0/16", BlockSize: 26, VXLANMode: VXLANNever, NodeSelector: "all()"}},
		{IPPoolSpec{CIDR: "FD00:10::/64"}, IPPoolSpec{CIDR: "fd00:10::/64", BlockSize: 122, VXLANMode: VXLANNever, NodeSelector: "all()"}},
		{IPPoolSpec{CIDR: "10.244.0.0/16", BlockSize: 24, VXLANMode: VXLANAlways, NodeSelector: "has(x)"},
			IPPoolSpec{CIDR: "10.244.0.0/16", BlockSize: 24, VXLANMode: VXLANAlways, NodeSelector: "has(x)"}},
		{IPPoolSpec{CIDR: "10.244.0.1/16"}, IPPoolSpec{CIDR: "10.244.0.1/16", BlockSize: 26, VXLANMode: VXLANNever, NodeSelector: "all()"}},
		{IPPoolSpec{CIDR: "bad"}, IPPoolSpec{CIDR: "bad", VXLANMode: VXLANNever, NodeSelector: "all()"}},
	}
	for _, tt := range tests {
		p := &IPPool{Spec: tt.in}
		p.Default()
		if diff := cmp.Diff(tt.want, p.Spec); diff != "" {
			t.Errorf("Default(%+v) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestIPPoolValidate(t *testing.T) {
	base := func() *IPPool {
		return &IPPool{ObjectMeta: ObjectMeta{Name: "pool"}, Spec: IPPoolSpec{CIDR: "10.244.0.0/16"}}
	}
	spec := func(f func(*IPPoolSpec)) func(*IPPool) { return func(p *IPPool) { f(&p.Spec) } }
	runValidation(t, base, []validationCase[*IPPool]{
		{"valid", func(*IPPool) {}, nil},
		{"v6", spec(func(s *IPPoolSpec) { s.CIDR = "fd00:10::/48" }), nil},
		{"no cidr", spec(func(s *IPPoolSpec) { s.CIDR = "" }), []string{"spec.cidr"}},
		{"host bits", spec(func(s *IPPoolSpec) { s.CIDR = "10.244.0.1/16" }), []string{"spec.cidr"}},
		{"bare IP", spec(func(s *IPPoolSpec) { s.CIDR = "10.244.0.0" }), []string{"spec.cidr"}},
		{"loopback", spec(func(s *IPPoolSpec) { s.CIDR = "127.0.0.0/16" }), []string{"spec.cidr"}},
		{"everything", spec(func(s *IPPoolSpec) { s.CIDR = "0.0.0.0/0" }), []string{"spec.cidr"}},
		{"link-local v6", spec(func(s *IPPoolSpec) { s.CIDR = "fe80::/64" }), []string{"spec.cidr"}},
		{"block 32", spec(func(s *IPPoolSpec) { s.BlockSize = 32 }), nil},
		{"block 20", spec(func(s *IPPoolSpec) { s.BlockSize = 20 }), nil},
		{"block 19", spec(func(s *IPPoolSpec) { s.BlockSize = 19 }), []string{"spec.blockSize"}},
		{"block 33", spec(func(s *IPPoolSpec) { s.BlockSize = 33 }), []string{"spec.blockSize"}},
		{"block shorter than pool", spec(func(s *IPPoolSpec) { s.CIDR, s.BlockSize = "10.244.0.0/28", 26 }), []string{"spec.blockSize"}},
		{"v6 block 116", spec(func(s *IPPoolSpec) { s.CIDR, s.BlockSize = "fd00::/64", 116 }), nil},
		{"v6 block 115", spec(func(s *IPPoolSpec) { s.CIDR, s.BlockSize = "fd00::/64", 115 }), []string{"spec.blockSize"}},
		{"v6 block v4 size", spec(func(s *IPPoolSpec) { s.CIDR, s.BlockSize = "fd00::/64", 26 }), []string{"spec.blockSize"}},
		{"vxlan", spec(func(s *IPPoolSpec) { s.VXLANMode = "always" }), []string{"spec.vxlanMode"}},
		{"vxlan never", spec(func(s *IPPoolSpec) { s.VXLANMode = VXLANNever }), nil},
		// No overlay exists: the encapsulating modes are refused.
		{"vxlan always", spec(func(s *IPPoolSpec) { s.VXLANMode = VXLANAlways }), []string{"spec.vxlanMode"}},
		{"vxlan cross-subnet", spec(func(s *IPPoolSpec) { s.VXLANMode = VXLANCrossSubnet }), []string{"spec.vxlanMode"}},
		{"nat outgoing", spec(func(s *IPPoolSpec) { s.NATOutgoing = true }), nil},
		{"node selector", spec(func(s *IPPoolSpec) { s.NodeSelector = "zone in {'a'" }), []string{"spec.nodeSelector"}},
	})
}
