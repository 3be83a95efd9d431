package api

import (
	"fmt"
	"strings"
)

// Default implements Resource: the CIDR is written in canonical form.
func (b *IPAMBlock) Default() {
	setTypeMeta(&b.TypeMeta, KindIPAMBlock)
	b.Spec.CIDR = canonicalPrefix(b.Spec.CIDR)
}

// Validate implements Resource: beyond the fields, every ordinal is either
// allocated or listed once in Unallocated, and every allocation points at
// an attribute.
func (b *IPAMBlock) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindIPAMBlock, b)
	s := &b.Spec
	pfx, ok := validateNetworkPrefix(&fe, "spec.cidr", s.CIDR)
	if ok {
		validateBlockSize(&fe, "spec.cidr", pfx, pfx.Bits())
		if want := BlockNameFor(pfx); b.Name != "" && b.Name != want {
			fe.add("metadata.name", b.Name, "must be %q for cidr %s", want, s.CIDR)
		}
	}
	if s.Affinity != "" {
		if node, ok := b.Host(); ok {
			validateName(&fe, "spec.affinity", node)
		} else {
			fe.add("spec.affinity", s.Affinity, "must be empty or \"host:<node name>\"")
		}
	}
	validateAllocations(&fe, s, b.NumAddresses())
	return fe.result(KindIPAMBlock, b)
}

// validateAllocations checks the allocation state of a block of n
// addresses.
func validateAllocations(fe *fieldErrors, s *IPAMBlockSpec, n int) {
	if n == 0 {
		return
	}
	if len(s.Allocations) != n {
		fe.add("spec.allocations", len(s.Allocations), "must have %d entries, one per address of the block", n)
		return
	}
	for i, a := range s.Allocations {
		if a != nil && (*a < 0 || *a >= len(s.Attributes)) {
			fe.add(fmt.Sprintf("spec.allocations[%d]", i), *a, "must index spec.attributes (0 to %d)", len(s.Attributes)-1)
		}
	}
	free := make([]bool, n)
	for k, i := range s.Unallocated {
		p := fmt.Sprintf("spec.unallocated[%d]", k)
		switch {
		case i < 0 || i >= n:
			fe.add(p, i, "must be an ordinal from 0 to %d", n-1)
		case free[i]:
			fe.add(p, i, "ordinal is listed twice")
		case s.Allocations[i] != nil:
			free[i] = true
			fe.add(p, i, "ordinal is also allocated")
		default:
			free[i] = true
		}
	}
	var missing []string
	for i, a := range s.Allocations {
		if a == nil && !free[i] {
			missing = append(missing, fmt.Sprint(i))
		}
	}
	if len(missing) > 0 {
		if len(missing) > 8 {
			missing = append(missing[:8], "...")
		}
		fe.add("spec.unallocated", nil, "is missing free ordinals %s", strings.Join(missing, ", "))
	}
}
