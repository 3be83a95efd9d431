package ipam

import (
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

// Errors of AssignIPs; test them with errors.Is.
var (
	// ErrNotInPool: a requested address lies in no IP pool.
	ErrNotInPool = errors.New("is in no IP pool")
	// ErrPoolDisabled: a requested address lies in a disabled pool.
	ErrPoolDisabled = errors.New("is in a disabled IP pool")
	// ErrInUse: a requested address is allocated already.
	ErrInUse = errors.New("is already in use")
)

// AssignIPArgs is what AssignIPs allocates: these very addresses (a pod's
// fixed addresses, Calico's cni.projectcalico.org/ipAddrs).
type AssignIPArgs struct {
	Node   string
	Handle string
	IPs    []netip.Addr
	Attrs  map[string]string
}

// AssignIPs allocates exactly args.IPs for a node under a handle. Each
// address must lie in an enabled pool (any pool's nodeSelector: a fixed
// address is the operator's explicit choice, as in Calico) and be free.
// Its block is used wherever it is affine; a block that does not exist
// yet is claimed for the node. Either every address is allocated or none
// is; errors wrap ErrNotInPool, ErrPoolDisabled, ErrInUse or the
// datastore's error and name the address.
func (c *Client) AssignIPs(ctx context.Context, args AssignIPArgs) error {
	switch {
	case args.Node == "":
		return errors.New("assigning addresses: node is required")
	case args.Handle == "":
		return errors.New("assigning addresses: handle is required")
	case len(args.IPs) == 0:
		return errors.New("assigning addresses: no address given")
	}
	what := fmt.Sprintf("assigning %v to handle %s on node %s", args.IPs, args.Handle, args.Node)
	pools, _, err := c.listPools(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	blocks := make([]netip.Prefix, 0, len(args.IPs))
	for i, ip := range args.IPs {
		if slices.Contains(args.IPs[:i], ip) {
			return fmt.Errorf("%s: %s is given twice", what, ip)
		}
		p, ok := poolOf(pools, ip)
		switch {
		case !ok:
			return fmt.Errorf("%s: %s %w", what, ip, ErrNotInPool)
		case p.disabled:
			return fmt.Errorf("%s: %s %w (%s)", what, ip, ErrPoolDisabled, p.name)
		}
		cidr, err := ip.Prefix(p.blockSize)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		blocks = append(blocks, cidr)
	}
	attr := api.AllocationAttribute{HandleID: args.Handle, Secondary: maps.Clone(args.Attrs)}
	if attr.Secondary == nil {
		attr.Secondary = map[string]string{}
	}
	attr.Secondary[AttrNode] = args.Node
	attr.Secondary[AttrTimestamp] = c.now().UTC().Format(time.RFC3339)
	bud := &budget{c: c, what: what}
	var done []netip.Addr
	for i, ip := range args.IPs {
		if err := c.assignOne(ctx, args.Node, blocks[i], ip, attr, bud); err != nil {
			if len(done) > 0 {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				defer cancel()
				if _, rerr := c.releaseIPs(rctx, done, args.Handle); rerr != nil {
					err = errors.Join(err, fmt.Errorf("rolling back %v: %w", done, rerr))
				}
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		done = append(done, ip)
	}
	c.log.Debug("assigned", logKeyNode, args.Node, logKeyHandle, args.Handle, logKeyIPs, done)
	return nil
}

// poolOf returns the pool that contains ip (the longest prefix if pools
// overlap).
func poolOf(pools []pool, ip netip.Addr) (pool, bool) {
	var best pool
	found := false
	for _, p := range pools {
		if p.cidr.Contains(ip) && (!found || p.cidr.Bits() > best.cidr.Bits()) {
			best, found = p, true
		}
	}
	return best, found
}

// assignOne allocates ip in block cidr, claiming the block for node when
// it does not exist.
func (c *Client) assignOne(ctx context.Context, node string, cidr netip.Prefix, ip netip.Addr, attr api.AllocationAttribute, bud *budget) error {
	name := api.BlockNameFor(cidr)
	for {
		b, err := c.getBlock(ctx, name)
		if errors.Is(err, datastore.ErrNotFound) {
			nb, err := api.NewIPAMBlock(cidr, api.HostAffinity(node))
			if err != nil {
				return err
			}
			nb.Spec.StrictAffinity = c.strict
			if err := (blockState{nb}).allocateIP(ip, attr); err != nil {
				return err
			}
			_, err = c.store.Create(ctx, nb)
			if err == nil {
				return nil
			}
			if !errors.Is(err, datastore.ErrAlreadyExists) {
				return fmt.Errorf("claiming block %s: %w", cidr, err)
			}
		} else if err != nil {
			return fmt.Errorf("reading block %s: %w", cidr, err)
		} else {
			nb := b.DeepCopyResource().(*api.IPAMBlock)
			if nb.Spec.Deleted {
				return fmt.Errorf("block %s is being deleted: try again", cidr)
			}
			if err := (blockState{nb}).allocateIP(ip, attr); err != nil {
				return err
			}
			_, err = c.store.Update(ctx, nb)
			if err == nil {
				return nil
			}
			if !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrNotFound) {
				return fmt.Errorf("allocating %s in block %s: %w", ip, cidr, err)
			}
		}
		if err := bud.conflict(ctx, "block "+cidr.String()); err != nil {
			return err
		}
	}
}

// allocateIP takes the free address ip for attr.
func (s blockState) allocateIP(ip netip.Addr, attr api.AllocationAttribute) error {
	ord, err := s.b.IPToOrdinal(ip)
	if err != nil {
		return err
	}
	spec := &s.b.Spec
	i := slices.Index(spec.Unallocated, ord)
	if spec.Allocations[ord] != nil || i < 0 {
		return fmt.Errorf("%s %w", ip, ErrInUse)
	}
	idx := s.attrIndex(attr)
	spec.Allocations[ord] = &idx
	spec.Unallocated = slices.Delete(slices.Clone(spec.Unallocated), i, i+1)
	return nil
}
