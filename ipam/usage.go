package ipam

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"

	"github.com/bgpfabric/bgpfabric/api"
)

// Usage is what `bgpfabric ipam show` prints: every pool and block with
// its affinity and how full it is.
type Usage struct {
	Pools  []PoolUsage
	Blocks []BlockUsage
}

// PoolUsage describes one pool.
type PoolUsage struct {
	Name         string
	CIDR         netip.Prefix
	BlockSize    int
	Disabled     bool
	NodeSelector string
	// Blocks is how many blocks of the pool exist (are claimed).
	Blocks int
	// Allocated counts allocated addresses; Capacity is the pool's size
	// as a power of two (2^Capacity addresses).
	Allocated   int
	CapacityLog int
}

// BlockUsage describes one block.
type BlockUsage struct {
	Name string
	CIDR netip.Prefix
	// Pool is the pool containing the block, or "" for an orphan.
	Pool string
	// Affinity is the node the block is affine to, or "".
	Affinity       string
	StrictAffinity bool
	Allocated      int
	Free           int
	// Borrowed counts addresses allocated for another node than the
	// block's.
	Borrowed int
	Handles  int
}

// Usage reads every pool and block.
func (c *Client) Usage(ctx context.Context) (*Usage, error) {
	pools, raw, err := c.listPools(ctx)
	if err != nil {
		return nil, err
	}
	blocks, err := c.listBlocks(ctx)
	if err != nil {
		return nil, err
	}
	u := &Usage{}
	idx := map[string]int{}
	slices.SortFunc(pools, func(a, b pool) int { return cmp.Compare(a.name, b.name) })
	for _, p := range pools {
		idx[p.name] = len(u.Pools)
		u.Pools = append(u.Pools, PoolUsage{
			Name: p.name, CIDR: p.cidr, BlockSize: p.blockSize, Disabled: p.disabled,
			NodeSelector: raw[p.name].Spec.NodeSelector, CapacityLog: p.cidr.Addr().BitLen() - p.cidr.Bits(),
		})
	}
	for _, b := range blocks {
		bu := blockUsage(b)
		for _, p := range pools {
			if p.containsBlock(bu.CIDR) {
				bu.Pool = p.name
				pu := &u.Pools[idx[p.name]]
				pu.Blocks++
				pu.Allocated += bu.Allocated
				break
			}
		}
		u.Blocks = append(u.Blocks, bu)
	}
	return u, nil
}

func blockUsage(b *api.IPAMBlock) BlockUsage {
	p, _ := b.Prefix()
	host, _ := b.Host()
	s := blockState{b}
	bu := BlockUsage{Name: b.Name, CIDR: p, Affinity: host, StrictAffinity: b.Spec.StrictAffinity, Free: s.free()}
	handles := map[string]bool{}
	for _, a := range s.allocations() {
		bu.Allocated++
		handles[a.Attr.HandleID] = true
		if n := a.Attr.Secondary[AttrNode]; n != "" && n != host {
			bu.Borrowed++
		}
	}
	bu.Handles = len(handles)
	return bu
}

// Size renders 2^CapacityLog as a number, or as "2^N" when it is large.
func (p PoolUsage) Size() string {
	if p.CapacityLog < 40 {
		return fmt.Sprint(uint64(1) << p.CapacityLog)
	}
	return fmt.Sprintf("2^%d", p.CapacityLog)
}

// Allocation is one allocated address with its owner.
type Allocation struct {
	IP     netip.Addr
	Block  netip.Prefix
	Handle string
	// Attrs are the secondary attributes (AttrXxx keys).
	Attrs map[string]string
}

// Allocations lists every allocated address, by block and address.
func (c *Client) Allocations(ctx context.Context) ([]Allocation, error) {
	blocks, err := c.listBlocks(ctx)
	if err != nil {
		return nil, err
	}
	var out []Allocation
	for _, b := range blocks {
		p, _ := b.Prefix()
		for _, a := range (blockState{b}).allocations() {
			out = append(out, Allocation{IP: a.IP, Block: p, Handle: a.Attr.HandleID, Attrs: a.Attr.Secondary})
		}
	}
	return out, nil
}
