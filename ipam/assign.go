package ipam

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// AssignArgs is what AutoAssign allocates.
type AssignArgs struct {
	// Node is the node the addresses are for; it must be registered (a
	// Node resource), since pools select nodes by its labels.
	Node string
	// Handle identifies the owner, for ReleaseByHandle.
	Handle string
	// Num4 and Num6 are how many IPv4 and IPv6 addresses to allocate.
	Num4, Num6 int
	// Pools4 and Pools6 restrict allocation to these pools (by name) of
	// each family. Empty means every enabled pool of the family whose
	// nodeSelector selects the node.
	Pools4, Pools6 []string
	// Attrs are stored as the allocations' secondary attributes (see the
	// AttrXxx keys); AutoAssign adds AttrNode and AttrTimestamp.
	Attrs map[string]string
}

// Assigned are the addresses AutoAssign allocated.
type Assigned struct {
	IPv4, IPv6 []netip.Addr
}

// All returns the IPv4 then the IPv6 addresses.
func (a *Assigned) All() []netip.Addr { return append(slices.Clone(a.IPv4), a.IPv6...) }

// AutoAssign allocates Num4 IPv4 and Num6 IPv6 addresses for a node under
// a handle: from the node's blocks, then from a block it claims, then
// borrowed (see the package doc). Either every address is allocated, or
// none is: on failure what was allocated is released again and the error
// says why (an *ExhaustedError, ErrTooManyConflicts, ErrNoPool,
// ErrNodeNotFound, or the datastore's error).
func (c *Client) AutoAssign(ctx context.Context, args AssignArgs) (*Assigned, error) {
	switch {
	case args.Node == "":
		return nil, errors.New("assigning addresses: node is required")
	case args.Handle == "":
		return nil, errors.New("assigning addresses: handle is required")
	case args.Num4 < 0 || args.Num6 < 0 || args.Num4+args.Num6 == 0:
		return nil, fmt.Errorf("assigning addresses: want a positive number of addresses (num4 %d, num6 %d)", args.Num4, args.Num6)
	}
	what := fmt.Sprintf("assigning addresses to handle %s on node %s", args.Handle, args.Node)
	labels, err := c.nodeLabels(ctx, args.Node)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	all, _, err := c.listPools(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	type want struct {
		fam       int
		n         int
		requested []string
		pools     []pool
	}
	var wants []want
	for _, w := range []want{{4, args.Num4, args.Pools4, nil}, {6, args.Num6, args.Pools6, nil}} {
		if w.n == 0 {
			continue
		}
		if w.pools, err = choosePools(all, w.fam, args.Node, labels, w.requested); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		wants = append(wants, w)
	}
	attr := api.AllocationAttribute{HandleID: args.Handle, Secondary: maps.Clone(args.Attrs)}
	if attr.Secondary == nil {
		attr.Secondary = map[string]string{}
	}
	attr.Secondary[AttrNode] = args.Node
	attr.Secondary[AttrTimestamp] = c.now().UTC().Format(time.RFC3339)

	e := c.nodes.lock(args.Node)
	defer c.nodes.unlock(args.Node, e)
	a := &assigner{c: c, node: args.Node, attr: attr, budget: budget{c: c, what: what}}
	out := &Assigned{}
	for _, w := range wants {
		ips, err := a.assign(ctx, w.fam, w.n, w.pools)
		if w.fam == 4 {
			out.IPv4 = ips
		} else {
			out.IPv6 = ips
		}
		if err != nil {
			// Roll back with a fresh context: the caller's may be what
			// ended.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if got := out.All(); len(got) > 0 {
				if _, rerr := c.releaseIPs(rctx, got, args.Handle); rerr != nil {
					err = errors.Join(err, fmt.Errorf("rolling back %v: %w", got, rerr))
				}
			}
			return nil, fmt.Errorf("%s: %w", what, err)
		}
	}
	c.log.Debug("assigned", logKeyNode, args.Node, logKeyHandle, args.Handle, logKeyIPs, out.All(), logKeyConflict, a.budget.lost)
	return out, nil
}

// assigner is the state of one AutoAssign call.
type assigner struct {
	c      *Client
	node   string
	attr   api.AllocationAttribute
	budget budget
}

