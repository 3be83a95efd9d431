package felix

import (
	"context"
	"net/netip"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/calc"
	"github.com/bgpfabric/bgpfabric/felix/nft"
)

// NAT is the kernel side of IPPool natOutgoing: nft.NAT in production.
// Apply makes the kernel masquerade as pools say (idempotent); Resync makes
// the next Apply rewrite it.
type NAT interface {
	Apply(ctx context.Context, pools []nft.NATPool) error
	Resync()
}

// natPools is the input of outgoing NAT: every IP pool, whether it has
// natOutgoing or not (traffic to any pool is never masqueraded).
type natPools struct {
	nat   NAT
	pools map[calc.Key]nft.NATPool
}

func newNATPools(nat NAT) *natPools {
	return &natPools{nat: nat, pools: map[calc.Key]nft.NATPool{}}
}

func (n *natPools) onSnapshot(rs []api.Resource) {
	clear(n.pools)
	for _, r := range rs {
		n.onUpdate(r)
	}
}

// onUpdate takes a pool (other kinds are ignored). A pool whose CIDR does
// not parse (written without validation) is left out: it cannot be
// matched.
func (n *natPools) onUpdate(r api.Resource) {
	p, ok := r.(*api.IPPool)
	if !ok {
		return
	}
	k := calc.KeyOf(p)
	cidr, err := netip.ParsePrefix(p.Spec.CIDR)
	if err != nil {
		delete(n.pools, k)
		return
	}
	n.pools[k] = nft.NATPool{CIDR: cidr.Masked(), Masquerade: p.Spec.NATOutgoing}
}

func (n *natPools) onRemove(k calc.Key) {
	if k.Kind == api.KindIPPool {
		delete(n.pools, k)
	}
}

func (n *natPools) apply(ctx context.Context) error {
	pools := make([]nft.NATPool, 0, len(n.pools))
	for _, p := range n.pools {
		pools = append(pools, p)
	}
	return n.nat.Apply(ctx, pools) // natRules sorts them
}
