package ipam

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
)

// Secondary attribute keys that AutoAssign's callers set on allocations
// and that Check reads.
const (
	// AttrNode is the node the address was allocated for (it differs from
	// the block's affinity for a borrowed address).
	AttrNode = "node"
	// AttrNamespace and AttrEndpoint name the WorkloadEndpoint that uses
	// the address; Check reports the allocation as leaked when that
	// endpoint does not exist.
	AttrNamespace = "namespace"
	AttrEndpoint  = "workloadEndpoint"
	// AttrWorkload is the pod or container name, for operators.
	AttrWorkload = "workload"
	// AttrTimestamp is when the address was allocated (RFC 3339), set by
	// AutoAssign.
	AttrTimestamp = "timestamp"
)

// blockState is the allocation state of one block, decoded for the pure
// operations below. It aliases the block's spec: changes are made in
// place on a copy that the caller owns.
type blockState struct {
	b *api.IPAMBlock
}

// free returns how many addresses of the block are free.
func (s blockState) free() int { return len(s.b.Spec.Unallocated) }

// used returns how many addresses are allocated.
func (s blockState) used() int {
	n := 0
	for _, a := range s.b.Spec.Allocations {
		if a != nil {
			n++
		}
	}
	return n
}

// allocate takes up to n free addresses, in the order of Unallocated, for
// attr and returns them.
func (s blockState) allocate(n int, attr api.AllocationAttribute) []netip.Addr {
	spec := &s.b.Spec
	n = min(n, len(spec.Unallocated))
	if n <= 0 {
		return nil
	}
	idx := s.attrIndex(attr)
	out := make([]netip.Addr, 0, n)
	for _, ord := range spec.Unallocated[:n] {
		ip, err := s.b.OrdinalToIP(ord)
		if err != nil {
			continue // cannot happen for a valid block; the ordinal stays free
		}
		i := idx
		spec.Allocations[ord] = &i
		out = append(out, ip)
	}
	spec.Unallocated = slices.Clone(spec.Unallocated[n:])
	return out
}

// attrIndex returns the index of an attribute equal to attr, appending
// attr when there is none: the allocations of one owner share one entry.
func (s blockState) attrIndex(attr api.AllocationAttribute) int {
	for i, a := range s.b.Spec.Attributes {
		if a.HandleID == attr.HandleID && maps.Equal(a.Secondary, attr.Secondary) {
			return i
		}
	}
	s.b.Spec.Attributes = append(s.b.Spec.Attributes, api.AllocationAttribute{HandleID: attr.HandleID, Secondary: maps.Clone(attr.Secondary)})
	return len(s.b.Spec.Attributes) - 1
}

// attrOf returns the attribute of ordinal ord, if it is allocated and its
// attribute exists.
func (s blockState) attrOf(ord int) (api.AllocationAttribute, bool) {
	spec := &s.b.Spec
	if ord < 0 || ord >= len(spec.Allocations) || spec.Allocations[ord] == nil {
		return api.AllocationAttribute{}, false
	}
	i := *spec.Allocations[ord]
	if i < 0 || i >= len(spec.Attributes) {
		return api.AllocationAttribute{}, false
	}
	return spec.Attributes[i], true
}

// handleOrdinals returns the allocated ordinals whose handle is handle.
func (s blockState) handleOrdinals(handle string) []int {
	var out []int
	for ord := range s.b.Spec.Allocations {
		if a, ok := s.attrOf(ord); ok && a.HandleID == handle {
			out = append(out, ord)
		}
	}
	return out
}

// ipOrdinals returns the ordinals of the allocated addresses among ips
// that lie in the block; with a non-empty handle, only those of that
// handle.
func (s blockState) ipOrdinals(ips []netip.Addr, handle string) []int {
	var out []int
	for _, ip := range ips {
		ord, err := s.b.IPToOrdinal(ip)
		if err != nil {
			continue
		}
		if s.b.Spec.Allocations[ord] == nil {
			continue
		}
		if a, _ := s.attrOf(ord); handle != "" && a.HandleID != handle {
			continue
		}
		out = append(out, ord)
	}
	return out
}

// release frees the given allocated ordinals and returns their addresses.
// Freed ordinals go to the end of Unallocated, so that an address is not
// handed out again right after its release (Calico does the same), and
// attributes that no allocation uses any more are dropped.
func (s blockState) release(ords []int) []netip.Addr {
	spec := &s.b.Spec
	var out []netip.Addr
	for _, ord := range ords {
		if ord < 0 || ord >= len(spec.Allocations) || spec.Allocations[ord] == nil {
			continue
		}
		spec.Allocations[ord] = nil
		spec.Unallocated = append(spec.Unallocated, ord)
		if ip, err := s.b.OrdinalToIP(ord); err == nil {
			out = append(out, ip)
		}
	}
	s.compactAttributes()
	return out
}

// compactAttributes drops attributes no allocation refers to and renumbers
// the allocations.
func (s blockState) compactAttributes() {
	spec := &s.b.Spec
	used := make([]bool, len(spec.Attributes))
	for _, a := range spec.Allocations {
		if a != nil && *a >= 0 && *a < len(used) {
			used[*a] = true
		}
	}
	renum := make([]int, len(spec.Attributes))
	var kept []api.AllocationAttribute
	for i, a := range spec.Attributes {
		if used[i] {
			renum[i] = len(kept)
			kept = append(kept, a)
		}
	}
	if len(kept) == len(spec.Attributes) {
		return
	}
	for ord, a := range spec.Allocations {
		if a != nil && *a >= 0 && *a < len(renum) {
			v := renum[*a]
			spec.Allocations[ord] = &v
		}
	}
	spec.Attributes = kept
}

// allocation is one allocated address of a block with its owner.
type allocation struct {
	IP   netip.Addr
	Attr api.AllocationAttribute
	// BadAttr is set when the allocation points at no attribute.
	BadAttr bool
}

// allocations lists the block's allocated addresses in ordinal order.
func (s blockState) allocations() []allocation {
	var out []allocation
	for ord, a := range s.b.Spec.Allocations {
		if a == nil {
			continue
		}
		ip, err := s.b.OrdinalToIP(ord)
		if err != nil {
			continue
		}
		attr, ok := s.attrOf(ord)
		out = append(out, allocation{IP: ip, Attr: attr, BadAttr: !ok})
	}
	return out
}