// assign allocates n addresses of one family from pools.
func (a *assigner) assign(ctx context.Context, fam, n int, pools []pool) ([]netip.Addr, error) {
	blocks, err := a.c.listBlocks(ctx)
	if err != nil {
		return nil, err
	}
	inPools := func(b *api.IPAMBlock) (pool, bool) {
		p, _ := b.Prefix()
		for _, pl := range pools {
			if pl.containsBlock(p) {
				return pl, true
			}
		}
		return pool{}, false
	}
	affinity := api.HostAffinity(a.node)
	var got []netip.Addr

	// 1. The node's own blocks.
	for _, b := range blocks {
		if len(got) == n {
			return got, nil
		}
		if _, ok := inPools(b); !ok || b.Spec.Affinity != affinity {
			continue
		}
		ips, err := a.fromBlock(ctx, b, n-len(got), func(b *api.IPAMBlock) bool { return b.Spec.Affinity == affinity })
		got = append(got, ips...)
		if err != nil {
			return got, err
		}
	}

	// 2. Claim free blocks.
	taken := make([]netip.Prefix, 0, len(blocks))
	for _, b := range blocks {
		p, _ := b.Prefix()
		taken = append(taken, p)
	}
	for _, pl := range pools {
		for len(got) < n {
			cidr, ok := findFreeBlock(pl, taken, a.node)
			if !ok {
				break
			}
			ips, created, err := a.claim(ctx, cidr, n-len(got))
			got = append(got, ips...)
			if err != nil {
				return got, err
			}
			taken = append(taken, cidr)
			if created {
				continue
			}
			// Someone else claimed it first. If that was (another process
			// for) this node, allocate from it; otherwise keep it for step
			// 3 and try the next free block.
			b, err := a.c.getBlock(ctx, api.BlockNameFor(cidr))
			if err != nil {
				continue
			}
			blocks = append(blocks, b)
			if b.Spec.Affinity == affinity {
				ips, err := a.fromBlock(ctx, b, n-len(got), func(b *api.IPAMBlock) bool { return b.Spec.Affinity == affinity })
				got = append(got, ips...)
				if err != nil {
					return got, err
				}
			}
		}
		if len(got) == n {
			return got, nil
		}
	}

	// 3. Borrow from other nodes' blocks (ours are full by now, but one may
	// have had an address released meanwhile, so they are not skipped).
	slices.SortStableFunc(blocks, func(x, y *api.IPAMBlock) int {
		return cmp.Compare(boolInt(x.Spec.Affinity != affinity), boolInt(y.Spec.Affinity != affinity))
	})
	for _, b := range blocks {
		if len(got) == n {
			return got, nil
		}
		if _, ok := inPools(b); !ok {
			continue
		}
		ips, err := a.fromBlock(ctx, b, n-len(got), func(b *api.IPAMBlock) bool {
			return b.Spec.Affinity == affinity || !b.Spec.StrictAffinity
		})
		got = append(got, ips...)
		if err != nil {
			return got, err
		}
	}
	if len(got) == n {
		return got, nil
	}
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = p.name
	}
	return got, &ExhaustedError{Family: fam, Node: a.node, Pools: names, Wanted: n, Got: len(got)}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// fromBlock allocates up to n addresses from block b (as read earlier) if
// usable(b) holds, re-reading it after each lost race.
func (a *assigner) fromBlock(ctx context.Context, b *api.IPAMBlock, n int, usable func(*api.IPAMBlock) bool) ([]netip.Addr, error) {
	name, cidr := b.Name, b.Spec.CIDR
	e := a.c.blocks.lock(name)
	defer a.c.blocks.unlock(name, e)
	b = e.newer(b)
	for {
		if b.Spec.Deleted || !usable(b) || len(b.Spec.Unallocated) == 0 {
			return nil, nil
		}
		nb := b.DeepCopyResource().(*api.IPAMBlock)
		ips := blockState{nb}.allocate(n, a.attr)
		updated, err := a.c.store.Update(ctx, nb)
		if err == nil {
			e.last = updated.(*api.IPAMBlock)
			return ips, nil
		}
		if errors.Is(err, datastore.ErrNotFound) {
			e.last = nil
			return nil, nil // released meanwhile
		}
		if !errors.Is(err, datastore.ErrConflict) {
			return nil, fmt.Errorf("allocating from block %s: %w", cidr, err)
		}
		if err := a.budget.conflict(ctx, "block "+cidr); err != nil {
			return nil, err
		}
		if b, err = a.c.getBlock(ctx, name); err != nil {
			e.last = nil
			if errors.Is(err, datastore.ErrNotFound) {
				return nil, nil
			}
			return nil, fmt.Errorf("re-reading block %s: %w", cidr, err)
		}
		e.last = b
	}
}

// claim creates block cidr affine to the node with up to n addresses
// already allocated. created is false when the block exists already.
func (a *assigner) claim(ctx context.Context, cidr netip.Prefix, n int) (ips []netip.Addr, created bool, err error) {
	b, err := api.NewIPAMBlock(cidr, api.HostAffinity(a.node))
	if err != nil {
		return nil, false, err
	}
	b.Spec.StrictAffinity = a.c.strict
	ips = blockState{b}.allocate(n, a.attr)
	_, err = a.c.store.Create(ctx, b)
	switch {
	case err == nil:
		a.c.log.Debug("claimed block", logKeyNode, a.node, logKeyBlock, cidr)
		return ips, true, nil
	case errors.Is(err, datastore.ErrAlreadyExists):
		return nil, false, a.budget.conflict(ctx, "claim of block "+cidr.String())
	default:
		return nil, false, fmt.Errorf("claiming block %s: %w", cidr, err)
	}
}

// comparePrefix orders prefixes by address, then length.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}
