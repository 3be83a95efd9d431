package ipam

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// ProblemKind classifies what Check finds.
type ProblemKind string

// Problem kinds.
const (
	// Leaked: an allocation whose owner is gone: its WorkloadEndpoint does
	// not exist, or (without endpoint attributes) its node does not.
	Leaked ProblemKind = "leaked"
	// NodeGone: a block affine to a node that has no Node resource.
	NodeGone ProblemKind = "node-gone"
	// Orphan: a block in no pool (its pool was deleted or shrunk).
	Orphan ProblemKind = "orphan-block"
	// Inconsistent: allocation state that contradicts itself or the
	// endpoints: an allocation without handle or attribute, an attribute
	// no allocation uses, an endpoint address that is not allocated to it.
	Inconsistent ProblemKind = "inconsistent"
)

// Problem is one finding of Check.
type Problem struct {
	Kind ProblemKind
	// Block is the block's CIDR, when the problem is in a block.
	Block string
	// IP and Handle identify an allocation, when the problem is one.
	IP     netip.Addr
	Handle string
	// Detail says what is wrong, for people.
	Detail string
}

func (p Problem) String() string {
	s := string(p.Kind)
	if p.Block != "" {
		s += " block " + p.Block
	}
	if p.IP.IsValid() {
		s += " ip " + p.IP.String()
	}
	if p.Handle != "" {
		s += " handle " + p.Handle
	}
	return s + ": " + p.Detail
}

// CheckOptions tune Check.
type CheckOptions struct {
	// Grace skips allocations younger than this (by their AttrTimestamp)
	// when looking for leaks, so that an ADD in flight, which allocates
	// before it writes its endpoint, is not reported. Zero reports all.
	Grace time.Duration
}

// Check reads pools, blocks, nodes and workload endpoints and returns the
// leaks and inconsistencies it finds, sorted by kind, block and address.
// It changes nothing.
func (c *Client) Check(ctx context.Context, opts CheckOptions) ([]Problem, error) {
	pools, _, err := c.listPools(ctx)
	if err != nil {
		return nil, err
	}
	blocks, err := c.listBlocks(ctx)
	if err != nil {
		return nil, err
	}
	nodes := map[string]bool{}
	rs, _, err := c.store.List(ctx, api.KindNode, "")
	if err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	for _, r := range rs {
		nodes[r.GetObjectMeta().Name] = true
	}
	weps := map[string]*api.WorkloadEndpoint{}
	rs, _, err = c.store.List(ctx, api.KindWorkloadEndpoint, "")
	if err != nil {
		return nil, fmt.Errorf("listing workload endpoints: %w", err)
	}
	for _, r := range rs {
		if w, ok := r.(*api.WorkloadEndpoint); ok {
			weps[w.Namespace+"/"+w.Name] = w
		}
	}
	now := c.now()
	var out []Problem
	owner := map[netip.Addr]api.AllocationAttribute{}
	for _, b := range blocks {
		bp, _ := b.Prefix()
		add := func(p Problem) {
			p.Block = bp.String()
			out = append(out, p)
		}
		if host, ok := b.Host(); ok && b.Spec.Affinity != "" && !nodes[host] {
			add(Problem{Kind: NodeGone, Detail: fmt.Sprintf("affine to node %s, which does not exist", host)})
		}
		if !slices.ContainsFunc(pools, func(p pool) bool { return p.containsBlock(bp) }) {
			add(Problem{Kind: Orphan, Detail: "in no IP pool"})
		}
		s := blockState{b}
		used := make([]bool, len(b.Spec.Attributes))
		for _, a := range b.Spec.Allocations {
			if a != nil && *a >= 0 && *a < len(used) {
				used[*a] = true
			}
		}
		for i, u := range used {
			if !u {
				add(Problem{Kind: Inconsistent, Handle: b.Spec.Attributes[i].HandleID, Detail: fmt.Sprintf("attribute %d is used by no allocation", i)})
			}
		}
		for _, a := range s.allocations() {
			owner[a.IP] = a.Attr
			p := Problem{IP: a.IP, Handle: a.Attr.HandleID}
			sec := a.Attr.Secondary
			switch {
			case a.BadAttr:
				p.Kind, p.Detail = Inconsistent, "allocation points at no attribute"
			case a.Attr.HandleID == "":
				p.Kind, p.Detail = Inconsistent, "allocation has no handle, so nothing can release it"
			case young(sec[AttrTimestamp], now, opts.Grace):
				continue
			case sec[AttrEndpoint] != "" && sec[AttrNamespace] != "":
				key := sec[AttrNamespace] + "/" + sec[AttrEndpoint]
				w, ok := weps[key]
				switch {
				case !ok:
					p.Kind, p.Detail = Leaked, fmt.Sprintf("workload endpoint %s does not exist", key)
				case !slices.Contains(w.Spec.Addrs(), a.IP):
					p.Kind, p.Detail = Inconsistent, fmt.Sprintf("workload endpoint %s does not list the address", key)
				default:
					continue
				}
			case sec[AttrNode] != "" && !nodes[sec[AttrNode]]:
				p.Kind, p.Detail = Leaked, fmt.Sprintf("allocated for node %s, which does not exist", sec[AttrNode])
			default:
				continue
			}
			add(p)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(weps)) {
		w := weps[key]
		for _, ip := range w.Spec.Addrs() {
			attr, ok := owner[ip]
			switch {
			case !ok:
				out = append(out, Problem{Kind: Inconsistent, IP: ip, Detail: fmt.Sprintf("workload endpoint %s uses the address, which is not allocated", key)})
			case attr.Secondary[AttrEndpoint] != "" && attr.Secondary[AttrNamespace]+"/"+attr.Secondary[AttrEndpoint] != key:
				out = append(out, Problem{Kind: Inconsistent, IP: ip, Handle: attr.HandleID,
					Detail: fmt.Sprintf("workload endpoint %s uses the address, which is allocated to %s/%s", key, attr.Secondary[AttrNamespace], attr.Secondary[AttrEndpoint])})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Block, b.Block), a.IP.Compare(b.IP))
	})
	return out, nil
}

// young reports whether an allocation stamped ts is younger than grace.
func young(ts string, now time.Time, grace time.Duration) bool {
	if grace <= 0 {
		return false
	}
	t, err := time.Parse(time.RFC3339, ts)
	return err == nil && now.Sub(t) < grace
}
