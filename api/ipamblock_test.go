package api

import (
	"net/netip"
	"testing"
)

func TestIPAMBlockValidate(t *testing.T) {
	spec := func(f func(*IPAMBlockSpec)) func(*IPAMBlock) { return func(b *IPAMBlock) { f(&b.Spec) } }
	runValidation(t, exampleBlock, []validationCase[*IPAMBlock]{
		{"valid", func(*IPAMBlock) {}, nil},
		{"no affinity", spec(func(s *IPAMBlockSpec) { s.Affinity = "" }), nil},
		{"bad affinity", spec(func(s *IPAMBlockSpec) { s.Affinity = "node-1" }), []string{"spec.affinity"}},
		{"bad affinity node", spec(func(s *IPAMBlockSpec) { s.Affinity = "host:" }), []string{"spec.affinity"}},
		{"wrong name", func(b *IPAMBlock) { b.Name = "block-1" }, []string{"metadata.name"}},
		{"host bits", spec(func(s *IPAMBlockSpec) { s.CIDR = "10.244.0.1/30" }), []string{"spec.cidr"}},
		{"too big", func(b *IPAMBlock) { b.Name, b.Spec.CIDR = "10-0-0-0-8", "10.0.0.0/8" }, []string{"spec.cidr"}},
		{"allocations short", spec(func(s *IPAMBlockSpec) { s.Allocations = s.Allocations[:3] }), []string{"spec.allocations"}},
		{"attribute index", spec(func(s *IPAMBlockSpec) { s.Allocations[0] = ptr(2) }), []string{"spec.allocations[0]"}},
		{"negative index", spec(func(s *IPAMBlockSpec) { s.Allocations[2] = ptr(-1) }), []string{"spec.allocations[2]"}},
		{"free and allocated", spec(func(s *IPAMBlockSpec) { s.Unallocated = []int{3, 1, 0} }), []string{"spec.unallocated[2]"}},
		{"free twice", spec(func(s *IPAMBlockSpec) { s.Unallocated = []int{3, 1, 3} }), []string{"spec.unallocated[2]"}},
		{"out of range", spec(func(s *IPAMBlockSpec) { s.Unallocated = []int{3, 1, 4} }), []string{"spec.unallocated[2]"}},
		{"lost ordinal", spec(func(s *IPAMBlockSpec) { s.Unallocated = []int{3} }), []string{"spec.unallocated"}},
	})
}

func TestNewIPAMBlock(t *testing.T) {
	b, err := NewIPAMBlock(netip.MustParsePrefix("fd00:1::/126"), HostAffinity("node-1"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "fd00-1---126" || len(b.Spec.Allocations) != 4 || len(b.Spec.Unallocated) != 4 {
		t.Errorf("NewIPAMBlock: %+v", b)
	}
	if err := b.Validate(); err != nil {
		t.Errorf("new block invalid: %v", err)
	}
	if h, ok := b.Host(); !ok || h != "node-1" {
		t.Errorf("Host() = %q, %v", h, ok)
	}
	for _, bad := range []string{"10.0.0.0/8", "10.0.0.1/26", "fd00::/64"} {
		if _, err := NewIPAMBlock(netip.MustParsePrefix(bad), ""); err == nil {
			t.Errorf("NewIPAMBlock(%s) succeeded", bad)
		}
	}
}

func TestBlockNameFor(t *testing.T) {
	tests := []struct{ cidr, want string }{
		{"10.0.0.0/26", "10-0-0-0-26"},
		{"10.0.0.7/26", "10-0-0-0-26"},
		{"fd00:1::/122", "fd00-1---122"},
		{"fd00:1:2:3:4:5:6:40/122", "fd00-1-2-3-4-5-6-40-122"},
	}
	for _, tt := range tests {
		if got := BlockNameFor(netip.MustParsePrefix(tt.cidr)); got != tt.want {
			t.Errorf("BlockNameFor(%s) = %q, want %q", tt.cidr, got, tt.want)
		}
	}
}

func TestBlockOrdinals(t *testing.T) {
	tests := []struct {
		cidr string
		n    int
		ord  int
		ip   string
	}{
		{"10.0.0.0/26", 64, 0, "10.0.0.0"},
		{"10.0.0.0/26", 64, 63, "10.0.0.63"},
		{"10.0.240.0/20", 4096, 300, "10.0.241.44"}, // carries into the next byte
		{"192.168.1.8/32", 1, 0, "192.168.1.8"},
		{"fd00::ff00/120", 256, 255, "fd00::ffff"},
		{"fd00::f000/116", 4096, 4095, "fd00::ffff"},
		{"fd00::1:0/122", 64, 17, "fd00::1:11"},
	}
	for _, tt := range tests {
		pfx := netip.MustParsePrefix(tt.cidr)
		b := &IPAMBlock{Spec: IPAMBlockSpec{CIDR: pfx.String()}}
		if got := b.NumAddresses(); got != tt.n {
			t.Errorf("%s: NumAddresses() = %d, want %d", tt.cidr, got, tt.n)
		}
		want := netip.MustParseAddr(tt.ip)
		ip, err := b.OrdinalToIP(tt.ord)
		if err != nil || ip != want {
			t.Errorf("%s: OrdinalToIP(%d) = %v, %v; want %v", pfx, tt.ord, ip, err, want)
		}
		ord, err := b.IPToOrdinal(want)
		if err != nil || ord != tt.ord {
			t.Errorf("%s: IPToOrdinal(%v) = %d, %v; want %d", pfx, want, ord, err, tt.ord)
		}
	}
	b := &IPAMBlock{Spec: IPAMBlockSpec{CIDR: "10.0.0.0/30"}}
	for _, i := range []int{-1, 4} {
		if _, err := b.OrdinalToIP(i); err == nil {
			t.Errorf("OrdinalToIP(%d) succeeded", i)
		}
	}
	for _, ip := range []string{"10.0.0.4", "fd00::1", "9.255.255.255"} {
		if _, err := b.IPToOrdinal(netip.MustParseAddr(ip)); err == nil {
			t.Errorf("IPToOrdinal(%s) succeeded", ip)
		}
	}
	if ord, err := b.IPToOrdinal(netip.MustParseAddr("::ffff:10.0.0.3")); err != nil || ord != 3 {
		t.Errorf("IPToOrdinal(mapped) = %d, %v", ord, err)
	}
	bad := &IPAMBlock{Spec: IPAMBlockSpec{CIDR: "nope"}}
	if bad.NumAddresses() != 0 {
		t.Error("NumAddresses of a bad CIDR is not 0")
	}
	if _, err := bad.OrdinalToIP(0); err == nil {
		t.Error("OrdinalToIP on a bad CIDR succeeded")
	}
}
