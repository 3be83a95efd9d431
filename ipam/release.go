package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// ReleaseByHandle releases every address allocated under handle and
// returns them. Releasing a handle that holds nothing (again) succeeds and
// returns nothing.
func (c *Client) ReleaseByHandle(ctx context.Context, handle string) ([]netip.Addr, error) {
	if handle == "" {
		return nil, errors.New("releasing: handle is required")
	}
	what := "releasing handle " + handle
	blocks, err := c.listBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	bud := &budget{c: c, what: what}
	var out []netip.Addr
	var errs []error
	for _, b := range blocks {
		if len(blockState{b}.handleOrdinals(handle)) == 0 {
			continue
		}
		ips, err := c.releaseFromBlock(ctx, b, bud, func(s blockState) []int { return s.handleOrdinals(handle) })
		out = append(out, ips...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	if len(out) > 0 {
		c.log.Debug("released", logKeyHandle, handle, logKeyIPs, out)
	}
	return out, nil
}

// ReleaseIPs releases the given addresses, whoever holds them, and returns
// those that were allocated. Addresses that are free already, or in no
// block, are skipped.
func (c *Client) ReleaseIPs(ctx context.Context, ips []netip.Addr) ([]netip.Addr, error) {
	return c.releaseIPs(ctx, ips, "")
}

// ReleaseIPsOfHandle releases those of ips that are allocated to handle
// and returns them: what one caller allocated, and nothing that another
// holder of the same handle (or any other) got. Addresses free already,
// held by another handle, or in no block are skipped.
func (c *Client) ReleaseIPsOfHandle(ctx context.Context, ips []netip.Addr, handle string) ([]netip.Addr, error) {
	if handle == "" {
		return nil, errors.New("releasing: handle is required")
	}
	return c.releaseIPs(ctx, ips, handle)
}

// releaseIPs releases those of ips that are allocated (to handle, when it
// is not empty).
func (c *Client) releaseIPs(ctx context.Context, ips []netip.Addr, handle string) ([]netip.Addr, error) {
	what := fmt.Sprintf("releasing %v", ips)
	blocks, err := c.listBlocks(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	bud := &budget{c: c, what: what}
	var out []netip.Addr
	var errs []error
	for _, b := range blocks {
		p, _ := b.Prefix()
		var mine []netip.Addr
		for _, ip := range ips {
			if p.Contains(ip) {
				mine = append(mine, ip)
			}
		}
		if len(mine) == 0 {
			continue
		}
		got, err := c.releaseFromBlock(ctx, b, bud, func(s blockState) []int { return s.ipOrdinals(mine, handle) })
		out = append(out, got...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// releaseFromBlock frees the ordinals pick chooses in block b, re-reading
// after lost races, and deletes the block if that empties it and no node
// wants it.
func (c *Client) releaseFromBlock(ctx context.Context, b *api.IPAMBlock, bud *budget, pick func(blockState) []int) ([]netip.Addr, error) {
	name, cidr := b.Name, b.Spec.CIDR
	e := c.blocks.lock(name)
	defer c.blocks.unlock(name, e)
	b = e.newer(b)
	for {
		nb := b.DeepCopyResource().(*api.IPAMBlock)
		s := blockState{nb}
		ords := pick(s)
		if len(ords) == 0 {
			return nil, nil
		}
		ips := s.release(ords)
		updated, err := c.store.Update(ctx, nb)
		if err == nil {
			e.last = updated.(*api.IPAMBlock)
			if s.used() == 0 && c.maybeDeleteEmpty(ctx, e.last) {
				e.last = nil
			}
			return ips, nil
		}
		if errors.Is(err, datastore.ErrNotFound) {
			e.last = nil
			return nil, nil
		}
		if !errors.Is(err, datastore.ErrConflict) {
			return nil, fmt.Errorf("block %s: %w", cidr, err)
		}
		if err := bud.conflict(ctx, "block "+cidr); err != nil {
			return nil, err
		}
		if b, err = c.getBlock(ctx, name); err != nil {
			e.last = nil
			if errors.Is(err, datastore.ErrNotFound) {
				return nil, nil
			}
			return nil, fmt.Errorf("re-reading block %s: %w", cidr, err)
		}
		e.last = b
	}
}

// maybeDeleteEmpty deletes an empty block (at the version that emptied it)
// unless its affine node still wants it, and reports whether it did.
// Failures only leave an empty block behind, which is harmless: they are
// logged.
func (c *Client) maybeDeleteEmpty(ctx context.Context, b *api.IPAMBlock) bool {
	if node, ok := b.Host(); ok && b.Spec.Affinity != "" {
		wants, err := c.nodeWantsBlock(ctx, node, b)
		if err != nil {
			c.log.Debug("keeping empty block", logKeyBlock, b.Spec.CIDR, logKeyError, err)
			return false
		}
		if wants {
			return false
		}
	}
	err := c.store.Delete(ctx, api.KindIPAMBlock, "", b.Name, b.ResourceVersion)
	switch {
	case err == nil:
		c.log.Debug("deleted empty block", logKeyBlock, b.Spec.CIDR)
		return true
	case errors.Is(err, datastore.ErrConflict), errors.Is(err, datastore.ErrNotFound):
		// Someone allocated from it or deleted it meanwhile.
	default:
		c.log.Warn("deleting empty block", logKeyBlock, b.Spec.CIDR, logKeyError, err)
	}
	return false
}

// nodeWantsBlock reports whether node exists and an enabled pool that
// selects it contains block b.
func (c *Client) nodeWantsBlock(ctx context.Context, node string, b *api.IPAMBlock) (bool, error) {
	labels, err := c.nodeLabels(ctx, node)
	if errors.Is(err, ErrNodeNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	pools, _, err := c.listPools(ctx)
	if err != nil {
		return false, err
	}
	p, _ := b.Prefix()
	for _, pl := range pools {
		if pl.containsBlock(p) && pl.selects(labels) {
			return true, nil
		}
	}
	return false, nil
}

// ReleaseNodeBlocks gives up every block affine to node, for a node that
// has left the fabric (Calico's ReleaseHostAffinities): empty blocks are
// deleted, the others lose their affinity and are deleted when their last
// address is released. Addresses stay allocated. It returns the CIDRs of
// the blocks it deleted and of those it released.
func (c *Client) ReleaseNodeBlocks(ctx context.Context, node string) (deleted, released []string, err error) {
	what := "releasing the blocks of node " + node
	blocks, err := c.listBlocks(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	bud := &budget{c: c, what: what}
	affinity := api.HostAffinity(node)
	var errs []error
	for _, b := range blocks {
		for b != nil && b.Spec.Affinity == affinity {
			var err error
			if (blockState{b}).used() == 0 {
				err = c.store.Delete(ctx, api.KindIPAMBlock, "", b.Name, b.ResourceVersion)
				if err == nil {
					deleted = append(deleted, b.Spec.CIDR)
					break
				}
			} else {
				nb := b.DeepCopyResource().(*api.IPAMBlock)
				nb.Spec.Affinity, nb.Spec.StrictAffinity = "", false
				if _, err = c.store.Update(ctx, nb); err == nil {
					released = append(released, b.Spec.CIDR)
					break
				}
			}
			if errors.Is(err, datastore.ErrNotFound) {
				break
			}
			if !errors.Is(err, datastore.ErrConflict) {
				errs = append(errs, fmt.Errorf("block %s: %w", b.Spec.CIDR, err))
				break
			}
			if err := bud.conflict(ctx, "block "+b.Spec.CIDR); err != nil {
				errs = append(errs, err)
				break
			}
			name := b.Name
			if b, err = c.getBlock(ctx, name); err != nil {
				if !errors.Is(err, datastore.ErrNotFound) {
					errs = append(errs, fmt.Errorf("re-reading block %s: %w", name, err))
				}
				break
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return deleted, released, fmt.Errorf("%s: %w", what, err)
	}
	return deleted, released, nil
}
