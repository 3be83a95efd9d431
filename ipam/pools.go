package ipam

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/api/selector"
)

// pool is an IPPool decoded for allocation.
type pool struct {
	name      string
	cidr      netip.Prefix
	blockSize int
	disabled  bool
	selector  *selector.Selector // nil: the selector does not parse
}

// family returns 4 or 6.
func (p pool) family() int { return family(p.cidr.Addr()) }

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// decodePool reads an IPPool; a pool whose CIDR does not parse is an
// error, a selector that does not parse selects no node.
func decodePool(p *api.IPPool) (pool, error) {
	cidr, err := netip.ParsePrefix(p.Spec.CIDR)
	if err != nil {
		return pool{}, fmt.Errorf("pool %s: bad cidr %q", p.Name, p.Spec.CIDR)
	}
	bs := p.Spec.BlockSize
	if bs == 0 {
		bs = api.DefaultBlockSizeV4
		if !cidr.Addr().Is4() {
			bs = api.DefaultBlockSizeV6
		}
	}
	out := pool{name: p.Name, cidr: cidr.Masked(), blockSize: bs, disabled: p.Spec.Disabled}
	sel := p.Spec.NodeSelector
	if sel == "" {
		sel = "all()"
	}
	out.selector, _ = selector.Parse(sel)
	return out, nil
}

// selects reports whether the pool is enabled and selects a node with
// these labels.
func (p pool) selects(labels map[string]string) bool {
	return !p.disabled && p.selector != nil && p.selector.Evaluate(labels)
}

// containsBlock reports whether the block prefix b lies in the pool.
func (p pool) containsBlock(b netip.Prefix) bool {
	return b.Bits() >= p.cidr.Bits() && p.cidr.Contains(b.Addr())
}

// choosePools returns the pools of one IP family that a node with labels
// may allocate from, sorted by name. With requested names, exactly those
// pools (an unknown, disabled or non-selecting requested pool, or one of
// the other family, is an error naming it); otherwise every enabled pool
// of the family whose nodeSelector matches.
func choosePools(all []pool, fam int, node string, labels map[string]string, requested []string) ([]pool, error) {
	var out []pool
	if len(requested) > 0 {
		byName := map[string]pool{}
		for _, p := range all {
			byName[p.name] = p
		}
		for _, name := range requested {
			p, ok := byName[name]
			switch {
			case !ok:
				return nil, fmt.Errorf("pool %s: %w", name, ErrPoolNotFound)
			case p.family() != fam:
				return nil, fmt.Errorf("pool %s is IPv%d, not IPv%d", name, p.family(), fam)
			case p.disabled:
				return nil, fmt.Errorf("pool %s is disabled", name)
			case !p.selects(labels):
				return nil, fmt.Errorf("pool %s does not select node %s (nodeSelector)", name, node)
			}
			out = append(out, p)
		}
	} else {
		for _, p := range all {
			if p.family() == fam && p.selects(labels) {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b pool) int { return cmp.Compare(a.name, b.name) })
	out = slices.CompactFunc(out, func(a, b pool) bool { return a.name == b.name })
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no enabled IPv%d pool selects node %s", ErrNoPool, fam, node)
	}
	return out, nil
}

// maxScan bounds the candidates findFreeBlock looks at beyond the number
// of existing blocks, for pools of more blocks than can be enumerated.
const maxScan = 1 << 16

// findFreeBlock returns a block of pool p that overlaps none of taken (the
// CIDRs of existing blocks), starting the search at an offset derived from
// node so that different nodes try different blocks first. ok is false
// when the pool has no free block.
func findFreeBlock(p pool, taken []netip.Prefix, node string) (netip.Prefix, bool) {
	var inPool []netip.Prefix
	for _, t := range taken {
		if t.Overlaps(p.cidr) {
			inPool = append(inPool, t)
		}
	}
	shift := p.cidr.Addr().BitLen() - p.blockSize
	exp := p.blockSize - p.cidr.Bits() // the pool has 2^exp blocks
	n := new(big.Int).Lsh(big.NewInt(1), uint(exp))
	h := fnv.New64a()
	h.Write([]byte(node))
	start := new(big.Int).Mod(new(big.Int).SetUint64(h.Sum64()), n)
	limit := uint64(len(inPool)) + maxScan
	if n.IsUint64() && n.Uint64() < limit {
		limit = n.Uint64()
	}
	base := new(big.Int).SetBytes(p.cidr.Addr().AsSlice())
	i := new(big.Int)
	for k := uint64(0); k < limit; k++ {
		i.Add(start, new(big.Int).SetUint64(k))
		i.Mod(i, n)
		addr := addrFromInt(new(big.Int).Add(base, new(big.Int).Lsh(i, uint(shift))), p.cidr.Addr().Is4())
		cand := netip.PrefixFrom(addr, p.blockSize)
		free := true
		for _, t := range inPool {
			if t.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return cand, true
		}
	}
	return netip.Prefix{}, false
}

// addrFromInt turns an integer back into an address of the family.
func addrFromInt(v *big.Int, is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		v.FillBytes(b[:])
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	v.FillBytes(b[:])
	return netip.AddrFrom16(b)
}
