package api

import (
	"fmt"
	"net/netip"
	"strings"
)

// IPAMBlock is one block of an IPPool, usually affine to one node, with the
// allocation state of each of its addresses (Calico's model). Address i of
// the block ("ordinal" i) is allocated when Allocations[i] is set, and then
// Attributes[*Allocations[i]] describes its owner; otherwise i is listed in
// Unallocated, the order in which free addresses are handed out.
type IPAMBlock struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       IPAMBlockSpec `json:"spec"`
}

// IPAMBlockSpec is the block's state.
type IPAMBlockSpec struct {
	// CIDR is the block's network; the block's name is BlockNameFor(CIDR).
	CIDR string `json:"cidr"`
	// Affinity is "host:<node name>", or empty for a block that no node
	// claims.
	Affinity string `json:"affinity,omitempty"`
	// StrictAffinity forbids other nodes to borrow from the block.
	StrictAffinity bool `json:"strictAffinity,omitempty"`
	// Allocations has one entry per address: an index into Attributes, or
	// null when the address is free.
	Allocations []*int `json:"allocations"`
	// Unallocated lists the free ordinals.
	Unallocated []int `json:"unallocated"`
	// Attributes describe the owners of allocations.
	Attributes []AllocationAttribute `json:"attributes,omitempty"`
	// Deleted marks a block being released, so that no one allocates from
	// it in the meantime.
	Deleted bool `json:"deleted,omitempty"`
}

// AllocationAttribute describes who holds an allocation.
type AllocationAttribute struct {
	// HandleID groups the allocations of one owner (e.g. one container)
	// so that they are released together.
	HandleID string `json:"handleID,omitempty"`
	// Secondary holds free-form details, e.g. node, namespace and pod.
	Secondary map[string]string `json:"secondary,omitempty"`
}

// hostAffinityPrefix begins the Affinity of a node's block.
const hostAffinityPrefix = "host:"

func init() {
	register(KindInfo{Kind: KindIPAMBlock, Plural: "ipamblocks", Short: []string{"block"}, New: func() Resource { return &IPAMBlock{} }})
}

// GetTypeMeta implements Resource.
func (b *IPAMBlock) GetTypeMeta() *TypeMeta { return &b.TypeMeta }

// GetObjectMeta implements Resource.
func (b *IPAMBlock) GetObjectMeta() *ObjectMeta { return &b.ObjectMeta }

// DeepCopyResource implements Resource.
func (b *IPAMBlock) DeepCopyResource() Resource { return deepCopy(b) }

// BlockNameFor returns the name of the block with the given CIDR: the
// address and prefix length with "." and ":" and "/" turned into "-", e.g.
// "10-0-0-0-26" or "fd00-1---122".
func BlockNameFor(cidr netip.Prefix) string {
	return strings.NewReplacer(".", "-", ":", "-", "/", "-").Replace(cidr.Masked().String())
}

// HostAffinity returns the Affinity of a block affine to node.
func HostAffinity(node string) string { return hostAffinityPrefix + node }

// NewIPAMBlock returns a block for cidr with every address free, in
// ordinal order, named by BlockNameFor. cidr must have no host bits and a
// prefix length allowed as an IPPool block size.
func NewIPAMBlock(cidr netip.Prefix, affinity string) (*IPAMBlock, error) {
	b := &IPAMBlock{Spec: IPAMBlockSpec{CIDR: cidr.String(), Affinity: affinity}}
	var fe fieldErrors
	if _, ok := validateNetworkPrefix(&fe, "cidr", b.Spec.CIDR); ok {
		validateBlockSize(&fe, "cidr", cidr, cidr.Bits())
	}
	if len(fe) > 0 {
		return nil, fmt.Errorf("new IPAM block: %v", fe[0])
	}
	b.Name = BlockNameFor(cidr)
	setTypeMeta(&b.TypeMeta, KindIPAMBlock)
	n := b.NumAddresses()
	b.Spec.Allocations = make([]*int, n)
	b.Spec.Unallocated = make([]int, n)
	for i := range n {
		b.Spec.Unallocated[i] = i
	}
	return b, nil
}

// Prefix returns the parsed CIDR.
func (b *IPAMBlock) Prefix() (netip.Prefix, error) {
	p, err := netip.ParsePrefix(b.Spec.CIDR)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("block %s: bad cidr %q", b.Name, b.Spec.CIDR)
	}
	return p, nil
}

// Host returns the node a block is affine to, if any.
func (b *IPAMBlock) Host() (string, bool) {
	return strings.CutPrefix(b.Spec.Affinity, hostAffinityPrefix)
}

// NumAddresses returns the number of addresses in the block, or 0 if its
// CIDR does not parse or is larger than any allowed block (2^12).
func (b *IPAMBlock) NumAddresses() int {
	p, err := b.Prefix()
	if err != nil {
		return 0
	}
	host := p.Addr().BitLen() - p.Bits()
	if host > 128-MinBlockSizeV6 {
		return 0
	}
	return 1 << host
}

// OrdinalToIP returns address i of the block.
func (b *IPAMBlock) OrdinalToIP(i int) (netip.Addr, error) {
	p, err := b.Prefix()
	if err != nil {
		return netip.Addr{}, err
	}
	if n := b.NumAddresses(); i < 0 || i >= n {
		return netip.Addr{}, fmt.Errorf("block %s: ordinal %d out of range [0, %d)", b.Spec.CIDR, i, n)
	}
	a := p.Masked().Addr().As16()
	carry := uint(i)
	for k := 15; k >= 0 && carry > 0; k-- {
		sum := uint(a[k]) + carry&0xff
		a[k] = byte(sum)
		carry = carry>>8 + sum>>8
	}
	ip := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		ip = ip.Unmap()
	}
	return ip, nil
}

// IPToOrdinal returns the ordinal of ip in the block.
func (b *IPAMBlock) IPToOrdinal(ip netip.Addr) (int, error) {
	p, err := b.Prefix()
	if err != nil {
		return 0, err
	}
	if p.Addr().Is4() {
		ip = ip.Unmap()
	}
	if !p.Contains(ip) || b.NumAddresses() == 0 {
		return 0, fmt.Errorf("block %s does not contain %s", b.Spec.CIDR, ip)
	}
	x, base := ip.As16(), p.Masked().Addr().As16()
	ord := 0
	for k := 12; k < 16; k++ { // blocks hold at most 2^12 addresses
		ord = ord<<8 | int(x[k]-base[k])
	}
	return ord, nil
}
