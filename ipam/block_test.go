package ipam

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

// addrOpt lets go-cmp compare netip values.
var addrOpt = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func newBlock(t *testing.T, cidr string) *api.IPAMBlock {
	t.Helper()
	b, err := api.NewIPAMBlock(netip.MustParsePrefix(cidr), api.HostAffinity("n1"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestBlockAllocateRelease(t *testing.T) {
	b := newBlock(t, "10.0.0.0/30")
	s := blockState{b}
	a1 := api.AllocationAttribute{HandleID: "h1", Secondary: map[string]string{"k": "v"}}
	a2 := api.AllocationAttribute{HandleID: "h2"}

	if diff := cmp.Diff(addrs("10.0.0.0", "10.0.0.1"), s.allocate(2, a1), addrOpt); diff != "" {
		t.Fatalf("allocate h1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(addrs("10.0.0.2", "10.0.0.3"), s.allocate(5, a2), addrOpt); diff != "" {
		t.Fatalf("allocate h2 more than free (-want +got):\n%s", diff)
	}
	if got := s.allocate(1, a2); got != nil {
		t.Fatalf("allocate from full block = %v", got)
	}
	if len(b.Spec.Attributes) != 2 {
		t.Fatalf("attributes = %v, want one per owner", b.Spec.Attributes)
	}
	if err := b.Validate(); err != nil {
		t.Fatalf("block invalid after allocation: %v", err)
	}

	// Releasing h1 drops its attribute and renumbers h2's allocations.
	if diff := cmp.Diff(addrs("10.0.0.0", "10.0.0.1"), s.release(s.handleOrdinals("h1")), addrOpt); diff != "" {
		t.Fatalf("release h1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]api.AllocationAttribute{a2}, b.Spec.Attributes); diff != "" {
		t.Fatalf("attributes after release (-want +got):\n%s", diff)
	}
	if got := s.handleOrdinals("h2"); !cmp.Equal(got, []int{2, 3}) {
		t.Fatalf("h2 ordinals = %v", got)
	}
	// Freed addresses are handed out last.
	if diff := cmp.Diff([]int{0, 1}, b.Spec.Unallocated); diff != "" {
		t.Fatalf("unallocated (-want +got):\n%s", diff)
	}
	if err := b.Validate(); err != nil {
		t.Fatalf("block invalid after release: %v", err)
	}
	// Releasing again, or an address of another handle, does nothing.
	if got := s.release(s.ipOrdinals(addrs("10.0.0.0", "10.0.0.2"), "h1")); got != nil {
		t.Fatalf("release of free / foreign addresses = %v", got)
	}
	if got := s.release(s.ipOrdinals(addrs("10.0.0.2", "192.0.2.1"), "")); !cmp.Equal(got, addrs("10.0.0.2"), addrOpt) {
		t.Fatalf("release by ip = %v", got)
	}
	if s.used() != 1 || s.free() != 3 {
		t.Fatalf("used %d free %d, want 1 and 3", s.used(), s.free())
	}
}

func TestFindFreeBlock(t *testing.T) {
	pfx := netip.MustParsePrefix
	p4 := pool{name: "p4", cidr: pfx("10.0.0.0/24"), blockSize: 26}
	p6 := pool{name: "p6", cidr: pfx("fd00::/48"), blockSize: 122}

	// Every block of a pool is found exactly once, then none.
	var taken []netip.Prefix
	seen := map[netip.Prefix]bool{}
	for range 4 {
		b, ok := findFreeBlock(p4, taken, "node-a")
		if !ok || seen[b] || !p4.containsBlock(b) || b.Bits() != 26 {
			t.Fatalf("findFreeBlock = %v, %v (taken %v)", b, ok, taken)
		}
		seen[b] = true
		taken = append(taken, b)
	}
	if b, ok := findFreeBlock(p4, taken, "node-a"); ok {
		t.Fatalf("full pool gave %v", b)
	}
	// A block of another size that overlaps counts as taken.
	if b, ok := findFreeBlock(p4, []netip.Prefix{pfx("10.0.0.0/25"), pfx("10.0.0.128/26")}, "x"); !ok || b != pfx("10.0.0.192/26") {
		t.Fatalf("with overlapping /25: %v %v", b, ok)
	}
	// Huge IPv6 pools work and nodes start at different offsets.
	b1, ok1 := findFreeBlock(p6, nil, "node-a")
	b2, ok2 := findFreeBlock(p6, nil, "node-b")
	if !ok1 || !ok2 || b1 == b2 || !p6.containsBlock(b1) || b1.Bits() != 122 {
		t.Fatalf("v6 blocks %v %v", b1, b2)
	}
	if b, ok := findFreeBlock(p6, []netip.Prefix{b1}, "node-a"); !ok || b == b1 {
		t.Fatalf("v6 next block %v", b)
	}
}

func TestChoosePools(t *testing.T) {
	mk := func(name, cidr, sel string, disabled bool) pool {
		return pool{name: name, cidr: netip.MustParsePrefix(cidr), blockSize: 26, disabled: disabled, selector: selector.MustParse(sel)}
	}
	all := []pool{
		mk("b", "10.1.0.0/16", "all()", false),
		mk("a", "10.0.0.0/16", "rack == 'r1'", false),
		mk("off", "10.2.0.0/16", "all()", true),
		mk("v6", "fd00::/48", "all()", false),
	}
	names := func(ps []pool) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.name)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		fam       int
		labels    map[string]string
		requested []string
		want      []string
		wantErr   string
	}{
		{name: "selected and sorted", fam: 4, labels: map[string]string{"rack": "r1"}, want: []string{"a", "b"}},
		{name: "selector excludes", fam: 4, want: []string{"b"}},
		{name: "v6", fam: 6, want: []string{"v6"}},
		{name: "requested", fam: 4, requested: []string{"b", "a", "b"}, labels: map[string]string{"rack": "r1"}, want: []string{"a", "b"}},
		{name: "requested disabled", fam: 4, requested: []string{"off"}, wantErr: "pool off is disabled"},
		{name: "requested unselected", fam: 4, requested: []string{"a"}, wantErr: "pool a does not select node n1"},
		{name: "requested missing", fam: 4, requested: []string{"zz"}, wantErr: "pool zz: no such pool"},
		{name: "requested wrong family", fam: 6, requested: []string{"b"}, wantErr: "pool b is IPv4, not IPv6"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := choosePools(all, tc.fam, "n1", tc.labels, tc.requested)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, names(got)); diff != "" {
				t.Fatalf("pools (-want +got):\n%s", diff)
			}
		})
	}
}
