package api

import (
	"net/netip"
)

// IPPool is a range of addresses that IPAM hands out to workloads, in
// blocks of BlockSize affine to one node each.
type IPPool struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       IPPoolSpec `json:"spec"`
}

// IPPoolSpec is a pool's configuration.
type IPPoolSpec struct {
	// CIDR is the pool's network, without host bits: "10.244.0.0/16".
	CIDR string `json:"cidr"`
	// BlockSize is the prefix length of the pool's blocks: 20..32 for
	// IPv4 (default 26), 116..128 for IPv6 (default 122), and no shorter
	// than the pool's own prefix.
	BlockSize int `json:"blockSize,omitempty"`
	// VXLANMode says when traffic between workloads is encapsulated. Only
	// Never (the default) is accepted: bgpfabric routes workload traffic
	// natively and has no overlay, so Always and CrossSubnet are refused.
	VXLANMode VXLANMode `json:"vxlanMode,omitempty"`
	// NATOutgoing masquerades traffic from the pool's addresses to
	// destinations outside every pool to the node's address (felix's
	// nftables nat chain), as in Calico.
	NATOutgoing bool `json:"natOutgoing,omitempty"`
	// Disabled stops IPAM from allocating from the pool.
	Disabled bool `json:"disabled,omitempty"`
	// NodeSelector selects the nodes that may allocate from the pool
	// (default "all()").
	NodeSelector string `json:"nodeSelector,omitempty"`
}

// VXLANMode is when a pool's traffic is encapsulated in VXLAN.
type VXLANMode string

// VXLAN modes.
const (
	VXLANNever       VXLANMode = "Never"       // routed, never encapsulated (default)
	VXLANAlways      VXLANMode = "Always"      // Calico's: always encapsulated (refused)
	VXLANCrossSubnet VXLANMode = "CrossSubnet" // Calico's: encapsulated to other subnets (refused)
)

// Default block sizes and the ranges they may take.
const (
	DefaultBlockSizeV4 = 26
	DefaultBlockSizeV6 = 122
	MinBlockSizeV4     = 20
	MinBlockSizeV6     = 116
)

// reservedNets may not overlap a pool: loopback, link-local and multicast.
var reservedNets = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

func init() {
	register(KindInfo{Kind: KindIPPool, Plural: "ippools", Short: []string{"ippool", "pool"}, New: func() Resource { return &IPPool{} }})
}

// GetTypeMeta implements Resource.
func (p *IPPool) GetTypeMeta() *TypeMeta { return &p.TypeMeta }

// GetObjectMeta implements Resource.
func (p *IPPool) GetObjectMeta() *ObjectMeta { return &p.ObjectMeta }

// DeepCopyResource implements Resource.
func (p *IPPool) DeepCopyResource() Resource { return deepCopy(p) }

// Default implements Resource.
func (p *IPPool) Default() {
	setTypeMeta(&p.TypeMeta, KindIPPool)
	s := &p.Spec
	s.CIDR = canonicalPrefix(s.CIDR)
	if pfx, err := netip.ParsePrefix(s.CIDR); err == nil && s.BlockSize == 0 {
		s.BlockSize = DefaultBlockSizeV4
		if !pfx.Addr().Is4() {
			s.BlockSize = DefaultBlockSizeV6
		}
	}
	if s.VXLANMode == "" {
		s.VXLANMode = VXLANNever
	}
	if s.NodeSelector == "" {
		s.NodeSelector = "all()"
	}
}

// Validate implements Resource.
func (p *IPPool) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindIPPool, p)
	s := &p.Spec
	if pfx, ok := validateNetworkPrefix(&fe, "spec.cidr", s.CIDR); ok {
		for _, r := range reservedNets {
			if pfx.Overlaps(r) {
				fe.add("spec.cidr", s.CIDR, "overlaps reserved range %s", r)
				break
			}
		}
		validateBlockSize(&fe, "spec.blockSize", pfx, s.BlockSize)
	}
	switch s.VXLANMode {
	case "", VXLANNever:
	case VXLANAlways, VXLANCrossSubnet:
		fe.add("spec.vxlanMode", string(s.VXLANMode), "is not implemented: bgpfabric has no VXLAN overlay, pools are routed natively (must be Never)")
	default:
		fe.add("spec.vxlanMode", string(s.VXLANMode), "must be Never")
	}
	if s.NodeSelector != "" {
		validateSelector(&fe, "spec.nodeSelector", s.NodeSelector)
	}
	return fe.result(KindIPPool, p)
}

// validateNetworkPrefix checks a required network CIDR without host bits.
func validateNetworkPrefix(fe *fieldErrors, path, s string) (netip.Prefix, bool) {
	if s == "" {
		fe.add(path, nil, "is required")
		return netip.Prefix{}, false
	}
	pfx, err := parsePrefix(s)
	switch {
	case err != nil:
		fe.add(path, s, "%v", err)
	case pfx.Addr().Zone() != "" || pfx.Addr().Is4In6():
		fe.add(path, s, "must be a plain IPv4 or IPv6 CIDR")
	case pfx != pfx.Masked():
		fe.add(path, s, "has host bits set: the network is %s", pfx.Masked())
	default:
		return pfx, true
	}
	return netip.Prefix{}, false
}

// validateBlockSize checks the block size of a pool or block of network
// pfx; a zero size is taken as unset.
func validateBlockSize(fe *fieldErrors, path string, pfx netip.Prefix, size int) {
	lo, hi := MinBlockSizeV4, 32
	if !pfx.Addr().Is4() {
		lo, hi = MinBlockSizeV6, 128
	}
	switch {
	case size == 0:
	case size < lo || size > hi:
		fe.add(path, size, "must be from %d to %d for an IPv%d pool", lo, hi, ipVersion(pfx.Addr()))
	case size < pfx.Bits():
		fe.add(path, size, "must not be shorter than the pool's prefix length %d", pfx.Bits())
	}
}
