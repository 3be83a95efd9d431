package ipam_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/bgpfabric/bgpfabric/ipam"
)

// TestAssignIPs: fixed addresses are allocated exactly, in an existing
// block of another node or a block claimed for this one; an address in no
// pool, in a disabled pool or already in use is refused, and a refusal of
// the second address releases the first.
func TestAssignIPs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	off := ipPool("off", "10.9.0.0/24", 26)
	off.Spec.Disabled = true
	e.apply(node("n1", nil), node("n2", nil), ipPool("p4", "10.0.0.0/24", 26), ipPool("p6", "fd00:1::/120", 122), off)
	c := e.ipam(ipam.Config{})
	other := assign(t, e, c, "n2", "other", 1, 0) // n2 claims a block

	ip4, ip6 := other.IPv4[0].Next(), netip.MustParseAddr("fd00:1::42")
	if err := c.AssignIPs(e.ctx, ipam.AssignIPArgs{Node: "n1", Handle: "fixed", IPs: []netip.Addr{ip4, ip6}}); err != nil {
		t.Fatal(err)
	}
	got := e.allocations()
	if got[ip4] != "fixed" || got[ip6] != "fixed" {
		t.Fatalf("allocations %v: want %s and %s under handle fixed", got, ip4, ip6)
	}
	for cidr, b := range e.blocks() {
		p := netip.MustParsePrefix(cidr)
		if p.Contains(ip4) && b.Spec.Affinity != "host:n2" {
			t.Errorf("%s's block %s changed affinity to %s", ip4, cidr, b.Spec.Affinity)
		}
		if p.Contains(ip6) && (b.Spec.Affinity != "host:n1" || p != netip.MustParsePrefix("fd00:1::40/122")) {
			t.Errorf("%s in block %s of %s, want fd00:1::40/122 claimed for n1", ip6, cidr, b.Spec.Affinity)
		}
	}
	before := e.allocations()
	free := netip.MustParseAddr("10.0.0.200")
	for _, tc := range []struct {
		name string
		ips  []netip.Addr
		want error
	}{
		{"in use", []netip.Addr{ip4}, ipam.ErrInUse},
		{"no pool", []netip.Addr{netip.MustParseAddr("10.8.0.1")}, ipam.ErrNotInPool},
		{"disabled pool", []netip.Addr{netip.MustParseAddr("10.9.0.1")}, ipam.ErrPoolDisabled},
		{"second in use rolls back the first", []netip.Addr{free, ip6}, ipam.ErrInUse},
	} {
		err := c.AssignIPs(e.ctx, ipam.AssignIPArgs{Node: "n1", Handle: "h-" + tc.name, IPs: tc.ips})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	after := e.allocations()
	if len(after) != len(before) {
		t.Errorf("refused assignments changed the allocations: %v, before %v", after, before)
	}
	if _, ok := after[free]; ok {
		t.Errorf("%s stayed allocated after the second address was refused", free)
	}
	// Released, an address can be assigned again.
	if _, err := c.ReleaseIPsOfHandle(e.ctx, []netip.Addr{ip4}, "fixed"); err != nil {
		t.Fatal(err)
	}
	if err := c.AssignIPs(e.ctx, ipam.AssignIPArgs{Node: "n1", Handle: "again", IPs: []netip.Addr{ip4}}); err != nil {
		t.Errorf("assigning a released address: %v", err)
	}
}
